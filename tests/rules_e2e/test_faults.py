"""Service-level fault tests of alert delivery, with real processes and real services only.

The service runs as the real `tinyfleet ingest` OS process (its own process group: the ingest has a writer
child process), on a fresh migrated database, a topic prefix of its own and rules in a temporary folder.
Events go over MQTT to Mosquitto; a rule opens an alert whose action is delivered to a real receiver (a local
HTTP server that verifies the HMAC signature, aiosmtpd, a real Node-RED 4).

* killed (SIGKILL of the whole process group) after failed attempts → delivered after the restart, once,
  every attempt with the same idempotency key, the alert not opened twice; both without a rules checkpoint
  (the restart warms the windows up on recent events) and with one saved before the alert (the restart
  replays the faults from it: their `open` is a repeat);
* killed right after the alert's transaction committed, before any attempt completed → the same;
* SMTP / webhook / Node-RED down when the alert fires → delivered once they come back, same key throughout.

After each scenario three more faults go through the running service (the condition holds again), so "not
opened twice" is tested against live events too, not only against the restart.

Two rules: `bearing-burst` (three confident bearing faults within a minute on one device; the action under
test) and `probe-seen` (any event of model `probe`, no action). A probe's alert is the tests' barrier: the
rules apply batches in order, so once the alert of a probe published after some events exists, those events
have been through the rules too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from tests.actions.conftest import SECRET, HttpReceiver, NodeRed, SmtpServer, nodered, smtp_server  # noqa: F401
from tests.ingest.conftest import Publisher, make_settings
from tests.support.instances import free_port, wait_for
from tinyfleet.actions import verify
from tinyfleet.wire import Event, encode_event

pytestmark = pytest.mark.slow

TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))
RULE = "bearing-burst"
DEVICE = "pump-1"
SMTP_FROM = "alerts@tinyfleet.test"

#: Short but realistic retry settings: attempts 0.1–1 s apart, never given up during a test.
ACTION_SETTINGS: dict[str, Any] = {
    "actions_backoff_base_s": 0.2,
    "actions_backoff_factor": 2.0,
    "actions_backoff_cap_s": 1.0,
    "actions_poll_interval_s": 0.1,
    "actions_max_attempts": 100,
    "actions_timeout_s": 10.0,
    # No periodic checkpoint of the rules' state: which restart path a test takes (none, or the one a graceful
    # stop saved) is then decided by the test, not by timing.
    "rules_checkpoint_interval_s": 3600.0,
}
#: A generous bound on what includes a service start (~2–6 s: the imports alone take seconds on a busy machine).
STARTUP_S = 60.0
LOG_TAIL = "tail of the service log"


# --------------------------------------------------------------------------------------------------------- the service


def _group_alive(pgid: int) -> bool:
    """True while a process (not a zombie) of process group `pgid` exists."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


