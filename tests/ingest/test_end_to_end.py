"""Events from real MQTT clients land in the real database exactly once; bad payloads become dead letters."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingest.conftest import Publisher, make_settings, rows, scalar, wait_until
from tinyfleet.wire import (
    Caps,
    DeviceState,
    Event,
    OtaState,
    OtaStatus,
    Telemetry,
    encode_event,
    encode_events,
    encode_ota_status,
    encode_state,
    encode_telemetry,
)

NOW_MS = int(time.time() * 1000)


def event(seq: int, *, boot: int = 1, ts: int | None = NOW_MS, label: int = 1, **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "v": 1,
        "ts": ts,
        "seq": seq,
        "boot": boot,
        "model": "vib-cls",
        "mver": 4,
        "kind": 0,
        "label": label,
        "score": 0.75,
        "lat": 2500,
    }
    fields.update(kw)
    return Event(**fields)


def count_events(url: str, device: str | None = None) -> int:
    if device is None:
        return int(scalar(url, "select count(*) from events"))
    return int(scalar(url, "select count(*) from events where device_id = %s", device))


def assert_no_duplicates(url: str) -> None:
    dupes = rows(url, "select device_id, boot, seq, count(*) from events group by 1,2,3 having count(*) > 1")
    assert dupes == [], f"duplicated events: {dupes[:5]}"


def test_paho_events_single_and_batched_are_stored_once(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix))
    for seq in range(50):
        publisher.publish(f"{prefix}/pump-1/evt", encode_event(event(seq)))
    publisher.publish(f"{prefix}/pump-2/evt", encode_events([event(s, label=s % 3) for s in range(10)]))
    publisher.publish(f"{prefix}/pump-3/evt", encode_event(event(0), fmt="json"))
    publisher.flush()
    assert wait_until(lambda: count_events(migrated_db) == 61), count_events(migrated_db)
    assert count_events(migrated_db, "pump-1") == 50
    assert count_events(migrated_db, "pump-2") == 10
    stored = rows(
        migrated_db,
        "select model, mver, kind, label, score, lat_us, device_time, extract(epoch from time)*1000 "
        "from events where device_id='pump-3'",
    )
    model, mver, kind, label, score, lat, device_time, time_ms = stored[0]
    assert (model, mver, kind, label, lat, device_time) == ("vib-cls", 4, 0, 1, 2500, True)
    assert math.isclose(score, 0.75, rel_tol=1e-6)
    assert int(time_ms) == NOW_MS
    devices = {r[0] for r in rows(migrated_db, "select id from devices where last_seen is not null")}
    assert devices == {"pump-1", "pump-2", "pump-3"}
    assert_no_duplicates(migrated_db)


def test_mosquitto_pub_command_line_client_json_and_cbor(migrated_db, prefix, start_ingest, tmp_path: Path):
    start_ingest(make_settings(migrated_db, prefix))
    cbor_file = tmp_path / "event.cbor"
    cbor_file.write_bytes(encode_event(event(7, boot=9)))
    json_payload = json.dumps(
        {"v": 1, "ts": NOW_MS, "seq": 8, "boot": 9, "model": "kws", "kind": 0, "label": 2, "score": 0.5}
    )
    base = ["mosquitto_pub", "-h", MQTT_HOST, "-p", str(MQTT_PORT), "-q", "1", "-t", f"{prefix}/cli-dev/evt"]
    subprocess.run([*base, "-f", str(cbor_file)], check=True, timeout=10)
    subprocess.run([*base, "-m", json_payload], check=True, timeout=10)
    subprocess.run([*base, "-V", "mqttv311", "-m", json_payload], check=True, timeout=10)  # same event again
    assert wait_until(lambda: count_events(migrated_db, "cli-dev") == 2)
    time.sleep(0.3)
    assert count_events(migrated_db, "cli-dev") == 2
    assert sorted(r[0] for r in rows(migrated_db, "select model from events")) == ["kws", "vib-cls"]


def test_resent_events_after_reboot_and_redelivery_do_not_duplicate(migrated_db, prefix, start_ingest, publisher):
    svc = start_ingest(make_settings(migrated_db, prefix))
    topic = f"{prefix}/dev-r/evt"
    batch = [event(s, boot=5) for s in range(20)]
    publisher.publish(topic, encode_events(batch))
    # the device lost the ack and sends the same events again, one by one and as a batch
    for ev in batch:
        publisher.publish(topic, encode_event(ev))
    publisher.publish(topic, encode_events(batch))
    # after a reboot (boot 6) seq restarts at 0: these are new events
    for s in range(5):
        publisher.publish(topic, encode_event(event(s, boot=6)))
    publisher.flush()
    assert wait_until(lambda: svc.metrics.events_stored._value.get() + svc.metrics.events_duplicate._value.get() >= 65)
    assert count_events(migrated_db) == 25
    assert svc.metrics.events_duplicate._value.get() == 40
    assert_no_duplicates(migrated_db)


def test_clockless_events_take_first_receipt_time_and_deduplicate(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix))
    topic = f"{prefix}/noclock/evt"
    first = [event(s, ts=None) for s in range(10)]
    publisher.publish(topic, encode_events(first))
    publisher.flush()
    assert wait_until(lambda: count_events(migrated_db) == 10)
    times_before = rows(migrated_db, "select seq, time from events order by seq")
    publisher.publish(topic, encode_events(first))  # redelivered later: new receipt time, same keys
    publisher.publish(topic, encode_events([*first[:3], *first[:3]]))  # duplicates inside one batch too
    publisher.publish(topic, encode_event(event(10, ts=None)))
    publisher.flush()
    assert wait_until(lambda: count_events(migrated_db) == 11)
    time.sleep(0.3)
    assert count_events(migrated_db) == 11
    assert rows(migrated_db, "select seq, time from events where seq < 10 order by seq") == times_before
    assert scalar(migrated_db, "select bool_or(device_time) from events") is False
    assert scalar(migrated_db, "select count(*) from event_dedup") == 11


INVALID = [
    ("truncated-cbor", bytes.fromhex("aa0001011b0000019abae28a000205"), "malformed_cbor"),
    ("json-garbage", b'{"v": 1, "seq": ', "malformed_json"),
    ("wrong-type", cbor2.dumps({0: 1, 2: "five", 3: 1, 4: "m", 6: 0, 7: 1}), "wrong_type"),
    ("nan-score", cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 0, 7: 1, 8: float("nan")}), "non_finite"),
    ("unknown-key", cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 0, 7: 1, 99: 1}), "unknown_key"),
    ("oversized", cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 0, 7: 1, 13: {"blob": "x" * 2000}}), None),
    ("empty", b"", "empty_payload"),
    (
        "future",
        cbor2.dumps({0: 1, 1: NOW_MS + 10 * 24 * 3600 * 1000, 2: 1, 3: 1, 4: "m", 6: 0, 7: 1}),
        "ts_in_future",
    ),
]


def test_invalid_payloads_land_in_dead_letters_with_their_code(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix))
    for name, payload, _ in INVALID:
        publisher.publish(f"{prefix}/bad-{name}/evt", payload)
    # a batch with one bad element: the good ones are stored, the bad one is a dead letter with its index
    good, bad = encode_event(event(1)), cbor2.dumps({0: 1, 2: 2, 3: 1, 4: "m", 6: 0, 7: "x"})
    publisher.publish(f"{prefix}/mixed/evt", b"\x82" + good + bad)
    publisher.flush()
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from dead_letters") == len(INVALID) + 1)
    letters = {
        r[0]: r[1:]
        for r in rows(migrated_db, "select device_id, code, detail, payload, event_index, topic from dead_letters")
    }
    for name, payload, code in INVALID:
        got_code, detail, raw, index, topic = letters[f"bad-{name}"]
        if code is not None:
            assert got_code == code, (name, got_code, detail)
        else:
            assert got_code in ("event_too_large", "extras_too_large", "message_too_large"), (name, got_code)
        assert bytes(raw) == payload
        assert topic == f"{prefix}/bad-{name}/evt"
        assert detail
    code, _, raw, index, _ = letters["mixed"]
    assert (code, index) == ("wrong_type", 1)
    assert count_events(migrated_db, "mixed") == 1
    assert count_events(migrated_db) == 1


def test_unknown_keys_are_kept_in_extras_in_lenient_mode(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix, strict_wire=False))
    publisher.publish(f"{prefix}/lenient/evt", cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 0, 7: 1, 99: 5}))
    publisher.flush()
    assert wait_until(lambda: count_events(migrated_db) == 1)
    extras = scalar(migrated_db, "select extras from events")
    assert extras == {"99": 5}


def test_invalid_device_ids_in_topics_are_refused_as_dead_letters(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix))
    long_id = "d" * 65
    publisher.publish(f"{prefix}/{long_id}/evt", encode_event(event(1)))
    publisher.publish(f"{prefix}/sp ace/evt", encode_event(event(1)))
    publisher.flush()
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from dead_letters") == 2)
    assert {r[0] for r in rows(migrated_db, "select code from dead_letters")} == {"bad_device_id"}
    assert count_events(migrated_db) == 0
    assert scalar(migrated_db, "select count(*) from devices") == 0


def test_state_birth_and_last_will_track_online_and_capabilities(migrated_db, prefix, start_ingest):
    start_ingest(make_settings(migrated_db, prefix))
    birth = DeviceState(
        online=True,
        boot=3,
        fw="1.4.2",
        model="vib-cls",
        mver=4,
        caps=Caps(flash=1048576, ram=262144, arena=24000, ops=["CONV_2D", "SOFTMAX"]),
    )
    lwt = DeviceState(online=False, reason="lwt")
    dev = Publisher(MQTT_HOST, MQTT_PORT, client_id="state-dev")
    dev.client.will_set(f"{prefix}/state-dev/state", encode_state(lwt), qos=1, retain=True)
    dev.client.reconnect()
    dev.publish(f"{prefix}/state-dev/state", encode_state(birth), retain=True)
    dev.publish(
        f"{prefix}/state-dev/tel",
        encode_telemetry(Telemetry(uptime_s=60, battery_pct=87, rssi_dbm=-61, heap_free=12000, dropped=0)),
    )
    dev.flush()
    assert wait_until(lambda: scalar(migrated_db, "select online from devices where id='state-dev'") is True)
    fw, mver, caps, boot = rows(migrated_db, "select firmware, mver, capabilities, last_boot from devices")[0]
    assert (fw, mver, boot) == ("1.4.2", 4, 3)
    assert caps["arena"] == 24000
    assert caps["ops"] == ["CONV_2D", "SOFTMAX"]
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from telemetry") == 1)
    assert rows(migrated_db, "select battery_pct, rssi_dbm, uptime_s from telemetry") == [(87.0, -61, 60)]
    # the device dies without DISCONNECT: the broker publishes its will
    dev.client.loop_stop()
    sock = dev.client.socket()
    assert sock is not None
    sock.close()
    assert wait_until(
        lambda: scalar(migrated_db, "select online from devices where id='state-dev'") is False, timeout=90
    )
    assert scalar(migrated_db, "select firmware from devices where id='state-dev'") == "1.4.2"
    # clear the retained state so the shared broker keeps nothing of this test
    cleaner = Publisher(MQTT_HOST, MQTT_PORT)
    cleaner.publish(f"{prefix}/state-dev/state", b"", retain=True)
    cleaner.close()


@pytest.mark.parametrize("protocol", [4, 5])
def test_both_mqtt_versions_ingest(migrated_db, prefix, start_ingest, publisher, protocol):
    start_ingest(make_settings(migrated_db, prefix, mqtt_protocol=protocol))
    for s in range(10):
        publisher.publish(f"{prefix}/v{protocol}/evt", encode_event(event(s)))
    publisher.flush()
    assert wait_until(lambda: count_events(migrated_db) == 10)


def test_plain_table_path_stores_exactly_once(database_url, prefix, start_ingest, publisher):
    """Without TimescaleDB (as on the demo's embedded PostgreSQL) the same dedup holds on plain tables."""
    from tinyfleet.store.migrate import upgrade

    upgrade(database_url, use_timescaledb=False)
    assert scalar(database_url, "select value from tinyfleet_meta where key = 'timescaledb'") == "off"
    start_ingest(make_settings(database_url, prefix, use_timescaledb=False))
    topic = f"{prefix}/plain/evt"
    timed = [event(s) for s in range(10)]
    clockless = [event(s, boot=2, ts=None) for s in range(10)]
    for _ in range(2):  # everything twice
        publisher.publish(topic, encode_events(timed))
        publisher.publish(topic, encode_events(clockless))
    publisher.flush()
    assert wait_until(lambda: count_events(database_url) == 20)
    time.sleep(0.3)
    assert count_events(database_url) == 20
    assert_no_duplicates(database_url)


def test_ota_status_reports_are_stored_and_bad_ones_dead_lettered(migrated_db, prefix, start_ingest, publisher):
    start_ingest(make_settings(migrated_db, prefix))
    topic = f"{prefix}/ota-dev/ota/status"
    publisher.publish(topic, encode_ota_status(OtaStatus(state=OtaState.DOWNLOADING, seq=7, progress=4096)))
    publisher.publish(topic, encode_ota_status(OtaStatus(state=OtaState.APPLIED, seq=7, model="kws", mver=3)))
    publisher.publish(
        topic,
        encode_ota_status(OtaStatus(state=OtaState.FAILED, seq=8, reason="hash_mismatch", msg="sha-256 differs")),
    )
    publisher.publish(topic, json.dumps({"v": 1, "state": "failed", "seq": 9}).encode())  # failed without a reason
    publisher.flush()
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from ota_reports") == 3)
    assert rows(migrated_db, "select state, seq, reason, model, mver from ota_reports order by id") == [
        ("downloading", 7, None, None, None),
        ("applied", 7, None, "kws", 3),
        ("failed", 8, "hash_mismatch", None, None),
    ]
    assert scalar(migrated_db, "select report->>'progress' from ota_reports where state = 'downloading'") == "4096"
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from dead_letters") == 1)
    assert scalar(migrated_db, "select topic from dead_letters") == topic
