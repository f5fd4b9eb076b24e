"""The rule model: the YAML shape of `rules/*.yml` as pydantic models (DESIGN.md §6, made complete).

Pure declarations and local validation (types, unknown fields, contradictions inside one object). What needs
the whole rule set (unique ids, label names of a model) is checked by `tinyfleet.rules.loader`.

Durations are strings (`30s`, `5m`, `2h`, `1d`, `500ms`, or sums such as `1h30m`) and are held as integer
milliseconds; they must be > 0.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import cel
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Absence",
    "Action",
    "Cmp",
    "Condition",
    "Duration",
    "EmailAction",
    "Escalate",
    "LabelCmp",
    "Match",
    "ModelInfo",
    "MqttAction",
    "NoderedAction",
    "Rate",
    "Rule",
    "RuleFileDoc",
    "Stats",
    "WebhookAction",
    "Window",
    "compile_cel",
    "parse_duration",
    "severity_rank",
]

SEVERITIES = ("info", "warning", "minor", "major", "critical")
Severity = Literal["info", "warning", "minor", "major", "critical"]
KINDS = {"classification": 0, "anomaly": 1, "regression": 2, "detection": 3}
KindName = Literal["classification", "anomaly", "regression", "detection"]

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d))+$")
_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d)")
DURATION_PATTERN = _DURATION_RE.pattern
_SLUG_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


CEL_VARIABLES = frozenset(
    {"device", "time", "model", "mver", "kind", "label", "score", "anom", "lat", "x", "site", "tags"}
)


def compile_cel(expr: str) -> cel.Program:
    """Compile a `when:` expression (CEL, sandboxed: no I/O, no Python). ValueError when invalid."""
    try:
        prog = cel.compile(expr)
    except (ValueError, RuntimeError) as e:
        msg = str(e).replace("\n", " ")
        raise ValueError(f"invalid CEL expression: {msg}") from None
    unknown = sorted(set(prog.variables()) - CEL_VARIABLES)
    if unknown:
        raise ValueError(f"unknown variable(s) in CEL expression: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(CEL_VARIABLES))})")  # fmt: skip
    return prog


def severity_rank(s: str) -> int:
    return SEVERITIES.index(s)


def parse_duration(value: object) -> int:
    """`"5m"` → 300000 (ms). Strict: a string of <digits><unit> parts, units ms/s/m/h/d, total > 0."""
    if not isinstance(value, str):
        raise ValueError("a duration is a string such as 30s, 5m, 2h or 1d")
    s = value.strip()
    if not _DURATION_RE.match(s):
        raise ValueError(f"bad duration {value!r}: use <number><unit>, units ms, s, m, h, d (e.g. 30s, 5m, 1h30m)")
    total = sum(int(n) * _UNIT_MS[u] for n, u in _PART_RE.findall(s))
    if total <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return total


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "description": "e.g. 30s, 5m, 2h, 1d"}),
]
Number = float
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------------------------------
# comparisons


class Cmp(_Strict):
    """Operators on a number (all given must hold). A bare number in YAML means `eq`."""

    eq: Number | None = None
    ne: Number | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    in_: list[Number] | None = Field(None, alias="in", min_length=1)
    not_in: list[Number] | None = Field(None, min_length=1)
    between: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Cmp:
        ops = self.model_dump(exclude_none=True)
        if not ops:
            raise ValueError("a comparison needs at least one of eq, ne, gt, gte, lt, lte, in, not_in, between")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between [{self.between[0]}, {self.between[1]}]: the minimum is above the maximum")
        lows = [v for v in (self.gt, self.gte) if v is not None]
        highs = [v for v in (self.lt, self.lte) if v is not None]
        if self.between is not None:
            lows.append(self.between[0])
            highs.append(self.between[1])
        if lows and highs and max(lows) > min(highs):
            raise ValueError("contradiction: the lower bound is above the upper bound, nothing can match")
        if lows and highs and max(lows) == min(highs) and (self.gt is not None or self.lt is not None):
            raise ValueError("contradiction: the bounds leave an empty interval, nothing can match")
        return self


def _bare_to_eq(v: object) -> object:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return {"eq": v}
    return v


NumCmp = Annotated[Cmp, BeforeValidator(_bare_to_eq, json_schema_input_type=float | Cmp)]
LabelRef = Annotated[str | int, Field(description="label name (from the model's labels) or class index")]


class LabelCmp(_Strict):
    eq: LabelRef | None = None
    ne: LabelRef | None = None
    in_: list[LabelRef] | None = Field(None, alias="in", min_length=1)
    not_in: list[LabelRef] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> LabelCmp:
        if not self.model_dump(exclude_none=True):
            raise ValueError("a label comparison needs one of eq, ne, in, not_in")
        return self


def _label_shorthand(v: object) -> object:
    if isinstance(v, str | int) and not isinstance(v, bool):
        return {"eq": v}
    if isinstance(v, list):
        return {"in": v}
    return v


class XCmp(_Strict):
    """Comparison on an extras value (`x.<key>`): numbers, text or booleans."""

    eq: Scalar = None
    ne: Scalar = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(None, min_length=1)
    between: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> XCmp:
        if not self.model_fields_set:
            raise ValueError("an extras comparison needs at least one operator")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between [{self.between[0]}, {self.between[1]}]: the minimum is above the maximum")
        return self


def _x_shorthand(v: object) -> object:
    if v is None or isinstance(v, str | int | float | bool):
        return {"eq": v}
    return v


def _str_list(v: object) -> object:
    return [v] if isinstance(v, str | int) and not isinstance(v, bool) else v


StrList = Annotated[list[str], BeforeValidator(_str_list, json_schema_input_type=str | list[str]), Field(min_length=1)]


class Match(_Strict):
    """Predicates on one event (all given must hold). Keys `x.<name>` are shorthand for `x: {<name>: …}`."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"patternProperties": {r"^x\.[^.]{1,64}$": {"description": "shorthand for x: {<key>: …}"}}},
    )

    model: str | int | None = Field(None, description="model id (registry name or numeric id)")
    mver: NumCmp | None = None
    kind: KindName | Annotated[int, Field(ge=0, le=3)] | None = None
    label: (
        Annotated[
            LabelCmp,
            BeforeValidator(_label_shorthand, json_schema_input_type=LabelRef | list[LabelRef] | LabelCmp),
        ]
        | None
    ) = None
    score: NumCmp | None = None
    anom: NumCmp | None = None
    lat: NumCmp | None = Field(None, description="inference latency, µs")
    x: dict[str, Annotated[XCmp, BeforeValidator(_x_shorthand, json_schema_input_type=Scalar | XCmp)]] | None = None
    device: StrList | None = None
    site: StrList | None = None
    tags: dict[str, StrList] | None = None
    when: str | None = Field(
        None,
        description="a CEL expression over the event (variables: " + ", ".join(sorted(CEL_VARIABLES)) + "); "
        "an evaluation error or a non-boolean result counts as no match",
    )

    @field_validator("when")
    @classmethod
    def _cel(cls, v: str | None) -> str | None:
        if v is not None:
            compile_cel(v)
        return v

    @model_validator(mode="before")
    @classmethod
    def _x_dotted(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("x.") for k in data):
            data = dict(data)
            x = dict(data.get("x") or {})
            for k in [k for k in data if isinstance(k, str) and k.startswith("x.")]:
                x[k[2:]] = data.pop(k)
            data["x"] = x
        return data

    @model_validator(mode="after")
    def _label_needs_model(self) -> Match:
        if self.label is not None and self.model is None:
            names = [v for v in (self.label.eq, self.label.ne, *(self.label.in_ or ()), *(self.label.not_in or ()))
                     if isinstance(v, str)]  # fmt: skip
            if names:
                raise ValueError("label names need `model` (labels are resolved per model); use an index otherwise")
        return self

    @property
    def kind_index(self) -> int | None:
        if self.kind is None:
            return None
        return KINDS[self.kind] if isinstance(self.kind, str) else self.kind


