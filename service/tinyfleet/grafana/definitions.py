"""The Grafana dashboards of tinyfleet, as code: this module builds the JSON files in `dashboards/json/`.

The JSON files are what Grafana reads (file provisioning) and what `tinyfleet dashboards push` sends; this module
is where they are edited, so that the SQL stays readable and every panel has the same shape. Regenerate with

    python -m tinyfleet.grafana.definitions dashboards/json

(a test checks that the committed files are exactly what this module builds). Every panel query is raw SQL for
Grafana's PostgreSQL data source with TimescaleDB on (``time_bucket``), against the schema of
`tinyfleet.store.models`; `tinyfleet.grafana.macros` expands it the way Grafana does, and the tests run each one
against a real TimescaleDB fed by the real ingest.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASOURCE_UID = "tinyfleet-timescaledb"
DATASOURCE_NAME = "tinyfleet"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
TAGS = ["tinyfleet"]

#: The label name of an event: from the model registry's version (labels are 0-based, arrays 1-based), else the
#: index as text. ``e`` is ``events``, ``mv`` the ``model_versions`` row joined by `LABEL_JOIN`.
LABEL_NAME = "coalesce(mv.labels[e.label + 1], e.label::text)"
LABEL_JOIN = "LEFT JOIN model_versions mv ON mv.model_name = e.model AND mv.version = e.mver"
#: Online but silent for 5 minutes, or with an open or acknowledged alert of a per-device rule.
DEGRADED = (
    "d.online AND (d.last_seen < now() - interval '5 minutes' OR EXISTS "
    "(SELECT 1 FROM alerts a WHERE a.group_key = d.id AND a.state <> 'resolved'))"
)


@dataclass(frozen=True)
class Query:
    sql: str
    fmt: str = "time_series"  # or "table"
    #: The columns the query returns, in order (checked by the tests against the real database).
    columns: tuple[str, ...] = ()


@dataclass
class Panel:
    title: str
    kind: str  # timeseries | table | stat | barchart | piechart
    query: Query
    w: int = 12
    h: int = 8
    description: str = ""
    unit: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[tuple[float | None, str]] | None = None


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    variables: list[dict[str, Any]] = field(default_factory=list)
    time_from: str = "now-6h"
    refresh: str = "30s"


def _link_to_device(field_name: str) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Open device ${__value.raw}",
                        "url": "/d/tinyfleet-device/tinyfleet-device?var-device=${__value.raw}&${__url_time_range}",
                    }
                ],
            }
        ],
    }


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if panel.unit:
        defaults["unit"] = panel.unit
    if panel.custom:
        defaults["custom"] = panel.custom
    if panel.thresholds is not None:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.thresholds],
        }
    options = dict(panel.options)
    if panel.kind in ("timeseries", "barchart"):
        options.setdefault("legend", {"displayMode": "list", "placement": "bottom", "showLegend": True})
        options.setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    if panel.kind == "stat":
        options.setdefault("reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False})
        options.setdefault("colorMode", "value")
        options.setdefault("graphMode", "none")
        options.setdefault("textMode", "value_and_name")
    if panel.kind == "table":
        options.setdefault("showHeader", True)
        options.setdefault("cellHeight", "sm")
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.h, "w": panel.w, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "options": options,
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorMode": "code",
                "format": panel.query.fmt,
                "rawQuery": True,
                "rawSql": panel.query.sql.strip(),
            }
        ],
    }
    if panel.description:
        out["description"] = panel.description
    return out


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard JSON model (schemaVersion 39) of `d`, panels laid out left to right, 24 wide."""
    panels: list[dict[str, Any]] = []
    x = y = row_h = 0
    for i, p in enumerate(d.panels, start=1):
        if x + p.w > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel_json(p, i, x, y))
        x += p.w
        row_h = max(row_h, p.h)
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": d.refresh,
        "time": {"from": d.time_from, "to": "now"},
        "timezone": "browser",
        "links": [
            {
                "title": "tinyfleet",
                "type": "dashboards",
                "tags": TAGS,
                "asDropdown": True,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "tooltip": "",
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": d.variables},
        "panels": panels,
    }


def _query_variable(name: str, label: str, sql: str, *, multi: bool = False, refresh: int = 1) -> dict[str, Any]:
    var: dict[str, Any] = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": sql,
        "refresh": refresh,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "options": [],
    }
    if multi:
        var["current"] = {"text": ["All"], "value": ["$__all"]}
    return var


