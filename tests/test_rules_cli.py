"""`tinyfleet rules test`: replays of the shipped sample (file and database) through the shipped rules."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.test_cli import run_cli
from tinyfleet.rules import load_rules
from tinyfleet.rules.recorded import parse_event, parse_time, read_events_file, run_replay
from tinyfleet.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
SAMPLE = RULES / "samples" / "vibration-events.jsonl"

#: what the sample makes the shipped rules do: (time, kind, rule, group)
EXPECTED = [
    ("2026-11-25T10:11:00Z", "open", "bearing-fault", "pump-1"),
    ("2026-11-25T10:13:00Z", "resolve", "bearing-fault", "pump-1"),
    ("2026-11-25T10:27:00Z", "open", "device-silent", "pump-1"),
]


def _transitions(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(t["time"], t["kind"], t["rule"], t["group"]) for t in doc["transitions"]]


def test_sample_fires_bearing_fault_and_device_silent_at_the_expected_times(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), "--events", str(SAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    fired = [ln for ln in lines if ln[:4].isdigit() and " evidence=" in ln]
    assert [ln.split(" evidence=")[0] for ln in fired] == [
        "2026-11-25T10:11:00Z OPEN bearing-fault device=pump-1 severity=major",
        "2026-11-25T10:13:00Z RESOLVE bearing-fault device=pump-1 severity=major",
        "2026-11-25T10:27:00Z OPEN device-silent device=pump-1 severity=warning",
    ]
    assert json.loads(fired[0].split(" evidence=", 1)[1])["window"]["count"] == 3
    assert any(ln.startswith("replayed 308 events of 2 device(s)") for ln in lines)
    table = {ln.split()[0]: ln.split()[1:] for ln in lines if ln.split() and ln.split()[0] in {"bearing-fault",
             "device-silent", "kws-deaf"}}  # fmt: skip
    assert table == {"bearing-fault": ["1", "1", "0", "0"], "device-silent": ["1", "0", "0", "0"],
                     "kws-deaf": ["0", "0", "0", "0"]}  # fmt: skip


def test_json_output_parses(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), "--events", str(SAMPLE), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert _transitions(doc) == EXPECTED
    assert doc["events"] == 308
    assert doc["devices"] == ["pump-1", "pump-2"]
    assert doc["first"] == "2026-11-25T10:00:00Z"
    assert doc["until"] == "2026-11-25T10:32:00Z"
    assert doc["transitions"][2]["severity"] == "warning"
    assert doc["transitions"][2]["at_ms"] == parse_time("2026-11-25T10:27:00Z")
    opened = {rid: c["opened"] for rid, c in doc["summary"].items() if c["opened"]}
    assert opened == {"bearing-fault": 1, "device-silent": 1}


def test_until_runs_the_clock_on_after_the_last_event(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), "--events", str(SAMPLE), "--until", "+20m", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    got = _transitions(doc)
    assert got[:3] == EXPECTED
    # pump-2 stops at 10:32 with the recording: silent 15 minutes later
    assert ("2026-11-25T10:47:00Z", "open", "device-silent", "pump-2") in got
    assert [t for t in got if t[2] == "device-silent"] == [EXPECTED[2], got[-1]]
    assert doc["until"] == "2026-11-25T10:52:00Z"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"device": "pump-1", "time": "2026-11-25T10:00:00Z", "model": "vib-cls", "label": "broken"}',
         "unknown label 'broken'"),
        ('{"device": "pump-1", "time": "yesterday", "model": "vib-cls"}', "bad time"),
        ('{"device": "pump-1", "time": 1795600800000, "model": "vib-cls", "scor": 0.5}', "unknown field(s) scor"),
    ],
)  # fmt: skip
def test_bad_event_line_exits_1_naming_the_line(tmp_path: Path, bad: str, message: str) -> None:
    lines = SAMPLE.read_text().splitlines()
    lines[56] = bad
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    result = run_cli("rules", "test", str(RULES), "--events", str(events), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith(f"tinyfleet: bad event: {events}:57: "), err[0]
    assert message in err[0]
    assert "Traceback" not in result.stderr


def test_missing_events_file_exits_1(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), "--events", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("tinyfleet: cannot read events from")


def test_invalid_rules_exit_1_with_locations(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "broken.yml").write_text("- id: broken\n  match: {model: vib-cls}\n  window: {count: 0, within: -5m}\n")
    result = run_cli("rules", "test", str(rules), "--events", str(SAMPLE), cwd=tmp_path)
    assert result.returncode == 1
    assert "broken.yml:3:" in result.stderr
    assert result.stdout == ""


def test_needs_a_source(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "tinyfleet: give either --events FILE or --from TIME --to TIME"
    result = run_cli("rules", "test", str(RULES), "--from", "2026-11-25T10:00:00Z", cwd=tmp_path)
    assert result.returncode == 1
    assert "--from and --to go together" in result.stderr


def test_file_replay_in_process_matches_expected() -> None:
    ruleset = load_rules(RULES)
    result = run_replay(ruleset, read_events_file(SAMPLE, ruleset))
    got = [(t.kind, t.rule_id, t.group, t.at_ms) for t in result.transitions]
    assert got == [(k, r, g, parse_time(at)) for at, k, r, g in EXPECTED]


def test_parse_event_accepts_indexes_names_and_epoch_ms() -> None:
    ruleset = load_rules(RULES)
    by_name = parse_event({"device": "d", "time": "2026-11-25T10:00:00", "model": "vib-cls", "label":
                           "bearing_fault", "kind": "classification"}, ruleset)  # fmt: skip
    by_index = parse_event({"device_id": "d", "time": 1795600800000, "model": "vib-cls", "label": 3, "kind": 0},
                           ruleset)  # fmt: skip
    assert by_name == by_index
    with pytest.raises(ValueError, match="device"):
        parse_event({"time": 1, "model": "m"}, ruleset)
    with pytest.raises(ValueError, match="score"):
        parse_event({"device": "d", "time": 1, "model": "m", "score": "high"}, ruleset)


def _insert_sample(url: str) -> None:
    ruleset = load_rules(RULES)
    rows = []
    for ln in SAMPLE.read_text().splitlines():
        d = json.loads(ln)
        e = parse_event(d, ruleset)
        t = datetime.fromtimestamp(int(e.time) / 1000, tz=UTC)
        rows.append((e.device_id, t, d["boot"], d["seq"], t, True, e.model, e.mver, e.kind, e.label, e.score,
                     e.anom, e.lat, Jsonb(e.x)))  # fmt: skip
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (device_id, time, boot, seq, received_at, device_time, model, mver, kind, label, "
            "score, anom, lat_us, extras) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def test_database_replay_gives_the_same_result_as_the_file(tmp_path: Path, database_url: str) -> None:
    upgrade(database_url)
    _insert_sample(database_url)
    file_doc = json.loads(run_cli("rules", "test", str(RULES), "--events", str(SAMPLE), "--json", cwd=tmp_path).stdout)
    # --to is excluded: one second after the last event, when nothing is due
    args = ("rules", "test", str(RULES), "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T10:32:01Z")
    result = run_cli(*args, "--json", cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    db_doc = json.loads(result.stdout)
    assert db_doc["transitions"] == file_doc["transitions"]
    assert db_doc["summary"] == file_doc["summary"]
    assert db_doc["events"] == 308
    assert db_doc["until"] == "2026-11-25T10:32:01Z"

    text = run_cli(*args, cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url)
    assert text.returncode == 0, text.stderr
    assert "2026-11-25T10:27:00Z OPEN device-silent device=pump-1 severity=warning" in text.stdout

    # one device, and a range that ends before the silence is over: only the bearing fault
    one = run_cli("rules", "test", str(RULES), "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T10:20:00Z",
                  "--device", "pump-1", "--json", cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url)  # fmt: skip
    assert one.returncode == 0, one.stderr
    one_doc = json.loads(one.stdout)
    assert _transitions(one_doc) == EXPECTED[:2]
    assert one_doc["devices"] == ["pump-1"]
    assert one_doc["events"] == 145


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    result = run_cli("rules", "test", str(RULES), "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T11:00:00Z",
                     cwd=tmp_path, TINYFLEET_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("tinyfleet: cannot read events from the database: OperationalError")
    assert len(result.stderr.strip().splitlines()) == 1
