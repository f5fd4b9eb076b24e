"""`tinyfleet dashboards check`: run every panel query of the dashboards against a database, as Grafana would.

Each dashboard's query variables are resolved first (their own SQL; a multi-value variable takes all its values,
like "All"; a single one its first value), then every panel's SQL is expanded by `tinyfleet.grafana.macros` and
run in a read-only transaction. The report says, per panel, how many rows and which columns came back, or the
database's error — e.g. after a schema migration, before the dashboards break in front of people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from tinyfleet.grafana.macros import MacroError, TimeRange, Variable, expand


@dataclass(frozen=True)
class PanelResult:
    dashboard: str
    panel: str
    rows: int | None
    columns: tuple[str, ...]
    error: str | None

    def line(self) -> str:
        where = f"{self.dashboard} / {self.panel}"
        if self.error is not None:
            return f"FAIL  {where}: {self.error}"
        return f"ok    {where}: {self.rows} row(s) [{', '.join(self.columns)}]"


def _query(conn: psycopg.Connection[Any], sql: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    with conn.transaction():
        cur = conn.execute(sql.encode())
        columns = tuple(c.name for c in cur.description or ())
        return columns, cur.fetchall()


def _variables(
    conn: psycopg.Connection[Any], doc: dict[str, Any], tr: TimeRange, interval: timedelta
) -> tuple[dict[str, Variable], list[str]]:
    values: dict[str, Variable] = {}
    problems: list[str] = []
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        name = str(var["name"])
        try:
            sql = var["query"] if isinstance(var["query"], str) else str(var["query"].get("rawSql", ""))
            _, rows = _query(conn, expand(sql, tr, variables=values, interval=interval))
        except (MacroError, psycopg.Error) as exc:
            problems.append(f"variable ${name}: {exc}")
            continue
        found = [str(r[0]) for r in rows if r and r[0] is not None]
        if not found:
            problems.append(f"variable ${name} has no values")
            continue
        multi = bool(var.get("multi") or var.get("includeAll"))
        values[name] = Variable(found if multi else found[0], multi=multi)
    return values, problems


def check_dashboards(
    database_url: str,
    dashboards: list[dict[str, Any]],
    *,
    span: timedelta = timedelta(hours=6),
    interval: timedelta = timedelta(minutes=1),
) -> list[PanelResult]:
    """Run every panel's first query; one `PanelResult` per panel (and per unresolvable variable)."""
    tr = TimeRange.last(span)
    results: list[PanelResult] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.read_only = True
        for doc in dashboards:
            title = str(doc.get("title", doc.get("uid")))
            variables, problems = _variables(conn, doc, tr, interval)
            results += [PanelResult(title, "(variables)", None, (), p) for p in problems]
            for panel in doc.get("panels", []):
                for target in panel.get("targets", [])[:1]:
                    name = str(panel.get("title", panel.get("id")))
                    try:
                        sql = expand(str(target["rawSql"]), tr, variables=variables, interval=interval)
                        columns, rows = _query(conn, sql)
                    except (MacroError, psycopg.Error, KeyError) as exc:
                        results.append(PanelResult(title, name, None, (), str(exc).strip().splitlines()[0]))
                        continue
                    results.append(PanelResult(title, name, len(rows), columns, None))
    return results
