"""SQLAlchemy 2 models: the schema of record. Alembic migrations create exactly this (+ Timescale setup)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Device(Base):
    """A device as the service has seen it: first/last contact and what its retained `state` says."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    online: Mapped[bool] = mapped_column(Boolean, server_default="false")
    online_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_boot: Mapped[int | None] = mapped_column(BigInteger)
    firmware: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    mver: Mapped[int | None] = mapped_column(Integer)
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSONB, comment="last decoded state payload")
    tags: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # Fleet management (migration 0004): a disabled or decommissioned device is left out of the broker's
    # password file; a decommissioned one keeps its row and history but never comes back.
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    provisioned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decommissioned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when the last online state (model, firmware, capabilities) arrived"
    )


class Event(Base):
    """One inference event. Hypertable on `time` when TimescaleDB is present, plain table + BRIN otherwise.

    `time` is the device's timestamp, or the time of first receipt when the device has no clock
    (`device_time` false). The primary key includes `time` because a unique index on a hypertable must.
    """

    __tablename__ = "events"

    device_id: Mapped[str] = mapped_column(Text, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    boot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    device_time: Mapped[bool] = mapped_column(Boolean)
    model: Mapped[str] = mapped_column(Text)
    mver: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(REAL)
    anom: Mapped[float | None] = mapped_column(REAL)
    val: Mapped[list[float] | None] = mapped_column(ARRAY(Double))
    top: Mapped[list[Any] | None] = mapped_column(JSONB)
    lat_us: Mapped[int | None] = mapped_column(BigInteger)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    # One b-tree serves both deduplication and "events of a device by time" (scanned backwards for newest
    # first); time-range scans over all devices use chunk exclusion plus a BRIN index, which costs next to
    # nothing per insert. Every extra b-tree here costs ingest throughput (measured in bench/ingest.py).
    __table_args__ = (
        PrimaryKeyConstraint("device_id", "time", "boot", "seq", name="pk_events"),
        Index("ix_events_time_brin", "time", postgresql_using="brin"),
        # The rules replay events by receive time after a restart (migration 0003); BRIN: free per insert.
        Index("ix_events_received_at_brin", "received_at", postgresql_using="brin"),
    )


class EventDedup(Base):
    """Keys of clockless events: the first receipt claims (device, boot, seq) and fixes its time.

    Events with a device timestamp deduplicate on the events primary key; events without one would get a
    new receipt time on each redelivery, so their key is claimed here first (pruned after the dedup window).
    """

    __tablename__ = "event_dedup"

    device_id: Mapped[str] = mapped_column(Text, primary_key=True)
    boot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_event_dedup_time", "time"),)


class Telemetry(Base):
    """Device health telemetry. Hypertable on `time` when TimescaleDB is present."""

    __tablename__ = "telemetry"

    device_id: Mapped[str] = mapped_column(Text, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    device_time: Mapped[bool] = mapped_column(Boolean)
    uptime_s: Mapped[int | None] = mapped_column(BigInteger)
    battery_pct: Mapped[float | None] = mapped_column(REAL)
    battery_mv: Mapped[int | None] = mapped_column(Integer)
    rssi_dbm: Mapped[int | None] = mapped_column(SmallInteger)
    heap_free: Mapped[int | None] = mapped_column(BigInteger)
    arena_free: Mapped[int | None] = mapped_column(BigInteger)
    infer_count: Mapped[int | None] = mapped_column(BigInteger)
    lat_avg_us: Mapped[int | None] = mapped_column(BigInteger)
    lat_max_us: Mapped[int | None] = mapped_column(BigInteger)
    dropped: Mapped[int | None] = mapped_column(BigInteger)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (Index("ix_telemetry_time_brin", "time", postgresql_using="brin"),)


class DeadLetter(Base):
    """A message (or one event of a batch) that could not be stored, kept with its raw bytes and reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    topic: Mapped[str] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(Text, index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    code: Mapped[str] = mapped_column(Text, index=True)
    detail: Mapped[str] = mapped_column(Text)
    event_index: Mapped[int | None] = mapped_column(Integer)


class TinyfleetMeta(Base):
    """Small key/value record of how the store was set up (which TimescaleDB path, license, rollup kind).

    Written by the migrations, read by maintenance; keys are listed in `tinyfleet.store.meta`.
    """

    __tablename__ = "tinyfleet_meta"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


ALERT_STATES = ("open", "acknowledged", "resolved")
ALERT_EVENT_KINDS = ("open", "ack", "resolve", "escalate", "renotify", "action_delivered", "action_dead")
ACTION_KINDS = ("email", "webhook", "nodered", "mqtt")
OUTBOX_STATES = ("pending", "delivered", "dead")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Alert(Base):
    """One alert of a rule for one group (device, site, ...). At most one is not resolved per (rule, group)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(Text)
    group_key: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_how: Mapped[str | None] = mapped_column(Text)
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated: Mapped[bool] = mapped_column(Boolean, server_default="false")
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint(_one_of("state", ALERT_STATES), name="state"),
        CheckConstraint("resolved_how IS NULL OR resolved_how IN ('auto', 'manual')", name="resolved_how"),
        # The lifecycle's invariant, enforced by the database: one open/acknowledged alert per (rule, group).
        Index(
            "ux_alerts_active",
            "rule_id",
            "group_key",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index("ix_alerts_state", "state"),
        Index("ix_alerts_rule_id", "rule_id"),
    )


class AlertEvent(Base):
    """The history of an alert: every transition, and what became of each action."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (CheckConstraint(_one_of("kind", ALERT_EVENT_KINDS), name="kind"),)


class Outbox(Base):
    """One action to deliver for one alert transition, written in the transaction of that transition.

    `idempotency_key` is derived from (alert, transition, action index): every attempt carries the same one.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    transition_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alert_events.id", ondelete="CASCADE"))
    action_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    state: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(_one_of("kind", ACTION_KINDS), name="kind"),
        CheckConstraint(_one_of("state", OUTBOX_STATES), name="state"),
        # What the workers poll: only pending rows, in due order.
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_outbox_state", "state"),
    )


class RulesCheckpoint(Base):
    """The rules engine's state (windows, clocks, alerts) as of the last event it was fed, per rules runtime.

    A restart restores it and replays the events received since `fed_until` from the `events` table (the
    rows at exactly `fed_until` whose keys are in `fed_keys` were fed already), so windows survive a restart.
    """

    __tablename__ = "rules_checkpoints"

    name: Mapped[str] = mapped_column(Text, primary_key=True, comment="the runtime: its ingest client id")
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fed_keys: Mapped[list[Any]] = mapped_column(JSONB, comment="[device, boot, seq] fed at fed_until")
    events_fed: Mapped[int] = mapped_column(BigInteger)
    snapshot: Mapped[bytes] = mapped_column(LargeBinary, comment="zlib-compressed JSON of RuleEngine.snapshot()")


# ------------------------------------------------------------------------------ fleet management (0004)
API_KEY_SCOPES = ("read", "write", "admin", "device-provisioning")


class DeviceCredential(Base):
    """One MQTT password of a device (username = device id), as the Mosquitto `$7$` PBKDF2-SHA512 hash.

    At most one is active (``revoked_at`` null) per device; rotated and revoked ones stay as history.
    """

    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(Text, ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(Text, comment="mosquitto_passwd format: $7$iterations$salt$hash")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    rotated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when a newer credential replaced this one"
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ux_device_credentials_active", "device_id", unique=True, postgresql_where=text("revoked_at IS NULL")),
    )


class Cohort(Base):
    """A saved device selector (a tag query such as ``site=plant-a AND line in (1,2)``)."""

    __tablename__ = "cohorts"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    query: Mapped[str] = mapped_column(Text, comment="the selector in its canonical text form")
    selector: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="the parsed selector (tinyfleet.fleet.selectors)")
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    """An API key: only the SHA-256 of the token is kept, and a short public prefix to recognise it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    token_sha256: Mapped[str] = mapped_column(Text, unique=True, comment="hex SHA-256 of the whole token")
    name: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("scopes <@ ARRAY[" + ", ".join(repr(s) for s in API_KEY_SCOPES) + "]::text[]", name="scopes"),
    )


#: UI roles, each a set of API-key scopes (tinyfleet.fleet.users.ROLE_SCOPES).
USER_ROLES = ("read-only", "operator", "admin")


class User(Base):
    """A person who logs in to the web UI with a password (scrypt hash); the role maps onto API-key scopes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, comment="scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>")
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(repr(r) for r in USER_ROLES) + ")", name="role"),
    )


