"""Numbered schema migrations and their runner (``python -m migrations``)."""
