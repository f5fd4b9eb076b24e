"""The fleet overview in a few aggregate queries (the other pages read the REST API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

#: A device that has sent nothing for this long while marked online counts as degraded.
STALE_AFTER_S = 300
#: The events-per-minute series of the overview covers this many minutes.
RATE_MINUTES = 30
MAX_DEVICES = 1000

_DEVICES = sa.text(
    """
    SELECT d.id, coalesce(d.tags->>'site', '') AS site, d.online, d.model, d.mver, d.firmware, d.last_seen,
           (SELECT count(*) FROM alerts a WHERE a.state <> 'resolved' AND a.group_key = d.id) AS open_alerts,
           d.last_seen < now() - make_interval(secs => :stale) AS stale
    FROM devices d
    WHERE d.decommissioned_at IS NULL
    ORDER BY site, d.id
    LIMIT :limit
    """
)
_RATE = sa.text(
    """
    SELECT date_trunc('minute', received_at) AS minute, count(*) AS n
    FROM events
    WHERE received_at >= date_trunc('minute', now()) - make_interval(mins => :minutes)
    GROUP BY 1 ORDER BY 1
    """
)
_ALERTS = sa.text("SELECT severity, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY severity")
_MODELS = sa.text(
    """
    SELECT model, mver, count(*) AS devices, count(*) FILTER (WHERE online) AS online
    FROM devices WHERE decommissioned_at IS NULL AND model IS NOT NULL
    GROUP BY model, mver ORDER BY model, mver
    """
)


def device_status(online: bool, open_alerts: int, stale: bool | None) -> str:
    """online · degraded (online with an open alert, or silent for STALE_AFTER_S) · offline."""
    if not online:
        return "offline"
    if open_alerts or stale:
        return "degraded"
    return "online"


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


async def overview(session: AsyncSession) -> dict[str, Any]:
    devices = (await session.execute(_DEVICES, {"stale": STALE_AFTER_S, "limit": MAX_DEVICES})).all()
    rate = (await session.execute(_RATE, {"minutes": RATE_MINUTES})).all()
    alerts = {str(sev): int(n) for sev, n in (await session.execute(_ALERTS)).all()}
    models = (await session.execute(_MODELS)).all()
    sites: dict[str, dict[str, int]] = {}
    items = []
    for d in devices:
        status = device_status(bool(d.online), int(d.open_alerts), d.stale)
        counts = sites.setdefault(d.site, {"online": 0, "degraded": 0, "offline": 0})
        counts[status] += 1
        items.append({
            "id": d.id, "site": d.site, "status": status, "model": d.model, "mver": d.mver,
            "firmware": d.firmware, "last_seen": _iso(d.last_seen), "open_alerts": int(d.open_alerts),
        })  # fmt: skip
    series = [{"minute": _iso(m), "events": int(n)} for m, n in rate]
    per_minute = [int(n) for _m, n in rate]
    # The current minute is partial: events/min is the mean of the last five complete minutes.
    complete = per_minute[:-1][-5:] if len(per_minute) > 1 else per_minute
    totals = {"online": 0, "degraded": 0, "offline": 0}
    for per_site in sites.values():
        for k, v in per_site.items():
            totals[k] += v
    return {
        "devices": items,
        "sites": [{"site": s, **c} for s, c in sites.items()],
        "totals": totals,
        "events_per_min": round(sum(complete) / len(complete), 1) if complete else 0.0,
        "rate": series,
        "open_alerts": alerts,
        "open_alerts_total": sum(alerts.values()),
        "models": [
            {"model": m.model, "mver": m.mver, "devices": int(m.devices), "online": int(m.online)} for m in models
        ],
    }
