"""Per-process collaborators for the actors, built lazily after fork."""

from __future__ import annotations

import threading

from core import container
from core.settings import Settings

_lock = threading.Lock()
_deps: container.Deps | None = None


def get() -> container.Deps:
    global _deps
    with _lock:
        if _deps is None:
            _deps = container.build(Settings.from_env(), tokens=False)
        return _deps


def use(deps: container.Deps) -> None:
    """Tests hand in their own collaborators."""
    global _deps
    _deps = deps
