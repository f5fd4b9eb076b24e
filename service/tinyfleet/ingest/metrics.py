"""Prometheus metrics of the ingest path. Counters move once per batch, not per message, to stay off the hot path."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A registry of its own unless the app passes one: several workers may live in one process (tests).
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.messages_received = Counter(
            "tinyfleet_mqtt_messages_received_total", "MQTT messages taken from the broker", ["channel"], registry=reg
        )
        self.events_stored = Counter(
            "tinyfleet_events_stored_total",
            "Inference events committed to the database (new rows only)",
            registry=reg,
        )
        self.events_duplicate = Counter(
            "tinyfleet_events_duplicate_total",
            "Events dropped as already stored (redelivery or resend)",
            registry=reg,
        )
        self.telemetry_stored = Counter("tinyfleet_telemetry_stored_total", "Telemetry rows committed", registry=reg)
        self.dead_letters = Counter(
            "tinyfleet_dead_letters_total",
            "Messages or batch elements stored as dead letters",
            ["code"],
            registry=reg,
        )
        self.batch_seconds = Histogram(
            "tinyfleet_batch_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=reg,
        )
        self.batch_messages = Histogram(
            "tinyfleet_batch_messages",
            "Messages per committed batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=reg,
        )
        self.pending_messages = Gauge(
            "tinyfleet_ingest_pending_messages", "Messages received but not yet acknowledged", registry=reg
        )
        self.lag_seconds = Gauge(
            "tinyfleet_ingest_lag_seconds",
            "Age of the oldest message of the last committed batch at commit",
            registry=reg,
        )
        self.db_errors = Counter(
            "tinyfleet_ingest_db_errors_total", "Database errors while writing batches", registry=reg
        )
        self.mqtt_connects = Counter("tinyfleet_mqtt_connects_total", "Successful MQTT (re)connections", registry=reg)
        self.mqtt_connected = Gauge("tinyfleet_mqtt_connected", "1 while connected to the broker", registry=reg)