# ---------------------------------------------------------------------------------------------------------------
# conditions

Per = Annotated[
    str,
    Field(
        pattern=r"^(device|site|model|global|tag:[A-Za-z0-9_.-]{1,64})$",
        description="group by device, site, model, `tag:<name>` (a device tag), or global (one group)",
    ),
]


class Window(_Strict):
    """Count-in-window: at least `count` matching events within the sliding window `within`."""

    count: Annotated[int, Field(ge=1)]
    within: Duration
    per: Per | None = None


class Absence(_Strict):
    """No event (or no event matching `of`) for `for`. The clock of a group starts at its first event."""

    of: Literal["any_event"] | Match = "any_event"
    for_: Duration = Field(alias="for")
    per: Per | None = None


class Rate(_Strict):
    """Event rate (per minute) over `window` compared with the rate over the `baseline` window before it."""

    window: Duration
    baseline: Duration
    above_baseline_factor: Annotated[float, Field(gt=1)] | None = None
    below_baseline_factor: Annotated[float, Field(ge=0, lt=1)] | None = None
    min_baseline_events: Annotated[int, Field(ge=1)] = 10

    @model_validator(mode="after")
    def _check(self) -> Rate:
        if self.above_baseline_factor is None and self.below_baseline_factor is None:
            raise ValueError("rate needs above_baseline_factor or below_baseline_factor")
        if self.baseline < self.window:
            raise ValueError("rate: the baseline window must not be shorter than the window")
        return self


class Stats(_Strict):
    """A statistic of a field over the matching events of a sliding window compared with a threshold."""

    of: Literal["anom", "score", "lat"] = "anom"
    fn: Literal["mean", "p50", "p90", "p95", "p99", "max", "min"]
    within: Duration
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    min_count: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _one(self) -> Stats:
        n = sum(v is not None for v in (self.gt, self.gte, self.lt, self.lte))
        if n != 1:
            raise ValueError("stats needs exactly one of gt, gte, lt, lte")
        return self