# -------------------------------------------------------------------------------------------------- dashboards
def fleet_overview() -> Dashboard:
    return Dashboard(
        uid="tinyfleet-fleet",
        title="tinyfleet — fleet overview",
        description="Devices online/offline/degraded by site, events per minute, open alerts, models in use.",
        panels=[
            Panel(
                "Devices",
                "stat",
                Query(
                    f"""
SELECT count(*) FILTER (WHERE d.online AND NOT ({DEGRADED})) AS "online",
       count(*) FILTER (WHERE {DEGRADED}) AS "degraded",
       count(*) FILTER (WHERE NOT d.online) AS "offline"
FROM devices d
WHERE d.decommissioned_at IS NULL
""",
                    "table",
                    ("online", "degraded", "offline"),
                ),
                w=8,
                h=5,
                description="Degraded: online, but silent for 5 minutes or with an unresolved per-device alert.",
            ),
            Panel(
                "Active alerts",
                "stat",
                Query(
                    """
SELECT count(*) FILTER (WHERE state = 'open') AS "open",
       count(*) FILTER (WHERE state = 'acknowledged') AS "acknowledged"
FROM alerts
WHERE state <> 'resolved'
""",
                    "table",
                    ("open", "acknowledged"),
                ),
                w=8,
                h=5,
                thresholds=[(None, "green"), (1, "red")],
            ),
            Panel(
                "Events in range",
                "stat",
                Query(
                    """
SELECT count(*) AS "events", count(DISTINCT device_id) AS "reporting devices"
FROM events
WHERE $__timeFilter(time)
""",
                    "table",
                    ("events", "reporting devices"),
                ),
                w=8,
                h=5,
            ),
            Panel(
                "Events per minute",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(time, 1m), count(*) AS "events/min"
FROM events
WHERE $__timeFilter(time)
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "events/min"),
                ),
                w=24,
                unit="short",
                custom={"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1},
            ),
            Panel(
                "Devices by site",
                "table",
                Query(
                    f"""
SELECT coalesce(d.tags->>'site', '(no site)') AS "site",
       count(*) AS "devices",
       count(*) FILTER (WHERE d.online AND NOT ({DEGRADED})) AS "online",
       count(*) FILTER (WHERE {DEGRADED}) AS "degraded",
       count(*) FILTER (WHERE NOT d.online) AS "offline"
FROM devices d
WHERE d.decommissioned_at IS NULL
GROUP BY 1
ORDER BY 1
""",
                    "table",
                    ("site", "devices", "online", "degraded", "offline"),
                ),
            ),
            Panel(
                "Models in use",
                "table",
                Query(
                    """
SELECT model AS "model", mver AS "version", count(*) AS "devices"
FROM devices
WHERE decommissioned_at IS NULL AND model IS NOT NULL
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2
""",
                    "table",
                    ("model", "version", "devices"),
                ),
                description="What each device's last birth state reported.",
            ),
            Panel(
                "Devices",
                "table",
                Query(
                    f"""
SELECT d.id AS "device",
       d.tags->>'site' AS "site",
       CASE WHEN NOT d.online THEN 'offline' WHEN {DEGRADED} THEN 'degraded' ELSE 'online' END AS "status",
       d.model AS "model", d.mver AS "version", d.firmware AS "firmware", d.last_seen AS "last seen"
FROM devices d
WHERE d.decommissioned_at IS NULL
ORDER BY 3 DESC, 1
LIMIT 500
""",
                    "table",
                    ("device", "site", "status", "model", "version", "firmware", "last seen"),
                ),
                w=24,
                h=10,
                overrides=[_link_to_device("device")],
            ),
        ],
    )


