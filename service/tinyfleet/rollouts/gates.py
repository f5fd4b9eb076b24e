"""Canary against control: is the new model version behaving like the old one on comparable devices?

A rollout's canaries (devices confirmed on the new version) are compared with its control group (devices of
the same cohort still on the old version, over the same time span). Each gate is one measured difference
with its threshold from the release; a gate with too little data says so and neither passes nor fails, so
a rollout never advances or rolls back on noise. The statistics are scipy's (chi-square test of the label
contingency table, two-sample Kolmogorov-Smirnov on anomaly scores); the population stability index (PSI)
is the usual drift measure of label shares, computed here because it is one line over two histograms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

Verdict = Literal["pass", "fail", "insufficient"]

#: Share given to a label that one side never produced, so PSI stays finite (the usual 1e-4 floor).
_PSI_FLOOR = 1e-4


class Gates(BaseModel):
    """Thresholds of the canary-vs-control comparison; part of a release. Defaults are conservative."""

    model_config = ConfigDict(extra="forbid")

    max_update_failure_rate: float = Field(
        0.2, ge=0, le=1, description="failed (or never confirmed) updates / updates attempted, in the waves so far"
    )
    max_label_psi: float = Field(
        0.25, ge=0, description="population stability index of the label shares, canary vs control"
    )
    max_anomaly_ks: float = Field(
        0.3, ge=0, le=1, description="Kolmogorov-Smirnov distance of the anomaly-score distributions"
    )
    max_latency_p95_ratio: float = Field(1.5, gt=0, description="canary p95 inference latency / control p95")
    max_event_rate_ratio: float = Field(
        2.0, ge=1, description="canary events per device-minute vs control: allowed factor either way"
    )
    max_error_rate_increase: float = Field(
        0.05, ge=0, description="dropped inferences per inference (telemetry), canary minus control"
    )
    significance: float = Field(
        0.01, gt=0, lt=1, description="p-value below which a distribution difference counts as real"
    )
    min_events: int = Field(200, ge=1, description="events needed on each side before distributions are compared")
    min_devices: int = Field(1, ge=1, description="confirmed canaries needed before any behaviour gate is judged")


@dataclass
class GroupSample:
    """What one side (canary or control) did over the comparison span."""

    devices: int = 0
    device_minutes: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    anomaly: Sequence[float] = ()
    latency_us: Sequence[float] = ()
    inferences: int = 0
    dropped: int = 0

    @property
    def events(self) -> int:
        return sum(self.labels.values())


@dataclass
class GateResult:
    gate: str
    verdict: Verdict
    value: float | None
    threshold: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "verdict": self.verdict,
            "value": _finite(self.value),
            "threshold": self.threshold,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass
class Comparison:
    results: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if r.verdict == "fail"]

    @property
    def verdict(self) -> Verdict:
        if self.failed:
            return "fail"
        if any(r.verdict == "insufficient" for r in self.results):
            return "insufficient"
        return "pass"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "gates": [r.to_json() for r in self.results]}


def _finite(v: float | None) -> float | None:
    if v is None or math.isnan(v):
        return None
    return v if math.isfinite(v) else (1e308 if v > 0 else -1e308)


def psi(expected: Mapping[str, int], actual: Mapping[str, int]) -> float:
    """Population stability index of `actual` against `expected` (label → count)."""
    keys = sorted(set(expected) | set(actual))
    e_total = sum(expected.values()) or 1
    a_total = sum(actual.values()) or 1
    total = 0.0
    for k in keys:
        e = max(expected.get(k, 0) / e_total, _PSI_FLOOR)
        a = max(actual.get(k, 0) / a_total, _PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def label_gate(canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    if canary.events < g.min_events or control.events < g.min_events:
        return _insufficient("label_psi", g.max_label_psi, canary, control, g)
    value = psi(control.labels, canary.labels)
    keys = sorted(set(control.labels) | set(canary.labels))
    table = np.array([[control.labels.get(k, 0) for k in keys], [canary.labels.get(k, 0) for k in keys]])
    table = table[:, table.sum(axis=0) > 0]
    p = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table).pvalue)
    fail = value > g.max_label_psi and p < g.significance
    canary_top = max(canary.labels, key=lambda k: canary.labels[k])
    return GateResult(
        "label_psi",
        "fail" if fail else "pass",
        value,
        g.max_label_psi,
        {
            "chi2_p": p,
            "canary_events": canary.events,
            "control_events": control.events,
            "canary_top_label": canary_top,
            "canary_top_share": canary.labels[canary_top] / canary.events,
        },
    )


def anomaly_gate(canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    if len(canary.anomaly) < g.min_events or len(control.anomaly) < g.min_events:
        if not canary.anomaly and not control.anomaly:  # a model without anomaly scores: nothing to compare
            return GateResult("anomaly_ks", "pass", None, g.max_anomaly_ks, {"note": "no anomaly scores"})
        return _insufficient("anomaly_ks", g.max_anomaly_ks, canary, control, g)
    res = stats.ks_2samp(np.asarray(canary.anomaly), np.asarray(control.anomaly))
    value, p = float(res.statistic), float(res.pvalue)
    fail = value > g.max_anomaly_ks and p < g.significance
    return GateResult(
        "anomaly_ks",
        "fail" if fail else "pass",
        value,
        g.max_anomaly_ks,
        {
            "ks_p": p,
            "canary_mean": float(np.mean(canary.anomaly)),
            "control_mean": float(np.mean(control.anomaly)),
        },
    )


def latency_gate(canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    if len(canary.latency_us) < g.min_events or len(control.latency_us) < g.min_events:
        if not canary.latency_us and not control.latency_us:
            return GateResult("latency_p95_ratio", "pass", None, g.max_latency_p95_ratio, {"note": "no latencies"})
        return _insufficient("latency_p95_ratio", g.max_latency_p95_ratio, canary, control, g)
    c95 = float(np.percentile(canary.latency_us, 95))
    k95 = float(np.percentile(control.latency_us, 95))
    value = c95 / k95 if k95 > 0 else (math.inf if c95 > 0 else 1.0)
    return GateResult(
        "latency_p95_ratio",
        "fail" if value > g.max_latency_p95_ratio else "pass",
        value,
        g.max_latency_p95_ratio,
        {"canary_p95_us": c95, "control_p95_us": k95},
    )


def event_rate_gate(canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    """Events per device-minute. A canary that stops reporting is the worst regression, so a silent canary
    side fails once the control side alone has shown enough events."""
    if canary.device_minutes <= 0 or control.device_minutes <= 0 or control.events < g.min_events:
        return _insufficient("event_rate_ratio", g.max_event_rate_ratio, canary, control, g)
    c = canary.events / canary.device_minutes
    k = control.events / control.device_minutes
    if k == 0:
        return GateResult("event_rate_ratio", "insufficient", None, g.max_event_rate_ratio)
    ratio = c / k
    fail = ratio > g.max_event_rate_ratio or ratio < 1 / g.max_event_rate_ratio
    return GateResult(
        "event_rate_ratio",
        "fail" if fail else "pass",
        ratio,
        g.max_event_rate_ratio,
        {"canary_per_device_min": c, "control_per_device_min": k},
    )


def error_gate(canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    """Inferences the device dropped (telemetry `dropped` over `infer_count`), canary minus control."""
    if canary.inferences <= 0 or control.inferences <= 0:
        return GateResult("error_rate_increase", "pass", None, g.max_error_rate_increase, {"note": "no telemetry"})
    c = canary.dropped / canary.inferences
    k = control.dropped / control.inferences
    value = c - k
    return GateResult(
        "error_rate_increase",
        "fail" if value > g.max_error_rate_increase else "pass",
        value,
        g.max_error_rate_increase,
        {"canary_rate": c, "control_rate": k},
    )


def update_failure_gate(attempted: int, failed: int, g: Gates) -> GateResult:
    """Judged as soon as one update has ended either way: a canary wave is small, and two bricked devices out
    of ten are a clear signal."""
    if attempted <= 0:
        return GateResult("update_failure_rate", "insufficient", None, g.max_update_failure_rate)
    value = failed / attempted
    return GateResult(
        "update_failure_rate",
        "fail" if value > g.max_update_failure_rate else "pass",
        value,
        g.max_update_failure_rate,
        {"attempted": attempted, "failed": failed},
    )


def compare(canary: GroupSample, control: GroupSample, g: Gates) -> Comparison:
    """Every behaviour gate, canary against control."""
    if canary.devices < g.min_devices:
        return Comparison([GateResult("canary_devices", "insufficient", canary.devices, g.min_devices)])
    return Comparison(
        [
            label_gate(canary, control, g),
            anomaly_gate(canary, control, g),
            latency_gate(canary, control, g),
            event_rate_gate(canary, control, g),
            error_gate(canary, control, g),
        ]
    )


def _insufficient(name: str, threshold: float, canary: GroupSample, control: GroupSample, g: Gates) -> GateResult:
    return GateResult(
        name,
        "insufficient",
        None,
        threshold,
        {"canary_events": canary.events, "control_events": control.events, "min_events": g.min_events},
    )
