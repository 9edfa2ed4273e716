"""Actors, one module per domain; each is thin and calls a core function."""
