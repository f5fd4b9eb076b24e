"""What the API's rollout routes need, built once by the service at start-up (``app.state.rollouts``)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tinyfleet.rollouts.controller import RolloutController
from tinyfleet.rollouts.ports import ArtifactCatalog
from tinyfleet.rollouts.service import CohortResolver, CompatibilityCheck, resolve_cohort


@dataclass
class RolloutsContext:
    catalog: ArtifactCatalog
    controller: RolloutController | None = None
    resolve_cohort: CohortResolver = resolve_cohort
    compatibility: CompatibilityCheck | None = None
    #: The public half of the manifest signing key (None: no key, rollouts cannot send manifests).
    public_key: Ed25519PublicKey | None = None

    def wake(self) -> None:
        if self.controller is not None:
            self.controller.wake()
