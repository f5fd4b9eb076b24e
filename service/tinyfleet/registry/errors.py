"""The registry's own exceptions: each carries a message a person can act on (no tracebacks for bad input)."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of the registry's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelInspectionError(RegistryError):
    """The bytes are not a TFLite model this registry can read (bad identifier, truncated, garbage)."""


class InvalidModelCardError(RegistryError):
    """The model card does not fit the model (e.g. label count vs the output's class dimension)."""


class VersionConflictError(RegistryError):
    """A model version exists already with different bytes: versions are immutable."""


class ModelNotFoundError(RegistryError):
    """No such model or model version."""


class ArtifactStoreError(RegistryError):
    """The artifact store could not store or read an artifact (disk, S3)."""


class ArtifactNotFoundError(ArtifactStoreError):
    """The artifact store has no object under that key."""


class DeviceNotFoundError(RegistryError):
    """The compatibility check names a device the service does not know."""
