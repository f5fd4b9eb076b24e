"""Device events: time range, filters, keyset pagination; statistics per bucket; dead letters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import T0, Seeder, minutes
from tests.api.test_devices import _all_pages, _assert_error

LABELS = ["normal", "imbalance", "misalignment", "bearing_fault"]


@pytest.fixture
def events_seeded(seed: Seeder) -> Seeder:
    seed.device("m1")
    seed.device("m2")
    rows = []
    # m1: 30 events one minute apart, newest at T0 - 1 min; labels cycle 0..3, two models; one reboot.
    for i in range(30):
        boot, seq = (1, i) if i < 20 else (2, i - 20)
        model = "vib-cls" if i % 5 else "vib-anom"
        kind = 0 if model == "vib-cls" else 1
        rows.append(("m1", boot, seq, T0 - minutes(30 - i), model, kind, i % 4, 0.5, None if kind == 0 else i / 100))
    # Two events at the same instant (different seq): pagination must keep both.
    rows.append(("m1", 2, 100, T0 - minutes(15), "vib-cls", 0, 1, 0.9, None))
    rows.append(("m2", 1, 0, T0 - minutes(5), "vib-cls", 0, 0, 0.1, None))
    seed.events(rows)
    return seed


async def test_events_newest_first_and_paginated(client: httpx.AsyncClient, events_seeded: Seeder) -> None:
    pages = await _all_pages(client, "/api/v1/devices/m1/events", limit=4)
    items = [e for p in pages for e in p]
    assert len(items) == 31
    keys = [(e["time"], e["boot"], e["seq"]) for e in items]
    assert len(set(keys)) == 31
    assert keys == sorted(keys, reverse=True)
    assert all(e["device_id"] == "m1" for e in items)
    first = items[0]
    assert first["model"] == "vib-cls"
    assert first["kind"] == 0
    assert first["device_time"] is True


async def test_events_time_range_and_filters(client: httpx.AsyncClient, events_seeded: Seeder) -> None:
    url = "/api/v1/devices/m1/events"
    since = (T0 - minutes(10)).isoformat()
    until = (T0 - minutes(5)).isoformat()
    body = (await client.get(url, params={"since": since, "until": until})).json()
    times = [e["time"] for e in body["items"]]
    assert len(times) == 5  # since inclusive, until exclusive: -10..-6
    assert body["next_cursor"] is None

    # naive timestamps are UTC
    naive = (T0 - minutes(10)).replace(tzinfo=None).isoformat()
    assert len((await client.get(url, params={"since": naive, "until": until})).json()["items"]) == 5

    anom = (await client.get(url, params={"model": "vib-anom"})).json()["items"]
    assert len(anom) == 6
    assert all(e["model"] == "vib-anom" and e["kind"] == 1 for e in anom)
    assert len((await client.get(url, params={"kind": 1})).json()["items"]) == 6
    label3 = (await client.get(url, params={"label": 3, "model": "vib-cls"})).json()["items"]
    assert {e["label"] for e in label3} == {3}
    assert len(label3) == 6


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 1001}, "validation_error"),
        ({"since": "yesterday"}, "validation_error"),
        ({"label": -1}, "validation_error"),
        ({"since": T0.isoformat(), "until": (T0 - timedelta(seconds=1)).isoformat()}, "invalid_range"),
        ({"cursor": "WyJlIiwxZTMwLDEsMV0"}, "invalid_cursor"),
        ({"cursor": "WyJlIiwxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCwxLDFd"}, "invalid_cursor"),
    ],
)
async def test_events_bad_params(
    client: httpx.AsyncClient, events_seeded: Seeder, params: dict[str, Any], code: str
) -> None:
    _assert_error(await client.get("/api/v1/devices/m1/events", params=params), 422, code)


async def test_stats_buckets_and_histogram(client: httpx.AsyncClient, seed: Seeder) -> None:
    seed.device("s1")
    seed.device("s2")
    hour = T0.replace(minute=0)
    rows = [
        # hour 0: s1 labels 0,0,3 scores .2 .4 .9; s2 label 1 score .5; an anomaly event (no label, no score)
        ("s1", 1, 0, hour + minutes(1), "vib-cls", 0, 0, 0.2, None),
        ("s1", 1, 1, hour + minutes(2), "vib-cls", 0, 0, 0.4, None),
        ("s1", 1, 2, hour + minutes(59), "vib-cls", 0, 3, 0.9, None),
        ("s2", 1, 0, hour + minutes(30), "vib-cls", 0, 1, 0.5, None),
        ("s1", 1, 3, hour + minutes(10), "vib-anom", 1, None, None, 0.7),
        # hour 1: s1 label 3 score 1.0, anomaly 0.2
        ("s1", 1, 4, hour + minutes(60), "vib-cls", 0, 3, 1.0, None),
        ("s1", 1, 5, hour + minutes(61), "vib-anom", 1, None, None, 0.2),
        # outside the range
        ("s1", 1, 6, hour + minutes(180), "vib-cls", 0, 2, 0.3, None),
    ]
    seed.events(rows)
    params = {"since": hour.isoformat(), "until": (hour + minutes(120)).isoformat(), "bucket": "1h"}
    body = (await client.get("/api/v1/events/stats", params=params)).json()
    assert body["bucket_seconds"] == 3600
    assert body["total"] == 7
    assert body["labels"] == {"0": 2, "1": 1, "3": 2}
    b0, b1 = body["buckets"]
    assert b0["start"].startswith(hour.strftime("%Y-%m-%dT%H:00:00"))
    assert b0["count"] == 5
    assert b0["labels"] == {"0": 2, "1": 1, "3": 1}
    assert b0["avg_score"] == pytest.approx((0.2 + 0.4 + 0.9 + 0.5) / 4, rel=1e-6)
    assert b0["max_anom"] == pytest.approx(0.7, rel=1e-6)
    assert b1["count"] == 2
    assert b1["labels"] == {"3": 1}
    assert b1["avg_score"] == pytest.approx(1.0)
    assert b1["max_anom"] == pytest.approx(0.2, rel=1e-6)

    # finer buckets split hour 0; filters by device and model
    body = (await client.get("/api/v1/events/stats", params={**params, "bucket": "30m"})).json()
    assert [b["count"] for b in body["buckets"]] == [3, 2, 2]
    only_s2 = (await client.get("/api/v1/events/stats", params={**params, "device_id": "s2"})).json()
    assert only_s2["total"] == 1
    assert only_s2["labels"] == {"1": 1}
    anom = (await client.get("/api/v1/events/stats", params={**params, "model": "vib-anom"})).json()
    assert anom["total"] == 2
    assert anom["labels"] == {}
    assert [b["max_anom"] for b in anom["buckets"]] == [pytest.approx(0.7), pytest.approx(0.2)]
    assert [b["avg_score"] for b in anom["buckets"]] == [None, None]


@pytest.mark.parametrize("bucket", ["1.5m", "0m", "m", "1 m", " 1m", "1w", "5M", "01h", "1h30m", "-1h", "1e3s"])
async def test_stats_bucket_is_parsed_strictly(client: httpx.AsyncClient, migrated_db: str, bucket: str) -> None:
    err = _assert_error(await client.get("/api/v1/events/stats", params={"bucket": bucket}), 422, "invalid_bucket")
    assert "1m" in err["message"]


@pytest.mark.parametrize("bucket", ["1s", "30s", "1m", "5m", "15m", "1h", "6h", "1d", "7d"])
async def test_stats_bucket_valid(client: httpx.AsyncClient, migrated_db: str, bucket: str) -> None:
    params = {"bucket": bucket, "since": (T0 - minutes(60)).isoformat(), "until": T0.isoformat()}
    resp = await client.get("/api/v1/events/stats", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.json()["buckets"] == []


async def test_stats_too_many_buckets_and_bad_range(client: httpx.AsyncClient, migrated_db: str) -> None:
    params = {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z", "bucket": "1s"}
    _assert_error(await client.get("/api/v1/events/stats", params=params), 422, "too_many_buckets")
    params = {"since": "2026-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}
    _assert_error(await client.get("/api/v1/events/stats", params=params), 422, "invalid_range")
    _assert_error(await client.get("/api/v1/events/stats", params={"device_id": "a/b"}), 422, "bad_device_id")


async def test_dead_letters(client: httpx.AsyncClient, seed: Seeder) -> None:
    for i in range(7):
        seed.dead_letter(
            topic=f"tf/v1/d{i % 2}/evt",
            device_id=f"d{i % 2}",
            payload=bytes([0xAA, i]),
            code="malformed_cbor" if i % 3 else "unknown_key",
            detail=f"detail {i}",
        )
    seed.dead_letter(topic="tf/v1/a+b/evt", device_id=None, payload=b"", code="bad_topic", detail="bad")
    pages = await _all_pages(client, "/api/v1/dead-letters", limit=3)
    items = [d for p in pages for d in p]
    assert len(items) == 8
    ids = [d["id"] for d in items]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 8
    newest = items[0]
    assert newest["code"] == "bad_topic"
    assert newest["device_id"] is None
    assert newest["payload_hex"] == ""
    oldest = items[-1]
    assert oldest["payload_hex"] == "aa00"
    assert oldest["size"] == 2
    assert oldest["topic"] == "tf/v1/d0/evt"

    unknown = (await client.get("/api/v1/dead-letters", params={"code": "unknown_key"})).json()["items"]
    assert [d["detail"] for d in unknown] == ["detail 6", "detail 3", "detail 0"]
    d1 = (await client.get("/api/v1/dead-letters", params={"device_id": "d1"})).json()["items"]
    assert len(d1) == 3
    assert {d["device_id"] for d in d1} == {"d1"}
    future = (await client.get("/api/v1/dead-letters", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert future == {"items": [], "next_cursor": None}
    _assert_error(await client.get("/api/v1/dead-letters", params={"cursor": "x"}), 422, "invalid_cursor")
    _assert_error(await client.get("/api/v1/dead-letters", params={"code": "a\x00"}), 422, "validation_error")
