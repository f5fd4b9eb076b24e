"""Response schemas: `*Base` holds the fields shared by a family, `*Public` what the API returns.

All read from ORM objects or result rows (``from_attributes``); every schema carries an OpenAPI example.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

_DEVICE_EXAMPLE: dict[str, Any] = {
    "id": "press-07",
    "online": True,
    "firmware": "1.4.2",
    "model": "vib-cls",
    "mver": 4,
    "first_seen": "2026-11-25T08:00:00Z",
    "last_seen": "2026-11-25T12:00:01.250Z",
    "online_changed_at": "2026-11-25T08:00:00Z",
    "last_boot": 3,
    "capabilities": {"flash": 1048576, "ram": 262144, "arena": 65536, "ops": ["CONV_2D", "SOFTMAX"]},
    "tags": {},
    "enabled": True,
    "provisioned_at": "2026-11-24T09:30:00Z",
    "decommissioned_at": None,
}

_EVENT_EXAMPLE: dict[str, Any] = {
    "device_id": "press-07",
    "time": "2026-11-25T12:00:00Z",
    "received_at": "2026-11-25T12:00:00.012Z",
    "device_time": True,
    "boot": 3,
    "seq": 5,
    "model": "vib-cls",
    "mver": 4,
    "kind": 0,
    "label": 3,
    "score": 0.93,
    "anom": None,
    "val": None,
    "top": [[3, 0.93], [0, 0.05]],
    "lat_us": 2500,
    "extras": None,
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="Human-readable explanation")
    details: Any = Field(default=None, description="Per-parameter details of a validation error")


class ErrorResponse(BaseModel):
    """The shape of every error answer."""

    error: ErrorDetail

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "not_found", "message": "device 'press-07' not found"}}]}
    )


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated list: pass `next_cursor` back as `cursor` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque cursor of the next page; null on the last")


# --------------------------------------------------------------------------------------------------- health
class HealthPublic(BaseModel):
    status: str = "ok"

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})


class CheckPublic(BaseModel):
    ok: bool
    detail: str


class ReadinessPublic(BaseModel):
    status: str = Field(description="`ready` or `not_ready`")
    checks: dict[str, CheckPublic]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {
                        "mqtt": {"ok": True, "detail": "connected"},
                        "database": {"ok": True, "detail": "select 1 answered"},
                    },
                }
            ]
        }
    )


# -------------------------------------------------------------------------------------------------- devices
class DeviceBase(BaseModel):
    id: str = Field(description="Device id (= MQTT username)")
    online: bool = Field(description="From the retained `state` topic and the LWT")
    firmware: str | None = None
    model: str | None = Field(default=None, description="Model id the device reported in its birth message")
    mver: int | None = Field(default=None, description="Model version")

    model_config = ConfigDict(from_attributes=True)


class DevicePublic(DeviceBase):
    first_seen: datetime
    last_seen: datetime | None = None
    online_changed_at: datetime | None = None
    last_boot: int | None = None
    capabilities: dict[str, Any] | None = Field(
        default=None, description="As reported in the device's retained `state` (flash, ram, arena, ops, ...)"
    )
    tags: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = Field(default=True, description="A disabled device cannot connect to the broker")
    provisioned_at: datetime | None = Field(default=None, description="When it got its MQTT credentials")
    decommissioned_at: datetime | None = Field(default=None, description="Retired: credentials revoked")

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_DEVICE_EXAMPLE]})


class DevicesPublic(Page[DevicePublic]):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_DEVICE_EXAMPLE], "next_cursor": "cHJlc3MtMDc"}]}
    )


# --------------------------------------------------------------------------------------------------- events
class EventBase(BaseModel):
    device_id: str
    time: datetime = Field(description="Device time, or time of first receipt when `device_time` is false")
    model: str
    mver: int | None = None
    kind: int = Field(description="0 classification · 1 anomaly · 2 regression · 3 detection")
    label: int | None = Field(default=None, description="Class index")
    score: float | None = Field(default=None, description="Confidence 0..1")
    anom: float | None = Field(default=None, description="Anomaly score")

    model_config = ConfigDict(from_attributes=True)


class EventPublic(EventBase):
    boot: int
    seq: int
    received_at: datetime
    device_time: bool
    val: list[float] | None = None
    top: list[Any] | None = Field(default=None, description="Top-k `[label, score]` pairs")
    lat_us: int | None = Field(default=None, description="Inference latency in µs")
    extras: dict[str, Any] | None = None

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EVENT_EXAMPLE]})


class EventsPublic(Page[EventPublic]):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EVENT_EXAMPLE], "next_cursor": None}]})


class StatsBucketPublic(BaseModel):
    start: datetime = Field(description="Start of the time bucket")
    count: int
    avg_score: float | None = None
    max_anom: float | None = None
    labels: dict[str, int] = Field(default_factory=dict, description="Events per label in this bucket")

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-11-25T12:00:00Z",
                    "count": 60,
                    "avg_score": 0.87,
                    "max_anom": 0.41,
                    "labels": {"0": 52, "3": 8},
                }
            ]
        },
    )


class StatsPublic(BaseModel):
    since: datetime
    until: datetime
    bucket: str = Field(description="Bucket width as asked, e.g. `5m`")
    bucket_seconds: int
    total: int = Field(description="Events in the whole range")
    labels: dict[str, int] = Field(description="Label histogram over the whole range")
    buckets: list[StatsBucketPublic] = Field(description="Non-empty buckets, oldest first")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-25T11:00:00Z",
                    "until": "2026-11-25T12:00:00Z",
                    "bucket": "1h",
                    "bucket_seconds": 3600,
                    "total": 60,
                    "labels": {"0": 52, "3": 8},
                    "buckets": [
                        {
                            "start": "2026-11-25T11:00:00Z",
                            "count": 60,
                            "avg_score": 0.87,
                            "max_anom": 0.41,
                            "labels": {"0": 52, "3": 8},
                        }
                    ],
                }
            ]
        }
    )


# --------------------------------------------------------------------------------------------- dead letters
_DEAD_LETTER_EXAMPLE: dict[str, Any] = {
    "id": 17,
    "received_at": "2026-11-25T12:00:00.020Z",
    "topic": "tf/v1/press-07/evt",
    "device_id": "press-07",
    "code": "malformed_cbor",
    "detail": "not well-formed CBOR: premature end of stream",
    "event_index": None,
    "payload_hex": "aa0001011b",
    "size": 5,
}


class DeadLetterBase(BaseModel):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None = None
    code: str = Field(description="Stable error code of the wire contract (docs/protocol.md)")
    detail: str
    event_index: int | None = Field(default=None, description="Position in the batch, for one bad event of a batch")


class DeadLetterPublic(DeadLetterBase):
    payload_hex: str = Field(description="The raw payload as received, hex-encoded")
    size: int = Field(description="Payload size in bytes")

    model_config = ConfigDict(json_schema_extra={"examples": [_DEAD_LETTER_EXAMPLE]})

    @classmethod
    def from_row(cls, row: Any) -> DeadLetterPublic:
        payload = bytes(row.payload or b"")
        return cls(
            id=row.id,
            received_at=row.received_at,
            topic=row.topic,
            device_id=row.device_id,
            code=row.code,
            detail=row.detail,
            event_index=row.event_index,
            payload_hex=payload.hex(),
            size=len(payload),
        )


class DeadLettersPublic(Page[DeadLetterPublic]):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_DEAD_LETTER_EXAMPLE], "next_cursor": None}]})


# --------------------------------------------------------------------------------------------------- alerts
_ALERT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "rule_id": "bearing-fault",
    "group_key": "press-07",
    "state": "open",
    "severity": "major",
    "opened_at": "2026-11-25T12:00:00Z",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "resolved_at": None,
    "resolved_by": None,
    "resolved_how": None,
    "last_notified_at": "2026-11-25T12:00:00Z",
    "escalated": False,
    "evidence": {"count": 3},
}


class AlertBase(BaseModel):
    id: int
    rule_id: str
    group_key: str = Field(description="The rule's group (a device id for per-device rules)")
    state: str = Field(description="open | acknowledged | resolved")
    severity: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_how: str | None = Field(default=None, description="auto (by the rule) | manual")
    last_notified_at: datetime | None = None
    escalated: bool = False
    evidence: dict[str, Any] | None = None

    model_config = ConfigDict(from_attributes=True)


class AlertPublic(AlertBase):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ALERT_EXAMPLE]})


class AlertsPublic(Page[AlertPublic]):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ALERT_EXAMPLE], "next_cursor": None}]})


class AlertEventPublic(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="open | ack | resolve | escalate | renotify | action_delivered | action_dead")
    detail: dict[str, Any] | None = None

    model_config = ConfigDict(from_attributes=True)


class AlertDetailPublic(AlertBase):
    history: list[AlertEventPublic] = Field(description="The alert's events, oldest first")

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {**_ALERT_EXAMPLE, "history": [{"id": 1, "at": "2026-11-25T12:00:00Z", "kind": "open", "detail": {}}]}
            ]
        },
    )


# --------------------------------------------------------------------------------------------------- rules
class RuleIssuePublic(BaseModel):
    file: str
    line: int
    column: int
    message: str
    location: str = Field(description="file:line:column: message")


class RuleFiringPublic(BaseModel):
    kind: str
    group: str
    at: datetime
    alert_id: int


class RulePublic(BaseModel):
    id: str
    description: str = ""
    enabled: bool = True
    severity: str
    source: str | None = Field(default=None, description="file:line:column of the rule")
    actions: list[str] = Field(default_factory=list, description="Action kinds, in order")
    last_firing: RuleFiringPublic | None = None


class RulesPublic(BaseModel):
    running: bool = Field(description="False when this process runs no rules (no ingest)")
    rules_dir: str | None = None
    loaded_at: datetime | None = None
    rules: list[RulePublic] = Field(default_factory=list)
    errors: list[RuleIssuePublic] = Field(default_factory=list, description="Issues of the last refused load")
    dropped_batches: int = Field(
        default=0, description="Batches not queued (queue full); their events were read from the database"
    )
    failed_batches: int = Field(default=0, description="Batches the engine failed on (their events not evaluated)")
    write_retries: int = Field(default=0, description="Alert writes that failed and were retried")
    events_fed: int = Field(default=0, description="Events evaluated since the state began (checkpoints carry it)")
    recovered_events: int = Field(
        default=0, description="Events read back from the database: replay at start, catch-up after a full queue"
    )
    checkpoint_saved_at: datetime | None = Field(default=None, description="Last save of the engine state")
    checkpoint_bytes: int = Field(default=0, description="Size of the last checkpoint (compressed)")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "running": True,
                    "rules_dir": "rules",
                    "loaded_at": "2026-11-25T12:00:00Z",
                    "rules": [
                        {
                            "id": "bearing-fault",
                            "description": "three bearing faults in 5 minutes",
                            "enabled": True,
                            "severity": "major",
                            "source": "rules/vibration.yml:3:3",
                            "actions": ["email", "webhook"],
                            "last_firing": None,
                        }
                    ],
                    "errors": [],
                    "dropped_batches": 0,
                    "failed_batches": 0,
                    "write_retries": 0,
                    "events_fed": 182400,
                    "recovered_events": 1200,
                    "checkpoint_saved_at": "2026-11-25T12:05:00Z",
                    "checkpoint_bytes": 48211,
                }
            ]
        }
    )
