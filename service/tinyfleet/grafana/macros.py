"""Expand a panel's SQL the way Grafana does before its PostgreSQL data source sends it to the database.

Grafana turns a panel query into SQL in two steps, and this module does both, so that the dashboards' SQL can be
run against a real database without a Grafana server (the tests do; so does `tinyfleet dashboards check`):

1. **Template variables** (front end, ``templateSrv.replace`` with the SQL data source's ``interpolateVariable``):
   ``$name``, ``${name}`` and ``[[name]]`` become the variable's value. A single-valued variable is inserted as it
   is, with ``'`` doubled; a multi-valued (or "include All") variable becomes a comma-separated list of quoted
   literals (``'a','b'``), so the SQL writes ``IN ($model)`` for those and ``= '$device'`` for single values.
   The built-ins ``$__interval`` (e.g. ``1m``) and ``$__interval_ms`` are replaced here too.
2. **Macros** (back end, ``pkg/tsdb/grafana-postgresql-datasource/macros.go``): every ``$__name(args)`` with the
   arguments split at commas and trimmed:

   ============================== =========================================================================
   ``$__time(c)``                 ``c AS "time"``
   ``$__timeEpoch(c)``            ``extract(epoch from c) as "time"``
   ``$__timeFilter(c)``           ``c BETWEEN '<from>' AND '<to>'`` (RFC 3339 UTC, Go's ``RFC3339Nano``)
   ``$__timeFrom()``/``To()``     ``'<from>'`` / ``'<to>'``
   ``$__timeGroup(c, 5m)``        TimescaleDB on: ``time_bucket('300.000s',c)``;
                                  off: ``floor(extract(epoch from c)/300)*300``
   ``$__timeGroupAlias(c, 5m)``   the same followed by `` AS "time"``
   ``$__unixEpochFilter(c)``      ``c >= <from s> AND c <= <to s>``
   ``$__unixEpochGroup(c, 5m)``   ``floor((c)/300)*300`` (``…Alias`` adds `` AS "time"``)
   ============================== =========================================================================

   As in Grafana, a ``$__timeGroup(…)`` directly followed by a comma is treated as ``$__timeGroupAlias``, an
   optional third argument of ``$__timeGroup`` is a fill mode that only changes how Grafana fills gaps (not the
   SQL), and an unknown macro is an error.

Intervals are Grafana's (``gtime.ParseInterval``): a number and one of ``ms s m h d w M y`` (``M`` = 30 days,
``y`` = 365 days, as in Grafana). Everything else in the SQL is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "MacroError",
    "TimeRange",
    "Variable",
    "expand",
    "format_interval",
    "interpolate_variables",
    "parse_interval",
]


class MacroError(ValueError):
    """A macro or variable that Grafana would refuse too (unknown macro, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time range, as Grafana hands it to the data source."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("the time range needs time-zone aware datetimes")
        if self.end < self.start:
            raise MacroError("the time range ends before it starts")

    @classmethod
    def last(cls, span: timedelta, *, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - span, end)


_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "M": 30 * 86_400, "y": 365 * 86_400}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")


def parse_interval(text: str) -> timedelta:
    """``'5m'`` → 5 minutes (Grafana's interval syntax; surrounding quotes are ignored as Grafana does)."""
    m = _INTERVAL.match(text.strip().strip("'"))
    if m is None:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=float(m.group(1)) * _UNITS_S[m.group(2)])


def format_interval(interval: timedelta) -> str:
    """The text Grafana puts for ``$__interval``: the largest unit that divides the interval (``1m``, ``30s``)."""
    ms = round(interval.total_seconds() * 1000)
    for unit, seconds in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if ms >= seconds * 1000 and ms % (seconds * 1000) == 0:
            return f"{ms // (seconds * 1000)}{unit}"
    return f"{ms}ms"


def _rfc3339nano(t: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC time: fractional seconds without trailing zeros, ``Z``."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def _go_float(seconds: float) -> str:
    """Go's ``%v`` of a float64 for the whole numbers of seconds used here (``300``, ``0.5``)."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(seconds)


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable's current value(s); `multi` for multi-value or "include All" variables."""

    value: str | Sequence[str]
    multi: bool = False


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_value(var: Variable) -> str:
    if isinstance(var.value, str):
        return _quote(var.value) if var.multi else var.value.replace("'", "''")
    if not var.value:
        raise MacroError("a multi-value variable needs at least one value")
    return ",".join(_quote(v) for v in var.value)


_VAR = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")


def interpolate_variables(
    sql: str, variables: Mapping[str, str | Sequence[str] | Variable], interval: timedelta
) -> str:
    """Step 1: template variables and ``$__interval``/``$__interval_ms``; other ``$__…`` are left for `expand`."""
    values: dict[str, Variable] = {
        name: v if isinstance(v, Variable) else Variable(v, multi=not isinstance(v, str))
        for name, v in variables.items()
    }
    builtins = {"__interval": format_interval(interval), "__interval_ms": str(round(interval.total_seconds() * 1000))}

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in builtins:
            return builtins[name]
        if name.startswith("__"):
            return m.group(0)  # a macro: step 2
        if name not in values:
            raise MacroError(f"template variable ${name} has no value")
        return _sql_value(values[name])

    return _VAR.sub(replace, sql)


_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")


@dataclass(slots=True)
class _Engine:
    time_range: TimeRange
    timescaledb: bool

    def evaluate(self, name: str, args: list[str]) -> str:
        tr = self.time_range
        if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and (not args or not args[0]):
            raise MacroError(f"missing time column argument for macro {name}")
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{_rfc3339nano(tr.start)}' AND '{_rfc3339nano(tr.end)}'"
        if name == "__timeFrom":
            return f"'{_rfc3339nano(tr.start)}'"
        if name == "__timeTo":
            return f"'{_rfc3339nano(tr.end)}'"
        if name in ("__timeGroup", "__unixEpochGroup"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value")
            seconds = parse_interval(args[1]).total_seconds()
            if name == "__unixEpochGroup":
                return f"floor(({args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
            if self.timescaledb:
                return f"time_bucket('{seconds:.3f}s',{args[0]})"
            return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
        if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
            return self.evaluate(name.removesuffix("Alias"), args) + ' AS "time"'
        if name == "__unixEpochFilter":
            start, end = int(tr.start.timestamp()), int(tr.end.timestamp())
            return f"{args[0]} >= {start} AND {args[0]} <= {end}"
        raise MacroError(f"unknown macro {name!r}")


def expand(
    sql: str,
    time_range: TimeRange,
    *,
    variables: Mapping[str, str | Sequence[str] | Variable] | None = None,
    interval: timedelta = timedelta(minutes=1),
    timescaledb: bool = True,
) -> str:
    """The SQL Grafana would send for this panel query (step 1, then step 2 above)."""
    sql = interpolate_variables(sql, variables or {}, interval)
    engine = _Engine(time_range, timescaledb)

    def replace(m: re.Match[str]) -> str:
        name, raw = m.group(1), m.group(2)
        if name == "__timeGroup":
            after = m.end()
            if after < len(m.string) and m.string[after] == ",":
                name = "__timeGroupAlias"  # Grafana's pre-5.3 compatibility rule
        args = [a.strip() for a in raw.split(",")]
        return engine.evaluate(name, args)

    return _MACRO.sub(replace, sql)
