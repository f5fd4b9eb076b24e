"""deploy/compose/mosquitto-watch.sh with a real Mosquitto: it waits for the credential files, starts the broker,
and reloads it (SIGHUP) when the service rewrites them — a removed device is cut off, a new one gets in — which
is how the broker container of docker-compose.yml follows the service's provisioning."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.instances import free_port, port_is_free
from tinyfleet.fleet.broker_auth import BrokerUser, _write_atomically, render_acl_file, render_password_file
from tinyfleet.fleet.passwords import mosquitto_hash

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "compose" / "mosquitto-watch.sh"


class Client:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.dropped = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{secrets.token_hex(3)}",
                             protocol=mqtt.MQTTv5)  # fmt: skip
        self.c.username_pw_set(user, password)
        self.c.on_connect = lambda _c, _u, _f, rc, _p=None: (self.refused if rc.is_failure else self.connected).set()
        self.c.on_disconnect = lambda *_a: self.dropped.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def write_files(auth: Path, users: dict[str, str]) -> None:
    hashed = [BrokerUser(u, mosquitto_hash(p)) for u, p in users.items()]
    _write_atomically(auth / "passwd", render_password_file(hashed), None)
    _write_atomically(auth / "acl", render_acl_file("tf/v1", "tinyfleet-service"), None)


def wait(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed (make test installs it)", pytrace=False)
    port = free_port()
    auth = tmp_path / "auth"
    auth.mkdir()
    conf = (REPO / "deploy/compose/mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/auth", str(auth)).replace("persistence true", "persistence false")
    conf = conf.replace("persistence_location /mosquitto/data/", f"persistence_location {tmp_path}/")
    conf += "\nuser root\n" if os.geteuid() == 0 else ""
    (tmp_path / "mosquitto.conf").write_text(conf)
    log = (tmp_path / "watch.log").open("wb")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MOSQUITTO_CONF": str(tmp_path / "mosquitto.conf"),
           "MOSQUITTO_AUTH_DIR": str(auth), "MOSQUITTO_WATCH_INTERVAL": "0.3", "MOSQUITTO_BIN": binary}  # fmt: skip
    proc = subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        yield proc, port, auth
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_waits_for_files_then_reloads_on_change(watched, tmp_path):
    proc, port, auth = watched
    time.sleep(1.0)
    assert proc.poll() is None
    assert port_is_free(port), "the broker must not start before its password file exists"
    write_files(auth, {"tinyfleet-service": "svc-pw", "dev-1": "pw-1"})
    assert wait(lambda: not port_is_free(port)), (tmp_path / "watch.log").read_text()

    one = Client(port, "dev-1", "pw-1")
    two = Client(port, "dev-2", "pw-2")
    try:
        assert one.connected.wait(10)
        assert two.refused.wait(10)
    finally:
        two.close()

    write_files(auth, {"tinyfleet-service": "svc-pw", "dev-2": "pw-2"})  # dev-1 disabled, dev-2 provisioned
    assert one.dropped.wait(10), "the reload must cut the session of a device whose credentials are gone"
    one.close()
    two = Client(port, "dev-2", "pw-2")
    try:
        assert two.connected.wait(10)
    finally:
        two.close()
    assert "credentials changed: SIGHUP" in (tmp_path / "watch.log").read_text()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert wait(lambda: port_is_free(port))
