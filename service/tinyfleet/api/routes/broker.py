"""HTTP authentication/authorisation for the MQTT broker (EMQX HTTP authn/authz, mosquitto-go-auth HTTP).

The broker calls these with an API key of the `device-provisioning` scope (a header in its HTTP request
template). Every answer is 200 with a JSON verdict that both brokers read: EMQX looks at `result` and
`is_superuser`, mosquitto-go-auth (``http_response_mode json``) at `ok`.
"""

from __future__ import annotations

from typing import Literal, Self

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tinyfleet.api.auth import ProvisioningScope
from tinyfleet.api.deps import SessionDep, SettingsDep
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.fleet import broker_http

router = APIRouter(prefix=f"{API_PREFIX}/broker", tags=["broker"])


class BrokerLogin(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    clientid: str | None = Field(default=None, max_length=256)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "press-07", "password": "Qm9vdHN0cmFw", "clientid": "press-07"}]}
    )


class BrokerAccess(BaseModel):
    username: str = Field(max_length=256)
    topic: str = Field(max_length=65535)
    action: Literal["publish", "subscribe"] | None = Field(default=None, description="EMQX's form")
    acc: Literal[1, 2, 4] | None = Field(
        default=None, description="mosquitto-go-auth's form: 1 read, 2 write (publish), 4 subscribe"
    )
    clientid: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        if (self.action is None) == (self.acc is None):
            raise ValueError("give exactly one of `action` (publish/subscribe) or `acc` (1, 2, 4)")
        return self

    @property
    def wanted(self) -> broker_http.Action:
        if self.action is not None:
            return self.action
        return "publish" if self.acc == 2 else "subscribe"  # read (1) is checked like subscribe

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "press-07", "topic": "tf/v1/press-07/evt", "action": "publish"}]}
    )


class BrokerVerdict(BaseModel):
    result: Literal["allow", "deny"] = Field(description="EMQX: allow or deny")
    is_superuser: bool = Field(description="EMQX: the service user")
    ok: bool = Field(description="mosquitto-go-auth (json response mode)")
    error: str = Field(description="Why it was denied (empty when allowed)")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"result": "allow", "is_superuser": False, "ok": True, "error": ""}]}
    )

    @classmethod
    def of(cls, decision: broker_http.Decision) -> BrokerVerdict:
        return cls(
            result="allow" if decision.allow else "deny",
            is_superuser=decision.superuser,
            ok=decision.allow,
            error=decision.reason,
        )


@router.post("/auth", summary="May this username/password connect? (broker HTTP authentication)")
async def broker_auth(
    session: SessionDep, settings: SettingsDep, _principal: ProvisioningScope, body: BrokerLogin
) -> BrokerVerdict:
    return BrokerVerdict.of(await broker_http.check_login(session, settings, body.username, body.password))


@router.post("/acl", summary="May this user publish/subscribe to this topic? (broker HTTP authorization)")
async def broker_acl(
    session: SessionDep, settings: SettingsDep, _principal: ProvisioningScope, body: BrokerAccess
) -> BrokerVerdict:
    return BrokerVerdict.of(await broker_http.check_acl(session, settings, body.username, body.topic, body.wanted))