def device_drilldown() -> Dashboard:
    return Dashboard(
        uid="tinyfleet-device",
        title="tinyfleet — device",
        description="One device: state, anomaly score, label distribution, latency, telemetry, OTA and alerts.",
        time_from="now-3h",
        variables=[
            _query_variable("device", "Device", "SELECT id FROM devices WHERE decommissioned_at IS NULL ORDER BY id")
        ],
        panels=[
            Panel(
                "State",
                "table",
                Query(
                    """
SELECT id AS "device", CASE WHEN online THEN 'online' ELSE 'offline' END AS "status",
       model AS "model", mver AS "version", firmware AS "firmware", last_boot AS "boot",
       last_seen AS "last seen", tags::text AS "tags"
FROM devices
WHERE id = '$device'
""",
                    "table",
                    ("device", "status", "model", "version", "firmware", "boot", "last seen", "tags"),
                ),
                w=24,
                h=4,
            ),
            Panel(
                "Anomaly score",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(time, $__interval), max(anom) AS "anomaly score (max)"
FROM events
WHERE device_id = '$device' AND anom IS NOT NULL AND $__timeFilter(time)
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "anomaly score (max)"),
                ),
                description="Maximum anomaly score per interval; the red line is the alert threshold of the "
                "anomaly rules (0.5 in rules/anomaly.yml — edit the threshold here if yours differs).",
                custom={"thresholdsStyle": {"mode": "line"}, "lineWidth": 1},
                thresholds=[(None, "green"), (0.5, "red")],
            ),
            Panel(
                "Label distribution",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(e.time, $__interval), {LABEL_NAME} AS "metric", count(*) AS "events"
FROM events e
{LABEL_JOIN}
WHERE e.device_id = '$device' AND e.kind = 0 AND e.label IS NOT NULL AND $__timeFilter(e.time)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "events"),
                ),
                description="Classifications per label (names from the model registry when the version is "
                "registered, else the label index).",
                custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
            ),
            Panel(
                "Inference latency",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(time, $__interval),
       avg(lat_us) / 1000.0 AS "mean",
       percentile_cont(0.95) WITHIN GROUP (ORDER BY lat_us) / 1000.0 AS "p95"
FROM events
WHERE device_id = '$device' AND lat_us IS NOT NULL AND $__timeFilter(time)
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "mean", "p95"),
                ),
                unit="ms",
            ),
            Panel(
                "Battery and signal",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(time, $__interval), avg(battery_pct) AS "battery %", avg(rssi_dbm) AS "RSSI dBm"
FROM telemetry
WHERE device_id = '$device' AND $__timeFilter(time)
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "battery %", "RSSI dBm"),
                ),
            ),
            Panel(
                "Memory and dropped events",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(time, $__interval),
       min(heap_free) AS "heap free", min(arena_free) AS "arena free", max(dropped) AS "dropped since boot"
FROM telemetry
WHERE device_id = '$device' AND $__timeFilter(time)
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "heap free", "arena free", "dropped since boot"),
                ),
                unit="short",
            ),
            Panel(
                "Recent events",
                "table",
                Query(
                    f"""
SELECT e.time AS "time", e.model AS "model", e.mver AS "version",
       CASE e.kind WHEN 0 THEN 'classification' WHEN 1 THEN 'anomaly' WHEN 2 THEN 'regression'
                   WHEN 3 THEN 'detection' ELSE e.kind::text END AS "kind",
       {LABEL_NAME} AS "label", e.score AS "score", e.anom AS "anomaly", e.lat_us / 1000.0 AS "latency ms"
FROM events e
{LABEL_JOIN}
WHERE e.device_id = '$device' AND $__timeFilter(e.time)
ORDER BY e.time DESC
LIMIT 100
""",
                    "table",
                    ("time", "model", "version", "kind", "label", "score", "anomaly", "latency ms"),
                ),
                w=24,
                h=9,
            ),
            Panel(
                "Model versions seen",
                "table",
                Query(
                    """
SELECT model AS "model", mver AS "version", min(time) AS "first event", max(time) AS "last event",
       count(*) AS "events"
FROM events
WHERE device_id = '$device' AND $__timeFilter(time)
GROUP BY 1, 2
ORDER BY 3
""",
                    "table",
                    ("model", "version", "first event", "last event", "events"),
                ),
            ),
            Panel(
                "OTA history",
                "table",
                Query(
                    """
SELECT received_at AS "time", state AS "state", model AS "model", mver AS "version", seq AS "manifest seq",
       reason AS "reason", message AS "message"
FROM ota_reports
WHERE device_id = '$device' AND $__timeFilter(received_at)
ORDER BY received_at DESC
LIMIT 100
""",
                    "table",
                    ("time", "state", "model", "version", "manifest seq", "reason", "message"),
                ),
                description="Every ota/status report of the device (downloading, verified, applied, failed…).",
            ),
            Panel(
                "Alerts",
                "table",
                Query(
                    """
SELECT id AS "alert", rule_id AS "rule", state AS "state", severity AS "severity", opened_at AS "opened",
       acknowledged_at AS "acknowledged", resolved_at AS "resolved"
FROM alerts
WHERE group_key = '$device'
ORDER BY opened_at DESC
LIMIT 50
""",
                    "table",
                    ("alert", "rule", "state", "severity", "opened", "acknowledged", "resolved"),
                ),
                w=24,
                description="Alerts of per-device rules for this device (their group is the device id).",
            ),
        ],
    )


