"""Rate limits kept in Redis, so every API pod and process shares the counts.

Built on the `limits` library (atomic Lua scripts on Redis). Each request is
charged to one bucket (see ``_classify``), each bucket a setting of one or more
tiers ("60 per minute;2400 per day"). A spent bucket is a 429 problem with
``Retry-After``; every charged response carries the IETF ``RateLimit-Policy`` /
``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers-09) and the legacy
``X-RateLimit-*`` trio. When Redis does not answer, requests pass: the limiter
must not turn a Redis blip into an outage of routes that do not need Redis.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisClusterStorage, RedisStorage
from limits.strategies import STRATEGIES
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.clientip import ClientAddress
from core import metrics
from core.errors import RateLimited
from core.redis_client import Lazy
from core.services import auth
from core.settings import ConfigError, Settings

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Probes and scrapes must never be refused.
EXEMPT_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
AUTH_ROUTES = frozenset({"/auth/signup", "/auth/login"})
AUTH, LOGIN_FAILURES, LOGIN_ACCOUNT, WRITES, READS, ANONYMOUS = (
    "auth",
    "login_failures",
    "login_account",
    "writes",
    "reads",
    "anonymous",
)
# The account-wide login bucket: each login_failures tier times this, i.e. as
# many guesses as this many addresses together get at one account.
ACCOUNT_FACTOR = 4
# An address that logged in to an account is spared the account-wide bucket
# for this long (a device the owner uses at least monthly).
KNOWN_ADDRESS_TTL_S = 30 * 24 * 3600
# A client's IPv6 /64 is one subscriber: limiting single addresses in it would
# hand every client 2^64 fresh buckets.
IPV6_PREFIX = 64
WARN_EVERY_S = 30.0
# The limiter's own Redis client fails fast and never retries: a request should
# pass unlimited within milliseconds when Redis is away, not after backoffs.
REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Bucket:
    name: str
    items: tuple[RateLimitItem, ...]


@dataclass(frozen=True)
class Tier:
    """One limit of a bucket as the response headers describe it."""

    policy: str
    quota: int
    window: int
    remaining: int
    reset_in: int


@dataclass(frozen=True)
class Decision:
    bucket: str
    tiers: tuple[Tier, ...]
    denied: Tier | None = None

    def headers(self, now: float) -> dict[str, str]:
        # The legacy trio can describe one limit only: the one that refused, or
        # the one closest to running out.
        binding = self.denied or min(
            self.tiers, key=lambda t: (t.remaining, -t.reset_in)
        )
        headers = {
            "RateLimit-Policy": ", ".join(
                f'"{t.policy}";q={t.quota};w={t.window}' for t in self.tiers
            ),
            "RateLimit": ", ".join(
                f'"{t.policy}";r={t.remaining};t={t.reset_in}' for t in self.tiers
            ),
            "X-RateLimit-Limit": str(binding.quota),
            "X-RateLimit-Remaining": str(binding.remaining),
            "X-RateLimit-Reset": str(math.ceil(now) + binding.reset_in),
        }
        if self.denied:
            headers["Retry-After"] = str(max(1, self.denied.reset_in))
        return headers


def _bucket(name: str, setting: str, value: str) -> Bucket:
    try:
        items = tuple(parse_many(value))
    except ValueError as ex:
        raise ConfigError(f"{setting}: {ex}") from None
    return Bucket(name, items)


# Why: docs/security.md#rate-limits
class RidingCounters:
    """The `limits` library's fixed windows as commands in a request's first trip."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def queue(self, first, bucket: Bucket, tag: str, subject: str, now: float):
        """Queue the counters; returns the indexes of the (INCR, TTL) replies."""
        counted = []
        for item in bucket.items:
            window = item.get_expiry()
            key = f"{self._prefix}{{{tag}}}:rl:{bucket.name}:{window}:{subject}"
            first.add("SET", key, 0, "EX", window, "NX")
            counted.append(first.add("INCR", key))
            counted.append(first.add("TTL", key))
        return counted

    @staticmethod
    def decide(bucket: Bucket, replies: list[int], now: float) -> Decision:
        tiers, denied = [], None
        pairs = zip(replies[::2], replies[1::2], strict=True)
        for item, (count, ttl) in zip(bucket.items, pairs, strict=True):
            window = item.get_expiry()
            tier = Tier(
                policy=f"{bucket.name}-{window}s",
                quota=item.amount,
                window=window,
                remaining=max(0, item.amount - count),
                reset_in=min(window, max(0, ttl) + 1),
            )
            tiers.append(tier)
            if count > item.amount and denied is None:
                denied = tier
        return Decision(bucket.name, tuple(tiers), denied)