class Condition(_Strict):
    """A condition: the parts given all must hold.

    `match` alone is a threshold on the latest event in scope; with `window`, `stats` or `rate` it selects the
    events they count; `absence.of` defaults to it. `for` requires the rest to hold continuously for that long.
    """

    match: Match | None = None
    window: Window | None = None
    stats: Stats | None = None
    rate: Rate | None = None
    absence: Absence | None = None
    all_: list[Condition] | None = Field(None, alias="all")
    any_: list[Condition] | None = Field(None, alias="any")
    not_: Condition | None = Field(None, alias="not")
    for_: Duration | None = Field(None, alias="for")

    def has_condition(self) -> bool:
        return any(
            v is not None for v in (self.match, self.window, self.stats, self.rate, self.absence, self.all_,
                                    self.any_, self.not_)
        )  # fmt: skip

    @model_validator(mode="after")
    def _nonempty(self) -> Condition:
        if self.all_ is not None and not self.all_:
            raise ValueError("`all` of nothing")
        if self.any_ is not None and not self.any_:
            raise ValueError("`any` of nothing")
        if type(self) is Condition and not self.has_condition():
            raise ValueError("empty condition: give match, window, stats, rate, absence, all, any or not")
        if (
            self.absence is not None
            and self.match is not None
            and self.absence.of != "any_event"
            and not (self.window or self.stats or self.rate)
        ):
            raise ValueError("both `match` and `absence.of`: put the match in `absence.of` only")
        return self


# ---------------------------------------------------------------------------------------------------------------
# actions


Address = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class EmailAction(_Strict):
    to: Annotated[list[Address], BeforeValidator(_str_list, json_schema_input_type=Address | list[Address])] = Field(
        min_length=1
    )
    subject: str | None = None
    template: str | None = None


class WebhookAction(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None


class NoderedAction(_Strict):
    path: Annotated[str, Field(pattern=r"^/[^\s]*$")]


class MqttAction(_Strict):
    topic: Annotated[str, Field(min_length=1, description="may use {device}, {rule}, {group}")]
    payload: str | dict[str, Any]
    qos: Literal[0, 1] = 1


def _wrap(key: str, model: type[BaseModel]) -> Any:
    def f(v: object) -> object:
        return {key: v} if isinstance(v, str) else v

    return BeforeValidator(f, json_schema_input_type=str | model)


class Action(_Strict):
    """One of `email`, `webhook`, `nodered`, `mqtt` (a one-key map)."""

    email: Annotated[EmailAction, _wrap("to", EmailAction)] | None = None
    webhook: Annotated[WebhookAction, _wrap("url", WebhookAction)] | None = None
    nodered: Annotated[NoderedAction, _wrap("path", NoderedAction)] | None = None
    mqtt: MqttAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        n = sum(v is not None for v in (self.email, self.webhook, self.nodered, self.mqtt))
        if n != 1:
            raise ValueError("an action is a map with exactly one of email, webhook, nodered, mqtt")
        return self

    @property
    def type(self) -> str:
        for k in ("email", "webhook", "nodered", "mqtt"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------------------
# rules


class Escalate(_Strict):
    after: Duration
    severity: Severity


class Rule(Condition):
    id: Annotated[str, Field(pattern=_SLUG_RE, description="unique slug")]
    description: str = ""
    enabled: bool = True
    severity: Severity = "warning"
    per: Per | None = Field(None, description="grouping; default device")
    cooldown: Duration | None = None
    resolve: Literal["auto", "manual"] = "auto"
    hysteresis: Annotated[float, Field(ge=0)] | None = None
    clear_after: Duration | None = None
    escalate: Escalate | None = None
    renotify_every: Duration | None = None
    actions: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rule(self) -> Rule:
        if not self.has_condition():
            raise ValueError("a rule needs a condition: match, window, stats, rate, absence, all, any or not")
        if self.escalate is not None and severity_rank(self.escalate.severity) <= severity_rank(self.severity):
            raise ValueError(f"escalate.severity {self.escalate.severity} is not above severity {self.severity}")
        if self.resolve == "manual" and (self.hysteresis is not None or self.clear_after is not None):
            raise ValueError("hysteresis/clear_after only apply to resolve: auto")
        return self


class ModelInfo(_Strict):
    """A model's class labels: a list (index = position) or a map name → index."""

    labels: list[Annotated[str, Field(min_length=1)]] | dict[str, Annotated[int, Field(ge=0, le=65535)]]
    description: str = ""

    @field_validator("labels")
    @classmethod
    def _unique(cls, v: list[str] | dict[str, int]) -> list[str] | dict[str, int]:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("duplicate label names")
        if isinstance(v, dict) and len(set(v.values())) != len(v):
            raise ValueError("two label names share one index")
        return v

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.labels)} if isinstance(self.labels, list) else dict(self.labels)


class RuleFileDoc(_Strict):
    """A rule file as a map: a `models:` section (label names) and/or `rules:`."""

    models: dict[str, ModelInfo] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
