"""Releases and rollouts through the API: bad requests get clear 4xx, operators pause / resume / abort, a
device that says "applied" but comes back on its old version is not believed, an incompatible one is skipped."""

from __future__ import annotations

from typing import Any

from tests.rollouts.conftest import FleetEnv, eventually, patch_output_bias
from tests.rollouts.test_end_to_end import decisions, devices_of, release, rollout, start


async def test_bad_releases_are_refused_with_a_clear_reason(fleet_env: FleetEnv) -> None:
    api = fleet_env.api
    base: dict[str, Any] = {"name": "r1", "model": "kws", "model_version": 1}
    r = await api.post("/api/v1/releases", json={**base, "model_version": 9})
    assert r.status_code == 422
    assert "not in the registry" in r.json()["error"]["message"]
    r = await api.post("/api/v1/releases", json={**base, "plan": {"waves": [{"percent": 50, "soak_s": 1},
                                                                          {"percent": 10, "soak_s": 1}]}})  # fmt: skip
    assert r.status_code == 422
    assert "percent must increase" in r.text
    r = await api.post("/api/v1/releases", json={**base, "plan": {"waves": [{"percent": 50, "soak_s": 1}]}})
    assert r.status_code == 422
    assert "100 percent" in r.text
    r = await api.post("/api/v1/releases", json={**base, "plan": {"gates": {"max_label_psi": -1}}})
    assert r.status_code == 422
    r = await api.post("/api/v1/releases", json={**base, "colour": "blue"})
    assert r.status_code == 422
    r = await api.post("/api/v1/releases", json={**base, "cohort": {"tags": {"site": "nowhere"}}})
    assert r.status_code == 201
    rel = r.json()
    assert (await api.post("/api/v1/releases", json=base)).status_code == 409
    r = await api.post(f"/api/v1/releases/{rel['id']}/rollouts")
    assert r.status_code == 422
    assert "no devices" in r.json()["error"]["message"]
    assert (await api.post("/api/v1/releases/999/rollouts")).status_code == 404
    assert (await api.get("/api/v1/rollouts/999")).status_code == 404
    assert (await api.post("/api/v1/rollouts/999/pause")).status_code == 404


async def test_operators_pause_resume_and_abort_and_every_step_is_recorded(fleet_env: FleetEnv) -> None:
    env = fleet_env
    await env.push(2, patch_output_bias(env.v1, label=0, delta=1))
    plan = {"waves": [{"percent": 20, "soak_s": 600}, {"percent": 100, "soak_s": 0}]}
    with env.fleet(5, events_per_s=2):
        await env.wait_devices(5)
        ro = await start(env, (await release(env, "kws-v2", 2, plan))["id"])
        api = env.api
        r = await api.post(f"/api/v1/rollouts/{ro['id']}/pause", json={"reason": "maintenance window"})
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["reason"]) == ("paused", "maintenance window")
        assert (await api.post(f"/api/v1/rollouts/{ro['id']}/pause")).status_code == 409
        assert (await api.post(f"/api/v1/rollouts/{ro['id']}/resume")).json()["state"] == "running"
        r = await api.post(f"/api/v1/rollouts/{ro['id']}/abort")
        assert r.json()["state"] == "aborted"
        assert r.json()["totals"].get("pending", 0) == 0
        assert (await api.post(f"/api/v1/rollouts/{ro['id']}/resume")).status_code == 409
        # who did it: the API key of the request (here the configured admin key)
        ops = [(d["action"], d["actor"]) for d in await decisions(env, ro["id"]) if d["actor"] != "controller"]
        assert ops == [("start", "admin-env"), ("pause", "admin-env"), ("resume", "admin-env"), ("abort", "admin-env")]
        assert (await env.api.get(f"/api/v1/releases/{ro['release_id']}")).json()["created_by"] == "admin-env"
        # a new rollout of the same release may start once the old one is over
        assert (await api.post(f"/api/v1/releases/{ro['release_id']}/rollouts")).status_code == 201