@dataclass
class ServiceProcess:
    """`tinyfleet ingest` as an OS process in a new session (process group = its pid), output to a file."""

    env: dict[str, str]
    cwd: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.runs += 1
        with self.log_path.open("ab") as log:
            log.write(f"----- tinyfleet ingest, run {self.runs} -----\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [TINYFLEET, "ingest"],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"tinyfleet ingest exited with code {self.proc.returncode}\n{self.tail()}")

    def stop(self) -> None:
        """A graceful stop (SIGTERM): drain the batch in hand, save the rules' checkpoint, exit 0."""
        proc, self.proc = self.proc, None
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc = proc  # SIGKILLed at teardown
            raise AssertionError(f"tinyfleet ingest ignored SIGTERM for 30 s\n{self.tail()}") from None
        assert code == 0, f"tinyfleet ingest exited with code {code} after SIGTERM\n{self.tail()}"
        wait_for(lambda: not _group_alive(proc.pid), 10, 0.02, f"processes of group {proc.pid} outlived the service")

    def kill(self) -> None:
        """SIGKILL of the whole process group (the service and its writer process); waits until all are gone."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not _group_alive(proc.pid), 10, 0.02, f"processes of group {proc.pid} survived SIGKILL")

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no service log)"
        return f"{LOG_TAIL} {self.log_path}:\n" + "\n".join(text.splitlines()[-lines:])

    @contextmanager
    def diagnosed(self) -> Iterator[None]:
        """A failed assertion in the block carries the tail of the service's log."""
        try:
            yield
        except AssertionError as exc:
            if LOG_TAIL in str(exc):
                raise
            raise AssertionError(f"{exc}\n{self.tail()}") from exc


def service_env(settings_kw: dict[str, Any], db_url: str, prefix: str) -> dict[str, str]:
    """The environment of the service process: the test's settings as TINYFLEET_* (validated first)."""
    settings = make_settings(db_url, prefix, **settings_kw)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"TINYFLEET_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], ServiceProcess]]:
    """`service_process(env)`: a not yet started service; every one is SIGKILLed (whole group) at teardown."""
    made: list[ServiceProcess] = []

    def make(env: dict[str, str]) -> ServiceProcess:
        svc = ServiceProcess(env, tmp_path, tmp_path / f"service-{len(made)}.log")
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.kill()


# ------------------------------------------------------------------------------------------------------------- helpers


def rules_yaml(action: str) -> str:
    return f"""
models:
  vib-cls: {{labels: [normal, bearing_fault]}}
rules:
  - id: {RULE}
    description: three confident bearing faults within a minute on one device
    match: {{model: vib-cls, label: bearing_fault, score: {{gte: 0.8}}}}
    window: {{count: 3, within: 1m}}
    severity: major
    resolve: manual
    actions:
      - {action}
  - id: probe-seen
    description: any probe event (the tests' barrier)
    match: {{model: probe}}
    resolve: manual
"""


def fault(seq: int) -> bytes:
    return encode_event(Event(seq=seq, boot=1, model="vib-cls", mver=1, kind=0, label=1, score=0.93, lat=900))


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class Run:
    """One test's service, database and publisher, with the waits that fail with the service's log."""

    db_url: str
    prefix: str
    publisher: Publisher
    svc: ServiceProcess
    probes: int = 0

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        def check() -> Any:
            self.svc.check_alive()
            return predicate()

        return wait_for(check, timeout, 0.02, lambda: f"{what}: not within {timeout:g} s\n{self.svc.tail()}")

    def probe(self, device: str, timeout: float = STARTUP_S) -> None:
        """Publish probe events from `device` until its `probe-seen` alert exists (the first ones may arrive
        before the service's subscription does)."""
        deadline = time.monotonic() + timeout
        while True:
            self.probes += 1
            event = Event(seq=self.probes, boot=1, model="probe", mver=1, kind=0, label=0, score=1.0)
            self.publisher.publish(f"{self.prefix}/{device}/evt", encode_event(event))
            self.publisher.flush()
            try:
                self.wait(lambda: self.alerts("probe-seen", device), f"probe alert of {device}", 0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def checkpoints(self) -> int:
        return int(query(self.db_url, "select count(*) from rules_checkpoints")[0][0])

    def faults(self, seqs: range) -> None:
        for seq in seqs:
            self.publisher.publish(f"{self.prefix}/{DEVICE}/evt", fault(seq))
        self.publisher.flush()

    def alerts(self, rule: str = RULE, group: str = DEVICE) -> list[tuple[Any, ...]]:
        return query(
            self.db_url, "select id, state, severity from alerts where rule_id = %s and group_key = %s", rule, group
        )

    def outbox(self) -> list[dict[str, Any]]:
        rows = query(
            self.db_url,
            "select o.id, o.alert_id, o.transition_id, o.action_index, o.kind, o.state, o.attempts,"
            " o.idempotency_key, o.last_error from outbox o join alerts a on a.id = o.alert_id"
            " where a.rule_id = %s order by o.id",
            RULE,
        )
        names = ("id", "alert_id", "transition_id", "action_index", "kind", "state", "attempts", "key", "error")
        return [dict(zip(names, r, strict=True)) for r in rows]

    def events_of(self, alert_id: int) -> list[tuple[int, str, Any]]:
        return [
            (int(r[0]), str(r[1]), r[2])
            for r in query(
                self.db_url, "select id, kind, detail from alert_events where alert_id = %s order by id", alert_id
            )
        ]

    def row(self) -> dict[str, Any]:
        rows = self.outbox()
        assert len(rows) == 1, f"outbox rows of {RULE}: {rows}\n{self.svc.tail()}"
        return rows[0]

    def failed_attempts(self, n: int) -> dict[str, Any] | None:
        rows = self.outbox()
        return rows[0] if rows and rows[0]["state"] == "pending" and rows[0]["attempts"] >= n else None

    def delivered(self) -> bool:
        rows = self.outbox()
        return bool(rows) and rows[0]["state"] == "delivered"

    def check_once(self) -> tuple[int, str]:
        """Publish three more faults and a probe through the running service, then check there is still one
        alert of the rule, opened once, with one action, delivered once; returns (alert id, idempotency key)."""
        self.faults(range(100, 103))  # the condition holds again: a fresh engine would open a second alert
        self.probe("probe-after")
        alerts = self.alerts()
        assert len(alerts) == 1, f"alerts of {RULE}/{DEVICE}: {alerts}\n{self.svc.tail()}"
        total = query(self.db_url, "select count(*) from alerts where rule_id = %s", RULE)[0][0]
        assert total == 1, f"{total} alerts of {RULE}"
        alert_id, state, severity = alerts[0]
        assert (state, severity) == ("open", "major")
        history = self.events_of(alert_id)
        kinds = [k for _, k, _ in history]
        assert kinds.count("open") == 1, kinds
        assert kinds.count("action_delivered") == 1, kinds
        assert "action_dead" not in kinds, kinds
        row = self.row()
        open_id = next(i for i, k, _ in history if k == "open")
        key = f"tf-{alert_id}-{open_id}-0"
        assert (row["alert_id"], row["transition_id"], row["action_index"]) == (alert_id, open_id, 0)
        assert row["key"] == key
        assert row["state"] == "delivered"
        (delivered,) = [d for _, k, d in history if k == "action_delivered"]
        assert delivered["idempotency_key"] == key
        assert delivered["attempts"] == row["attempts"]
        return alert_id, key


def start_run(
    db_url: str,
    prefix: str,
    publisher: Publisher,
    rules_dir: Path,
    action: str,
    make_service: Callable[[dict[str, str]], ServiceProcess],
    **settings_kw: Any,
) -> Run:
    (rules_dir / "rules.yml").write_text(rules_yaml(action))
    env = service_env(
        {
            "rules_dir": rules_dir,
            "rules_watch": False,
            "webhook_secret": SECRET,
            "smtp_from": SMTP_FROM,
            "log_level": "INFO",
            "data_dir": rules_dir.parent / "data",
            **ACTION_SETTINGS,
            **settings_kw,
        },
        db_url,
        prefix,
    )
    run = Run(db_url, prefix, publisher, make_service(env))
    run.svc.start()
    run.probe("probe-before")
    return run


def check_webhook_requests(requests: list[Any], key: str, alert_id: int) -> None:
    """Every request the receiver saw: the same key (header and body), a valid signature, the same body."""
    assert requests
    assert [r.headers["Idempotency-Key"] for r in requests] == [key] * len(requests)
    assert all(r.signature_ok for r in requests)
    for r in requests:
        assert verify(SECRET, r.headers["X-Tinyfleet-Timestamp"], r.headers["X-Tinyfleet-Signature"], r.body)
    assert len({r.body for r in requests}) == 1
    body = json.loads(requests[0].body)
    assert body["idempotency_key"] == key
    assert body["alert"]["id"] == alert_id
    assert body["alert"]["rule_id"] == RULE
    assert body["alert"]["group_key"] == DEVICE
    assert body["transition"]["kind"] == "open"


# ------------------------------------------------------------------------------------- A: killed after failed attempts


@pytest.mark.parametrize("checkpoint", ["none", "before-alert"])
def test_killed_after_failed_attempts_delivered_after_restart_with_the_same_key(
    checkpoint: str,
    migrated_db: str,
    prefix: str,
    publisher: Publisher,
    rules_dir: Path,
    http_receiver: Callable[..., HttpReceiver],
    service_process: Callable[[dict[str, str]], ServiceProcess],
) -> None:
    # The receiver's port is closed (connection refused); once started it answers 500 once, then 200.
    receiver = http_receiver(start=False, fail=1, fail_status=500)
    run = start_run(migrated_db, prefix, publisher, rules_dir, f"webhook: {receiver.url}/hook", service_process)
    with run.svc.diagnosed():
        if checkpoint == "before-alert":
            # A graceful stop saves the rules' state; after the kill below the restart restores it and replays
            # the events received since, the faults included: their `open` is a repeat and must not be written.
            run.svc.stop()
            assert run.checkpoints() == 1
            run.svc.start()
            run.probe("probe-restarted")
        else:
            assert run.checkpoints() == 0  # the restart after the kill warms the windows up on recent events
        run.faults(range(3))
        run.wait(run.alerts, "the alert")
        before = run.wait(lambda: run.failed_attempts(2), "two failed attempts")
        assert "ConnectError" in (before["error"] or ""), before

        run.svc.kill()
        before = run.row()  # read after the kill: nothing changes it any more
        assert before["state"] == "pending"
        assert before["attempts"] >= 2
        receiver.start()
        assert receiver.requests == []

        run.svc.start()  # the same settings, the same MQTT client id (session)
        run.wait(run.delivered, "delivery after the restart", STARTUP_S)
        alert_id, key = run.check_once()
        after = run.row()
        # every attempt of the restarted service reached the receiver: the 500, then the accepted one
        assert after["attempts"] == before["attempts"] + 2, (before, after)
        assert len(receiver.requests) == 2
        assert len(receiver.accepted()) == 1
        check_webhook_requests(receiver.requests, key, alert_id)
        assert before["key"] == key


# ------------------------------------------------------------------------------------ B: killed right after the commit


@dataclass(frozen=True)
class HttpRequest:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class GatedReceiver:
    """A real HTTP server that verifies the signature. While `holding`, a request is recorded on arrival and
    held (no answer) until `release()`, then answered 503; otherwise answered 200 at once."""

    port: int = field(default_factory=free_port)
    holding: bool = True
    arrivals: list[tuple[bool, HttpRequest]] = field(default_factory=list)  # (held, request)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[HttpRequest]:
        with self.lock:
            return [r for held, r in self.arrivals if not held and r.signature_ok]

    def requests(self) -> list[HttpRequest]:
        with self.lock:
            return [r for _, r in self.arrivals]

    def release(self) -> None:
        """Answer what is held (503) and everything after it at once (200)."""
        with self.lock:
            self.holding = False
        self.released.set()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    SECRET, self.headers.get("X-Tinyfleet-Timestamp"), self.headers.get("X-Tinyfleet-Signature"), body
                )
                with receiver.lock:
                    held = receiver.holding
                    receiver.arrivals.append((held, HttpRequest(dict(self.headers.items()), body, ok)))
                if held:
                    receiver.released.wait(60)
                self.send_response(503 if held else 200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the answer to a held request goes to a killed client

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, name=f"gated-http-{self.port}", daemon=True).start()

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def gated_receiver() -> Iterator[GatedReceiver]:
    receiver = GatedReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_killed_right_after_the_alert_commit_delivered_after_restart_once(
    migrated_db: str,
    prefix: str,
    publisher: Publisher,
    rules_dir: Path,
    gated_receiver: GatedReceiver,
    service_process: Callable[[dict[str, str]], ServiceProcess],
) -> None:
    receiver = gated_receiver  # holds every request: no attempt can complete before the kill
    run = start_run(migrated_db, prefix, publisher, rules_dir, f"webhook: {receiver.url}/hook", service_process)
    with run.svc.diagnosed():
        run.faults(range(3))
        wait_for(run.alerts, 20, 0.002, lambda: f"the alert did not appear\n{run.svc.tail()}")
        run.svc.kill()  # as soon as the alert's transaction is visible
        row = run.row()
        assert (row["state"], row["attempts"], row["error"]) == ("pending", 0, None), row
        time.sleep(0.5)  # a request the killed service had already sent is taken (and held) before the release
        held = len(receiver.requests())
        assert held <= 1  # the first attempt may have been under way (one row: one attempt at a time)
        receiver.release()

        run.svc.start()
        run.wait(run.delivered, "delivery after the restart", STARTUP_S)
        alert_id, key = run.check_once()
        assert run.row()["attempts"] == 1  # the restarted service's first attempt delivered it
        assert len(receiver.accepted()) == 1
        assert (
            len(receiver.requests()) == held + 1
        )  # the held one (if any), answered 503 to nobody, and the accepted one
        check_webhook_requests(receiver.requests(), key, alert_id)
        assert row["key"] == key


# ---------------------------------------------------------------------------------------- C: a target down for a while

DOWN_S = 3.0


class Target:
    """One kind of receiver, down when the alert fires, brought up later."""

    action: str
    settings: dict[str, Any]

    def start(self) -> None:
        raise NotImplementedError

    def keys(self) -> list[str]:
        """The idempotency key of every attempt the receiver saw."""
        raise NotImplementedError

    def accepted(self) -> int:
        raise NotImplementedError

    def settle(self) -> None:
        """Wait until what the receiver accepted is visible to the test (delivery is recorded already)."""

    def check(self, key: str, alert_id: int) -> None:
        raise NotImplementedError


class WebhookTarget(Target):
    def __init__(self, request: pytest.FixtureRequest) -> None:
        # connection refused until started; then one 500, then 200
        self.receiver: HttpReceiver = request.getfixturevalue("http_receiver")(start=False, fail=1, fail_status=500)
        self.action = f"webhook: {self.receiver.url}/hook"
        self.settings = {}

    def start(self) -> None:
        self.receiver.start()

    def keys(self) -> list[str]:
        return [r.headers["Idempotency-Key"] for r in self.receiver.requests]

    def accepted(self) -> int:
        return len(self.receiver.accepted())

    def check(self, key: str, alert_id: int) -> None:
        assert len(self.receiver.requests) == 2  # the 500 and the accepted one
        check_webhook_requests(self.receiver.requests, key, alert_id)


class EmailTarget(Target):
    def __init__(self, request: pytest.FixtureRequest) -> None:
        # nothing listens until started; then one 451 for the first DATA, then 250
        self.server: SmtpServer = request.getfixturevalue("smtp_server")(start=False, refuse=1)
        self.action = "email: lead@example.test"
        self.settings = {"smtp_host": "127.0.0.1", "smtp_port": self.server.port}

    def start(self) -> None:
        self.server.start()

    def keys(self) -> list[str]:
        return [str(m["X-Tinyfleet-Idempotency-Key"]) for m in self.server.receiver.attempts]

    def accepted(self) -> int:
        return len(self.server.receiver.accepted)

    def check(self, key: str, alert_id: int) -> None:
        attempts: list[EmailMessage] = self.server.receiver.attempts
        assert len(attempts) == 2  # the 451 and the accepted one
        assert [m["Message-ID"] for m in attempts] == [f"<{key}@tinyfleet.test>"] * 2
        assert len({m["Subject"] for m in attempts}) == 1
        (msg,) = self.server.receiver.accepted
        assert msg["X-Envelope-To"] == "lead@example.test"
        assert msg["From"] == SMTP_FROM
        assert msg["Subject"] == f"[tinyfleet] MAJOR {RULE} open ({DEVICE})"
        assert f"Alert id {alert_id} · delivery {key}" in msg.get_content()


class NodeRedTarget(Target):
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.nodered: NodeRed = request.getfixturevalue("nodered")
        self.nodered.stop()  # down (connection refused) until started again on the same port
        self.action = "nodered: /tinyfleet/alert"
        self.settings = {"nodered_url": self.nodered.url}

    def start(self) -> None:
        self.nodered.start()

    def keys(self) -> list[str]:
        return [str(r["headers"]["idempotency-key"]) for r in self.nodered.received()]

    def accepted(self) -> int:
        return len(self.nodered.received())

    def settle(self) -> None:
        wait_for(self.nodered.received, 10, 0.05, "Node-RED's flow recorded nothing")

    def check(self, key: str, alert_id: int) -> None:
        (got,) = self.nodered.received()  # the flow records only what it accepted
        assert got["headers"]["idempotency-key"] == key
        assert got["body"]["idempotency_key"] == key
        assert got["body"]["alert"]["id"] == alert_id
        assert got["body"]["alert"]["rule_id"] == RULE
        # canonical JSON: what Node-RED parsed re-serialises to the signed bytes
        body = json.dumps(got["body"], sort_keys=True, separators=(",", ":")).encode()
        assert verify(SECRET, got["headers"]["x-tinyfleet-timestamp"], got["headers"]["x-tinyfleet-signature"], body)


TARGETS: dict[str, Callable[[pytest.FixtureRequest], Target]] = {
    "smtp": EmailTarget,
    "webhook": WebhookTarget,
    "nodered": NodeRedTarget,
}


@pytest.mark.parametrize("kind", list(TARGETS))
def test_target_down_when_the_alert_fires_delivered_after_it_comes_back(
    kind: str,
    request: pytest.FixtureRequest,
    migrated_db: str,
    prefix: str,
    publisher: Publisher,
    rules_dir: Path,
    service_process: Callable[[dict[str, str]], ServiceProcess],
) -> None:
    target = TARGETS[kind](request)
    run = start_run(migrated_db, prefix, publisher, rules_dir, target.action, service_process, **target.settings)
    with run.svc.diagnosed():
        run.faults(range(3))
        run.wait(run.alerts, "the alert")
        fired = time.monotonic()
        before = run.wait(lambda: run.failed_attempts(3), "three failed attempts")
        assert ("SMTP" if kind == "smtp" else "ConnectError") in (before["error"] or ""), before
        time.sleep(max(0.0, fired + DOWN_S - time.monotonic()))  # down for a few seconds
        before = run.row()
        assert before["state"] == "pending", before
        assert target.keys() == []

        target.start()
        run.wait(run.delivered, f"delivery once {kind} is back")
        alert_id, key = run.check_once()
        after = run.row()
        assert after["attempts"] > before["attempts"], (before, after)
        target.settle()
        keys = target.keys()
        assert keys == [key] * len(keys), keys
        assert target.accepted() == 1
        target.check(key, alert_id)