def model_performance() -> Dashboard:
    version = "e.model || ' v' || e.mver"
    return Dashboard(
        uid="tinyfleet-models",
        title="tinyfleet — model performance",
        description="Per model version: label distribution, anomaly score, latency, confidence, event rate.",
        variables=[
            _query_variable(
                "model",
                "Model",
                "SELECT DISTINCT model FROM events WHERE $__timeFilter(time) ORDER BY 1",
                multi=True,
                refresh=2,
            )
        ],
        panels=[
            Panel(
                "Versions",
                "table",
                Query(
                    """
SELECT model AS "model", mver AS "version", count(DISTINCT device_id) AS "devices", count(*) AS "events",
       avg(score) AS "mean score", avg(anom) AS "mean anomaly",
       percentile_cont(0.95) WITHIN GROUP (ORDER BY lat_us) / 1000.0 AS "p95 latency ms"
FROM events
WHERE model IN ($model) AND $__timeFilter(time)
GROUP BY 1, 2
ORDER BY 1, 2
""",
                    "table",
                    ("model", "version", "devices", "events", "mean score", "mean anomaly", "p95 latency ms"),
                ),
                w=24,
                h=6,
            ),
            Panel(
                "Label distribution per version",
                "table",
                Query(
                    f"""
SELECT {version} AS "version", {LABEL_NAME} AS "label", count(*) AS "events",
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY e.model, e.mver), 2) AS "percent"
FROM events e
{LABEL_JOIN}
WHERE e.model IN ($model) AND e.kind = 0 AND e.label IS NOT NULL AND $__timeFilter(e.time)
GROUP BY e.model, e.mver, 2
ORDER BY 1, 2
""",
                    "table",
                    ("version", "label", "events", "percent"),
                ),
                description="A new version whose distribution moves away from the old one's is what the rollout "
                "gates (label PSI) catch.",
            ),
            Panel(
                "Anomaly score by version",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(e.time, $__interval), {version} AS "metric", avg(e.anom) AS "mean anomaly"
FROM events e
WHERE e.model IN ($model) AND e.anom IS NOT NULL AND $__timeFilter(e.time)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "mean anomaly"),
                ),
            ),
            Panel(
                "Latency p95 by version",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(e.time, $__interval), {version} AS "metric",
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e.lat_us) / 1000.0 AS "p95 ms"
FROM events e
WHERE e.model IN ($model) AND e.lat_us IS NOT NULL AND $__timeFilter(e.time)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "p95 ms"),
                ),
                unit="ms",
            ),
            Panel(
                "Mean confidence by version",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(e.time, $__interval), {version} AS "metric", avg(e.score) AS "mean score"
FROM events e
WHERE e.model IN ($model) AND e.kind = 0 AND e.score IS NOT NULL AND $__timeFilter(e.time)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "mean score"),
                ),
                unit="percentunit",
            ),
            Panel(
                "Events per minute by version",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(e.time, 1m), {version} AS "metric", count(*) AS "events/min"
FROM events e
WHERE e.model IN ($model) AND $__timeFilter(e.time)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "events/min"),
                ),
            ),
        ],
    )


