"""Builds the collaborators every entry point needs, from settings."""

from __future__ import annotations

from dataclasses import dataclass

from core.cached_pages import CachedPages
from core.cursors import CursorCodec
from core.db import init_database
from core.ids import IdGenerator, NodeLease
from core.keys import Keys
from core.local_cache import LocalCache
from core.passwords import Passwords
from core.read_cache import ReadCache
from core.redis_client import Client, make_redis
from core.revocation import Denylist
from core.settings import Settings
from core.timeline_store import TimelineStore
from core.timelines import Timelines
from core.tokens import TokenCodec


@dataclass
class Deps:
    settings: Settings
    redis: Client
    ids: IdGenerator
    passwords: Passwords
    tokens: TokenCodec | None
    denylist: Denylist
    cursors: CursorCodec
    timelines: Timelines
    pages: CachedPages


def build(
    settings: Settings, signing: bool = True, tokens: bool = True, client=None
) -> Deps:
    """Everything wired. Workers hold no keys (``tokens=False``); a process
    that only verifies tokens passes ``signing=False``; ``client`` replaces
    the Redis client the settings name (the bench records its commands)."""
    init_database(settings)
    client = client or make_redis(settings)
    node = (
        settings.node_id
        if settings.node_id >= 0
        else NodeLease(client, settings.redis_prefix)
    )
    keys = Keys(settings.redis_prefix)
    store = TimelineStore(
        client,
        keys,
        settings.timeline_cap,
        settings.home_ttl_s,
        wait=(settings.wait_replicas, settings.redis_wait_timeout_ms),
    )
    cache = ReadCache(client, keys, settings.fanout_threshold)
    timelines = Timelines(
        store, settings.fanout_threshold, cache, settings.inactive_days
    )
    return Deps(
        settings=settings,
        redis=client,
        ids=IdGenerator(node),
        passwords=Passwords(settings),
        tokens=TokenCodec.from_settings(settings, signing=signing) if tokens else None,
        denylist=Denylist(client, keys),
        cursors=CursorCodec(settings.cursor_secret),
        timelines=timelines,
        pages=CachedPages(
            timelines,
            cache,
            keys,
            LocalCache(settings.card_cache_size, settings.pulled_cache_s),
        ),
    )
