"""Staged rollouts end to end: service (ingest, API over HTTP, controller), the shared Mosquitto, a fresh
database and a simulated fleet that verifies the signed manifests, downloads over HTTP, checks SHA-256 and
runs the models in TFLM — its events come from the model it runs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from tests.rollouts.conftest import FleetEnv, eventually, patch_output_bias

FAST_WAVES = [{"percent": 10, "soak_s": 1.5}, {"percent": 50, "soak_s": 1.5}, {"percent": 100, "soak_s": 0}]


async def release(env: FleetEnv, name: str, version: int, plan: dict[str, Any]) -> dict[str, Any]:
    r = await env.api.post("/api/v1/releases", json={
        "name": name, "model": "kws", "model_version": version, "cohort": {"tags": {}}, "plan": plan,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


async def start(env: FleetEnv, release_id: int) -> dict[str, Any]:
    r = await env.api.post(f"/api/v1/releases/{release_id}/rollouts")
    assert r.status_code == 201, r.text
    return dict(r.json())


async def rollout(env: FleetEnv, rollout_id: int) -> dict[str, Any]:
    r = await env.api.get(f"/api/v1/rollouts/{rollout_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def decisions(env: FleetEnv, rollout_id: int) -> list[dict[str, Any]]:
    return list((await env.api.get(f"/api/v1/rollouts/{rollout_id}/decisions")).json()["items"])


async def devices_of(env: FleetEnv, rollout_id: int) -> dict[str, dict[str, Any]]:
    items = (await env.api.get(f"/api/v1/rollouts/{rollout_id}/devices")).json()["items"]
    return {d["device_id"]: d for d in items}


async def test_a_good_version_goes_out_wave_by_wave_and_an_offline_device_gets_it_on_reconnect(
    fleet_env: FleetEnv,
) -> None:
    env = fleet_env
    v2 = patch_output_bias(env.v1, label=0, delta=1)  # other bytes, same behaviour
    await env.push(2, v2)
    plan = {"waves": FAST_WAVES, "gates": {"min_events": 40}, "min_confirmed": 0.9}
    with env.fleet(20) as fleet:
        await env.wait_devices(20)
        rel = await release(env, "kws-v2", 2, plan)
        ro = await start(env, rel["id"])
        assert ro["state"] == "running"
        assert ro["totals"] == {"pending": 20}
        per_wave = Counter(d["wave"] for d in (await devices_of(env, ro["id"])).values())
        assert per_wave == {0: 2, 1: 8, 2: 10}
        # one device of the last wave is offline when its manifest goes out
        late = sorted(d for d, x in (await devices_of(env, ro["id"])).items() if x["wave"] == 2)[0]
        fleet.set_offline(late)

        async def completed() -> bool:
            return (await rollout(env, ro["id"]))["state"] == "completed"

        try:
            await eventually(completed, 120)
        except AssertionError:
            raise AssertionError(f"{await rollout(env, ro['id'])} {await decisions(env, ro['id'])}") from None

        # it completes once min_confirmed (90 %: 18 of 20) are confirmed; the last online device may still be
        # applying then, and confirms a moment later
        async def nineteen_confirmed() -> bool:
            states = await devices_of(env, ro["id"])
            return sum(1 for d in states.values() if d["status"] == "confirmed") == 19

        await eventually(nineteen_confirmed, 15)
        states = await devices_of(env, ro["id"])
        assert states[late]["status"] == "sent"  # retained for it, not confirmed: it is offline
        actions = [d["action"] for d in await decisions(env, ro["id"])]
        assert actions[0] == "start"
        assert actions.count("advance") == 2
        assert actions[-1] == "complete"
        advance = next(d for d in await decisions(env, ro["id"]) if d["action"] == "advance")
        gates = {g["gate"]: g["verdict"] for g in advance["evidence"]["gates"]["gates"]}
        assert gates["label_psi"] == "pass"
        assert gates["update_failure_rate"] == "pass"

        fleet.set_online(late)  # back: it gets its retained manifest and updates

        async def late_confirmed() -> bool:
            return (await devices_of(env, ro["id"]))[late]["status"] == "confirmed"

        await eventually(late_confirmed, 30)
        assert set(fleet.running().values()) == {("kws", 2)}
        assert fleet.errors == []
        assert fleet.devices[late].history == ["downloading", "verified", "applied"]
        reports = (await env.api.get(f"/api/v1/devices/{late}/ota-reports")).json()["items"]
        assert [r["state"] for r in reversed(reports)] == ["downloading", "verified", "applied"]
        assert reports[0]["mver"] == 2


async def test_a_bad_canary_is_rolled_back_within_its_soak_and_the_fleet_ends_on_the_old_version(
    fleet_env: FleetEnv,
) -> None:
    env = fleet_env
    bad = patch_output_bias(env.v1, label=3, delta=2**24)  # always says "no"
    await env.push(3, bad)
    soak = 60.0
    plan = {"waves": [{"percent": 20, "soak_s": soak}, {"percent": 100, "soak_s": 0}],
            "gates": {"min_events": 40}}  # fmt: skip
    with env.fleet(10) as fleet:
        await env.wait_devices(10)
        rel = await release(env, "kws-v3-bad", 3, plan)
        t0 = time.monotonic()
        ro = await start(env, rel["id"])

        async def rolled_back() -> bool:
            return (await rollout(env, ro["id"]))["state"] == "rolled_back"

        await eventually(rolled_back, soak)
        took = time.monotonic() - t0
        assert took < soak
        final = await rollout(env, ro["id"])
        assert final["totals"] == {"rolled_back": 2, "skipped": 8}
        assert "label_psi" in final["reason"]
        (rb,) = [d for d in await decisions(env, ro["id"]) if d["action"] == "rollback"]
        label = next(g for g in rb["evidence"]["gates"]["gates"] if g["gate"] == "label_psi")
        assert label["verdict"] == "fail"
        assert label["detail"]["canary_top_label"] == "3"
        assert label["detail"]["canary_top_share"] == 1.0
        # the canaries got a second manifest (higher sequence number) back to version 1
        canaries = [d for d in (await devices_of(env, ro["id"])).values() if d["status"] == "rolled_back"]
        assert len(canaries) == 2
        sends = [d for d in await decisions(env, ro["id"]) if d["action"] == "send"]
        assert sends[-1]["evidence"]["version"] == 1
        assert sends[-1]["evidence"]["seq"] > sends[0]["evidence"]["seq"]
        await eventually(lambda: set(fleet.running().values()) == {("kws", 1)}, 10)
        assert fleet.errors == []
        await asyncio.sleep(0.5)
        # the others never got anything
        for d in fleet.devices.values():
            if d.device_id not in {c["device_id"] for c in canaries}:
                assert d.history == []