class AuditEntry(Base):
    """One mutation: who (API key or CLI), what, on which target, when, and a summary of the request."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(Text, comment="key:<id>, admin-env, cli:<os user>")
    action: Mapped[str] = mapped_column(Text, comment="e.g. 'POST /api/v1/devices' or 'cli devices provision'")
    target: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer, comment="HTTP status of the answer")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ModelRecord(Base):
    """A model of the registry (e.g. `kws`); its versions hold the artifacts."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModelVersion(Base):
    """One immutable version of a model: the artifact (by SHA-256), what inspection and TFLM found, the card.

    `version` is an integer because devices report it as one (`mver` in events and state, uint32).
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(Text, ForeignKey("models.name", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    precision: Mapped[str] = mapped_column(Text)
    parameters: Mapped[int] = mapped_column(BigInteger)
    ops: Mapped[list[Any]] = mapped_column(JSONB, comment="[{name, count, custom, version}]")
    arena_bytes: Mapped[int | None] = mapped_column(BigInteger, comment="smallest TFLM arena; NULL: not loadable")
    arena: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="the TFLM measurement (loadable, reason, …)")
    inputs: Mapped[list[Any]] = mapped_column(JSONB)
    outputs: Mapped[list[Any]] = mapped_column(JSONB)
    labels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    card: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="task, dataset, accuracy, description, …")
    inspection: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="everything the flatbuffer reader found")
    storage_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ux_model_versions_model_version", "model_name", "version", unique=True),
        CheckConstraint("version >= 0 AND version <= 4294967295", name="version_uint32"),
        CheckConstraint("precision IN ('int8', 'float', 'mixed')", name="precision"),
    )


RELEASE_COMPONENTS = ("model", "firmware")
ROLLOUT_STATES = ("running", "paused", "completed", "aborted", "rolling_back", "rolled_back")
ROLLOUT_DEVICE_STATES = (
    "pending",  # in a later wave: not sent yet (one of the control group meanwhile)
    "current",  # already ran the target version when the rollout started: nothing to send
    "sent",  # its signed manifest is retained on its ota topic
    "downloading",
    "downloaded",
    "verified",
    "applied",  # the device says so; not believed until its state (or its events) show the new version
    "confirmed",
    "failed",
    "rollback_sent",
    "rolled_back",
    "skipped",  # incompatible with the release, or left out by an abort
)
OTA_REPORT_STATES = ("downloading", "downloaded", "verified", "applied", "failed", "rolled_back")


class Release(Base):
    """A model version (and optionally a firmware version) for a cohort of devices, with its rollout plan."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    component: Mapped[str] = mapped_column(Text, server_default="model")
    model: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer)
    firmware_version: Mapped[str | None] = mapped_column(Text)
    cohort: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="device selector (tags) the release is for")
    plan: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="waves, gates, confirmation (RolloutPlan)")
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint(_one_of("component", RELEASE_COMPONENTS), name="component"),)


