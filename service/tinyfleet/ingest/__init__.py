"""MQTT → TimescaleDB ingest: at least once from the broker, exactly once in the database."""

from tinyfleet.ingest.service import IngestError, IngestService, IngestStatus

__all__ = ["IngestError", "IngestService", "IngestStatus"]
