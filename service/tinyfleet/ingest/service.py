"""The ingest pipeline: MQTT (paho, manual ack) → decode → batch → TimescaleDB → acknowledge.

Threads, not coroutines, carry the hot path: paho's network thread only queues raw messages; one writer
thread hands each batch to the writer process (decode, COPY, commit: see writer_process.py), then
acknowledges the batch's messages in order of receipt (MQTT requires PUBACKs in that order for QoS 1).
A message is acknowledged only after the transaction holding it committed, so a crash at any point makes
the broker redeliver it, and the database's unique keys make the redelivery harmless: at least once from
the broker, exactly once in the database.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tinyfleet.config import Settings
from tinyfleet.ingest.batcher import Batcher, Incoming
from tinyfleet.ingest.metrics import IngestMetrics
from tinyfleet.ingest.writer import WriteResult
from tinyfleet.ingest.writer_process import BatchOutcome, WriterConfig, WriterGone, WriterProcess, WriterStopping
from tinyfleet.wire import Topics

log = logging.getLogger(__name__)

_PUBACK = 0x40
_PUBACK_HEADER = 0x40020000  # PUBACK, remaining length 2; the low 16 bits take the packet id

# Called on the ingest thread after each commit with the event rows offered (columns as
# tinyfleet.ingest.writer.EVENT_STAGING_COLUMNS; duplicates included) and what the database took.
CommitListener = Callable[[list[tuple[Any, ...]], WriteResult], None]


class IngestError(RuntimeError):
    """The ingest pipeline could not start or stop as asked."""


@dataclass(slots=True, frozen=True)
class IngestStatus:
    mqtt_connected: bool
    db_connected: bool
    pending: int
    batches_committed: int
    last_commit_monotonic: float | None
    last_error: str | None


def default_client_id() -> str:
    return f"tinyfleet-ingest-{socket.gethostname()}"[:64]


class IngestService:
    """`start()` / `stop()` (or `async with`) one ingest worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        metrics: IngestMetrics | None = None,
        listeners: tuple[CommitListener, ...] = (),
    ) -> None:
        self.settings = settings
        self.client_id = client_id or settings.mqtt_client_id or default_client_id()
        self.metrics = metrics or IngestMetrics()
        self._listeners = list(listeners)
        self._topics = Topics(settings.topic_prefix)
        self._batcher = Batcher(
            max_events=settings.batch_max_events,
            max_delay_s=settings.batch_max_delay_ms / 1000.0,
            max_pending=max(settings.max_pending_messages, settings.batch_max_events),
        )
        self._writer: WriterProcess  # created by start()
        self._db_ok = False
        self._generation = 0
        self._connected = threading.Event()
        self._stop_requested = threading.Event()
        self._writer_thread: threading.Thread | None = None
        self._batches = 0
        self._last_commit: float | None = None
        self._last_error: str | None = None
        self._client = self._make_client()

    # ----------------------------------------------------------------------------------------------- lifecycle
    def add_listener(self, listener: CommitListener) -> None:
        if self._writer_thread is not None:
            raise IngestError("add listeners before start()")
        self._listeners.append(listener)

    def start(self) -> None:
        if self._writer_thread is not None:
            raise IngestError("ingest already started")
        self._writer = WriterProcess(
            WriterConfig(
                conninfo=self.settings.libpq_url,
                topic_prefix=self.settings.topic_prefix,
                strict=self.settings.strict_wire,
                application_name=f"tinyfleet-ingest:{self.client_id}"[:63],
                want_rows=bool(self._listeners),
                log_level=logging.getLogger().getEffectiveLevel(),
            ),
            on_db_error=self._on_db_error,
        )
        self._writer.start()
        try:
            # Take no message from the broker before there is somewhere to write it.
            self._writer.wait_ready()
        except WriterGone as exc:
            self._writer.close(timeout=1.0)
            raise IngestError(str(exc)) from exc
        self._writer_thread = threading.Thread(target=self._writer_main, name="tinyfleet-ingest-writer", daemon=True)
        self._writer_thread.start()
        ep = self.settings.mqtt
        if ep.tls:
            self._client.tls_set()
        if ep.username:
            self._client.username_pw_set(ep.username, ep.password)
        if self.settings.mqtt_protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
            props.ReceiveMaximum = min(65535, self._batcher_max_pending)
            self._client.connect_async(
                ep.host, ep.port, keepalive=self.settings.mqtt_keepalive_s, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(ep.host, ep.port, keepalive=self.settings.mqtt_keepalive_s)
        self._client.loop_start()

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful shutdown: take no new messages, commit and acknowledge what was taken, disconnect."""
        if self._writer_thread is None:
            return
        self._stop_requested.set()
        self._batcher.close()
        self._batcher.flush()
        self._writer_thread.join(timeout)
        if self._writer_thread.is_alive():
            # The database is still away: give up the batch in hand, the broker will redeliver it.
            log.warning("ingest could not drain within %.1f s; unacknowledged messages will be redelivered", timeout)
            self._writer.request_stop()
            self._writer_thread.join(10)
        # PUBACKs queued by the writer go out before DISCONNECT: paho sends its packets in order.
        deadline = time.monotonic() + 2.0
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._client.disconnect()
        self._client.loop_stop()
        self._writer.close()
        self._writer_thread = None
        self.metrics.mqtt_connected.set(0)

    async def __aenter__(self) -> IngestService:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    def status(self) -> IngestStatus:
        return IngestStatus(
            mqtt_connected=self._connected.is_set(),
            db_connected=self._db_ok,
            pending=self._batcher.pending,
            batches_committed=self._batches,
            last_commit_monotonic=self._last_commit,
            last_error=self._last_error,
        )

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ----------------------------------------------------------------------------------------------- MQTT side
    @property
    def _batcher_max_pending(self) -> int:
        return max(self.settings.max_pending_messages, self.settings.batch_max_events)

    def _make_client(self) -> mqtt.Client:
        v5 = self.settings.mqtt_protocol == 5
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = _set_nodelay
        return client

    def _subscriptions(self) -> list[str]:
        filters = self._topics.subscriptions()
        group = self.settings.mqtt_shared_group
        if not group:
            return filters
        # Retained messages are never sent to shared subscriptions (MQTT 5 §4.8.2), so every worker keeps a
        # plain subscription to `state` (few, idempotent upserts) and shares the event and telemetry streams.
        state_filter = f"{self.settings.topic_prefix}/+/state"
        return [f if f == state_filter else f"$share/{group}/{f}" for f in filters]

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self._last_error = f"MQTT connect refused: {reason}"
            log.error("%s", self._last_error)
            return
        self._generation += 1
        if self.settings.mqtt_protocol == 5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self._subscriptions()])
        else:
            client.subscribe([(f, 1) for f in self._subscriptions()])
        self._connected.set()
        self.metrics.mqtt_connects.inc()
        self.metrics.mqtt_connected.set(1)
        log.info(
            "connected to MQTT %s as %s (session present: %s)",
            self.settings.mqtt,
            self.client_id,
            getattr(flags, "session_present", None),
        )

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        self._connected.clear()
        self.metrics.mqtt_connected.set(0)
        if not self._stop_requested.is_set():
            self._last_error = f"MQTT disconnected: {reason}"
            log.warning("%s; paho reconnects with backoff, unacknowledged messages will be redelivered", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Hot path: no decoding here, only the hand-over (which blocks when too much is pending).
        self._batcher.put(
            Incoming(
                msg.topic,
                cast(bytes, msg.payload),
                msg.mid,
                msg.qos,
                self._generation,
                int(time.time() * 1000),
                msg.retain,
            )
        )

    # ---------------------------------------------------------------------------------------------- writer side
    def _writer_main(self) -> None:
        batcher = self._batcher
        while True:
            batch = batcher.take(timeout=0.5)
            if not batch:
                if batcher.closed:
                    return
                continue
            started = time.monotonic()
            outcome = self._commit(batch)
            if outcome is None:  # stopping while the database is unreachable: left to redelivery
                batcher.release(len(batch))
                return
            self._ack(batch)
            batcher.release(len(batch))
            self._record(batch, outcome, started)

    def _commit(self, batch: list[Incoming]) -> BatchOutcome | None:
        messages = [(i.topic, i.payload, i.received_ms, i.retained) for i in batch]
        for attempt in itertools.count():
            try:
                outcome = self._writer.submit(messages)
            except WriterStopping:
                return None
            except WriterGone as exc:
                self._last_error = str(exc)
                log.error("%s; restarting it and writing the batch again", exc)
                if self._stop_requested.is_set() and attempt >= 2:
                    return None
                time.sleep(0.5)
                self._writer.restart()
                continue
            self._db_ok = True
            return outcome
        raise AssertionError("unreachable")

    def _on_db_error(self, text: str) -> None:
        self._db_ok = False
        self.metrics.db_errors.inc()
        self._last_error = f"database: {text}"
        log.warning("%s; retrying (acknowledgements held back)", self._last_error)

    def _ack(self, batch: list[Incoming]) -> None:
        generation = self._generation
        # An ack from an older connection would name a packet id of another session: skip it, the broker
        # redelivers that message and the database ignores the copy.
        mids = [item.mid for item in batch if item.qos == 1 and item.generation == generation]
        if not mids:
            return
        queue = getattr(self._client, "_packet_queue", None)
        if queue is None:  # pragma: no cover - a paho without the internal queue: one ack at a time
            for mid in mids:
                self._client.ack(mid, 1)
            return
        # All PUBACKs of the batch as one write: a PUBACK is 4 bytes (0x40, remaining length 2, packet id),
        # valid as is in MQTT 3.1.1 and 5 (v5 may omit the reason code on success). paho's ack() would queue
        # one packet, one socket write and one wake-up of its network thread per message.
        blob = struct.pack(f">{len(mids)}I", *[_PUBACK_HEADER | mid for mid in mids])
        queue(_PUBACK, blob, 0, 0)

    def _record(self, batch: list[Incoming], outcome: BatchOutcome, started: float) -> None:
        m = self.metrics
        result = outcome.result
        now = time.monotonic()
        self._batches += 1
        self._last_commit = now
        m.batch_seconds.observe(now - started)
        m.batch_messages.observe(len(batch))
        m.events_stored.inc(result.events_inserted)
        m.events_duplicate.inc(result.events_offered - result.events_inserted)
        m.telemetry_stored.inc(result.telemetry_inserted)
        for code, n in outcome.dead_letter_codes.items():
            m.dead_letters.labels(code).inc(n)
        for channel, n in outcome.channel_counts.items():
            m.messages_received.labels(str(channel)).inc(n)
        m.pending_messages.set(self._batcher.pending)
        m.lag_seconds.set(max(0.0, time.time() - batch[0].received_ms / 1000.0))
        if self._listeners and outcome.event_rows is not None:
            for listener in self._listeners:
                try:
                    listener(outcome.event_rows, result)
                except Exception:
                    log.exception("commit listener %r failed", listener)


def _set_nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    # PUBACKs leave in bursts after each commit; Nagle's algorithm would hold them back for the broker's ACK.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
