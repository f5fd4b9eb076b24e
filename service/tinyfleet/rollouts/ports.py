"""What the rollout controller needs from the rest of the service, as small interfaces.

The controller decides; these carry its decisions out: a catalogue that knows each model version's artifact
(size, hash, download URI, what a device needs to run it), a signer that turns a manifest description into
signed bytes, and a publisher that puts those bytes, retained, on device topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class RolloutError(Exception):
    """A rollout operation that cannot be done (unknown release, wrong state, ...); the message says why."""


class ReleaseConflict(RolloutError):
    """The operation conflicts with the current state (e.g. a rollout of this release is running)."""


class ReleaseNotFound(RolloutError):
    pass


@dataclass(frozen=True)
class Artifact:
    model: str
    version: int
    size: int
    sha256: bytes
    uri: str
    #: What a device needs to run it: min flash / RAM / arena bytes, required ops.
    requirements: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    #: The registry's record (for the compatibility check against each device's capabilities).
    facts: Any = None


@dataclass(frozen=True)
class ManifestRequest:
    """Everything a signed manifest says, but the signature."""

    seq: int
    component: str
    artifact: Artifact
    issued_at: datetime
    expires_at: datetime
    rollout_id: int


class ArtifactCatalog(Protocol):
    async def artifact(self, model: str, version: int) -> Artifact | None: ...


class ManifestSigner(Protocol):
    def sign(self, request: ManifestRequest) -> bytes: ...


class ManifestPublisher(Protocol):
    async def publish_retained(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish every (topic, payload) retained with QoS 1; return once the broker has acknowledged all."""
        ...