async def test_applied_but_back_on_the_old_version_is_a_failed_update_not_a_success(fleet_env: FleetEnv) -> None:
    env = fleet_env
    await env.push(2, patch_output_bias(env.v1, label=0, delta=1))
    plan = {"waves": [{"percent": 100, "soak_s": 0}], "confirm_timeout_s": 3, "min_confirmed": 0.5,
            "gates": {"max_update_failure_rate": 0.5}}  # fmt: skip
    with env.fleet(3) as fleet:
        await env.wait_devices(3)
        victim = "dev-001"
        fleet.devices[victim].power_loss_next = True
        ro = await start(env, (await release(env, "kws-v2", 2, plan))["id"])

        async def settled() -> bool:
            states = await devices_of(env, ro["id"])
            return all(d["status"] in ("confirmed", "failed") for d in states.values())

        await eventually(settled, 30)
        states = await devices_of(env, ro["id"])
        assert states[victim]["status"] == "failed"
        assert "not confirmed on the new version" in states[victim]["reason"]
        assert fleet.devices[victim].history[-1] == "applied"  # what it said
        assert fleet.running()[victim] == ("kws", 1)  # what it runs
        assert [d["status"] for k, d in sorted(states.items()) if k != victim] == ["confirmed", "confirmed"]
        await eventually(lambda: _state_is(env, ro["id"], "completed"), 10)


async def test_a_device_that_cannot_run_the_version_is_skipped_with_the_reason(fleet_env: FleetEnv) -> None:
    env = fleet_env
    await env.push(2, patch_output_bias(env.v1, label=0, delta=1))
    with env.fleet(2) as fleet:
        small = fleet.devices["dev-000"]
        small.caps = type(small.caps)(flash=1 << 20, ram=64 << 10, arena=4096)
        fleet._publish_state(small)  # its birth message now says: 4 KB arena
        await env.wait_devices(2)

        async def small_reported() -> bool:
            d = (await env.api.get("/api/v1/devices/dev-000")).json()
            return bool((d.get("capabilities") or {}).get("arena") == 4096)

        await eventually(small_reported, 10)
        ro = await start(env, (await release(env, "kws-v2", 2, {"waves": [{"percent": 100, "soak_s": 0}]}))["id"])
        states = await devices_of(env, ro["id"])
        assert states["dev-000"]["status"] == "skipped"
        assert "arena" in states["dev-000"]["reason"]
        assert states["dev-001"]["status"] in ("pending", "sent", "downloading", "verified", "applied", "confirmed")
        await eventually(lambda: _state_is(env, ro["id"], "completed"), 30)
        assert fleet.running() == {"dev-000": ("kws", 1), "dev-001": ("kws", 2)}


async def _state_is(env: FleetEnv, rollout_id: int, state: str) -> bool:
    return (await rollout(env, rollout_id))["state"] == state


async def test_a_device_downloads_its_artifact_with_its_own_credentials_and_nothing_else_works(
    fleet_env: FleetEnv,
) -> None:
    import httpx

    env = fleet_env
    r = await env.api.post("/api/v1/devices", json={"id": "press-07", "tags": {"site": "plant-a"}})
    assert r.status_code == 201, r.text
    password = r.json()["credentials"]["password"]
    url = f"{env.base_url}/api/v1/models/kws/versions/1/artifact"
    # not from localhost-in-dev-mode: the service sees the client address, so present credentials explicitly
    async with httpx.AsyncClient(timeout=30) as device:
        ok = await device.get(url, auth=("press-07", password), headers={"Range": "bytes=0-99"})
        assert ok.status_code == 206
        assert ok.content == env.v1[:100]
        wrong = await device.get(url, auth=("press-07", "not-the-password"))
        assert wrong.status_code == 401
        assert "device credentials refused" in wrong.json()["error"]["message"]
        other = await device.get(url, auth=("press-99", password))
        assert other.status_code == 401
    r = await env.api.post("/api/v1/devices/press-07/disable")
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient(timeout=30) as device:
        assert (await device.get(url, auth=("press-07", password))).status_code == 401
