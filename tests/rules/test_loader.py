"""Rule files: the example set loads; every kind of bad input is refused with file:line:column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyfleet.rules import RuleSetError, load_rules, load_rules_text
from tinyfleet.rules.loader import json_schema_text
from tinyfleet.rules.model import parse_duration

REPO = Path(__file__).resolve().parents[2]

MODELS = """\
models:
  vib-cls: {labels: [normal, imbalance, misalignment, bearing_fault]}
"""


def issues(files: dict[str, str]) -> list[str]:
    with pytest.raises(RuleSetError) as exc:
        load_rules_text({"models.yml": MODELS, **files})
    return [str(i) for i in exc.value.issues]


def one(files: dict[str, str]) -> str:
    found = issues(files)
    assert len(found) == 1, found
    return found[0]


def test_example_rules_load() -> None:
    rs = load_rules(REPO / "rules")
    ids = {r.id for r in rs.rules}
    assert {"bearing-fault", "device-silent", "anomaly-p95-high", "kws-stop-command"} <= ids
    assert rs.labels("kws") is not None
    assert rs.labels("kws")["stop"] == 7  # type: ignore[index]
    stop = rs.rule("kws-stop-command")
    assert stop.actions[0].mqtt is not None
    assert stop.actions[0].mqtt.topic == "tf/v1/{device}/cmd"
    assert rs.sources["bearing-fault"][0].endswith("vibration.yml")


def test_schema_is_up_to_date() -> None:
    on_disk = (REPO / "rules" / "schema.json").read_text(encoding="utf-8")
    assert on_disk == json_schema_text(), "regenerate with: python -m tinyfleet.rules.schema"
    schema = json.loads(on_disk)
    assert "Rule" in schema["$defs"]


def test_example_rules_validate_against_the_schema() -> None:
    import jsonschema_rs  # comes with schemathesis (dev)
    import yaml

    validator = jsonschema_rs.validator_for(json.loads((REPO / "rules" / "schema.json").read_text(encoding="utf-8")))
    files = sorted((REPO / "rules").glob("*.yml"))
    assert len(files) >= 4
    for f in files:
        assert validator.is_valid(yaml.safe_load(f.read_text(encoding="utf-8"))), f
    good = [{
        "id": "a",
        "match": {"model": "m", "label": "x", "score": 0.5, "x.temp": {"gt": 3}},
        "window": {"count": 2, "within": "5m"},
        "actions": [{"email": "a@b.c"}, {"webhook": {"url": "https://h/"}}],
    }]  # fmt: skip
    assert validator.is_valid(good)
    for bad in ({"bogus": 1}, {"window": {"count": 2, "within": "5 minutes"}}, {"severity": "huge"},
                {"actions": [{"sms": "+1"}]}):  # fmt: skip
        assert not validator.is_valid([{**good[0], **bad}]), bad


def test_design_example_and_action_shorthands() -> None:
    rs = load_rules_text(
        {
            "models.yml": MODELS,
            "r.yml": """\