def alerts() -> Dashboard:
    return Dashboard(
        uid="tinyfleet-alerts",
        title="tinyfleet — alerts",
        description="Active alerts, their history, how fast they are handled, and what became of their actions.",
        time_from="now-24h",
        panels=[
            Panel(
                "Active alerts by state",
                "stat",
                Query(
                    """
SELECT count(*) FILTER (WHERE state = 'open') AS "open",
       count(*) FILTER (WHERE state = 'open' AND severity IN ('major', 'critical')) AS "open major/critical",
       count(*) FILTER (WHERE state = 'acknowledged') AS "acknowledged",
       count(*) FILTER (WHERE escalated) AS "escalated"
FROM alerts
WHERE state <> 'resolved'
""",
                    "table",
                    ("open", "open major/critical", "acknowledged", "escalated"),
                ),
                w=24,
                h=5,
                thresholds=[(None, "green"), (1, "orange")],
            ),
            Panel(
                "Active alerts",
                "table",
                Query(
                    """
SELECT id AS "alert", rule_id AS "rule", group_key AS "group", state AS "state", severity AS "severity",
       opened_at AS "opened", acknowledged_at AS "acknowledged", acknowledged_by AS "by", escalated AS "escalated"
FROM alerts
WHERE state <> 'resolved'
ORDER BY opened_at DESC
LIMIT 200
""",
                    "table",
                    ("alert", "rule", "group", "state", "severity", "opened", "acknowledged", "by", "escalated"),
                ),
                w=24,
                overrides=[_link_to_device("group")],
            ),
            Panel(
                "Alerts opened per hour",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(opened_at, 1h), severity AS "metric", count(*) AS "alerts"
FROM alerts
WHERE $__timeFilter(opened_at)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "alerts"),
                ),
                custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
            ),
            Panel(
                "Time to acknowledge and resolve",
                "table",
                Query(
                    """
SELECT rule_id AS "rule", count(*) AS "alerts",
       avg(extract(epoch FROM acknowledged_at - opened_at)) AS "mean s to acknowledge",
       avg(extract(epoch FROM resolved_at - opened_at)) AS "mean s to resolve"
FROM alerts
WHERE $__timeFilter(opened_at)
GROUP BY 1
ORDER BY 2 DESC
""",
                    "table",
                    ("rule", "alerts", "mean s to acknowledge", "mean s to resolve"),
                ),
            ),
            Panel(
                "History",
                "table",
                Query(
                    """
SELECT ae.at AS "time", a.id AS "alert", a.rule_id AS "rule", a.group_key AS "group",
       ae.kind AS "transition", ae.detail::text AS "detail"
FROM alert_events ae
JOIN alerts a ON a.id = ae.alert_id
WHERE $__timeFilter(ae.at)
ORDER BY ae.at DESC
LIMIT 500
""",
                    "table",
                    ("time", "alert", "rule", "group", "transition", "detail"),
                ),
                w=24,
                h=9,
            ),
            Panel(
                "Action deliveries",
                "table",
                Query(
                    """
SELECT kind AS "action", state AS "state", count(*) AS "deliveries", max(attempts) AS "max attempts",
       max(delivered_at) AS "last delivered", max(last_error) AS "an error"
FROM outbox
WHERE $__timeFilter(created_at)
GROUP BY 1, 2
ORDER BY 1, 2
""",
                    "table",
                    ("action", "state", "deliveries", "max attempts", "last delivered", "an error"),
                ),
                w=24,
                description="The outbox: pending rows are being retried with backoff; dead ones ran out of "
                "attempts (TINYFLEET_ACTIONS_MAX_ATTEMPTS).",
            ),
        ],
    )


