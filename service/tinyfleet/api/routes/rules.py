"""The rules this process runs: what is loaded, the last refused load's issues, the last firing; reload."""

from __future__ import annotations

from fastapi import APIRouter

from tinyfleet.api.auth import ReadScope, WriteScope
from tinyfleet.api.deps import RulesDep
from tinyfleet.api.errors import ApiError
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse, RulesPublic
from tinyfleet.rules.runtime import RulesRuntime

router = APIRouter(prefix=f"{API_PREFIX}/rules", tags=["rules"])


class RulesNotRunningError(ApiError):
    status_code = 409
    code = "rules_not_running"


class InvalidRulesError(ApiError):
    status_code = 422
    code = "invalid_rules"


def _status(rules: RulesRuntime | None) -> RulesPublic:
    if rules is None:
        return RulesPublic(running=False)
    return RulesPublic.model_validate({"running": True, **rules.status()})


@router.get("", summary="Loaded rules, the issues of the last refused load, the last firing of each rule")
async def list_rules(rules: RulesDep, _principal: ReadScope) -> RulesPublic:
    return _status(rules)


@router.post(
    "/reload",
    summary="Load the rules directory again; an invalid set is refused as a whole and the old one stays",
    responses={
        409: {"model": ErrorResponse, "description": "This process runs no rules"},
        422: {"model": ErrorResponse, "description": "Invalid rule set: `details` lists file, line, column"},
    },
)
async def reload_rules(rules: RulesDep, _principal: WriteScope) -> RulesPublic:
    if rules is None:
        raise RulesNotRunningError("this process runs no rules (no ingest)")
    issues = await rules.reload()
    if issues:
        raise InvalidRulesError(
            f"invalid rule set, {len(issues)} issue(s); the previous rules stay active: {issues[0]}",
            details=[
                {"file": i.file, "line": i.line, "column": i.column, "message": i.message, "location": str(i)}
                for i in issues
            ],
        )
    return _status(rules)
