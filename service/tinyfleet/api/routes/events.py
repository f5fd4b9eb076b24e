"""Event statistics across the fleet (or one device / one model)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from tinyfleet.api.auth import ReadScope
from tinyfleet.api.deps import SessionDep
from tinyfleet.api.errors import InvalidParameterError
from tinyfleet.api.params import (
    BUCKET_PATTERN,
    DEFAULT_STATS_RANGE,
    DeviceFilter,
    ModelFilter,
    Since,
    Until,
    as_utc,
    check_device_id,
    check_range,
    parse_bucket,
)
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import StatsBucketPublic, StatsPublic
from tinyfleet.store import queries

router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["events"])


@router.get("/stats", summary="Event counts, label histogram, mean score and max anomaly per time bucket")
async def event_stats(
    session: SessionDep,
    _principal: ReadScope,
    since: Since = None,
    until: Until = None,
    bucket: Annotated[
        str,
        Query(
            max_length=16,
            description="Bucket width: a whole number and s, m, h or d",
            examples=["5m"],
            json_schema_extra={"pattern": BUCKET_PATTERN},
        ),
    ] = "1h",
    device_id: DeviceFilter = None,
    model: ModelFilter = None,
) -> StatsPublic:
    width = parse_bucket(bucket)
    until = as_utc(until) or datetime.now(UTC)
    since = as_utc(since)
    if since is None:
        try:
            since = until - DEFAULT_STATS_RANGE
        except OverflowError:
            raise InvalidParameterError("until is too early to default since", code="invalid_range") from None
    check_range(since, until)
    check_device_id(device_id)
    try:
        buckets = await queries.event_stats(
            session, since=since, until=until, bucket=width, device_id=device_id, model=model
        )
    except ValueError as exc:
        raise InvalidParameterError(str(exc), code="too_many_buckets") from None
    histogram: dict[str, int] = {}
    out: list[StatsBucketPublic] = []
    for b in buckets:
        labels = {str(label): n for label, n in sorted(b.labels.items())}
        for label, n in labels.items():
            histogram[label] = histogram.get(label, 0) + n
        out.append(
            StatsBucketPublic(
                start=b.bucket_start, count=b.count, avg_score=b.avg_score, max_anom=b.max_anom, labels=labels
            )
        )
    return StatsPublic(
        since=since,
        until=until,
        bucket=bucket,
        bucket_seconds=int(width.total_seconds()),
        total=sum(b.count for b in buckets),
        labels=dict(sorted(histogram.items(), key=lambda kv: int(kv[0]))),
        buckets=out,
    )