def ingest_health() -> Dashboard:
    # Events are filtered by receive time; the bound on `time` (device time, the hypertable's partitioning column)
    # lets TimescaleDB skip old chunks, allowing device clocks up to a day behind.
    recent = "time > $__timeFrom()::timestamptz - interval '1 day'"
    return Dashboard(
        uid="tinyfleet-ingest",
        title="tinyfleet — ingest health",
        description="What the ingest stores per minute, how late, what it refuses (dead letters) and telemetry.",
        time_from="now-3h",
        refresh="1m",
        panels=[
            Panel(
                "Events stored per minute",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(received_at, 1m), count(*) AS "events/min"
FROM events
WHERE $__timeFilter(received_at) AND {recent}
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "events/min"),
                ),
                description="By the time the service received them (not the devices' clocks).",
            ),
            Panel(
                "Device time to stored",
                "timeseries",
                Query(
                    f"""
SELECT $__timeGroupAlias(received_at, $__interval),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - time)) * 1000 AS "p50",
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - time)) * 1000 AS "p99"
FROM events
WHERE device_time AND $__timeFilter(received_at) AND {recent}
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "p50", "p99"),
                ),
                unit="ms",
                description="received_at − device timestamp: network, broker queue, batching — and clock skew "
                "(store-and-forward replays after an outage show up as large values).",
            ),
            Panel(
                "Dead letters by reason",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(received_at, $__interval), code AS "metric", count(*) AS "dead letters"
FROM dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1
""",
                    columns=("time", "metric", "dead letters"),
                ),
                custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
            ),
            Panel(
                "Dead letters: reasons",
                "table",
                Query(
                    """
SELECT code AS "reason", count(*) AS "messages", count(DISTINCT device_id) AS "devices",
       max(received_at) AS "last", min(detail) AS "example"
FROM dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1
ORDER BY 2 DESC
""",
                    "table",
                    ("reason", "messages", "devices", "last", "example"),
                ),
            ),
            Panel(
                "Recent dead letters",
                "table",
                Query(
                    """
SELECT received_at AS "time", topic AS "topic", device_id AS "device", code AS "reason", detail AS "detail",
       event_index AS "event of batch", octet_length(payload) AS "bytes"
FROM dead_letters
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC
LIMIT 200
""",
                    "table",
                    ("time", "topic", "device", "reason", "detail", "event of batch", "bytes"),
                ),
                w=24,
                description="The raw bytes are kept: GET /api/v1/dead-letters returns them.",
            ),
            Panel(
                "Telemetry per minute",
                "timeseries",
                Query(
                    """
SELECT $__timeGroupAlias(received_at, 1m), count(*) AS "messages/min", count(DISTINCT device_id) AS "devices"
FROM telemetry
WHERE $__timeFilter(received_at) AND time > $__timeFrom()::timestamptz - interval '1 day'
GROUP BY 1
ORDER BY 1
""",
                    columns=("time", "messages/min", "devices"),
                ),
            ),
            Panel(
                "Device health",
                "stat",
                Query(
                    """
SELECT count(*) FILTER (WHERE online AND last_seen < now() - interval '5 minutes') AS "online but silent 5 min",
       count(*) FILTER (WHERE NOT online) AS "offline",
       (SELECT coalesce(sum(t.dropped), 0) FROM (
            SELECT DISTINCT ON (device_id) dropped FROM telemetry
            WHERE $__timeFilter(time) ORDER BY device_id, time DESC) t) AS "dropped on devices (last report)"
FROM devices
WHERE decommissioned_at IS NULL
""",
                    "table",
                    ("online but silent 5 min", "offline", "dropped on devices (last report)"),
                ),
            ),
        ],
    )


def all_dashboards() -> list[Dashboard]:
    return [fleet_overview(), device_drilldown(), model_performance(), alerts(), ingest_health()]


FILE_NAMES = {
    "tinyfleet-fleet": "fleet-overview.json",
    "tinyfleet-device": "device.json",
    "tinyfleet-models": "model-performance.json",
    "tinyfleet-alerts": "alerts.json",
    "tinyfleet-ingest": "ingest-health.json",
}


def render(d: Dashboard) -> str:
    return json.dumps(dashboard_json(d), indent=2, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for d in all_dashboards():
        path = directory / FILE_NAMES[d.uid]
        path.write_text(render(d), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - developer tool
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "dashboards/json")):
        print(p)
