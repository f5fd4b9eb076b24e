"""Throwaway Mosquitto and PostgreSQL servers for fault tests.

Tests that kill or restart a broker or a database must not touch the shared services at 127.0.0.1:1883 and
127.0.0.1:5432. These context managers start private instances on free ports in temporary folders and remove
everything on exit::

    with MosquittoInstance() as broker, PostgresInstance() as pg:
        url = pg.create_database("ingest")
        ...                         # point the service at broker.url and url
        broker.restart()            # graceful: the persistent sessions and their queues survive
        pg.restart()                # pg_ctl stop -m fast, then start: committed rows survive
        pg.kill()                   # SIGKILL of the postmaster and its children: crash recovery on start()

Mosquitto and durability: the broker writes its persistence file at a graceful shutdown (SIGTERM, which is
what ``stop()`` and ``restart()`` send) and every ``autosave_interval`` seconds. ``kill()`` (SIGKILL)
therefore loses everything since the last save: sessions, subscriptions, queued and in-flight QoS1 messages
and retained messages that arrived since then. A no-loss test restarts the broker with ``restart()``, not
``kill()``.

Mosquitto and queue limits: by default the broker queues at most 1,000 QoS1 messages per offline or lagging
client and silently DROPS the rest. Instances here raise ``max_queued_messages`` (1,000,000) and leave
``max_queued_bytes`` unlimited, as every broker configuration of the project must.

PostgreSQL instances keep ``fsync`` on, so ``stop(mode="fast")``, ``stop(mode="immediate")`` and ``kill()``
all keep committed transactions. Server binaries come from /usr/lib/postgresql/<newest>/bin (or
$TINYFLEET_PG_BINDIR).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self, TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"
MOSQUITTO_DEFAULT_MAX_QUEUED_MESSAGES = 1000  # Mosquitto's own default, for tests that show why it is raised
RAISED_MAX_QUEUED_MESSAGES = 1_000_000


# --------------------------------------------------------------------------------------------------- helpers


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on ``port`` now (no listener holds it; TIME_WAIT leftovers of closed
    connections do not count, as servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Raises ``TimeoutError`` (with ``message``, which may be a callable evaluated at the time) after
    ``timeout`` seconds. Exceptions raised by the predicate propagate at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(text or f"condition not met within {timeout:g} s")
        time.sleep(interval)


def _is_root() -> bool:
    return os.geteuid() == 0


def _os_user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


class _Instance:
    """Common context-manager plumbing: start on enter, close (stop + remove the folder) on exit."""

    dir: Path

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self._finalizer = weakref.finalize(self, self._cleanup_at_exit, self.dir)

    @staticmethod
    def _cleanup_at_exit(directory: Path) -> None:  # pragma: no cover - safety net only
        shutil.rmtree(directory, ignore_errors=True)

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------- Mosquitto


class MosquittoInstance(_Instance):
    """A private Mosquitto broker on 127.0.0.1:``port`` (a free port when None), anonymous access allowed.

    ``persistence``: keep sessions and queued messages across ``restart()`` (saved at graceful shutdown and
    every ``autosave_interval`` seconds). ``max_queued_messages``: per-client queue limit; raised far above
    Mosquitto's default of 1,000 (pass ``MOSQUITTO_DEFAULT_MAX_QUEUED_MESSAGES`` to reproduce the default's
    silent drops).
    ``max_inflight_messages``: Mosquitto's default (20) when None; MQTT 5 clients announce their own Receive
    Maximum. ``extra_conf``: appended to the generated configuration verbatim.
    ``password_file`` / ``acl_file``: Mosquitto's own options (the files must exist before ``start()``, readable
    by the ``mosquitto`` user when run as root); ``allow_anonymous=False`` refuses clients without credentials
    (readiness then waits for any CONNACK, refused or not). The broker always writes its pid to ``pid_path``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        persistence: bool = True,
        extra_conf: str = "",
        max_queued_messages: int = RAISED_MAX_QUEUED_MESSAGES,
        max_queued_bytes: int = 0,
        max_inflight_messages: int | None = None,
        autosave_interval: int | None = None,
        binary: str | None = None,
        allow_anonymous: bool = True,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        super().__init__("tf-mosquitto-")
        self.port = port if port is not None else free_port()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.max_queued_messages = max_queued_messages
        self.max_queued_bytes = max_queued_bytes
        self.max_inflight_messages = max_inflight_messages
        self.autosave_interval = autosave_interval
        self.allow_anonymous = allow_anonymous
        self.password_file = password_file
        self.acl_file = acl_file
        self.pid_path = self.dir / "mosquitto.pid"
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.conf_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.stdout_path = self.dir / "stdout.log"  # errors before logging is set up (bad config, busy port)
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def host(self) -> str:
        return HOST

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- configuration

    def config_text(self) -> str:
        lines = [
            "# generated by tests/support/instances.py",
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"pid_file {self.pid_path}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # Mosquitto's default max_queued_messages (1000) silently drops QoS1 messages for a client that is
            # offline or lags more than that; a no-loss test must never hit the limit.
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            # Without it Nagle's algorithm holds small PUBLISH packets back while the subscriber delays its TCP
            # ACK (up to 40 ms), which shows up as publish→commit latency spikes.
            "set_tcp_nodelay true",
        ]
        if self.max_inflight_messages is not None:
            lines.append(f"max_inflight_messages {self.max_inflight_messages}")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.data_dir}/",
                "persistence_file mosquitto.db",
            ]
            if self.autosave_interval is not None:
                lines.append(f"autosave_interval {self.autosave_interval}")
        else:
            lines.append("persistence false")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        self.conf_path.write_text(self.config_text())
        # As root Mosquitto drops its privileges to the `mosquitto` user: it must be able to write its data.
        if _is_root() and (user := _os_user("mosquitto")) is not None:
            _chown_tree(self.dir, user)

    # -- lifecycle

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            raise RuntimeError(f"mosquitto on port {self.port} is already running")
        self._write_config()
        self._log = open(self.stdout_path, "ab")  # noqa: SIM115 - kept open for the process's lifetime
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the broker accepts an MQTT connection (TCP connect + CONNECT/CONNACK with paho)."""

        def ready() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(
                    f"mosquitto on port {self.port} exited (code {code}); "
                    f"output:\n{_tail(self.stdout_path)}\nlog:\n{_tail(self.log_path)}"
                )
            return self.mqtt_ping(require_success=self.allow_anonymous)

        wait_for(
            ready,
            timeout,
            0.05,
            lambda: (
                f"mosquitto on port {self.port} not ready after {timeout:g} s; log:\n{_tail(self.log_path)}"
            ),
        )

    def mqtt_ping(self, timeout: float = 2.0, *, require_success: bool = True) -> bool:
        """True when an MQTT CONNECT to the broker gets a successful CONNACK (any CONNACK, refused ones too,
        without `require_success`: a broker that refuses anonymous clients is up all the same)."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"tf-ready-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        answered: list[bool] = []
        client.on_connect = lambda *_args: answered.append(True)
        try:
            client.connect(HOST, self.port, keepalive=10)
        except OSError:
            return False
        try:
            deadline = time.monotonic() + timeout
            while not client.is_connected() and not answered and time.monotonic() < deadline:
                if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    return bool(answered) and not require_success
            return client.is_connected() or (bool(answered) and not require_success)
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()
                client.loop(timeout=0.05)

    def _reap(self, timeout: float) -> None:
        assert self._proc is not None
        try:
            self._proc.wait(timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM): Mosquitto writes its persistence file, then exits."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._reap(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._reap(10)
                raise RuntimeError(
                    f"mosquitto on port {self.port} ignored SIGTERM for {timeout:g} s"
                ) from None
        else:
            self._reap(1)
        self._proc = None
        self._wait_port_released()

    def kill(self) -> None:
        """SIGKILL: a crash. Everything since the last autosave (sessions, queued messages) is lost."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._reap(10)
        self._proc = None
        self._wait_port_released()

    def restart(self, timeout: float = 30.0) -> None:
        """Graceful stop and start on the same port with the same persistence."""
        self.stop(timeout)
        self.start()

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its configuration (ACL and password files, most limits)."""
        if not self.running:
            raise RuntimeError("mosquitto is not running")
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)

    def _wait_port_released(self) -> None:
        wait_for(
            lambda: port_is_free(self.port), 10, 0.02, f"port {self.port} still busy after mosquitto exited"
        )

    def close(self) -> None:
        """Stop the broker (SIGKILL: fast, nothing is kept anyway) and remove its folder."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._finalizer.detach()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# ------------------------------------------------------------------------------------------------ PostgreSQL


def postgres_bindir() -> Path:
    """The server binaries (initdb, pg_ctl, postgres): $TINYFLEET_PG_BINDIR, else the newest under
    /usr/lib/postgresql (Debian's layout), else the directory of ``pg_ctl`` on PATH."""
    if env := os.environ.get("TINYFLEET_PG_BINDIR"):
        return Path(env)
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        versions = sorted(
            (p for p in base.iterdir() if p.name.isdigit() and (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name),
        )
        if versions:
            return versions[-1] / "bin"
    if found := shutil.which("pg_ctl"):
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql "
        "(apt-get install postgresql) or set TINYFLEET_PG_BINDIR"
    )


class PostgresInstance(_Instance):
    """A private PostgreSQL cluster on 127.0.0.1:``port`` (a free port when None), trust authentication,
    superuser ``postgres``, Unix socket in its temporary folder.

    ``timescaledb=True`` preloads TimescaleDB (so ``CREATE EXTENSION timescaledb`` works) and fails loudly
    when the library is not installed (``scripts/install-timescaledb.sh`` installs it). ``settings`` are
    appended to postgresql.conf (values are written as given, so quote strings: ``{"work_mem": "'64MB'"}``).

    The postmaster is a direct child of this process (so it is reaped at once after ``kill()``, and its stale
    postmaster.pid never points at a zombie); as root, initdb and the server run as the ``postgres`` OS user.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        timescaledb: bool = True,
        settings: Mapping[str, str] | None = None,
        bindir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__("tf-pg-")
        self.port = port if port is not None else free_port()
        self.timescaledb = timescaledb
        self.settings = dict(settings or {})
        self.bindir = Path(bindir) if bindir is not None else postgres_bindir()
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.socket_dir = self.dir
        self._os_user: pwd.struct_passwd | None = None
        if _is_root():
            self._os_user = _os_user("postgres")
            if self._os_user is None:
                raise RuntimeError("running as root, but there is no `postgres` OS user to run PostgreSQL as")
            os.chown(self.dir, self._os_user.pw_uid, self._os_user.pw_gid)
        self._initialized = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{name}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- commands

    def _as_owner(self) -> dict[str, object]:
        """Popen arguments that run a command as the cluster's owner."""
        kwargs: dict[str, object] = {"cwd": str(self.dir)}
        if self._os_user is not None:
            user = self._os_user
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            kwargs["env"] = {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
        return kwargs

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            list(args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._as_owner(),  # type: ignore[call-overload]
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def timescaledb_library(self) -> Path | None:
        """The installed timescaledb.so of this PostgreSQL, or None."""
        proc = subprocess.run(
            [self._bin("pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
        )
        libdir = Path(proc.stdout.strip()) if proc.returncode == 0 else self.bindir.parent / "lib"
        lib = libdir / "timescaledb.so"
        return lib if lib.exists() else None

    def _initdb(self) -> None:
        if self.timescaledb and self.timescaledb_library() is None:
            raise RuntimeError(
                f"TimescaleDB is not installed for the PostgreSQL in {self.bindir}: "
                "run scripts/install-timescaledb.sh (or use PostgresInstance(timescaledb=False))"
            )
        self._run(
            self._bin("initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--auth=trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",  # speed only: initdb's files need not survive a machine crash
        )  # fmt: skip
        conf: dict[str, str] = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "logging_collector": "off",
            "fsync": "on",  # fault tests check durability across restarts and crashes
        }
        if self.timescaledb:
            conf["shared_preload_libraries"] = "'timescaledb'"
            conf["timescaledb.telemetry_level"] = "off"
        conf.update(self.settings)
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# tests/support/instances.py\n")
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")
        self._initialized = True

    # -- lifecycle

    def start(self, timeout: float = 60.0) -> None:
        if not self._initialized:
            self._initdb()
        if self.running:
            raise RuntimeError(f"PostgreSQL on port {self.port} is already running")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's lifetime
        self._proc = subprocess.Popen(  # type: ignore[call-overload]
            [self._bin("postgres"), "-D", str(self.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_owner(),
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``select 1`` succeeds over TCP."""

        def ready() -> bool:
            if not self.running:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(
                    f"PostgreSQL on port {self.port} exited (code {code}); log:\n{_tail(self.log_path)}"
                )
            return self.ping()

        wait_for(
            ready,
            timeout,
            0.05,
            lambda: (
                f"PostgreSQL on port {self.port} not ready after {timeout:g} s; log:\n{_tail(self.log_path)}"
            ),
        )

    def ping(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    _STOP_SIGNALS: ClassVar[dict[str, signal.Signals]] = {
        "smart": signal.SIGTERM,
        "fast": signal.SIGINT,
        "immediate": signal.SIGQUIT,
    }

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Shut down like ``pg_ctl stop -m MODE``: ``fast`` (default: roll back open transactions and
        checkpoint), ``smart`` (wait for clients) or ``immediate`` (no checkpoint: crash recovery at the next
        start)."""
        if mode not in self._STOP_SIGNALS:
            raise ValueError(f"unknown shutdown mode {mode!r}; use one of {sorted(self._STOP_SIGNALS)}")
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.kill(self._proc.pid, self._STOP_SIGNALS[mode])
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(
                    f"PostgreSQL on port {self.port} did not stop ({mode}) in {timeout:g} s"
                ) from None
        self._after_exit()

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children: a crash. Committed data survives (fsync is on);
        the next ``start()`` runs crash recovery."""
        if self._proc is None:
            return
        pid = self._proc.pid
        children = _children(pid) if self._proc.poll() is None else []
        for victim in [pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        self._proc.wait(10)
        wait_for(
            lambda: not any(_pid_alive(p) for p in children),
            10,
            0.02,
            f"PostgreSQL backends of port {self.port} survived SIGKILL",
        )
        self._after_exit()

    def _after_exit(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        wait_for(
            lambda: port_is_free(self.port), 10, 0.02, f"port {self.port} still busy after PostgreSQL exited"
        )

    def restart(self, mode: str = "fast", timeout: float = 60.0) -> None:
        self.stop(mode, timeout)
        self.start(timeout)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def close(self) -> None:
        """Stop the server (immediate: nothing is kept) and remove its folder."""
        try:
            try:
                self.stop(mode="immediate", timeout=30)
            except Exception:
                self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._finalizer.detach()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
