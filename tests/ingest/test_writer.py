"""BatchWriter against the real database: exactly-once writes and isolation of rows the database refuses."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.ingest.conftest import rows, scalar
from tinyfleet.ingest.decode import BatchDecoder
from tinyfleet.ingest.writer import BatchWriter
from tinyfleet.wire import Event, encode_event

NOW = int(time.time() * 1000)


def messages(device: str, seqs: range, ts: int | None = NOW) -> list[tuple[str, bytes, int, bool]]:
    return [
        (f"tf/v1/{device}/evt", encode_event(Event(ts=ts, seq=s, boot=1, model="m", kind=0, label=1)), NOW, False)
        for s in seqs
    ]


def test_a_batch_written_twice_is_stored_once(migrated_db):
    decoder = BatchDecoder("tf/v1", strict=True)
    writer = BatchWriter(migrated_db)
    batch = decoder.prepare(messages("w1", range(100)) + messages("w2", range(50), ts=None))
    first = writer.write(batch)
    again = writer.write(batch)  # e.g. the process died after COMMIT but before the PUBACK went out
    assert (first.events_inserted, first.events_offered) == (150, 150)
    assert again.events_inserted == 0
    assert scalar(migrated_db, "select count(*) from events") == 150
    writer.close()


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_stored(migrated_db):
    decoder = BatchDecoder("tf/v1", strict=True)
    writer = BatchWriter(migrated_db)
    batch = decoder.prepare(messages("w3", range(5)))
    # The wire codec refuses NUL in text, so a poison row can only come from a bug; forge one.
    poisoned = list(batch.event_rows[2])
    poisoned[5] = "bad\x00model"
    batch.event_rows[2] = tuple(poisoned)
    with pytest.raises(psycopg.DataError):
        writer.write(batch)
    result, refused = writer.write_isolated(batch)
    assert result.events_inserted == 4
    assert [r.code for r in refused] == ["db_rejected"]
    assert scalar(migrated_db, "select count(*) from events") == 4
    code, topic, payload = rows(migrated_db, "select code, topic, payload from dead_letters")[0]
    assert (code, topic) == ("db_rejected", "tf/v1/w3/evt")
    assert bytes(payload) == batch.event_sources[2][1]  # the original bytes, for replay after a fix
    assert sorted(r[0] for r in rows(migrated_db, "select seq from events")) == [0, 1, 3, 4]
    writer.close()


def test_last_seen_is_written_once_per_touch_interval(migrated_db):
    decoder = BatchDecoder("tf/v1", strict=True, touch_interval_ms=60_000)
    writer = BatchWriter(migrated_db)
    first = decoder.prepare(messages("w4", range(3)), now_ms=NOW)
    assert set(first.touched) == {"w4"}
    writer.write(first)
    decoder.committed(first)
    second = decoder.prepare(messages("w4", range(3, 6)), now_ms=NOW + 1000)
    assert second.touched == {}
    later = decoder.prepare(messages("w4", range(6, 9)), now_ms=NOW + 61_000)
    assert set(later.touched) == {"w4"}
    assert scalar(migrated_db, "select count(*) from devices where id = 'w4' and last_seen is not null") == 1
    writer.close()


def test_listeners_get_only_the_rows_that_were_new(migrated_db):
    """Redeliveries, resends inside one batch and refused rows never reach the rules (they would count twice)."""
    decoder = BatchDecoder("tf/v1", strict=True)
    writer = BatchWriter(migrated_db, want_inserted_keys=True)
    first = decoder.prepare(messages("w5", range(3)))
    result = writer.write(first)
    assert result.inserted_keys is None  # all new: no key list needed
    assert len(result.new_rows(first.event_rows)) == 3
    # seq 2 again (a redelivery), seq 3 twice in the same batch (a resend), and a clockless duplicate pair
    second = decoder.prepare(messages("w5", range(2, 4)) + messages("w5", range(3, 4)) + messages("w6", range(1), None)
                             + messages("w6", range(1), None))  # fmt: skip
    result = writer.write(second)
    new = result.new_rows(second.event_rows)
    assert sorted((r[0], r[2]) for r in new) == [("w5", 3), ("w6", 0)]
    # a refused row is not new either
    third = decoder.prepare(messages("w7", range(3)))
    poisoned = list(third.event_rows[1])
    poisoned[5] = "bad\x00model"
    third.event_rows[1] = tuple(poisoned)
    result, refused = writer.write_isolated(third)
    assert len(refused) == 1
    assert sorted(r[2] for r in result.new_rows(third.event_rows)) == [0, 2]
    writer.close()
