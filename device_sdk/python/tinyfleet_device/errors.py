"""Exceptions of the reference device. Each names what failed and is raised ``from`` its cause."""

from __future__ import annotations

__all__ = ["ArenaError", "DeviceError", "ModelError", "SourceError", "StoreError"]


class DeviceError(Exception):
    """Base of the reference device's own errors."""


class ModelError(DeviceError):
    """The model file cannot be read or run (not a TFLite flatbuffer, an unsupported tensor layout, an op the
    interpreter has no kernel for, features that do not fit its input)."""


class ArenaError(ModelError):
    """TFLM cannot allocate the model even with the largest arena tried."""


class SourceError(DeviceError):
    """A sensor source cannot be made or read (unknown name, unreadable WAV file)."""


class StoreError(DeviceError):
    """The on-disk store (queue, boot counter) cannot be opened or written."""
