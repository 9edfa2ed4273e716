"""Worker entry point: ``dramatiq workers.main --queues fanout fanout_bulk timeline``.

Importing this module sets the global broker (Dramatiq's CLI requires it) and
declares every actor.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage

from core.settings import Settings
from workers.broker import make_broker
from workers.middleware import DatabaseConnection, JobObservability
from workers.relay import RelayMiddleware

settings = Settings.from_env()
broker = make_broker(settings)
broker.add_middleware(CurrentMessage())
broker.add_middleware(JobObservability(settings))
broker.add_middleware(DatabaseConnection())
broker.add_middleware(RelayMiddleware(settings))
dramatiq.set_broker(broker)

from workers.actors import timelines  # noqa: E402,F401  (declares the actors)
