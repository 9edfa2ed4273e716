"""All configuration, read once from environment variables.

This is the only module that reads ``os.environ``. Defaults work on a developer
machine with PostgreSQL, Redis and RabbitMQ on localhost; production mode
(``APP_ENV=production``) refuses to start with missing keys or placeholder secrets.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

PLACEHOLDER_SECRET = "dev-insecure-change-me"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _int(env, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _bool(env, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def _list(env, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def with_password(url: str, password: str) -> str:
    """``url`` with its password replaced by ``password`` (URL-escaped), if given."""
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Settings:
    """Process configuration; build it with :meth:`from_env`."""

    env: str = "development"
    # --- PostgreSQL -------------------------------------------------------
    database_url: str = "postgresql://postgres@127.0.0.1:5432/twitter"
    # Connection budget: (gunicorn workers x threads + dramatiq processes x threads)
    # x replicas must stay below Postgres max_connections (100 by default).
    # Passwords kept out of the URLs so a Kubernetes Secret can supply them;
    # when set they replace the URL's password (URL-escaped).
    database_password: str = ""
    db_pool_size: int = 8
    db_statement_timeout_ms: int = 5000
    # --- Redis ------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    # "single": one Redis (or a primary behind a proxy); "cluster": REDIS_URL
    # names any node of a Redis Cluster, which is then discovered.
    redis_mode: str = "single"
    redis_password: str = ""
    redis_prefix: str = "tw:"
    redis_timeout_s: float = 2.0
    # Timeline writes of the workers wait until this many replicas hold them
    # (Redis WAIT) before their job is done, so that a failover cannot drop
    # an acknowledged fan-out; -1: 1 in cluster mode, 0 in single mode.
    redis_wait_replicas: int = -1
    redis_wait_timeout_ms: int = 1000
    # --- RabbitMQ (Dramatiq) ---------------------------------------------
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    broker_password: str = ""
    broker_kind: str = "rabbitmq"  # "rabbitmq" or "redis" (standalone mode)
    # RabbitMQ queue type: "classic" or "quorum" (replicated; the Helm chart's
    # default). A declared queue keeps its type: see charts/twitter/UPGRADING.md.
    broker_queue_type: str = "classic"
    # --- Tokens -------------------------------------------------------------
    jwt_private_key_path: str = str(PROJECT_ROOT / "keys/dev/private.pem")
    jwt_public_keys_path: str = str(PROJECT_ROOT / "keys/dev/public")
    # Longest time a changed key Secret takes to reach every pod (kubelet sync):
    # a rotated key signs only after its public key has been out this long.
    jwt_key_propagation_s: int = 120
    jwt_issuer: str = "twitter-backend"
    jwt_audience: str = "twitter-api"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    cookie_secure: bool = False
    cursor_secret: str = PLACEHOLDER_SECRET
    # --- Passwords (OWASP 2024 argon2id minimum: m=19 MiB, t=2, p=1) --------
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    # --- Timelines ------------------------------------------------------------
    fanout_threshold: int = 5000
    timeline_cap: int = 800
    fanout_chunk_size: int = 1000
    home_ttl_s: int = 7 * 24 * 3600
    # Users inactive this long get no fan-out writes; their home is rebuilt
    # from Postgres when they come back.
    inactive_days: int = 30
    # Process-local caches of the read path (core.local_cache): how long a big
    # (pulled) author's timeline is reused, and how many tweet cards are kept.
    # 0 turns either off.
    pulled_cache_s: float = 1.0
    card_cache_size: int = 100_000
    # --- Ids -------------------------------------------------------------------
    node_id: int = -1  # -1: lease a node id from Redis at start-up
    # --- HTTP ----------------------------------------------------------------
    max_body_bytes: int = 1024 * 1024
    # `python -m cli run` binds the API here: loopback unless told otherwise.
    # (Containers bind every interface through api/gunicorn_conf.py.)
    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = 2
    web_threads: int = 4
    # --- Outbox relay ---------------------------------------------------------
    outbox_poll_s: float = 1.0
    outbox_batch: int = 200
    # --- Rate limits and proxies -------------------------------------------
    rate_limits_enabled: bool = True
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # Buckets in the `limits` notation ("N per [M] unit", ";" between tiers);
    # See docs/security.md, "Why these defaults".
    rate_limit_strategy: str = "fixed-window"
    rate_limit_auth: str = "25 per 5 minutes"
    rate_limit_login_failures: str = "5 per minute;10 per 15 minutes;20 per 4 hours"
    rate_limit_writes: str = "60 per minute;2400 per day"
    rate_limit_reads: str = "300 per 5 minutes"
    rate_limit_anonymous: str = "300 per 5 minutes"
    # --- Metrics -------------------------------------------------------------
    metrics_dir: str = ""
    worker_metrics_port: int = 9191
    # The gunicorn master serves every worker's metrics here, never on `port`;
    # 0 turns the server off.
    metrics_port: int = 9190
    log_level: str = "INFO"
    # --- Standalone mode (python -m cli standalone) ---------------------------
    # Embedded Postgres/Redis keep their data here between runs.
    standalone_data_dir: str = str(PROJECT_ROOT / "var/standalone")

    @classmethod
    def from_env(cls, env=None, **overrides) -> Settings:
        """Read settings from ``env`` (default ``os.environ``); overrides win."""
        env = os.environ if env is None else env
        d = cls()
        values = dict(
            env=env.get("APP_ENV", d.env),
            database_url=env.get("DATABASE_URL", d.database_url),
            database_password=env.get("DATABASE_PASSWORD", ""),
            db_pool_size=_int(env, "DB_POOL_SIZE", d.db_pool_size),
            db_statement_timeout_ms=_int(
                env, "DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms
            ),
            redis_url=env.get("REDIS_URL", d.redis_url),
            redis_mode=env.get("REDIS_MODE", d.redis_mode),
            redis_password=env.get("REDIS_PASSWORD", ""),
            redis_prefix=env.get("REDIS_PREFIX", d.redis_prefix),
            redis_wait_replicas=_int(env, "REDIS_WAIT_REPLICAS", d.redis_wait_replicas),
            redis_wait_timeout_ms=_int(
                env, "REDIS_WAIT_TIMEOUT_MS", d.redis_wait_timeout_ms
            ),
            broker_url=env.get("BROKER_URL", d.broker_url),
            broker_password=env.get("BROKER_PASSWORD", ""),
            broker_kind=env.get("BROKER_KIND", d.broker_kind),
            broker_queue_type=env.get("BROKER_QUEUE_TYPE", d.broker_queue_type),
            jwt_private_key_path=env.get(
                "JWT_PRIVATE_KEY_PATH", d.jwt_private_key_path
            ),
            jwt_public_keys_path=env.get(
                "JWT_PUBLIC_KEYS_PATH", d.jwt_public_keys_path
            ),
            jwt_key_propagation_s=_int(
                env, "JWT_KEY_PROPAGATION_S", d.jwt_key_propagation_s
            ),
            jwt_issuer=env.get("JWT_ISSUER", d.jwt_issuer),
            jwt_audience=env.get("JWT_AUDIENCE", d.jwt_audience),
            access_token_ttl_s=_int(env, "ACCESS_TOKEN_TTL_S", d.access_token_ttl_s),
            refresh_token_ttl_s=_int(env, "REFRESH_TOKEN_TTL_S", d.refresh_token_ttl_s),
            cookie_secure=_bool(env, "COOKIE_SECURE", d.cookie_secure),
            cursor_secret=env.get("CURSOR_SECRET", d.cursor_secret),
            argon2_time_cost=_int(env, "ARGON2_TIME_COST", d.argon2_time_cost),
            argon2_memory_kib=_int(env, "ARGON2_MEMORY_KIB", d.argon2_memory_kib),
            argon2_parallelism=_int(env, "ARGON2_PARALLELISM", d.argon2_parallelism),
            fanout_threshold=_int(env, "FANOUT_THRESHOLD", d.fanout_threshold),
            timeline_cap=_int(env, "TIMELINE_CAP", d.timeline_cap),
            fanout_chunk_size=_int(env, "FANOUT_CHUNK_SIZE", d.fanout_chunk_size),
            home_ttl_s=_int(env, "HOME_TTL_S", d.home_ttl_s),
            inactive_days=_int(env, "INACTIVE_DAYS", d.inactive_days),
            pulled_cache_s=float(env.get("PULLED_CACHE_S", d.pulled_cache_s)),
            card_cache_size=_int(env, "CARD_CACHE_SIZE", d.card_cache_size),
            node_id=_int(env, "NODE_ID", d.node_id),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", d.max_body_bytes),
            host=env.get("HOST", d.host),
            port=_int(env, "PORT", d.port),
            web_workers=_int(env, "WEB_WORKERS", d.web_workers),
            web_threads=_int(env, "WEB_THREADS", d.web_threads),
            outbox_poll_s=float(env.get("OUTBOX_POLL_S", d.outbox_poll_s)),
            outbox_batch=_int(env, "OUTBOX_BATCH", d.outbox_batch),
            rate_limits_enabled=_bool(
                env, "RATE_LIMITS_ENABLED", d.rate_limits_enabled
            ),
            trusted_proxies=_list(env, "TRUSTED_PROXIES", d.trusted_proxies),
            rate_limit_strategy=env.get("RATE_LIMIT_STRATEGY", d.rate_limit_strategy),
            rate_limit_auth=env.get("RATE_LIMIT_AUTH", d.rate_limit_auth),
            rate_limit_login_failures=env.get(
                "RATE_LIMIT_LOGIN_FAILURES", d.rate_limit_login_failures
            ),
            rate_limit_writes=env.get("RATE_LIMIT_WRITES", d.rate_limit_writes),
            rate_limit_reads=env.get("RATE_LIMIT_READS", d.rate_limit_reads),
            rate_limit_anonymous=env.get(
                "RATE_LIMIT_ANONYMOUS", d.rate_limit_anonymous
            ),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", d.metrics_dir),
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", d.worker_metrics_port),
            metrics_port=_int(env, "METRICS_PORT", d.metrics_port),
            log_level=env.get("LOG_LEVEL", d.log_level),
            standalone_data_dir=env.get("STANDALONE_DATA_DIR", d.standalone_data_dir),
        )
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed (tests and tools)."""
        return dataclasses.replace(self, **changes)

    @property
    def database_dsn(self) -> str:
        return with_password(self.database_url, self.database_password)

    @property
    def redis_dsn(self) -> str:
        return with_password(self.redis_url, self.redis_password)

    @property
    def broker_dsn(self) -> str:
        return with_password(self.broker_url, self.broker_password)

    @property
    def wait_replicas(self) -> int:
        """Replicas a worker's timeline write waits for (``REDIS_WAIT_REPLICAS``)."""
        if self.redis_wait_replicas >= 0:
            return self.redis_wait_replicas
        return 1 if self.redis_mode == "cluster" else 0

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def validate(self) -> None:
        """Refuse configurations that cannot run, or are unsafe in production."""
        if self.env not in ("development", "test", "production"):
            raise ConfigError(
                f"APP_ENV must be development, test or production, got {self.env!r}"
            )
        if self.fanout_threshold < 1 or self.timeline_cap < 1:
            raise ConfigError("FANOUT_THRESHOLD and TIMELINE_CAP must be >= 1")
        if self.redis_mode not in ("single", "cluster"):
            raise ConfigError("REDIS_MODE must be single or cluster")
        if self.redis_wait_replicas < -1 or self.redis_wait_timeout_ms < 1:
            raise ConfigError(
                "REDIS_WAIT_REPLICAS must be >= 0 (or -1: automatic) and"
                " REDIS_WAIT_TIMEOUT_MS >= 1"
            )
        if self.broker_kind not in ("rabbitmq", "redis"):
            raise ConfigError("BROKER_KIND must be rabbitmq or redis")
        if self.broker_queue_type not in ("classic", "quorum"):
            raise ConfigError("BROKER_QUEUE_TYPE must be classic or quorum")
        problems = []
        # Anyone who knows the cursor key can forge cursors; the placeholder is
        # public, so only a developer's own machine may run with it.
        if self.env != "development" and (
            self.cursor_secret in ("", PLACEHOLDER_SECRET)
            or (self.is_production and len(self.cursor_secret) < 32)
        ):
            problems.append("CURSOR_SECRET must be a random string of 32+ characters")
        if not self.is_production:
            if problems:
                raise ConfigError(f"refusing to start in {self.env}: {problems[0]}")
            return
        if not Path(self.jwt_public_keys_path).exists():
            problems.append(
                f"JWT_PUBLIC_KEYS_PATH {self.jwt_public_keys_path!r} does not exist"
            )
        if self.argon2_memory_kib < 19456:
            problems.append("ARGON2_MEMORY_KIB below the OWASP minimum of 19456")
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
