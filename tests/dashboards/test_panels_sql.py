"""Every panel query of every dashboard, expanded as Grafana expands it, runs against the fed TimescaleDB,
returns the columns the panel expects (in order) and at least one row; variable queries too."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.dashboards.conftest import GRAFANA_ROLE, FedDatabase
from tinyfleet.grafana import definitions
from tinyfleet.grafana.macros import TimeRange, expand
from tinyfleet.grafana.push import load_dashboards

DASHBOARDS = {d["uid"]: d for d in load_dashboards()}
DEFINITIONS = {d.uid: d for d in definitions.all_dashboards()}
PANELS = [(uid, p["title"]) for uid, d in DASHBOARDS.items() for p in d["panels"]]


def _variables(fed: FedDatabase) -> dict[str, Any]:
    # Single-valued `device`, multi-valued `model` set to "All" (every value the variable query returns).
    return {"device": fed.device, "model": fed.models}


def _run(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        conn.read_only = True
        conn.execute(f"SET ROLE {GRAFANA_ROLE}")  # what Grafana's data source logs in as
        cur = conn.execute(sql)  # type: ignore[call-overload]
        assert cur.description is not None
        return [c.name for c in cur.description], cur.fetchall()


def _time_range() -> TimeRange:
    return TimeRange.last(timedelta(hours=1), now=None)


def test_every_dashboard_has_panels_and_a_definition():
    assert set(DASHBOARDS) == set(DEFINITIONS) == {
        "tinyfleet-fleet", "tinyfleet-device", "tinyfleet-models", "tinyfleet-alerts", "tinyfleet-ingest",
    }  # fmt: skip
    assert all(len(d["panels"]) >= 5 for d in DASHBOARDS.values())
    assert DASHBOARDS["tinyfleet-device"]["templating"]["list"][0]["name"] == "device"


@pytest.mark.parametrize(("uid", "title"), PANELS, ids=[f"{u}:{t}" for u, t in PANELS])
def test_panel_query_runs_and_returns_its_columns(fed_database: FedDatabase, uid: str, title: str):
    panel = next(p for p in DASHBOARDS[uid]["panels"] if p["title"] == title)
    expected = next(p for p in DEFINITIONS[uid].panels if p.title == title).query.columns
    (target,) = panel["targets"]
    assert target["datasource"] == definitions.DATASOURCE
    assert target["rawQuery"] is True
    sql = expand(target["rawSql"], _time_range(), variables=_variables(fed_database), interval=timedelta(seconds=10))
    assert "$" not in sql, f"unexpanded macro or variable left in {sql}"
    columns, rows = _run(fed_database.url, sql)
    assert tuple(columns) == expected
    assert rows, f"{uid} / {title} returned no rows:\n{sql}"
    if target["format"] == "time_series":
        assert columns[0] == "time"
        assert all(rows[i][0] <= rows[i + 1][0] for i in range(len(rows) - 1)), "time series must be sorted"
        values = [r[i] for r in rows for i, c in enumerate(columns) if c not in ("time", "metric")]
        assert any(v is not None for v in values)
    else:
        assert target["format"] == "table"


def test_stat_panels_count_what_was_fed(fed_database: FedDatabase):
    tr = _time_range()
    panel = next(p for p in DASHBOARDS["tinyfleet-fleet"]["panels"] if p["title"] == "Devices")
    _, rows = _run(fed_database.url, expand(panel["targets"][0]["rawSql"], tr))
    online, degraded, offline = rows[0]
    assert online + degraded + offline == len(fed_database.devices)
    assert offline > 0  # the simulated devices said goodbye (retained offline state)
    panel = next(p for p in DASHBOARDS["tinyfleet-alerts"]["panels"] if p["title"] == "Active alerts by state")
    _, rows = _run(fed_database.url, expand(panel["targets"][0]["rawSql"], tr))
    assert rows[0] == (0, 0, 1, 0)  # the bearing-fault alert is acknowledged; device-silent was resolved
    panel = next(p for p in DASHBOARDS["tinyfleet-device"]["panels"] if p["title"] == "Label distribution")
    sql = expand(panel["targets"][0]["rawSql"], tr, variables=_variables(fed_database))
    labels = {r[1] for r in _run(fed_database.url, sql)[1]}
    assert labels <= {"normal", "imbalance", "misalignment", "bearing_fault"}
    assert "normal" in labels


@pytest.mark.parametrize("uid", ["tinyfleet-device", "tinyfleet-models"])
def test_variable_queries_return_the_fed_values(fed_database: FedDatabase, uid: str):
    for var in DASHBOARDS[uid]["templating"]["list"]:
        assert var["type"] == "query"
        assert var["datasource"] == definitions.DATASOURCE
        columns, rows = _run(fed_database.url, expand(var["query"], _time_range()))
        assert len(columns) == 1
        values = [r[0] for r in rows]
        expected = fed_database.devices if var["name"] == "device" else fed_database.models
        assert values == sorted(expected)


def test_grafana_role_reads_but_cannot_write(fed_database: FedDatabase):
    with psycopg.connect(fed_database.url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {GRAFANA_ROLE}")
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] > 0  # type: ignore[index]
        for sql in ("DELETE FROM events", "UPDATE alerts SET state = 'resolved'", "DROP TABLE dead_letters"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)  # type: ignore[call-overload]


def test_dashboards_check_command_runs_every_panel(fed_database: FedDatabase, tmp_path):
    from typer.testing import CliRunner

    from tinyfleet.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["dashboards", "check", "--database-url", fed_database.url, "--hours", "1"])
    assert ok.exit_code == 0, ok.output
    assert f"{len(PANELS)} ok, 0 failed" in ok.output
    assert "ok    tinyfleet — device / Anomaly score:" in ok.output
    broken = json.loads(json.dumps(DASHBOARDS["tinyfleet-alerts"]))
    broken["panels"][0]["targets"][0]["rawSql"] = "SELECT nope FROM alerts WHERE $__timeFilter(opened_at)"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    bad = runner.invoke(app, ["dashboards", "check", "--database-url", fed_database.url, "--dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert 'FAIL  tinyfleet — alerts / Active alerts by state: column "nope" does not exist' in bad.output
