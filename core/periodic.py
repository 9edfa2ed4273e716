"""A function run every so often by a daemon thread of the calling process.

Hot paths buffer their work (metric updates, log lines) and leave writing it out
to one of these. The thread starts on first use, so a forked gunicorn worker
starts its own (threads do not survive a fork), and the function runs once more
when the process exits normally.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, fn: Callable[[], None], interval_s: float, name: str):
        self._fn = fn
        self._interval = interval_s
        self._name = name
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)
        atexit.register(self.run_once)

    def ensure_started(self) -> None:
        """Cheap enough for every request: one attribute test once running."""
        if self._thread is None:
            self._start()

    def run_once(self) -> None:
        try:
            self._fn()
        except Exception:  # never let the thread die: log, go on
            log.exception("%s failed", self._name)

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=self._name)
                thread.daemon = True
                thread.start()
                self._thread = thread

    def _loop(self) -> None:
        while True:
            time.sleep(self._interval)
            self.run_once()

    def _forget(self) -> None:
        self._thread = None
        self._starting = threading.Lock()
