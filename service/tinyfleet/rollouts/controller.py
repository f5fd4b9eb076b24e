"""The rollout controller: drives every active rollout one step at a time, from the database.

Each step of a rollout, in one transaction (row-locked, so two service instances never step the same rollout
at once):

1. **Track**: fold new `ota/status` reports (matched by manifest sequence number) and the devices' own state
   into each device's status. "applied" is the device's word; *confirmed* needs its retained `state` to show
   the new model version (or an event of the new version), so a power loss mid-update is noticed, not
   believed. An update neither confirmed nor failed within `confirm_timeout_s` of the device starting it
   counts as failed.
2. **Judge**: the update failure rate of the waves so far, and the canaries against the control group
   (gates.py). A breach stops the rollout and rolls the canaries back (auto_rollback), recorded with the
   evidence. Open alerts of a canary at or above `pause_on_alert` pause it.
3. **Send**: one signed manifest per wave (a fresh sequence number from `ota_manifest_seq`), retained on the
   `ota` topic of every device of the wave; devices offline get it when they reconnect.
4. **Advance**: once the wave's soak time has passed, enough of it is confirmed and the gates pass, the next
   wave starts; after the last one the rollout is complete.

Every decision lands in `rollout_decisions` with its evidence; repeated "hold" decisions are recorded only
when their reason changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tinyfleet.rollouts import evidence
from tinyfleet.rollouts.gates import Comparison, GateResult, update_failure_gate
from tinyfleet.rollouts.plan import RolloutPlan
from tinyfleet.rollouts.ports import ArtifactCatalog, ManifestPublisher, ManifestRequest, ManifestSigner
from tinyfleet.rules.model import SEVERITIES
from tinyfleet.wire import Topics

log = logging.getLogger("tinyfleet.rollouts")

ACTIVE_STATES = ("running", "paused", "rolling_back")
#: Device statuses of an update under way (the manifest is out, no verdict yet).
IN_FLIGHT = ("sent", "downloading", "downloaded", "verified", "applied")
#: Progress order of the device's reports: a late "downloading" never undoes "verified".
_PROGRESS = {"sent": 0, "downloading": 1, "downloaded": 2, "verified": 3, "applied": 4}


@dataclass
class StepResult:
    rollout_id: int
    state: str
    wave: int
    decisions: list[str] = field(default_factory=list)
    sent: int = 0


class RolloutController:
    """Steps every active rollout every `interval_s` seconds (named task ``tinyfleet-rollouts``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        catalog: ArtifactCatalog,
        signer: ManifestSigner,
        publisher: ManifestPublisher,
        topics: Topics,
        interval_s: float = 5.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._catalog = catalog
        self._signer = signer
        self._publisher = publisher
        self._topics = topics
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.steps = 0
        self.last_error: str | None = None

    async def __aenter__(self) -> RolloutController:
        self._task = asyncio.create_task(self._run(), name="tinyfleet-rollouts")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Step now (e.g. after an API call changed a rollout) rather than at the next interval."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.step_all()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, a broker down: log, retry at the next interval
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("rollout step failed: %s", self.last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()

    async def step_all(self, now: datetime | None = None) -> list[StepResult]:
        async with self._sessionmaker() as session:
            ids = (
                await session.execute(
                    sa.text(
                        "SELECT id FROM rollouts WHERE state = ANY(:s) OR (state = 'completed' AND EXISTS ("
                        " SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = rollouts.id"
                        " AND rd.status = ANY(:f))) ORDER BY id"
                    ),
                    {"s": list(ACTIVE_STATES), "f": list(IN_FLIGHT)},
                )
            ).scalars().all()  # fmt: skip
        out = []
        for rid in ids:
            result = await self.step(rid, now)
            if result is not None:
                out.append(result)
        self.steps += 1
        return out

    async def step(self, rollout_id: int, now: datetime | None = None) -> StepResult | None:
        now = now or datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            row = (
                await session.execute(
                    sa.text(
                        "SELECT r.*, rel.model, rel.model_version, rel.component, rel.plan"
                        " FROM rollouts r JOIN releases rel ON rel.id = r.release_id"
                        " WHERE r.id = :id FOR UPDATE OF r SKIP LOCKED"
                    ),
                    {"id": rollout_id},
                )
            ).mappings().first()  # fmt: skip
            if row is None:  # another instance is stepping it
                return None
            step = _Step(self, session, dict(row), now)
            await step.run()
            return step.result


class _Step:
    def __init__(self, ctl: RolloutController, session: AsyncSession, row: dict[str, Any], now: datetime) -> None:
        self.ctl = ctl
        self.s = session
        self.r = row
        self.now = now
        self.plan = RolloutPlan.model_validate(row["plan"])
        self.result = StepResult(row["id"], row["state"], row["wave"])

    @property
    def id(self) -> int:
        return int(self.r["id"])

    async def run(self) -> None:
        await self.track()
        state = self.r["state"]
        if state == "completed":
            return
        if state == "rolling_back":
            await self.finish_rollback()
            return
        if await self.judge():
            return
        if state == "running":
            await self.send_wave()
            await self.maybe_advance()

    # -- 1. track ---------------------------------------------------------------------------------------------

    async def track(self) -> None:
        s = self.s
        rid = self.id
        model, version = self.r["model"], self.r["model_version"]
        # Reports of the manifest each device has now (same sequence number), newest per device.
        await s.execute(
            sa.text("""
                WITH latest AS (
                  SELECT DISTINCT ON (rd.device_id) rd.device_id, o.state, o.reason, o.message, o.received_at
                  FROM rollout_devices rd
                  JOIN ota_reports o ON o.device_id = rd.device_id AND o.seq = rd.seq
                    AND o.received_at >= rd.sent_at - interval '1 minute'
                  WHERE rd.rollout_id = :rid AND rd.status = ANY(:inflight)
                  ORDER BY rd.device_id, o.received_at DESC, o.id DESC
                )
                UPDATE rollout_devices rd SET
                  status = CASE WHEN latest.state = 'failed' THEN 'failed'
                                WHEN latest.state = 'rolled_back' THEN 'failed'
                                ELSE latest.state END,
                  status_at = latest.received_at,
                  reason = CASE WHEN latest.state IN ('failed', 'rolled_back')
                                THEN coalesce(latest.reason, latest.state) || coalesce(': ' || latest.message, '')
                                ELSE rd.reason END
                FROM latest
                WHERE rd.rollout_id = :rid AND rd.device_id = latest.device_id
                  AND (latest.state IN ('failed', 'rolled_back')
                       OR array_position(ARRAY['sent','downloading','downloaded','verified','applied'], latest.state)
                          > array_position(ARRAY['sent','downloading','downloaded','verified','applied'], rd.status))
            """),
            {"rid": rid, "inflight": list(IN_FLIGHT)},
        )
        # Confirmed: the device's retained state shows the new version, or it sent an event of it since the
        # manifest went out.
        await s.execute(
            sa.text("""
                UPDATE rollout_devices rd SET status = 'confirmed', confirmed_at = :now, status_at = :now,
                  reason = NULL
                FROM devices d
                WHERE rd.rollout_id = :rid AND rd.status = ANY(:inflight) AND d.id = rd.device_id
                  AND ((d.model = :model AND d.mver = :version AND d.state_at >= rd.sent_at)
                       OR EXISTS (SELECT 1 FROM events e WHERE e.device_id = rd.device_id
                                  AND e.time >= rd.sent_at - interval '1 day'
                                  AND e.received_at >= rd.sent_at AND e.model = :model AND e.mver = :version))
            """),
            {"rid": rid, "inflight": list(IN_FLIGHT), "model": model, "version": version,
             "now": self.now},
        )  # fmt: skip
        # Started but neither confirmed nor failed in time: failed (e.g. power lost mid-update, the device
        # came back on the old version and says nothing more).
        timeout = self.now - timedelta(seconds=self.plan.confirm_timeout_s)
        await s.execute(
            sa.text("""
                UPDATE rollout_devices SET status = 'failed', status_at = :now,
                  reason = 'not confirmed on the new version within ' || :secs || ' s of ' || status
                WHERE rollout_id = :rid AND status = ANY(:started) AND status_at < :timeout
            """),
            {"rid": rid, "started": ["downloading", "downloaded", "verified", "applied"], "timeout": timeout,
             "now": self.now, "secs": str(int(self.plan.confirm_timeout_s))},
        )  # fmt: skip

    # -- 2. judge ---------------------------------------------------------------------------------------------

    async def counts(self) -> Counter[str]:
        rows = await self.s.execute(
            sa.text("SELECT status, count(*) FROM rollout_devices WHERE rollout_id = :rid GROUP BY status"),
            {"rid": self.id},
        )
        return Counter({str(st): int(n) for st, n in rows})

    async def old_version(self) -> int | None:
        v = (
            await self.s.execute(
                sa.text(
                    "SELECT from_version FROM rollout_devices WHERE rollout_id = :rid AND from_model = :model"
                    " AND from_version IS NOT NULL GROUP BY from_version ORDER BY count(*) DESC LIMIT 1"
                ),
                {"rid": self.id, "model": self.r["model"]},
            )
        ).scalar()  # fmt: skip
        return None if v is None else int(v)

    async def judge(self) -> bool:
        """True when the rollout stopped (rollback or pause) in this step."""
        counts = await self.counts()
        attempted = counts["confirmed"] + counts["failed"]
        failure = update_failure_gate(attempted, counts["failed"], self.plan.gates)
        gates: list[GateResult] = [failure]
        comparison = None
        if counts["confirmed"] > 0:
            canary, control, span = await evidence.canary_and_control(
                self.s, self.id, model=self.r["model"], new_version=self.r["model_version"],
                old_version=await self.old_version(), now=self.now,
            )  # fmt: skip
            comparison = evidence_comparison(canary, control, self.plan)
            gates += comparison.results
            self.span = span
        else:
            self.span = {}
        self.comparison = Comparison(gates)
        self.counts_now = counts
        breached = self.comparison.failed
        if breached and self.plan.auto_rollback:
            await self.start_rollback(breached)
            return True
        alert = await self.canary_alert()
        if alert is not None and self.r["state"] == "running":
            await self.set_state("paused", f"alert {alert['rule_id']} ({alert['severity']}) open on canary "
                                 f"{alert['group_key']}", evidence={"alert": alert})  # fmt: skip
            return True
        return False

    async def canary_alert(self) -> dict[str, Any] | None:
        threshold = self.plan.pause_on_alert
        if not threshold:
            return None
        severities = list(SEVERITIES[SEVERITIES.index(threshold) :])
        row = (
            await self.s.execute(
                sa.text(
                    "SELECT a.id, a.rule_id, a.group_key, a.severity, a.opened_at FROM alerts a"
                    " JOIN rollout_devices rd ON rd.device_id = a.group_key AND rd.rollout_id = :rid"
                    " WHERE a.state <> 'resolved' AND a.severity = ANY(:sev)"
                    " AND rd.status = ANY(:updated) AND a.opened_at >= coalesce(rd.sent_at, now())"
                    " ORDER BY a.opened_at LIMIT 1"
                ),
                {"rid": self.id, "sev": severities, "updated": ["confirmed", *IN_FLIGHT]},
            )
        ).mappings().first()  # fmt: skip
        return None if row is None else {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}

    # -- 3. send ----------------------------------------------------------------------------------------------

    async def send_wave(self) -> None:
        devices = (
            await self.s.execute(
                sa.text(
                    "SELECT device_id FROM rollout_devices WHERE rollout_id = :rid AND status = 'pending'"
                    " AND wave <= :wave ORDER BY device_id"
                ),
                {"rid": self.id, "wave": self.r["wave"]},
            )
        ).scalars().all()  # fmt: skip
        if not devices:
            return
        artifact = await self.ctl._catalog.artifact(self.r["model"], self.r["model_version"])
        if artifact is None:
            await self.set_state("paused", f"model {self.r['model']} v{self.r['model_version']} is not in the registry")
            return
        manifest, seq = await self.sign(artifact)
        await self.ctl._publisher.publish_retained([(self.ctl._topics.ota(d), manifest) for d in devices])
        await self.s.execute(
            sa.text(
                "UPDATE rollout_devices SET status = 'sent', seq = :seq, sent_at = :now, status_at = :now"
                " WHERE rollout_id = :rid AND device_id = ANY(:devices)"
            ),
            {"rid": self.id, "seq": seq, "now": self.now, "devices": list(devices)},
        )
        self.result.sent += len(devices)
        await self.decide("send", f"wave {self.r['wave']}: manifest seq {seq} to {len(devices)} device(s)",
                          {"seq": seq, "devices": len(devices), "manifest_bytes": len(manifest)})  # fmt: skip

    async def sign(self, artifact: Any) -> tuple[bytes, int]:
        seq = int((await self.s.execute(sa.text("SELECT nextval('ota_manifest_seq')"))).scalar_one())
        request = ManifestRequest(
            seq=seq,
            component=self.r["component"],
            artifact=artifact,
            issued_at=self.now,
            expires_at=self.now + timedelta(seconds=self.plan.manifest_ttl_s),
            rollout_id=self.id,
        )
        return self.ctl._signer.sign(request), seq

    # -- 4. advance -------------------------------------------------------------------------------------------

    async def maybe_advance(self) -> None:
        wave = self.r["wave"]
        waves = self.plan.waves
        counts = await self.counts()
        in_waves = (
            await self.s.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE status = 'confirmed'),"
                    " count(*) FILTER (WHERE status NOT IN ('current', 'skipped'))"
                    " FROM rollout_devices WHERE rollout_id = :rid AND wave <= :wave"
                ),
                {"rid": self.id, "wave": wave},
            )
        ).one()  # fmt: skip
        confirmed, total = int(in_waves[0]), int(in_waves[1])
        share = confirmed / total if total else 1.0
        soaked = self.now - self.r["wave_started_at"] >= timedelta(seconds=waves[wave].soak_s)
        reasons = []
        if not soaked:
            return  # nothing to say yet
        if share < self.plan.min_confirmed:
            # No counts in the reason: a hold is recorded when its reason changes, not at every confirmation.
            reasons.append(f"fewer than {self.plan.min_confirmed:.0%} of the wave confirmed")
        verdict = self.comparison.verdict
        has_control = counts["pending"] > 0
        if has_control and verdict == "insufficient":
            missing = [r.gate for r in self.comparison.results if r.verdict == "insufficient"]
            reasons.append("not enough data for " + ", ".join(missing))
        if reasons:
            await self.hold("; ".join(reasons), {"confirmed": confirmed, "total": total})
            return
        evidence_doc = {"gates": self.comparison.to_json(), "span": self.span, "confirmed": confirmed,
                        "total": total}  # fmt: skip
        if wave + 1 >= len(waves):
            await self.s.execute(
                sa.text(
                    "UPDATE rollouts SET state = 'completed', finished_at = :now, updated_at = :now,"
                    " reason = NULL WHERE id = :rid"
                ),
                {"rid": self.id, "now": self.now},
            )
            self.result.state = "completed"
            await self.decide("complete", f"all {len(waves)} waves done, {confirmed}/{total} confirmed", evidence_doc)
            return
        await self.s.execute(
            sa.text(
                "UPDATE rollouts SET wave = :w, wave_started_at = :now, updated_at = :now, reason = NULL"
                " WHERE id = :rid"
            ),
            {"rid": self.id, "w": wave + 1, "now": self.now},
        )
        self.r["wave"] = wave + 1
        self.r["wave_started_at"] = self.now
        self.result.wave = wave + 1
        await self.decide("advance", f"wave {wave} passed; wave {wave + 1} ({waves[wave + 1].percent:g} %) starts",
                          evidence_doc, wave=wave)  # fmt: skip
        await self.send_wave()

    async def hold(self, reason: str, counts: dict[str, int]) -> None:
        last = (
            await self.s.execute(
                sa.text(
                    "SELECT action, reason FROM rollout_decisions WHERE rollout_id = :rid ORDER BY id DESC LIMIT 1"
                ),
                {"rid": self.id},
            )
        ).first()  # fmt: skip
        if last is not None and last.action == "hold" and last.reason == reason:
            return
        await self.decide("hold", reason, {"gates": self.comparison.to_json(), "span": self.span, **counts})

    # -- rollback ---------------------------------------------------------------------------------------------

    async def start_rollback(self, breached: list[GateResult]) -> None:
        reason = "; ".join(f"{g.gate} {_fmt(g.value)} > {g.threshold:g}" if g.gate != "event_rate_ratio"
                           else f"{g.gate} {_fmt(g.value)} outside 1/{g.threshold:g}..{g.threshold:g}"
                           for g in breached)  # fmt: skip
        await self.set_state(
            "rolling_back",
            reason,
            evidence={"gates": self.comparison.to_json(), "span": self.span, "counts": dict(self.counts_now)},
            action="rollback",
        )
        await self.s.execute(
            sa.text(
                "UPDATE rollout_devices SET status = 'skipped', reason = 'rollout rolled back', status_at = :now"
                " WHERE rollout_id = :rid AND status = 'pending'"
            ),
            {"rid": self.id, "now": self.now},
        )
        await self.send_rollback()

    async def send_rollback(self) -> None:
        """A manifest back to each device's previous version, for every device that got the new one."""
        rows = (
            await self.s.execute(
                sa.text(
                    "SELECT device_id, from_model, from_version FROM rollout_devices WHERE rollout_id = :rid"
                    " AND (status = ANY(:touched)) ORDER BY device_id"
                ),
                {"rid": self.id, "touched": ["confirmed", "failed", *IN_FLIGHT]},
            )
        ).all()  # fmt: skip
        targets: dict[tuple[str, int], list[str]] = {}
        for device, fm, fv in rows:
            if fm is None or fv is None:
                await self.s.execute(
                    sa.text(
                        "UPDATE rollout_devices SET status = 'skipped', reason = 'no previous version to roll back"
                        " to' WHERE rollout_id = :rid AND device_id = :d"
                    ),
                    {"rid": self.id, "d": device},
                )
                continue
            targets.setdefault((fm, fv), []).append(device)
        for (fm, fv), devices in targets.items():
            artifact = await self.ctl._catalog.artifact(fm, fv)
            if artifact is None:
                await self.decide("rollback_blocked", f"previous version {fm} v{fv} is not in the registry",
                                  {"devices": devices})  # fmt: skip
                continue
            manifest, seq = await self.sign(artifact)
            await self.ctl._publisher.publish_retained([(self.ctl._topics.ota(d), manifest) for d in devices])
            await self.s.execute(
                sa.text(
                    "UPDATE rollout_devices SET status = 'rollback_sent', seq = :seq, sent_at = :now,"
                    " status_at = :now WHERE rollout_id = :rid AND device_id = ANY(:devices)"
                ),
                {"rid": self.id, "seq": seq, "now": self.now, "devices": devices},
            )
            await self.decide("send", f"rollback to {fm} v{fv}: manifest seq {seq} to {len(devices)} device(s)",
                              {"seq": seq, "devices": len(devices), "model": fm, "version": fv})  # fmt: skip
        await self.finish_rollback()

    async def finish_rollback(self) -> None:
        await self.s.execute(
            sa.text("""
                UPDATE rollout_devices rd SET status = 'rolled_back', status_at = :now, confirmed_at = :now
                FROM devices d
                WHERE rd.rollout_id = :rid AND rd.status = 'rollback_sent' AND d.id = rd.device_id
                  AND d.model = rd.from_model AND d.mver = rd.from_version AND d.state_at >= rd.sent_at
            """),
            {"rid": self.id, "now": self.now},
        )
        left = (
            await self.s.execute(
                sa.text(
                    "SELECT count(*) FROM rollout_devices WHERE rollout_id = :rid AND status = 'rollback_sent'"
                ),
                {"rid": self.id},
            )
        ).scalar_one()  # fmt: skip
        if left == 0:
            why = self.r.get("reason") or "rolled back"
            await self.set_state("rolled_back", f"{why}; every updated device is back on its previous version",
                                 finished=True)  # fmt: skip

    # -- records ----------------------------------------------------------------------------------------------

    async def set_state(
        self,
        state: str,
        reason: str,
        *,
        evidence: dict[str, Any] | None = None,
        action: str | None = None,
        finished: bool = False,
    ) -> None:
        await self.s.execute(
            sa.text(
                "UPDATE rollouts SET state = :state, reason = :reason, updated_at = :now,"
                " finished_at = CASE WHEN :finished THEN CAST(:now AS timestamptz) ELSE finished_at END"
                " WHERE id = :rid"
            ),
            {"rid": self.id, "state": state, "reason": reason, "now": self.now, "finished": finished},
        )
        self.r["state"] = state
        self.r["reason"] = reason
        self.result.state = state
        await self.decide(action or state, reason, evidence)

    async def decide(
        self, action: str, reason: str, evidence_doc: dict[str, Any] | None = None, *, wave: int | None = None
    ) -> None:
        await record_decision(self.s, self.id, self.r["wave"] if wave is None else wave, action, reason,
                              evidence_doc, at=self.now)  # fmt: skip
        self.result.decisions.append(action)
        log.info("rollout %s: %s: %s", self.id, action, reason)


def evidence_comparison(canary: Any, control: Any, plan: RolloutPlan) -> Comparison:
    from tinyfleet.rollouts.gates import compare

    return compare(canary, control, plan.gates)


async def record_decision(
    session: AsyncSession,
    rollout_id: int,
    wave: int,
    action: str,
    reason: str,
    evidence_doc: dict[str, Any] | None = None,
    *,
    actor: str = "controller",
    at: datetime | None = None,
) -> None:
    from tinyfleet.store.models import RolloutDecision

    session.add(
        RolloutDecision(
            rollout_id=rollout_id,
            wave=wave,
            action=action,
            reason=reason,
            actor=actor,
            evidence=evidence_doc,
            at=at or datetime.now(UTC),
        )
    )
    await session.flush()


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"