def _storage(s: Settings):
    """The limiter's own Redis client: fails fast, never retries."""
    options = dict(
        key_prefix=f"{s.redis_prefix}ratelimit",
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    if s.redis_mode == "cluster":
        # each counter is one key: any node may hold it
        parts = urlsplit(s.redis_dsn)
        tls = parts.scheme == "rediss"
        uri = urlunsplit(parts._replace(scheme="redis+cluster", path=""))
        return RedisClusterStorage(uri, ssl=tls, **options)
    return RedisStorage(s.redis_dsn, retry=Retry(NoBackoff(), 0), **options)


def _account_bucket(per_address: Bucket) -> Bucket:
    items = tuple(
        type(item)(item.amount * ACCOUNT_FACTOR, item.multiples)
        for item in per_address.items
    )
    return Bucket(LOGIN_ACCOUNT, items)


class RateLimits:
    """Falcon middleware: charge each request to its bucket, 429 once spent."""

    def __init__(self, settings: Settings):
        s = settings
        self.enabled = s.rate_limits_enabled
        self._client = ClientAddress(s.trusted_proxies)
        self._buckets = {
            b.name: b
            for b in (
                _bucket(AUTH, "RATE_LIMIT_AUTH", s.rate_limit_auth),
                _bucket(
                    LOGIN_FAILURES,
                    "RATE_LIMIT_LOGIN_FAILURES",
                    s.rate_limit_login_failures,
                ),
                _account_bucket(
                    _bucket(
                        LOGIN_FAILURES,
                        "RATE_LIMIT_LOGIN_FAILURES",
                        s.rate_limit_login_failures,
                    )
                ),
                _bucket(WRITES, "RATE_LIMIT_WRITES", s.rate_limit_writes),
                _bucket(READS, "RATE_LIMIT_READS", s.rate_limit_reads),
                _bucket(ANONYMOUS, "RATE_LIMIT_ANONYMOUS", s.rate_limit_anonymous),
            )
        }
        strategy = STRATEGIES.get(s.rate_limit_strategy)
        if strategy is None:
            raise ConfigError(
                f"RATE_LIMIT_STRATEGY must be one of {', '.join(STRATEGIES)}"
            )
        self._limiter = Lazy(lambda: strategy(_storage(s)))
        self._redis = Lazy(lambda: self._limiter.storage.storage)  # fail-fast
        self._login_prefix = f"{s.redis_prefix}lf:"
        # A fixed window's reset comes from Redis TTL, whole seconds rounded to
        # nearest: one more second never sends a client back too early.
        self._slack = 1 if s.rate_limit_strategy == "fixed-window" else 0
        # Fixed windows (the default) are counted in the request's first
        # round trip to Redis (``RidingCounters``); other strategies run the
        # `limits` library's scripts, a round trip or more per tier.
        self._riding = (
            RidingCounters(s.redis_prefix)
            if s.rate_limit_strategy == "fixed-window"
            else None
        )
        self._warned_at = 0.0

    # ------------------------------------------------------------ middleware
    def process_resource(self, req, resp, resource, params):
        # After routing, so a 429 is logged and measured under its route
        # template; unknown paths (404s without any work) are not charged.
        if not self.enabled or req.uri_template in EXEMPT_ROUTES:
            return
        bucket, subject = self._classify(req)
        if self._riding is not None:
            return self._ride(req, bucket, subject)
        ids = (bucket.name, subject)
        try:
            denied = None
            for item in bucket.items:
                if not self._limiter.hit(item, *ids):
                    denied = item
                    break
            decision = self._decide(bucket, ids, denied)
        except redis.RedisError as ex:
            return self._storage_down(ex)
        self._apply(req, decision)

    def _ride(self, req, bucket: Bucket, subject: str) -> None:
        """Queue the bucket's counters in the first round trip; judge them
        (429 or go on) as it returns, after the token's own check."""
        claims = getattr(req.context, "claims", None)
        tag = f"u{claims.user_id}" if claims is not None else f"ip:{subject}"
        now = time.time()
        counted = self._riding.queue(req.context.first_round, bucket, tag, subject, now)

        def judge(replies):
            try:
                counts = [replies[at] for at in counted]
                for count in counts:
                    if isinstance(count, Exception):
                        raise count
            except redis.RedisError as ex:
                return self._storage_down(ex)
            self._apply(req, self._riding.decide(bucket, counts, now))

        req.context.first_round.before_use(judge)

    def process_response(self, req, resp, resource, req_succeeded):
        decision = getattr(req.context, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers(time.time()).items():
                resp.set_header(name, value)

    def _classify(self, req) -> tuple[Bucket, str]:
        if req.method == "POST" and req.uri_template in AUTH_ROUTES:
            return self._buckets[AUTH], self.client_key(req)
        claims = getattr(req.context, "claims", None)
        if claims is None:
            return self._buckets[ANONYMOUS], self.client_key(req)
        if req.method in SAFE_METHODS:
            # The session (token family), not the access token: a refresh every
            # 15 minutes must not reset the budget.
            return self._buckets[READS], claims.family_id
        return self._buckets[WRITES], str(claims.user_id)

    # ----------------------------------------------------------- login guard
    # Why: docs/security.md#how-a-password-check-is-counted
    def login_guard(self, req):
        """``guard(account)``: a context manager around one password check."""
        if not self.enabled:
            return auth.unguarded
        return lambda account: self._login_attempt(req, account)

    @contextmanager
    def _login_attempt(self, req, account: str):
        address = self.client_key(req)
        tag = f"{{{account}}}"  # one hash tag: every key of this account, one slot
        per_address = (self._buckets[LOGIN_FAILURES], (LOGIN_FAILURES, tag, address))
        account_wide = (self._buckets[LOGIN_ACCOUNT], (LOGIN_ACCOUNT, tag))
        known_key = f"{self._login_prefix}{tag}:ok:{address}"
        try:
            charged = [per_address]
            if not self._redis.exists(known_key):
                charged.append(account_wide)
            for bucket, ids in charged:
                denied = next(
                    (i for i in bucket.items if not self._limiter.hit(i, *ids)), None
                )
                if denied is not None:
                    self._apply(req, self._decide(bucket, ids, denied))
        except redis.RedisError as ex:
            self._storage_down(ex)
        yield  # a wrong password raises out of here: counted already
        try:
            bucket, ids = per_address
            for item in bucket.items:
                self._limiter.clear(item, *ids)
            self._redis.set(known_key, b"1", ex=KNOWN_ADDRESS_TTL_S)
        except redis.RedisError as ex:
            self._storage_down(ex)

    # --------------------------------------------------------------- helpers
    def client_key(self, req) -> str:
        """The client's address (its /64 for IPv6), behind trusted proxies only."""
        address = self._client.of(req.remote_addr, req.get_header("X-Forwarded-For"))
        if ":" in address:
            network = ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False)
            return str(network)
        return address

    def _decide(self, bucket: Bucket, ids, denied: RateLimitItem | None) -> Decision:
        tiers = []
        refused = None
        for item in bucket.items:
            tier = self._tier(bucket, item, ids)
            tiers.append(tier)
            if item is denied:
                refused = tier
        return Decision(bucket.name, tuple(tiers), refused)

    def _tier(self, bucket: Bucket, item: RateLimitItem, ids) -> Tier:
        stats = self._limiter.get_window_stats(item, *ids)
        window = item.get_expiry()
        reset_in = min(
            window, max(0, math.ceil(stats.reset_time - time.time())) + self._slack
        )
        return Tier(
            policy=f"{bucket.name}-{window}s",
            quota=item.amount,
            window=window,
            remaining=max(0, stats.remaining),
            reset_in=reset_in,
        )

    def _apply(self, req, decision: Decision) -> None:
        req.context.rate_limit = decision
        if decision.denied is not None:
            metrics.RATE_LIMITED.labels(decision.bucket).inc()
            retry_after = max(1, decision.denied.reset_in)
            raise RateLimited(
                f"Too many requests; retry in {retry_after} s",
                retry_after=retry_after,
                bucket=decision.bucket,
            )

    def _storage_down(self, ex: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limits skipped: redis unavailable (%s)", ex)
