"""Dramatiq layer: the broker, the outbox relay and the actors."""
