"""Dramatiq middleware: return database connections after every message."""

from __future__ import annotations

import dramatiq

from core.db import database


class DatabaseConnection(dramatiq.Middleware):
    """Give this thread's pooled connection back after each message."""

    def _release(self, *_args, **_kwargs):
        if not database.is_closed():
            database.close()

    after_process_message = _release
    after_skip_message = _release
