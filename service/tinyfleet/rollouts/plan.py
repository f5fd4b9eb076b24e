"""The plan of a rollout: its waves, and which device falls into which wave.

Devices are ordered by a hash of (rollout id, device id): stable across restarts and re-reads of the cohort,
independent of device names (so the canary is not always "dev-0001"), and different for every rollout (so the
same devices are not always the canaries). Wave k takes the devices up to ceil(percent_k x N); at least one
device goes into the first wave.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tinyfleet.rollouts.gates import Gates


class Wave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: float = Field(gt=0, le=100, description="share of the cohort updated once this wave has started")
    soak_s: float = Field(ge=0, description="seconds the wave runs (gates judged meanwhile) before the next may start")


DEFAULT_WAVES = (Wave(percent=1, soak_s=3600), Wave(percent=10, soak_s=3600), Wave(percent=50, soak_s=3600),
                 Wave(percent=100, soak_s=0))  # fmt: skip


class RolloutPlan(BaseModel):
    """How a release goes out: waves, the gates of the canary comparison, and the confirmation rules."""

    model_config = ConfigDict(extra="forbid")

    waves: list[Wave] = Field(default_factory=lambda: [w.model_copy() for w in DEFAULT_WAVES], min_length=1)
    gates: Gates = Field(default_factory=Gates)
    min_confirmed: float = Field(
        0.8, ge=0, le=1, description="share of a wave's devices confirmed on the new version before the next wave"
    )
    confirm_timeout_s: float = Field(
        900, gt=0, description="an update neither confirmed nor failed this long after its manifest was "
        "received by the device (it reported downloading) counts as failed: e.g. a power loss mid-update",
    )  # fmt: skip
    manifest_ttl_s: int = Field(30 * 86400, gt=0, description="validity of the signed manifests (expiry)")
    auto_rollback: bool = True
    pause_on_alert: Literal["info", "warning", "minor", "major", "critical"] | None = Field(
        None, description="pause when an alert of at least this severity opens on a device sent the update"
    )

    @field_validator("waves")
    @classmethod
    def _increasing(cls, waves: list[Wave]) -> list[Wave]:
        last = 0.0
        for i, w in enumerate(waves):
            if w.percent <= last:
                raise ValueError(f"wave {i}: percent must increase from wave to wave ({w.percent} after {last})")
            last = w.percent
        if waves[-1].percent != 100:
            raise ValueError("the last wave must reach 100 percent of the cohort")
        return waves


def device_order(rollout_id: int, devices: Iterable[str]) -> list[str]:
    def key(d: str) -> bytes:
        return hashlib.sha256(f"{rollout_id}:{d}".encode()).digest()

    return sorted(devices, key=key)


def assign_waves(rollout_id: int, devices: Iterable[str], waves: Sequence[Wave]) -> dict[str, int]:
    """device id → index of the wave that updates it."""
    ordered = device_order(rollout_id, devices)
    n = len(ordered)
    out: dict[str, int] = {}
    start = 0
    for k, w in enumerate(waves):
        end = n if k == len(waves) - 1 else min(n, max(1, math.ceil(w.percent * n / 100)))
        for d in ordered[start:end]:
            out[d] = k
        start = max(start, end)
    return out
