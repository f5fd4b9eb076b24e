"""The macro expander gives the SQL Grafana's PostgreSQL data source gives (macros.go and its tests), and the
front end's variable interpolation for SQL data sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tinyfleet.grafana.macros import MacroError, TimeRange, Variable, expand, format_interval, parse_interval

FROM = datetime(2018, 4, 12, 18, 0, 0, tzinfo=UTC)
TO = datetime(2018, 4, 12, 18, 5, 0, tzinfo=UTC)
TR = TimeRange(FROM, TO)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select $__timeEpoch(time)", 'select extract(epoch from time) as "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom(), $__timeTo()", "select '2018-04-12T18:00:00Z', '2018-04-12T18:05:00Z'"),
        ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
        ("GROUP BY $__timeGroup(time_column, 5m, NULL)", "GROUP BY time_bucket('300.000s',time_column)"),
        ("select $__timeGroupAlias(time, 1h)", "select time_bucket('3600.000s',time) AS \"time\""),
        # pre-5.3 compatibility: a $__timeGroup followed by a comma gets the alias
        ("select $__timeGroup(time, 1m), v", "select time_bucket('60.000s',time) AS \"time\", v"),
        ("WHERE $__unixEpochFilter(ts)", "WHERE ts >= 1523556000 AND ts <= 1523556300"),
        ("select $__unixEpochGroupAlias(ts, 5m)", 'select floor((ts)/300)*300 AS "time"'),
    ],
)
def test_macros_as_grafana_expands_them(sql, expected):
    assert expand(sql, TR) == expected


def test_time_group_without_timescaledb_and_fractional_times():
    assert expand("$__timeGroup(t, 5m)", TR, timescaledb=False) == "floor(extract(epoch from t)/300)*300"
    tr = TimeRange(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), TO.replace(year=2026))
    assert expand("$__timeFrom()", tr) == "'2026-01-02T03:04:05.12Z'"  # Go's RFC3339Nano drops trailing zeros


def test_variables_single_multi_and_builtins():
    sql = "WHERE d = '$device' AND m IN ($model) AND x = ${device} AND [[device]] <> '' AND b = '$__interval'"
    out = expand(sql, TR, variables={"device": "pump-1", "model": ["vib-cls", "o'brien"]}, interval=timedelta(0, 30))
    assert out == "WHERE d = 'pump-1' AND m IN ('vib-cls','o''brien') AND x = pump-1 AND pump-1 <> '' AND b = '30s'"
    assert expand("$__interval_ms", TR, interval=timedelta(minutes=2)) == "120000"
    # a single value is escaped, not quoted; a multi variable with one value is quoted
    assert expand("'$d'", TR, variables={"d": "it's"}) == "'it''s'"
    assert expand("($m)", TR, variables={"m": Variable("a", multi=True)}) == "('a')"
    # the interval built-in feeds a macro, as Grafana does
    assert expand("$__timeGroupAlias(t, $__interval)", TR, interval=timedelta(minutes=5)).startswith(
        "time_bucket('300.000s',t)"
    )


def test_errors_are_refused_like_grafana():
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__nope(x)", TR)
    with pytest.raises(MacroError, match="needs time column and interval"):
        expand("$__timeGroup(t)", TR)
    with pytest.raises(MacroError, match="error parsing interval"):
        expand("$__timeGroup(t, fortnight)", TR)
    with pytest.raises(MacroError, match="missing time column"):
        expand("$__timeFilter()", TR)
    with pytest.raises(MacroError, match=r"\$device has no value"):
        expand("'$device'", TR)
    with pytest.raises(MacroError):
        TimeRange(TO, FROM)


def test_intervals():
    assert parse_interval("1m") == timedelta(minutes=1)
    assert parse_interval("'500ms'") == timedelta(milliseconds=500)
    assert parse_interval("1M") == timedelta(days=30)
    assert [format_interval(timedelta(seconds=s)) for s in (0.5, 30, 60, 90, 3600, 86400)] == [
        "500ms", "30s", "1m", "90s", "1h", "1d",
    ]  # fmt: skip


def test_expanded_sql_is_valid_postgresql(pg_admin_url):
    """The expanded forms parse and evaluate in PostgreSQL (time_bucket aside: the plain form here)."""
    sql = expand(
        "SELECT $__timeGroupAlias(t, 1m), count(*) FROM (VALUES (TIMESTAMPTZ '2018-04-12T18:01:30Z')) v(t) "
        "WHERE $__timeFilter(t) AND t > $__timeFrom()::timestamptz GROUP BY 1",
        TR,
        timescaledb=False,
    )
    with psycopg.connect(pg_admin_url) as conn:
        assert conn.execute(sql).fetchall() == [(1523556060, 1)]  # type: ignore[arg-type]
