"""Fixtures of the action tests: a migrated database, a real SMTP server (aiosmtpd) and a real HTTP receiver
that verifies the HMAC signature, each on a free local port. Nothing is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tinyfleet.actions import verify
from tinyfleet.config import Settings
from tinyfleet.store import migrate
from tinyfleet.store.db import Database

SECRET = "test-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "actions_backoff_base_s": 0.05,
        "actions_backoff_factor": 2.0,
        "actions_backoff_cap_s": 0.2,
        "actions_poll_interval_s": 0.05,
        "actions_max_attempts": 50,
        "actions_timeout_s": 3.0,
        "webhook_secret": SECRET,
        "smtp_from": "alerts@tinyfleet.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def eventually(predicate: Callable[[], Any], within: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    migrate.upgrade(database_url, use_timescaledb=False)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    async with Database(migrated_url) as database:
        yield database


# ------------------------------------------------------------------------------------------------- SMTP


@dataclass
class SmtpReceiver:
    """Records every DATA it is given (also the refused ones) and refuses the first `refuse` of them."""

    refuse: int = 0
    attempts: list[EmailMessage] = field(default_factory=list)
    accepted: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        msg = message_from_bytes(content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.attempts.append(msg)
        if len(self.attempts) <= self.refuse:
            return "451 4.3.0 try again later"
        self.accepted.append(msg)
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    receiver: SmtpReceiver
    controller: Controller | None = None
    server_kwargs: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        self.controller = Controller(self.receiver, hostname="127.0.0.1", port=self.port, **self.server_kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """`smtp_server(start=True, refuse=0, port=None)`: a real aiosmtpd server on a free port."""
    servers: list[SmtpServer] = []

    def make(*, start: bool = True, refuse: int = 0, port: int | None = None, **server_kwargs: Any) -> SmtpServer:
        server = SmtpServer(port or free_port(), SmtpReceiver(refuse=refuse), server_kwargs=server_kwargs)
        if start:
            server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI): (cert, key)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# ------------------------------------------------------------------------------------------------- HTTP


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A real HTTP server (http.server in a thread). Verifies X-Tinyfleet-Signature with SECRET; answers
    `fail_status` to the first `fail` requests, 401 to badly signed ones, 200 otherwise."""

    port: int
    fail: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    first_delay_s: float = 0.0
    arrivals: list[dict[str, str]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.signature_ok][self.fail :]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    SECRET,
                    self.headers.get("X-Tinyfleet-Timestamp"),
                    self.headers.get("X-Tinyfleet-Signature"),
                    body,
                )
                with receiver.lock:
                    receiver.arrivals.append(dict(self.headers.items()))
                    first = len(receiver.arrivals) == 1
                if first and receiver.first_delay_s:
                    time.sleep(receiver.first_delay_s)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body, ok))
                    n = len(receiver.requests)
                status = 401 if not ok else receiver.fail_status if n <= receiver.fail else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"http-{self.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HttpReceiver]]:
    """`http_receiver(start=True, fail=0, ...)`: a real local HTTP server that verifies the signature."""
    receivers: list[HttpReceiver] = []

    def make(*, start: bool = True, port: int | None = None, **kw: Any) -> HttpReceiver:
        receiver = HttpReceiver(port or free_port(), **kw)
        if start:
            receiver.start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.stop()


# ------------------------------------------------------------------------------------------------- Node-RED

REPO = Path(__file__).resolve().parents[2]
NODERED_DIR = REPO / ".tinyfleet" / "nodered"
NODERED_VERSION = "node-red@4"
NODERED_FLOW = Path(__file__).resolve().parents[2] / "rules" / "nodered" / "flow.json"  # the shipped example


def install_nodered() -> Path:
    """`npm install node-red@4` into .tinyfleet/nodered once (cached between runs); the path of red.js."""
    red = NODERED_DIR / "node_modules" / "node-red" / "red.js"
    if red.exists():
        return red
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the Node-RED action test needs Node.js 20+ and npm", pytrace=False)
    NODERED_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(NODERED_DIR), NODERED_VERSION],
        check=True,
        timeout=600,
    )
    return red


@dataclass
class NodeRed:
    """A real Node-RED process on a fixed port; `stop()` and `start()` simulate an outage."""

    red: Path
    port: int
    user_dir: Path
    alert_file: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[dict[str, Any]]:
        if not self.alert_file.exists():
            return []
        return [json.loads(line) for line in self.alert_file.read_text().splitlines() if line.strip()]

    def start(self) -> None:
        env = {**os.environ, "TF_ALERT_FILE": str(self.alert_file)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "node",
                    str(self.red),
                    "--settings",
                    str(self.user_dir / "settings.js"),
                    "--userDir",
                    str(self.user_dir),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"Node-RED exited: {self.log_path.read_text()[-2000:]}", pytrace=False)
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Node-RED did not come up within 60 s", pytrace=False)
            time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nodered(tmp_path: Path) -> Iterator[NodeRed]:
    """A real Node-RED 4, headless (no editor), running the shipped example flow rules/nodered/flow.json
    on a free port."""
    red = install_nodered()
    user_dir = tmp_path / "nodered"
    user_dir.mkdir()
    shutil.copy(NODERED_FLOW, user_dir / "flows.json")
    port = free_port()
    (user_dir / "settings.js").write_text(
        "module.exports = {"
        f" uiHost: '127.0.0.1', uiPort: {port}, httpAdminRoot: false, flowFile: 'flows.json',"
        " credentialSecret: false, logging: { console: { level: 'warn' } } };\n"
    )
    server = NodeRed(red, port, user_dir, tmp_path / "alerts.jsonl", tmp_path / "nodered.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
