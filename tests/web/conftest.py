"""A live tinyfleet for the browser tests: `tinyfleet serve` as a real subprocess (uvicorn, ingest, rules) on
a fresh TimescaleDB database and the shared Mosquitto, fed by simulated devices publishing real events, and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.instances import free_port
from tinyfleet.demo.devices import DeviceFleet, SimulatedDevice
from tinyfleet.ota.keys import generate_signing_key, write_signing_key
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import Topics
from tinyfleet_device.manifest import raw_public_key

CHROMIUM = os.environ.get("TINYFLEET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))
ADMIN_KEY = "web-tests-admin-key-" + secrets.token_hex(12)
PASSWORDS = {"olga": "operator-pass-123", "rita": "reader-pass-1234"}
ROLES = {"olga": "operator", "rita": "read-only"}
RUN = secrets.token_hex(3)
SITES = {f"press-{RUN}-1": "plant-a", f"press-{RUN}-2": "plant-a", f"pump-{RUN}-3": "plant-b"}
# CI machines are loaded (2 cores, other suites beside): give the pages time to fill.
expect.set_options(timeout=20_000)
IMG_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"

DEVICES = list(SITES)
RULES = f"""\
- id: cls-burst
  description: two classifications within a minute on the pump (fires at once in the test)
  match: {{model: vib-cls, device: [{DEVICES[2]}]}}
  window: {{count: 2, within: 1m, per: device}}
  severity: major
- id: slow-inference
  description: inference slower than 2 ms twice within a minute on press 2
  match: {{model: vib-cls, device: [{DEVICES[1]}], lat: {{gte: 2000}}}}
  window: {{count: 2, within: 1m, per: device}}
  severity: warning
"""


@dataclass
class LiveService:
    base_url: str
    database_url: str
    prefix: str
    devices: list[str]
    process: subprocess.Popen[str]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def db(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def eventually(check: Callable[[], Any], within: float = 20.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not true within {within}s (last: {last!r})")


class FleetThread:
    """The demo's simulated devices (paho, real wire contract) on an event loop of their own; ids unique to
    this run (client ids on the shared broker must not collide with anyone else's)."""

    def __init__(self, prefix: str, ids: list[str]) -> None:
        rng = random.Random(7)
        self.fleet = DeviceFleet(0, MQTT_HOST, MQTT_PORT, Topics(prefix))
        self.fleet.devices = [
            SimulatedDevice(d, MQTT_HOST, MQTT_PORT, Topics(prefix), random.Random(rng.random()),
                            fault_drift=(i == len(ids) - 1), interval_s=0.5)
            for i, d in enumerate(ids)
        ]  # fmt: skip
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="web-test-fleet", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fleet.start(), self._loop).result(30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.fleet.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([TINYFLEET, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"tinyfleet {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def live_service(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    url = make_database()
    upgrade(url)
    tmp = tmp_path_factory.mktemp("web")
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    (rules_dir / "test.yml").write_text(RULES)
    prefix = f"w{secrets.token_hex(4)}/v1"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")},
        "TINYFLEET_ENV": "dev",
        "TINYFLEET_DATABASE_URL": url,
        "TINYFLEET_MQTT_URL": f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        "TINYFLEET_TOPIC_PREFIX": prefix,
        "TINYFLEET_MQTT_CLIENT_ID": f"web-test-{secrets.token_hex(4)}",
        "TINYFLEET_MQTT_SESSION_EXPIRY_S": "120",
        "TINYFLEET_HTTP_HOST": "127.0.0.1",
        "TINYFLEET_HTTP_PORT": str(port),
        "TINYFLEET_RULES_DIR": str(rules_dir),
        "TINYFLEET_ADMIN_API_KEY": ADMIN_KEY,
        "TINYFLEET_DATA_DIR": str(tmp / "data"),
        "TINYFLEET_BATCH_MAX_DELAY_MS": "5",
    }
    for user, password in PASSWORDS.items():
        _cli(env, "users", "create", user, "--role", ROLES[user], "--password-stdin", stdin=password + "\n")
    key = generate_signing_key()
    key_file = tmp / "ota.pem"
    write_signing_key(key_file, key)
    env.update({
        "TINYFLEET_OTA_SIGNING_KEY_FILE": str(key_file),
        "TINYFLEET_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TINYFLEET_ROLLOUTS_INTERVAL_S": "0.5",
    })  # fmt: skip
    log_path = tmp / "service.log"
    log = log_path.open("w")
    process = subprocess.Popen([TINYFLEET, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=tmp)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"tinyfleet serve exited: {log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    fleet = FleetThread(prefix, list(SITES))
    try:
        try:  # a loaded 2-core CI machine takes a while to import scipy & co.
            eventually(ready, 150, 0.5)
        except AssertionError:
            raise AssertionError(f"tinyfleet serve not ready: {log_path.read_text()[-3000:]}") from None
        fleet.start()
        service = LiveService(base, url, prefix, list(SITES), process, log_path)
        service.extra["public_key"] = raw_public_key(key.public_key())
        with service.admin() as api:

            def all_there() -> bool:
                r = api.get("/api/v1/devices", params={"limit": 100})
                return r.status_code == 200 and len([d for d in r.json()["items"] if d["online"]]) >= len(SITES)

            eventually(all_there, 30)
            for device, site in SITES.items():
                r = api.patch(f"/api/v1/devices/{device}/tags", json={"tags": {"site": site}})
                assert r.status_code == 200, r.text
        yield service
    finally:
        fleet.stop()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (scripts/ensure-system-packages.sh installs it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose script errors fail the test."""
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    assert not errors, errors


def login(page: Page, base_url: str, user: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}/login?next={next_path}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[user])
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{base_url}{next_path}", timeout=30_000)


def screenshot(page: Page, name: str) -> None:
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG_DIR / f"ui-{name}.png"), full_page=False)
