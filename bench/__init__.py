"""Benchmarks: every figure a ratio against a limit measured in the same run.

``python -m bench`` (``make bench``) builds a seeded data set, runs the real
service (gunicorn, Dramatiq, Postgres, Redis, RabbitMQ) in names of its own and
drives it over loopback; ``--quick`` checks the harness in under two minutes.
"""
