"""Request and response schemas of fleet management: provisioning, credentials, cohorts, API keys, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tinyfleet.api.schemas import _DEVICE_EXAMPLE, DevicePublic, Page
from tinyfleet.fleet.cohorts import COHORT_NAME_PATTERN
from tinyfleet.fleet.devices import MAX_TAGS
from tinyfleet.fleet.selectors import MAX_QUERY_LENGTH
from tinyfleet.store.models import API_KEY_SCOPES
from tinyfleet.wire import DEVICE_ID_PATTERN

TagValue = str | int | float | bool
_TAGS_EXAMPLE: dict[str, Any] = {"site": "plant-a", "line": "2", "machine": "press-07"}
_PASSWORD_EXAMPLE = "Qm9vdHN0cmFwLXNlY3JldA"  # noqa: S105 - an OpenAPI example


# ------------------------------------------------------------------------------------------- provisioning
class DeviceCreate(BaseModel):
    id: str = Field(pattern=f"^{DEVICE_ID_PATTERN}$", description="Device id, also its MQTT username")
    tags: dict[str, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS, description="e.g. site, line")

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"id": "press-07", "tags": _TAGS_EXAMPLE}]}
    )


class CredentialsPublic(BaseModel):
    """MQTT credentials: the password is shown in this answer only (the service keeps only its hash)."""

    username: str = Field(description="= the device id")
    password: str


class DeviceProvisionedPublic(BaseModel):
    device: DevicePublic
    credentials: CredentialsPublic
    broker_synced: bool | None = Field(
        description="The broker's password file was rewritten and reloaded (null: files not managed here)"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device": _DEVICE_EXAMPLE,
                    "credentials": {"username": "press-07", "password": _PASSWORD_EXAMPLE},
                    "broker_synced": True,
                }
            ]
        }
    )


class ProvisionedItem(BaseModel):
    id: str
    username: str
    password: str
    tags: dict[str, Any]


class BulkProvisionedPublic(BaseModel):
    count: int
    items: list[ProvisionedItem]
    broker_synced: bool | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 1,
                    "items": [
                        {"id": "press-07", "username": "press-07", "password": _PASSWORD_EXAMPLE, "tags": _TAGS_EXAMPLE}
                    ],
                    "broker_synced": True,
                }
            ]
        }
    )


class DeviceChangedPublic(DevicePublic):
    broker_synced: bool | None = Field(
        default=None, description="The broker's files were rewritten and reloaded (null: not managed here)"
    )


class DeviceTagsUpdate(BaseModel):
    tags: dict[str, TagValue | None] = Field(
        max_length=MAX_TAGS, description="Merged into the device's tags; a null value removes that tag"
    )
    replace: bool = Field(default=False, description="Replace all tags instead of merging")

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"tags": {"line": "3", "machine": None}}]}
    )


class CredentialPublic(BaseModel):
    id: int
    state: str = Field(description="`active`, `rotated` (replaced by a newer one) or `revoked`")
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": 3, "state": "active", "created_at": "2026-11-24T09:30:00Z", "rotated_at": None,
                 "revoked_at": None}
            ]
        }
    )  # fmt: skip


class CredentialsListPublic(BaseModel):
    items: list[CredentialPublic]


# ------------------------------------------------------------------------------------------------ cohorts
class CohortBase(BaseModel):
    query: str = Field(
        max_length=MAX_QUERY_LENGTH,
        description="Tag selector: clauses `k=v`, `k!=v`, `k in (a,b)`, `k not in (…)`, `has k`, `not has k` "
        "joined by AND",
    )
    description: str | None = Field(default=None, max_length=1000)


class CohortCreate(CohortBase):
    name: str = Field(pattern=f"^{COHORT_NAME_PATTERN}$")

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"name": "plant-a-canary", "query": "site=plant-a AND line in (1,2)", "description": None}]
        },
    )


class CohortUpdate(CohortBase):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"query": "site=plant-a"}]})


class CohortPublic(CohortBase):
    name: str
    selector: dict[str, Any] = Field(description="The parsed selector: `{all: [{key, op, values}]}`")
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "plant-a-canary",
                    "query": "site=plant-a AND line in (1,2)",
                    "description": None,
                    "selector": {
                        "all": [
                            {"key": "site", "op": "eq", "values": ["plant-a"]},
                            {"key": "line", "op": "in", "values": ["1", "2"]},
                        ]
                    },
                    "created_at": "2026-11-24T09:30:00Z",
                    "updated_at": "2026-11-24T09:30:00Z",
                }
            ]
        },
    )


class CohortsPublic(BaseModel):
    items: list[CohortPublic]


# ----------------------------------------------------------------------------------------------- API keys
class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    scopes: list[str] = Field(min_length=1, max_length=4, description=f"Of {', '.join(API_KEY_SCOPES)}")

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"name": "line-2 provisioning", "scopes": ["device-provisioning"]}]},
    )


_KEY_EXAMPLE: dict[str, Any] = {
    "id": 4,
    "prefix": "tfk_3f9a1c2b",
    "name": "grafana",
    "scopes": ["read"],
    "created_at": "2026-11-24T09:30:00Z",
    "created_by": "cli:root",
    "last_used_at": None,
    "revoked_at": None,
}


class ApiKeyPublic(BaseModel):
    id: int
    prefix: str = Field(description="Public start of the token, to recognise a key")
    name: str
    scopes: list[str]
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_KEY_EXAMPLE]})


class ApiKeyCreatedPublic(ApiKeyPublic):
    token: str = Field(description="The whole key: shown in this answer only")

    model_config = ConfigDict(json_schema_extra={"examples": [{**_KEY_EXAMPLE, "token": "tfk_3f9a1c2b_" + "x" * 43}]})


class ApiKeysPublic(BaseModel):
    items: list[ApiKeyPublic]


# -------------------------------------------------------------------------------------------------- audit
class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="`key:<id>`, `admin-env` or `cli:<user>`")
    action: str
    target: str | None = None
    status: int | None = None
    summary: dict[str, Any] | None = None

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 9,
                    "at": "2026-11-24T09:30:00Z",
                    "actor": "key:4",
                    "action": "POST /api/v1/devices/{device_id:path}/disable",
                    "target": "press-07",
                    "status": 200,
                    "summary": {"path": "/api/v1/devices/press-07/disable"},
                }
            ]
        },
    )


class AuditPublic(Page[AuditEntryPublic]):
    pass
