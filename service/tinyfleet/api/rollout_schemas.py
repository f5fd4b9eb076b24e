"""Schemas of releases and rollouts (`*Create` what the API takes, `*Public` what it returns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tinyfleet.rollouts.plan import RolloutPlan
from tinyfleet.rollouts.service import CohortSelector

_PLAN_EXAMPLE: dict[str, Any] = {
    "waves": [{"percent": 10, "soak_s": 1800}, {"percent": 50, "soak_s": 1800}, {"percent": 100, "soak_s": 0}],
    "gates": {"max_label_psi": 0.25, "max_update_failure_rate": 0.2, "min_events": 200},
    "min_confirmed": 0.8,
}


class ReleaseBase(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                      description="Unique name", examples=["kws-v3-plant-a"])  # fmt: skip
    model: str = Field(min_length=1, max_length=128, description="Model name in the registry", examples=["kws"])
    model_version: int = Field(ge=0, le=2**32 - 1, description="Model version in the registry", examples=[3])
    component: Literal["model", "firmware"] = Field("model", description="What the manifest updates")
    firmware_version: str | None = Field(None, max_length=64, description="Firmware shipped with it, if any")
    description: str | None = Field(None, max_length=2000)


class ReleaseCreate(ReleaseBase):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "kws-v3-plant-a", "model": "kws", "model_version": 3,
                                         "cohort": {"tags": {"site": "plant-a"}}, "plan": _PLAN_EXAMPLE}]},
    )  # fmt: skip

    cohort: CohortSelector = Field(default_factory=CohortSelector, description="Which devices it is for")
    plan: RolloutPlan = Field(default_factory=RolloutPlan, description="Waves, gates and confirmation")


class ReleasePublic(ReleaseBase):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{
            "id": 3, "name": "kws-v3-plant-a", "model": "kws", "model_version": 3, "component": "model",
            "firmware_version": None, "description": None, "cohort": {"tags": {"site": "plant-a"}},
            "plan": _PLAN_EXAMPLE, "created_at": "2026-12-01T10:00:00Z", "created_by": "key:4",
        }]},
    )  # fmt: skip

    id: int
    cohort: dict[str, Any]
    plan: dict[str, Any]
    created_at: datetime
    created_by: str | None = None


class RolloutPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{
            "id": 7, "release_id": 3, "state": "running", "wave": 1, "wave_started_at": "2026-12-01T10:30:00Z",
            "started_at": "2026-12-01T10:00:00Z", "finished_at": None, "reason": None,
            "updated_at": "2026-12-01T10:30:00Z", "waves": {"0": {"confirmed": 1}, "1": {"sent": 9}},
            "totals": {"confirmed": 1, "sent": 9, "pending": 90},
        }]},
    )  # fmt: skip

    id: int
    release_id: int
    state: str = Field(description="running · paused · completed · aborted · rolling_back · rolled_back")
    wave: int = Field(description="Index of the current wave")
    wave_started_at: datetime
    started_at: datetime
    finished_at: datetime | None = None
    reason: str | None = Field(None, description="Why it is in this state (a breached gate, who paused it, ...)")
    updated_at: datetime
    waves: dict[int, dict[str, int]] = Field(default_factory=dict, description="Per wave: devices per status")
    totals: dict[str, int] = Field(default_factory=dict, description="Devices per status")


class RolloutsPublic(BaseModel):
    items: list[RolloutPublic]


class ReleasesPublic(BaseModel):
    items: list[ReleasePublic]


class RolloutDevicePublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{
            "device_id": "press-07", "wave": 0, "from_model": "kws", "from_version": 2, "status": "confirmed",
            "seq": 118, "sent_at": "2026-12-01T10:00:05Z", "status_at": "2026-12-01T10:00:41Z",
            "confirmed_at": "2026-12-01T10:00:41Z", "reason": None,
        }]},
    )  # fmt: skip

    device_id: str
    wave: int
    from_model: str | None = None
    from_version: int | None = None
    status: str = Field(description="pending · current · sent · downloading · downloaded · verified · applied · "
                        "confirmed · failed · rollback_sent · rolled_back · skipped")  # fmt: skip
    seq: int | None = Field(None, description="Sequence number of the manifest sent last")
    sent_at: datetime | None = None
    status_at: datetime | None = None
    confirmed_at: datetime | None = None
    reason: str | None = None


class RolloutDevicesPublic(BaseModel):
    items: list[RolloutDevicePublic]
    next_after: str | None = Field(None, description="Pass as `after` for the next page; null on the last")


class RolloutDecisionPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{
            "id": 12, "at": "2026-12-01T10:04:00Z", "wave": 0, "action": "rollback",
            "reason": "label_psi 18 > 0.25", "actor": "controller",
            "evidence": {"gates": {"verdict": "fail", "gates": [{
                "gate": "label_psi", "verdict": "fail", "value": 18.0, "threshold": 0.25,
                "detail": {"chi2_p": 0.0, "canary_top_label": "3", "canary_top_share": 1.0}}]},
                "span": {"from": "2026-12-01T10:01:00Z", "to": "2026-12-01T10:04:00Z", "canaries": 10,
                         "control": 990}},
        }]},
    )  # fmt: skip

    id: int
    at: datetime
    wave: int
    action: str = Field(description="start · send · advance · hold · complete · pause · resume · abort · rollback "
                        "· rolled_back · rollback_blocked")  # fmt: skip
    reason: str
    actor: str
    evidence: dict[str, Any] | None = Field(None, description="The measurements the decision rests on")


class RolloutDecisionsPublic(BaseModel):
    items: list[RolloutDecisionPublic]


class RolloutOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500, examples=["line 3 maintenance window"])


class OtaReportPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{
            "id": 7, "device_id": "press-07", "received_at": "2026-12-01T10:00:40Z", "state": "failed", "seq": 118,
            "reason": "hash_mismatch", "message": "SHA-256 differs from the manifest", "model": None, "mver": None,
        }]},
    )  # fmt: skip

    id: int
    device_id: str
    received_at: datetime
    state: str
    seq: int | None = None
    reason: str | None = None
    message: str | None = None
    model: str | None = None
    mver: int | None = None


class OtaReportsPublic(BaseModel):
    items: list[OtaReportPublic]


class OtaPublicKeyPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kid": "3f2a9c0d11e4b7a5", "hex": "d75a98…", "pem": "-----BEGIN PUBLIC KEY-----…"}]
        }
    )

    kid: str = Field(description="Key id: first 8 bytes of SHA-256 of the raw key, hex (the manifests' `kid`)")
    hex: str = Field(description="The raw 32-byte Ed25519 public key, hex")
    pem: str = Field(description="SubjectPublicKeyInfo PEM")
