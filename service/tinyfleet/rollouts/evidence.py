"""The measurements behind the gates: what the canaries and the control group did, read from the database.

Canaries: the rollout's devices confirmed on the new version, their events since their confirmation.
Control: the rollout's devices not updated yet (a later wave), on their old version, over the same span, and
only those that reported anything in it (an offline control device says nothing about the old model; a
silent canary does say something about the new one, so canaries count from their confirmation on).

Every query also bounds the device time (`time`, the hypertables' partitioning column, the leading part of
their indexes after the device) to a day before the span, so it reads recent chunks only, not a device's whole
history; an event whose device clock is more than a day behind is left out of the comparison.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.rollouts.gates import GroupSample

#: Rows of anomaly score / latency read per side (the newest): enough for KS and a p95, bounded cost.
SAMPLE_ROWS = 20_000

_CANARY_DEVICES = """
    SELECT device_id, confirmed_at FROM rollout_devices
    WHERE rollout_id = :rollout AND status = 'confirmed' AND confirmed_at IS NOT NULL
"""
_CONTROL_DEVICES = """
    SELECT device_id FROM rollout_devices
    WHERE rollout_id = :rollout AND status = 'pending'
"""

_LABELS = sa.text("""
    SELECT coalesce(e.label::text, e.kind::text) AS label, count(*) AS n
    FROM events e JOIN unnest(CAST(:devices AS text[]), CAST(:since AS timestamptz[])) AS d(device_id, since)
      ON e.device_id = d.device_id
    WHERE e.time >= CAST(:t0 AS timestamptz) - interval '1 day'
      AND e.received_at >= d.since AND e.received_at >= :t0 AND e.model = :model AND e.mver = :mver
    GROUP BY 1
""")
_SAMPLES = sa.text(f"""
    SELECT e.anom, e.lat_us
    FROM events e JOIN unnest(CAST(:devices AS text[]), CAST(:since AS timestamptz[])) AS d(device_id, since)
      ON e.device_id = d.device_id
    WHERE e.time >= CAST(:t0 AS timestamptz) - interval '1 day'
      AND e.received_at >= d.since AND e.received_at >= :t0 AND e.model = :model AND e.mver = :mver
      AND (e.anom IS NOT NULL OR e.lat_us IS NOT NULL)
    ORDER BY e.received_at DESC
    LIMIT {SAMPLE_ROWS}
""")
_ACTIVE = sa.text("""
    SELECT count(DISTINCT e.device_id)
    FROM events e
    WHERE e.device_id = ANY(CAST(:devices AS text[])) AND e.time >= CAST(:t0 AS timestamptz) - interval '1 day'
      AND e.received_at >= :t0 AND e.model = :model
      AND e.mver = :mver
""")
# Telemetry counters count since boot: the growth between consecutive reports, where a drop means a reboot
# (the counter restarted from zero, so the new value is the growth).
_ERRORS = sa.text("""
    SELECT coalesce(sum(CASE WHEN di >= 0 THEN di ELSE ic END), 0),
           coalesce(sum(CASE WHEN dd >= 0 THEN dd ELSE dr END), 0)
    FROM (
      SELECT t.infer_count AS ic, t.dropped AS dr,
             t.infer_count - lag(t.infer_count) OVER w AS di, t.dropped - lag(t.dropped) OVER w AS dd
      FROM telemetry t JOIN unnest(CAST(:devices AS text[]), CAST(:since AS timestamptz[])) AS d(device_id, since)
        ON t.device_id = d.device_id
      WHERE t.time >= CAST(:t0 AS timestamptz) - interval '1 day'
        AND t.received_at >= d.since AND t.received_at >= :t0
        AND t.infer_count IS NOT NULL AND t.dropped IS NOT NULL
      WINDOW w AS (PARTITION BY t.device_id ORDER BY t.time)
    ) deltas
    WHERE di IS NOT NULL
""")


async def _sample(
    session: AsyncSession,
    devices: list[str],
    since: list[datetime],
    t0: datetime,
    model: str,
    mver: int,
) -> GroupSample:
    params: dict[str, Any] = {"devices": devices, "since": since, "t0": t0, "model": model, "mver": mver}
    out = GroupSample()
    if not devices:
        return out
    out.labels = {str(r.label): int(r.n) for r in await session.execute(_LABELS, params)}
    anomaly: list[float] = []
    latency: list[float] = []
    for anom, lat in await session.execute(_SAMPLES, params):
        if anom is not None:
            anomaly.append(float(anom))
        if lat is not None:
            latency.append(float(lat))
    out.anomaly = anomaly
    out.latency_us = latency
    inferences, dropped = (await session.execute(_ERRORS, params)).one()
    out.inferences = int(inferences)
    out.dropped = int(dropped)
    return out


async def canary_and_control(
    session: AsyncSession,
    rollout_id: int,
    *,
    model: str,
    new_version: int,
    old_version: int | None,
    now: datetime,
) -> tuple[GroupSample, GroupSample, dict[str, Any]]:
    """(canary, control, span description). The span starts at the first canary confirmation."""
    canaries = (await session.execute(sa.text(_CANARY_DEVICES), {"rollout": rollout_id})).all()
    if not canaries:
        return GroupSample(), GroupSample(), {"canaries": 0}
    t0 = min(c.confirmed_at for c in canaries)
    canary = await _sample(
        session, [c.device_id for c in canaries], [c.confirmed_at for c in canaries], t0, model, new_version
    )
    canary.devices = len(canaries)
    canary.device_minutes = sum(max(0.0, (now - c.confirmed_at).total_seconds()) for c in canaries) / 60
    control = GroupSample()
    controls = [r.device_id for r in await session.execute(sa.text(_CONTROL_DEVICES), {"rollout": rollout_id})]
    if controls and old_version is not None:
        control = await _sample(session, controls, [t0] * len(controls), t0, model, old_version)
        active = int(
            (
                await session.execute(_ACTIVE, {"devices": controls, "t0": t0, "model": model, "mver": old_version})
            ).scalar_one()
        )
        control.devices = active
        control.device_minutes = active * max(0.0, (now - t0).total_seconds()) / 60
    span = {"from": t0.isoformat(), "to": now.isoformat(), "canaries": len(canaries), "control": len(controls)}
    return canary, control, span