- id: bearing-fault
  match: {model: vib-cls, label: bearing_fault, score: {gte: 0.8}}
  window: {count: 3, within: 5m, per: device}
  severity: major
  cooldown: 30m
  actions: [{email: maintenance@example.com}, {webhook: https://hooks.example/cmms}, {nodered: /tinyfleet/alert},
            {mqtt: {topic: "tf/v1/{device}/cmd", payload: {cmd: stop}}}]
""",
        }
    )
    r = rs.rules[0]
    assert r.window is not None
    assert r.window.within == 300_000
    assert r.cooldown == 1_800_000
    assert [a.type for a in r.actions] == ["email", "webhook", "nodered", "mqtt"]
    assert r.actions[0].email is not None
    assert r.actions[0].email.to == ["maintenance@example.com"]
    assert r.actions[1].webhook is not None
    assert r.actions[1].webhook.url == "https://hooks.example/cmms"
    assert r.actions[2].nodered is not None
    assert r.actions[2].nodered.path == "/tinyfleet/alert"


@pytest.mark.parametrize(
    ("text", "ms"), [("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000), ("1d", 86_400_000), ("1h30m", 5_400_000),
                     ("250ms", 250)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["0s", "-5m", "5", "5 minutes", "1.5h", "", "m", 5])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_invalid_yaml() -> None:
    msg = one({"r.yml": "- id: a\n  match: {model: vib-cls\n- id: b\n"})
    assert msg.startswith("r.yml:3:5: invalid YAML")


def test_duplicate_yaml_key() -> None:
    assert one({"r.yml": "- id: a\n  match: {kind: 0}\n  id: b\n"}) == "r.yml:3:3: duplicate key 'id'"


def test_unknown_field() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 0, colour: red}\n"})
    assert msg.startswith("r.yml:2:20: unknown field 'colour'")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  severty: major\n"})
    assert msg.startswith("r.yml:3:3: unknown field 'severty'")


def test_wrong_types() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  window: {count: three, within: 5m}\n"})
    assert msg.startswith("r.yml:3:19: 0.window.count:")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0, score: {gte: high}}\n"})
    assert msg.startswith("r.yml:2:33: 0.match.score.gte:")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  enabled: 1\n"})
    assert msg.startswith("r.yml:3:12: 0.enabled:")


def test_yaml_booleans_get_a_hint() -> None:
    msg = one({"m.yml": "models:\n  kws: {labels: [go, no]}\n"})
    assert msg.startswith("m.yml:2:22:")
    assert "quote it" in msg


def test_unknown_label_and_model() -> None:
    msg = one({"r.yml": "- id: a\n  match: {model: vib-cls, label: bearing}\n  window: {count: 3, within: 5m}\n"})
    assert msg.startswith("r.yml:2:34: unknown label 'bearing' of model 'vib-cls'")
    assert "bearing_fault" in msg
    msg = one({"r.yml": "- id: a\n  match: {model: vib-cls, label: {in: [normal, bogus]}}\n"})
    assert msg.startswith("r.yml:2:48: unknown label 'bogus'")
    msg = one({"r.yml": "- id: a\n  absence: {of: {model: nope, label: x}, for: 5m}\n"})
    assert msg.startswith("r.yml:2:25: unknown model 'nope'")
    # an index needs no names
    load_rules_text({"r.yml": "- id: a\n  match: {model: nope, label: 3}\n"})
    # names without a model are refused at once
    msg = one({"r.yml": "- id: a\n  match: {label: bearing_fault}\n"})
    assert msg.startswith("r.yml:2:10: 0.match: label names need `model`")


def test_zero_and_negative_windows() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  window: {count: 3, within: 0s}\n"})
    assert msg.startswith("r.yml:3:30: 0.window.within: duration '0s' must be greater than zero")
    msg = one({"r.yml": "- id: a\n  absence: {for: -5m}\n"})
    assert msg.startswith("r.yml:2:18: 0.absence.for: bad duration '-5m'")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  window: {count: 0, within: 1m}\n"})
    assert msg.startswith("r.yml:3:19: 0.window.count:")


def test_contradictions() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 1, anom: {between: [0.9, 0.1]}}\n"})
    assert msg.startswith("r.yml:2:26: 0.match.anom: between [0.9, 0.1]: the minimum is above the maximum")
    msg = one({"r.yml": "- id: a\n  match: {kind: 1, anom: {gt: 0.9, lt: 0.5}}\n"})
    assert "contradiction" in msg
    assert msg.startswith("r.yml:2:26:")
    msg = one({"r.yml": "- id: a\n  not: {}\n"})
    assert msg.startswith("r.yml:2:8: 0.not: empty condition")
    msg = one({"r.yml": "- id: a\n  any: []\n"})
    assert msg.startswith("r.yml:1:3: 0: `any` of nothing")
    msg = one({"r.yml": "- id: a\n  description: no condition\n"})
    assert msg.startswith("r.yml:1:3: 0: a rule needs a condition")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  severity: major\n  escalate: {after: 1h, severity: minor}\n"})
    assert "is not above severity major" in msg
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  window: {count: 2, within: 1m, per: site}\n  per: device\n"})
    assert msg.startswith("r.yml:3:39: per 'site' contradicts per 'device'")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  rate: {window: 1h, baseline: 5m, above_baseline_factor: 2}\n"})
    assert "baseline window must not be shorter" in msg


def test_bad_actions() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  actions: [{email: not-an-address}]\n"})
    assert msg.startswith("r.yml:3:21: 0.actions.0.email.to.0:")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  actions: [{email: a@b.c, webhook: https://x.y/}]\n"})
    assert "exactly one of email, webhook, nodered, mqtt" in msg
    msg = one({"r.yml": "- id: a\n  match: {kind: 0}\n  actions: [{sms: '+100'}]\n"})
    assert msg.startswith("r.yml:3:14: unknown field 'sms'")


def test_duplicate_ids_across_files() -> None:
    msg = one({"a.yml": "- id: dup\n  match: {kind: 0}\n", "b.yml": "\n- id: dup\n  match: {kind: 1}\n"})
    assert msg == "b.yml:2:7: duplicate rule id 'dup' (first at a.yml:1:7)"


def test_bad_id_and_document_shape() -> None:
    assert one({"r.yml": "- id: Not A Slug\n  match: {kind: 0}\n"}).startswith("r.yml:1:7: 0.id:")
    assert one({"r.yml": "just text\n"}).startswith("r.yml:1:1: a rule file is a list of rules")


def test_the_set_is_refused_as_a_whole(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text("- id: fine\n  match: {kind: 0}\n")
    (tmp_path / "bad.yaml").write_text("- id: broken\n  window: {count: 1, within: 0m}\n  match: {kind: 0}\n")
    (tmp_path / "notes.txt").write_text("not a rule file")
    with pytest.raises(RuleSetError) as exc:
        load_rules(tmp_path)
    assert [(i.file, i.line, i.column) for i in exc.value.issues] == [(str(tmp_path / "bad.yaml"), 2, 30)]
    (tmp_path / "bad.yaml").unlink()
    assert [r.id for r in load_rules(tmp_path).rules] == ["fine"]


def test_several_errors_are_all_reported() -> None:
    found = issues({"r.yml": "- id: a\n  match: {kind: 9}\n- id: b\n  match: {kind: 0}\n  window: {count: 1}\n"})
    assert len(found) >= 2
    assert found == [
        "r.yml:2:17: 0.match.kind: Input should be 'classification', 'anomaly', 'regression' or 'detection'",
        "r.yml:2:17: 0.match.kind: Input should be less than or equal to 3",
        "r.yml:5:11: 1.window.within: Field required",
    ]


def test_cel_when_is_checked_at_load() -> None:
    msg = one({"r.yml": "- id: a\n  match: {kind: 0, when: 'score >'}\n"})
    assert msg.startswith("r.yml:2:26: 0.match.when: invalid CEL expression")
    msg = one({"r.yml": "- id: a\n  match: {kind: 0, when: 'temperature > 3.0'}\n"})
    assert msg.startswith("r.yml:2:26: 0.match.when: unknown variable(s) in CEL expression: temperature")


def test_models_sections_labels_yml_and_conflicts() -> None:
    rs = load_rules_text({
        "labels.yml": "models:\n  pump: {labels: {ok: 0, cavitation: 7}}\n",
        "empty.yml": "# nothing yet\n",
        "r.yml": "- id: cav\n  match: {model: pump, label: cavitation}\n",
    })  # fmt: skip
    assert rs.labels("pump") == {"ok": 0, "cavitation": 7}
    assert rs.labels("other") is None
    # the same model defined twice, identically: fine; differently: an error at the second definition
    load_rules_text({"a.yml": "models:\n  p: {labels: [a, b]}\n", "b.yml": "models:\n  p: {labels: [a, b]}\n"})
    with pytest.raises(RuleSetError) as exc:
        load_rules_text({"a.yml": "models:\n  p: {labels: [a, b]}\n", "b.yml": "models:\n  p: {labels: [b, a]}\n"})
    assert [str(i) for i in exc.value.issues] == ["b.yml:2:3: model 'p' is also defined, differently, in a.yml"]
    with pytest.raises(RuleSetError) as exc:
        load_rules_text({"a.yml": "models:\n  p: {labels: [a, a]}\n"})
    assert str(exc.value.issues[0]).startswith("a.yml:2:15: models.p.labels: duplicate label names")


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError) as exc:
        load_rules(tmp_path / "missing")
    assert exc.value.issues[0].message == "not a directory"


def test_yaml_anchors_and_merge_keys() -> None:
    text = """\
- &base
  id: a
  match: {model: m, kind: 0}
  severity: major
  cooldown: 10m
- <<: *base
  id: b
  severity: minor
- <<: *base
  id: c
  cooldown: 0s
"""
    assert one({"r.yml": text}) == "r.yml:11:13: 2.cooldown: duration '0s' must be greater than zero"
    rs = load_rules_text({"r.yml": text.replace("0s", "1s")})
    assert [(r.id, r.severity, r.cooldown) for r in rs.rules] == [
        ("a", "major", 600_000), ("b", "minor", 600_000), ("c", "major", 1000),
    ]  # fmt: skip
