"""Settings: one object built at start-up from the environment and `.env` (never at import)."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class InsecureSettingsError(ValueError):
    """Raised when production mode is asked for with a development-only default."""


class MqttEndpoint:
    """The parts of an ``mqtt://user:pass@host:port`` (or ``mqtts://``) URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"MQTT URL has no host: {url!r}")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"MqttEndpoint({'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port})"


DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tinyfleet"
DEV_MQTT_URL = "mqtt://127.0.0.1:1883"


class Settings(BaseSettings):
    """Every knob of the service. Environment variables are ``TINYFLEET_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="TINYFLEET_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.DEV
    database_url: str = DEV_DATABASE_URL
    mqtt_url: str = DEV_MQTT_URL
    mqtt_client_id: str = "tinyfleet-ingest"
    mqtt_protocol: Annotated[int, Field(description="5 (MQTT 5, default) or 4 (MQTT 3.1.1)")] = 5
    mqtt_shared_group: Annotated[
        str | None, Field(description="Subscribe through $share/<group>/... so several workers split the load")
    ] = None
    mqtt_keepalive_s: int = 30
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    topic_prefix: str = "tf/v1"
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    strict_wire: bool = True
    # A ceiling, not a target: batches close on the deadline at low rates and grow with the backlog while a commit
    # is slow (a checkpoint), so a large ceiling keeps throughput when fsync stalls.
    batch_max_events: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    batch_max_delay_ms: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    max_pending_messages: Annotated[
        int, Field(ge=10, description="Unacknowledged MQTT messages held at most; the broker is pushed back beyond")
    ] = 20_000

    retention_events_days: Annotated[int, Field(ge=0, description="0 keeps events forever")] = 90
    retention_telemetry_days: Annotated[int, Field(ge=0)] = 30
    retention_dead_letters_days: Annotated[int, Field(ge=0)] = 30
    dedup_window_days: Annotated[
        int, Field(ge=1, description="How long (device, boot, seq) of clockless events are kept")
    ] = 7
    maintenance_interval_s: Annotated[float, Field(gt=0)] = 300.0
    use_timescaledb: Annotated[bool, Field(description="Create the extension and hypertables when available")] = True

    # Alert actions: the outbox worker and its senders (tinyfleet.actions).
    actions_max_attempts: Annotated[int, Field(ge=1, description="Attempts before an outbox row is marked dead")] = 8
    actions_backoff_base_s: Annotated[float, Field(gt=0)] = 1.0
    actions_backoff_factor: Annotated[float, Field(ge=1)] = 2.0
    actions_backoff_cap_s: Annotated[float, Field(gt=0)] = 300.0
    actions_poll_interval_s: Annotated[float, Field(gt=0)] = 0.5
    actions_batch_size: Annotated[int, Field(ge=1, le=1000)] = 16
    actions_concurrency: Annotated[int, Field(ge=1, le=64, description="Claiming loops per outbox worker")] = 2
    actions_timeout_s: Annotated[float, Field(gt=0, description="Per delivery attempt (HTTP, SMTP, MQTT)")] = 10.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: Annotated[bool, Field(description="Implicit TLS (SMTPS, usually port 465)")] = False
    smtp_starttls: Annotated[bool, Field(description="STARTTLS after connecting (usually port 587)")] = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "tinyfleet@localhost"
    smtp_cert_bundle: Annotated[
        Path | None, Field(description="CA file trusted for the SMTP server's certificate (default: system store)")
    ] = None
    webhook_secret: Annotated[
        SecretStr | None, Field(description="HMAC key of X-Tinyfleet-Signature (an action may name its own env var)")
    ] = None
    nodered_url: Annotated[str, Field(description="Base URL the Node-RED action's path is appended to")] = (
        "http://127.0.0.1:1880"
    )

    rules_dir: Annotated[Path, Field(description="Directory of the rule files (*.yml), e.g. a git checkout")] = Path(
        "rules"
    )
    rules_watch: Annotated[bool, Field(description="Reload the rules when a file in rules_dir changes")] = True
    rules_checkpoint_interval_s: Annotated[
        float, Field(gt=0, description="Save the rules engine's state (windows, clocks) this often")
    ] = 30.0
    rules_warmup_max_s: Annotated[
        float,
        Field(ge=0, description="Without a checkpoint, rebuild windows from at most this much event history"),
    ] = 3600.0
    rules_device_refresh_s: Annotated[
        float, Field(gt=0, description="Re-read the devices' site and tags for the rules this often")
    ] = 30.0

    # Model registry (tinyfleet.registry): where artifacts are stored, and the limits of an upload.
    artifacts_dir: Annotated[
        Path | None, Field(description="Local artifact directory (default: <data_dir>/artifacts)")
    ] = None
    artifacts_url: Annotated[
        str | None, Field(description="s3://bucket/prefix: store artifacts in S3-compatible storage instead")
    ] = None
    s3_endpoint_url: Annotated[
        str | None, Field(description="S3 endpoint (MinIO, Ceph, …); default: AWS, from the AWS_* environment")
    ] = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    models_max_upload_bytes: Annotated[int, Field(ge=1024, description="Largest .tflite accepted")] = 16 * 1024 * 1024
    models_max_arena_bytes: Annotated[
        int, Field(ge=1024, description="Arena ceiling of the TFLM measurement (binary search upper bound)")
    ] = 16 * 1024 * 1024
    models_arena_timeout_s: Annotated[float, Field(gt=0, description="Time limit of one arena measurement")] = 60.0

    # Rollouts (tinyfleet.rollouts)
    public_url: Annotated[
        str | None,
        Field(description="Base URL devices reach the API at (artifact URIs in manifests); default http://host:port"),
    ] = None
    rollouts_enabled: Annotated[bool, Field(description="Run the rollout controller in this service")] = True
    rollouts_interval_s: Annotated[float, Field(gt=0, description="How often each active rollout is stepped")] = 5.0

    session_secret: Annotated[
        SecretStr | None,
        Field(
            description="Key that signs the web UI's session cookie (32+ random characters); default: derived "
            "from TINYFLEET_ADMIN_API_KEY, else random per process (sessions end at restart)"
        ),
    ] = None
    session_max_age_s: Annotated[int, Field(ge=60, description="A UI login lasts this long")] = 8 * 3600
    session_https_only: Annotated[
        bool, Field(description="Send the session cookie only over HTTPS (set it behind a TLS proxy)")
    ] = False
    ui_live_queue: Annotated[
        int, Field(ge=1, le=10_000, description="Live-update messages buffered per browser before it must reload")
    ] = 200

    admin_api_key: Annotated[
        SecretStr | None,
        Field(description="An admin API token taken from the environment (required in prod); compared by hash"),
    ] = None

    # Broker credentials and ACL (tinyfleet.fleet.broker_auth): files the service owns and Mosquitto reads.
    broker_password_file: Annotated[
        Path | None, Field(description="Mosquitto password_file the service rewrites (none: not managed)")
    ] = None
    broker_acl_file: Annotated[Path | None, Field(description="Mosquitto acl_file the service rewrites")] = None
    broker_file_group: Annotated[
        str | None, Field(description="Group given the files (mode 0640), e.g. `mosquitto`, so the broker reads them")
    ] = None
    broker_pid_file: Annotated[
        Path | None, Field(description="Mosquitto's pid_file: SIGHUP goes to that pid after a rewrite")
    ] = None
    broker_reload_command: Annotated[
        str | None, Field(description="Run instead of the SIGHUP, e.g. `systemctl reload mosquitto`")
    ] = None
    log_level: str = "INFO"

    ota_signing_key: Annotated[
        SecretStr | None,
        Field(description="Ed25519 key that signs OTA manifests: PEM (PKCS#8) or the 32-byte seed as hex/base64"),
    ] = None
    ota_signing_key_file: Annotated[
        Path | None, Field(description="File holding the PEM OTA signing key (must be mode 0600)")
    ] = None
    ota_manifest_ttl_s: Annotated[
        int, Field(ge=60, le=0xFFFF_FFFF, description="OTA manifests expire this long after they are signed")
    ] = 30 * 86_400
    data_dir: Path = Path(".tinyfleet")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_topic_levels(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            raise ValueError(
                "topic_prefix must be plain topic levels like 'tf/v1' (no wildcards, no leading/trailing /)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if not scheme.startswith("postgres"):
            raise ValueError(f"database_url must be a postgresql:// URL, got scheme {scheme!r}")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_parses(cls, value: str) -> str:
        MqttEndpoint(value)
        return value

    @field_validator("artifacts_url")
    @classmethod
    def _artifacts_url_is_s3(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme != "s3" or not urlsplit(value).netloc):
            raise ValueError(f"artifacts_url must look like s3://bucket/prefix, got {value!r}")
        return value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Self:
        if self.env is Environment.PROD:
            problems = []
            if self.admin_api_key is None or len(self.admin_api_key.get_secret_value()) < 24:
                problems.append("TINYFLEET_ADMIN_API_KEY must be set (24+ characters)")
            if self.database_url == DEV_DATABASE_URL:
                problems.append("TINYFLEET_DATABASE_URL must be set explicitly")
            if self.mqtt_url == DEV_MQTT_URL or MqttEndpoint(self.mqtt_url).username is None:
                problems.append("TINYFLEET_MQTT_URL must be set with the service's own broker credentials")
            if problems:
                raise InsecureSettingsError("refusing to start in prod mode: " + "; ".join(problems))
        return self

    @cached_property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.mqtt_url)

    @property
    def public_base_url(self) -> str:
        """Where devices reach this service's API: `public_url`, or the HTTP listener's own address."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL for SQLAlchemy's async psycopg 3 dialect."""
        return to_sqlalchemy_url(self.database_url, driver="psycopg")

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq (psycopg.connect) takes it."""
        return to_libpq_url(self.database_url)


def to_sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    _scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    return f"postgresql+{driver}://{rest}"


def to_libpq_url(url: str) -> str:
    _scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    return f"postgresql://{rest}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and `.env`), with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
