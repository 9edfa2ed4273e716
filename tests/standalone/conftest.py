"""Standalone tests bring their own embedded servers: no shared services."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def services():
    """Overrides the suite's autouse fixture: nothing here may touch the
    machine's PostgreSQL, Redis or RabbitMQ (they may not even exist)."""
    yield
