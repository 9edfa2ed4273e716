"""Falcon layer: HTTP in, core services, JSON out."""
