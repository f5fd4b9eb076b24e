"""Composition root: settings → database → ingest (+ rules and outbox) → maintenance → FastAPI app.

    async with Service(settings) as service:          # API + ingest + maintenance
        await service.serve(stop_event)                # HTTP until stop_event is set, then a graceful stop

    async with Service(settings, http=False, maintenance=False) as worker:   # `tinyfleet ingest`
        await stop_event.wait()

When ingest runs (and `rules=True`, the default), a `RulesRuntime` (rules from `TINYFLEET_RULES_DIR`) is
registered as the ingest's commit listener before the ingest starts, and an `OutboxWorker` delivers the actions.

Leaving the block stops things in reverse order: HTTP first (in `serve`), then maintenance, then ingest (which
drains and acknowledges its current batch), then the rules (which apply the batches already handed over), then
the outbox worker, then the database pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Generator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from tinyfleet.actions import OutboxWorker
from tinyfleet.api.app import api_database, create_app
from tinyfleet.config import Settings
from tinyfleet.fleet.broker_auth import BrokerAuth
from tinyfleet.ingest.metrics import IngestMetrics
from tinyfleet.ingest.service import IngestService
from tinyfleet.rollouts.runtime import Rollouts
from tinyfleet.rules.runtime import RulesRuntime
from tinyfleet.store.db import Database
from tinyfleet.store.maintenance import MaintenanceScheduler
from tinyfleet.web.live import LiveFeed

log = logging.getLogger(__name__)

#: A repeated stop signal within this many seconds of the first is the same request, not an insistence.
SECOND_SIGNAL_GRACE_S = 1.0

__all__ = ["Service", "create_app", "install_stop_signals"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process-wide handlers belong to the caller, which stops
    the server by setting `should_exit` (uvicorn would re-raise the signal after its shutdown, killing the
    process before ingest has drained)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Service:
    """The tinyfleet service in one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: bool = True,
        ingest: bool = True,
        maintenance: bool = True,
        rules: bool = True,
        rollouts: bool = True,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.enable_http = http
        self.enable_ingest = ingest
        self.enable_maintenance = maintenance
        self.enable_rules = rules
        self.enable_rollouts = rollouts and settings.rollouts_enabled
        self.client_id = client_id
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.database: Database | None = None
        self.ingest: IngestService | None = None
        self.maintenance: MaintenanceScheduler | None = None
        self.rules: RulesRuntime | None = None
        self.outbox: OutboxWorker | None = None
        self.rollouts: Rollouts | None = None
        self.app: FastAPI | None = None
        self.live: LiveFeed | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        stack = self._stack
        try:
            if self.enable_http:
                # The process that serves the API owns the broker's password/ACL files (when configured).
                await BrokerAuth(self.settings).sync_at_start()
            if self.enable_http or self.enable_maintenance:
                self.database = await stack.enter_async_context(api_database(self.settings))
            if self.enable_ingest:
                self.ingest = IngestService(
                    self.settings, client_id=self.client_id, metrics=IngestMetrics(self.registry)
                )
                if self.enable_rules:
                    # Entered before the ingest, so they stop after it: ingest, rules, outbox.
                    self.outbox = await stack.enter_async_context(OutboxWorker(self.settings))
                    rdb = await stack.enter_async_context(Database(self.settings, pool_size=2, max_overflow=2))
                    self.rules = await stack.enter_async_context(
                        RulesRuntime(self.settings, rdb, name=self.ingest.client_id)
                    )
                    self.ingest.add_listener(self.rules.listener)
                if self.enable_http:
                    # The web UI's live view: a bounded fan-out that never makes the ingest wait.
                    self.live = LiveFeed(max_queue=self.settings.ui_live_queue)
                    self.live.bind()
                    self.ingest.add_listener(self.live.listener)
                await stack.enter_async_context(self.ingest)
                log.info("ingest worker %s started (broker %s)", self.ingest.client_id, self.settings.mqtt)
            if self.enable_maintenance:
                # Its own small pool: maintenance statements may run longer than the API's statement timeout.
                mdb = await stack.enter_async_context(Database(self.settings, pool_size=1, max_overflow=1))
                self.maintenance = await stack.enter_async_context(MaintenanceScheduler(mdb.engine, self.settings))
            if self.enable_rollouts and self.database is not None:
                # The controller runs beside the maintenance jobs; with HTTP alone the routes still work.
                self.rollouts = await stack.enter_async_context(
                    Rollouts(self.settings, self.database.sessionmaker, controller=self.enable_maintenance)
                )
            if self.enable_http:
                self.app = create_app(
                    self.settings,
                    ingest=self.ingest,
                    database=self.database,
                    registry=self.registry,
                    maintenance=self.maintenance,
                    rules=self.rules,
                    rollouts=self.rollouts.context if self.rollouts is not None else None,
                    live=self.live,
                )
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def uvicorn_server(self, *, host: str | None = None, port: int | None = None) -> uvicorn.Server:
        if self.app is None:
            raise RuntimeError("HTTP is disabled for this service")
        config = uvicorn.Config(
            self.app,
            host=host or self.settings.http_host,
            port=port if port is not None else self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        return _Server(config)

    async def serve(self, stop: asyncio.Event, *, started: Callable[[], None] | None = None) -> None:
        """Run the HTTP server until `stop` is set. Raises RuntimeError (one clear line) when it cannot start."""
        host, port = self.settings.http_host, self.settings.http_port
        try:
            # Bound here, not by uvicorn, which answers a busy port with sys.exit().
            sock = socket.create_server((host, port))
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        server = self.uvicorn_server()

        async def run() -> None:
            try:
                await server.serve(sockets=[sock])
            except SystemExit:
                log.error("the HTTP server stopped at start-up")

        serving = asyncio.create_task(run(), name="tinyfleet-http")
        stopper = asyncio.create_task(stop.wait(), name="tinyfleet-stop")
        try:
            while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no started event
                await asyncio.sleep(0.02)
            if server.started and started is not None:
                started()
            await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self.live is not None:
                self.live.close()  # end the UI's streams, so the server need not wait for them
            server.should_exit = True
            stopper.cancel()
            await serving
            sock.close()
        if not server.started:
            raise RuntimeError(f"the HTTP server could not start on {host}:{port}")


def install_stop_signals(stop: asyncio.Event, *, on_second: Callable[[], None] | None = None) -> None:
    """SIGINT/SIGTERM set `stop` (graceful); a second signal calls `on_second` (e.g. to force an exit)."""
    loop = asyncio.get_running_loop()
    first: list[float] = []

    def handle(sig: signal.Signals) -> None:
        now = time.monotonic()
        if stop.is_set():
            # The same signal sent to the process and its group (`timeout`, some supervisors) arrives twice at
            # once: only a signal well after the first one means "stop now".
            if first and now - first[0] < SECOND_SIGNAL_GRACE_S:
                return
            log.warning("second %s: stopping now", sig.name)
            if on_second is not None:
                on_second()
            return
        first.append(now)
        log.info("%s received: stopping gracefully", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)
