"""The canary-vs-control gates on synthetic samples: a model that behaves like the old one passes, one that
always predicts one class, scores higher, runs slower, reports less or drops more fails, and too little data
is neither."""

from __future__ import annotations

import random

from tinyfleet.rollouts.gates import Gates, GroupSample, compare, psi, update_failure_gate


def sample(labels: dict[str, int], *, anom_mu: float = 0.2, lat: float = 2000.0, devices: int = 5,
           minutes: float = 10.0, seed: int = 1, inferences: int = 0, dropped: int = 0) -> GroupSample:  # fmt: skip
    rnd = random.Random(seed)
    n = sum(labels.values())
    return GroupSample(
        devices=devices,
        device_minutes=devices * minutes,
        labels=labels,
        anomaly=[min(1.0, max(0.0, rnd.gauss(anom_mu, 0.05))) for _ in range(n)],
        latency_us=[rnd.gauss(lat, lat * 0.05) for _ in range(n)],
        inferences=inferences,
        dropped=dropped,
    )


NORMAL = {"0": 700, "1": 150, "2": 100, "3": 50}


def verdicts(canary: GroupSample, control: GroupSample, g: Gates | None = None) -> dict[str, str]:
    return {r.gate: r.verdict for r in compare(canary, control, g or Gates()).results}


def test_a_model_that_behaves_like_the_old_one_passes_every_gate() -> None:
    canary = sample({"0": 690, "1": 160, "2": 95, "3": 55}, seed=2)
    control = sample(NORMAL, seed=3)
    assert set(verdicts(canary, control).values()) == {"pass"}
    assert compare(canary, control, Gates()).verdict == "pass"


def test_a_model_that_always_predicts_one_class_fails_the_label_gate() -> None:
    result = compare(sample({"3": 1000}), sample(NORMAL, seed=4), Gates())
    label = next(r for r in result.results if r.gate == "label_psi")
    assert label.verdict == "fail"
    assert label.value is not None
    assert label.value > 1
    assert label.detail["canary_top_label"] == "3"
    assert label.detail["canary_top_share"] == 1.0
    assert label.detail["chi2_p"] < 1e-10
    assert result.verdict == "fail"


def test_shifted_anomaly_scores_fail_the_ks_gate() -> None:
    v = verdicts(sample(NORMAL, anom_mu=0.6), sample(NORMAL, anom_mu=0.2, seed=5))
    assert v["anomaly_ks"] == "fail"
    assert v["label_psi"] == "pass"


def test_a_slower_model_fails_the_latency_gate() -> None:
    assert verdicts(sample(NORMAL, lat=4000), sample(NORMAL, seed=6))["latency_p95_ratio"] == "fail"
    assert verdicts(sample(NORMAL, lat=2400), sample(NORMAL, seed=6))["latency_p95_ratio"] == "pass"


def test_canaries_that_go_quiet_fail_the_event_rate_gate() -> None:
    quiet = sample({"0": 7, "1": 2}, minutes=10)
    v = verdicts(quiet, sample(NORMAL, seed=7))
    assert v["event_rate_ratio"] == "fail"
    assert v["label_psi"] == "insufficient"  # 9 events say nothing about the labels, but the silence does


def test_more_dropped_inferences_fail_the_error_gate() -> None:
    canary = sample(NORMAL, inferences=10_000, dropped=900)
    control = sample(NORMAL, seed=8, inferences=10_000, dropped=50)
    assert verdicts(canary, control)["error_rate_increase"] == "fail"


def test_too_little_data_is_insufficient_not_a_pass_or_a_fail() -> None:
    result = compare(sample({"3": 50}), sample({"0": 40, "1": 10}, seed=9), Gates())
    assert result.verdict == "insufficient"
    assert not result.failed


def test_no_canary_device_yet_is_insufficient() -> None:
    assert compare(GroupSample(), sample(NORMAL), Gates()).verdict == "insufficient"


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi(NORMAL, NORMAL) == 0
    assert 0 < psi(NORMAL, {"0": 600, "1": 200, "2": 150, "3": 50}) < psi(NORMAL, {"0": 100, "3": 900})


def test_update_failures_are_judged_from_the_first_ended_update() -> None:
    g = Gates(max_update_failure_rate=0.2)
    assert update_failure_gate(0, 0, g).verdict == "insufficient"
    assert update_failure_gate(10, 2, g).verdict == "pass"
    assert update_failure_gate(10, 3, g).verdict == "fail"
