"""Fixtures for the observability tests: apps with rate limits switched on."""

from __future__ import annotations

import dataclasses

import pytest
from falcon import testing


@pytest.fixture
def limited(deps, clean):
    """``limited(**settings)`` -> a TestClient over a fresh app with limits on.

    Every app built in one test shares Redis (and its key prefix), like the API
    pods of one deployment do.
    """
    from api.app import create_app

    def make(**overrides) -> testing.TestClient:
        settings = deps.settings.replace(rate_limits_enabled=True, **overrides)
        app = create_app(settings, dataclasses.replace(deps, settings=settings))
        return testing.TestClient(app)

    return make