class Rollout(Base):
    """One execution of a release, wave by wave."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    release_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(Text, server_default="running")
    wave: Mapped[int] = mapped_column(Integer, server_default="0")
    wave_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(_one_of("state", ROLLOUT_STATES), name="state"),
        # One active rollout per release.
        Index(
            "ux_rollouts_active_release",
            "release_id",
            unique=True,
            postgresql_where=text("state IN ('running', 'paused', 'rolling_back')"),
        ),
    )


class RolloutDevice(Base):
    """One device of a rollout: its wave, what it ran before, and how far its update got."""

    __tablename__ = "rollout_devices"

    rollout_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rollouts.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(Text, ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    from_model: Mapped[str | None] = mapped_column(Text)
    from_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    seq: Mapped[int | None] = mapped_column(BigInteger, comment="sequence number of the manifest sent last")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        PrimaryKeyConstraint("rollout_id", "device_id"),
        CheckConstraint(_one_of("status", ROLLOUT_DEVICE_STATES), name="status"),
        Index("ix_rollout_devices_status", "rollout_id", "status"),
    )


class RolloutDecision(Base):
    """Every decision of a rollout (start, advance, hold, pause, rollback, ...) with the evidence it rests on."""

    __tablename__ = "rollout_decisions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    wave: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text, server_default="controller")
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class OtaReport(Base):
    """Every `ota/status` message a device sent: downloading, verified, applied, failed + reason, ..."""

    __tablename__ = "ota_reports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    mver: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="the decoded message")

    __table_args__ = (
        CheckConstraint(_one_of("state", OTA_REPORT_STATES), name="state"),
        Index("ix_ota_reports_device_received", "device_id", "received_at"),
    )


class Capture(Base):
    """A raw sensor window a device uploaded for retraining (the ``capture`` command): the CSV as sent
    (tinyfleet_device.capture layout, docs/protocol.md) and what its header says, for listing."""

    __tablename__ = "captures"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(Text, ForeignKey("devices.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    label: Mapped[str | None] = mapped_column(Text)
    sample_rate_hz: Mapped[float] = mapped_column(Double)
    samples: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text))
    boot: Mapped[int | None] = mapped_column(BigInteger)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(Text)
    mver: Mapped[int | None] = mapped_column(BigInteger)
    features: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="every header entry of the file")
    body: Mapped[bytes] = mapped_column(LargeBinary, comment="the CSV exactly as uploaded")

    __table_args__ = (Index("ix_captures_device_id_id", "device_id", "id"), Index("ix_captures_label", "label"))
