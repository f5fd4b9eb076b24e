"""Raw MQTT messages → rows for the writer, and dead letters for everything that cannot be stored."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from tinyfleet.ingest.writer import DeadLetterRow, OtaReportRow, PreparedBatch, StateRow
from tinyfleet.wire import (
    Channel,
    Topics,
    WireError,
    decode_events,
    decode_ota_status,
    decode_state,
    decode_telemetry,
)

# One received message as the decoder takes it: (topic, payload, received_ms, retained).
RawMessage = tuple[str, bytes, int, bool]

_PARSE_CACHE_LIMIT = 200_000


class BatchDecoder:
    """Decodes batches of raw messages. Keeps two small caches across batches: parsed topics, and when each
    device's `last_seen` was last written, so that a busy device costs one row update per `touch_interval_ms`
    rather than one per batch."""

    def __init__(self, topic_prefix: str, *, strict: bool, touch_interval_ms: int = 5000) -> None:
        self._topics = Topics(topic_prefix)
        self._strict = strict
        self._touch_interval_ms = touch_interval_ms
        self._parse_cache: dict[str, tuple[str, Channel] | WireError] = {}
        self._last_touch: dict[str, int] = {}

    def parse_topic(self, topic: str) -> tuple[str, Channel] | WireError:
        cached = self._parse_cache.get(topic)
        if cached is not None:
            return cached
        try:
            parsed = self._topics.parse(topic)
            value: tuple[str, Channel] | WireError = (parsed.device_id, parsed.channel)
        except WireError as exc:
            value = exc
        if len(self._parse_cache) > _PARSE_CACHE_LIMIT:
            self._parse_cache.clear()
        self._parse_cache[topic] = value
        return value

    def committed(self, batch: PreparedBatch) -> None:
        """The batch is in the database: its device touches count from now on."""
        last = self._last_touch
        if len(last) > _PARSE_CACHE_LIMIT:
            last.clear()
        last.update(batch.touched)

    def prepare(self, messages: Sequence[RawMessage], now_ms: int | None = None) -> PreparedBatch:
        out = PreparedBatch()
        rows = out.event_rows
        sources = out.event_sources
        touched = out.touched
        last_touch = self._last_touch
        touch_before = (now_ms or int(time.time() * 1000)) - self._touch_interval_ms
        strict = self._strict
        now_ms = now_ms or int(time.time() * 1000)
        parse = self.parse_topic
        counts = out.channel_counts
        for topic, payload, received_ms, retained in messages:
            parsed = parse(topic)
            if parsed.__class__ is not tuple:
                assert isinstance(parsed, WireError)
                counts["invalid"] = counts.get("invalid", 0) + 1
                out.dead_letters.append(
                    DeadLetterRow(received_ms, topic, None, payload, parsed.code.value, parsed.detail)
                )
                continue
            device_id, channel = parsed
            counts[channel] = counts.get(channel, 0) + 1
            # A retained replay says nothing about the device being around now.
            if not retained and last_touch.get(device_id, 0) < touch_before:
                touched[device_id] = received_ms
            try:
                if channel is Channel.EVT:
                    result = decode_events(payload, strict=strict, now_ms=now_ms)
                    is_batch = result.is_batch
                    for index, ev in enumerate(result.events):
                        model = ev.model
                        val = ev.val
                        top = ev.top
                        x = ev.x
                        ts = ev.ts
                        if ts is None:
                            out.clockless += 1
                        rows.append((
                            device_id, ev.boot, ev.seq, ts, received_ms,
                            model if model.__class__ is str else str(model),
                            ev.mver, ev.kind, ev.label, ev.score, ev.anom,
                            None if val is None else (val if val.__class__ is list else [val]),
                            None if top is None else Jsonb(top),
                            ev.lat,
                            None if x is None else Jsonb(x),
                        ))  # fmt: skip
                        sources.append((topic, payload, index if is_batch else None))
                    for rej in result.rejects:
                        out.dead_letters.append(
                            DeadLetterRow(received_ms, topic, device_id, payload, rej.code.value, rej.detail, rej.index)
                        )
                elif channel is Channel.TEL:
                    t = decode_telemetry(payload, strict=strict, now_ms=now_ms)
                    out.telemetry_rows.append((
                        device_id, t.ts, received_ms, t.uptime_s, t.battery_pct, t.battery_mv, t.rssi_dbm,
                        t.heap_free, t.arena_free, t.infer_count, t.lat_avg_us, t.lat_max_us, t.dropped,
                        None if t.x is None else Jsonb(t.x),
                    ))  # fmt: skip
                    out.telemetry_sources.append((topic, payload, None))
                elif channel is Channel.STATE:
                    st = decode_state(payload, strict=strict, now_ms=now_ms)
                    if st is None:  # the retained state was cleared
                        continue
                    out.states.append(
                        StateRow(
                            device_id=device_id,
                            received_ms=received_ms,
                            online=bool(st.online),
                            boot=st.boot,
                            firmware=st.fw,
                            model=None if st.model is None else str(st.model),
                            mver=st.mver,
                            capabilities=None if st.caps is None else _plain(st.caps),
                            state=_plain(st),
                            touch=not retained,
                            topic=topic,
                            payload=payload,
                        )
                    )
                elif channel is Channel.OTA_STATUS:
                    st_ = decode_ota_status(payload, strict=strict, now_ms=now_ms)
                    out.ota_reports.append(
                        OtaReportRow(
                            device_id=device_id,
                            received_ms=received_ms,
                            state=st_.state.value,
                            seq=st_.seq,
                            reason=st_.reason,
                            message=st_.msg,
                            model=None if st_.model is None else str(st_.model),
                            mver=st_.mver,
                            report=_plain(st_),
                            topic=topic,
                            payload=payload,
                        )
                    )
                else:
                    out.dead_letters.append(
                        DeadLetterRow(
                            received_ms,
                            topic,
                            device_id,
                            payload,
                            "bad_topic",
                            f"the service does not consume the {channel.value!r} channel",
                        )
                    )
            except WireError as exc:
                out.dead_letters.append(
                    DeadLetterRow(received_ms, topic, device_id, payload, exc.code.value, exc.detail, exc.index)
                )
        return out


def _plain(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
