"""Alerts opened by the rules: list, one with its history, acknowledge, resolve (docs/actions.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tinyfleet import alerts
from tinyfleet.api.auth import ReadScope, WriteScope
from tinyfleet.api.deps import RulesDep, SessionDep, WriteSessionDep
from tinyfleet.api.errors import ApiError, InvalidParameterError, NotFoundError
from tinyfleet.api.params import DEFAULT_PAGE, TEXT_FILTER_PATTERN, Cursor, Limit
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import AlertDetailPublic, AlertEventPublic, AlertPublic, AlertsPublic
from tinyfleet.rules.model import SEVERITIES
from tinyfleet.store.models import ALERT_STATES

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id", examples=[42])]
By = Annotated[
    str,
    Query(
        min_length=1,
        max_length=128,
        pattern=r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
        description="Who does it",
        examples=["j.doe"],
    ),
]


class AlertConflictError(ApiError):
    status_code = 409
    code = "alert_state"


@router.get("", summary="Alerts, newest first")
async def list_alerts(
    session: SessionDep,
    _principal: ReadScope,
    state: Annotated[str | None, Query(pattern=f"^({'|'.join(ALERT_STATES)})$", examples=["open"])] = None,
    rule_id: Annotated[str | None, Query(pattern=TEXT_FILTER_PATTERN, examples=["bearing-fault"])] = None,
    severity: Annotated[str | None, Query(pattern=f"^({'|'.join(SEVERITIES)})$", examples=["major"])] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> AlertsPublic:
    page = await alerts.list_alerts(
        session, state=state, rule_id=rule_id, severity=severity, limit=limit, cursor=cursor
    )
    return AlertsPublic(items=[AlertPublic.model_validate(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{alert_id}", summary="One alert with its history", responses={404: {"description": "No such alert"}})
async def get_alert(session: SessionDep, _principal: ReadScope, alert_id: AlertId) -> AlertDetailPublic:
    alert = await alerts.get_alert(session, alert_id)
    if alert is None:
        raise NotFoundError(f"alert {alert_id} not found")
    history = await alerts.list_alert_events(session, alert_id)
    return AlertDetailPublic.model_validate(
        {
            **AlertPublic.model_validate(alert).model_dump(),
            "history": [AlertEventPublic.model_validate(e) for e in history],
        }
    )


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge an open alert (stops escalation and re-notification)",
    responses={404: {"description": "No such alert"}, 409: {"description": "The alert is resolved"}},
)
async def acknowledge_alert(
    session: WriteSessionDep, rules: RulesDep, _principal: WriteScope, alert_id: AlertId, by: By = "api"
) -> AlertPublic:
    try:
        applied = await alerts.acknowledge(session, alert_id, by)
    except alerts.AlertNotFound:
        raise NotFoundError(f"alert {alert_id} not found") from None
    except alerts.AlertStateError as exc:
        raise AlertConflictError(str(exc)) from None
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None
    alert = applied.alert if applied is not None else await alerts.get_alert(session, alert_id)
    assert alert is not None
    await session.commit()
    if rules is not None and applied is not None:
        await rules.acknowledged(alert.rule_id, alert.group_key)
    return AlertPublic.model_validate(alert)


@router.post(
    "/{alert_id}/resolve", summary="Resolve an alert by hand", responses={404: {"description": "No such alert"}}
)
async def resolve_alert(
    session: WriteSessionDep, rules: RulesDep, _principal: WriteScope, alert_id: AlertId, by: By = "api"
) -> AlertPublic:
    try:
        applied = await alerts.resolve(session, alert_id, by)
    except alerts.AlertNotFound:
        raise NotFoundError(f"alert {alert_id} not found") from None
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None
    alert = applied.alert if applied is not None else await alerts.get_alert(session, alert_id)
    assert alert is not None
    await session.commit()
    if rules is not None and applied is not None:
        await rules.resolved(alert.rule_id, alert.group_key)
    return AlertPublic.model_validate(alert)
