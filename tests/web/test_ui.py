"""The web UI in a real browser (Debian's Chromium via Playwright) against a live service fed by simulated
devices: real content on every page, live updates without reload, alert acknowledgement that reaches the
database and its audit table, roles and CSRF, accessibility (axe-core), and the README's screenshots."""

from __future__ import annotations

import re

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.registry.conftest import KWS, KWS_LABELS
from tests.rollouts.conftest import patch_output_bias
from tests.web.conftest import ADMIN_KEY, SITES, LiveService, eventually, login, screenshot
from tinyfleet_device.manifest import DeviceCapabilities
from tinyfleet_device.ota_sim import OtaFleet, SimDevice

PAGES = ["/", "/devices/{device}", "/alerts", "/rules", "/models"]


def _device(service: LiveService, index: int = 0) -> str:
    return service.devices[index]


def test_overview_shows_the_fleet_by_site(live_service: LiveService, page: Page) -> None:
    page.goto(live_service.base_url + "/")
    table = page.locator("#devices-table")
    for device in SITES:
        expect(table.get_by_role("link", name=device)).to_be_visible()
    expect(page.locator("#sites-table")).to_contain_text("plant-a")
    expect(page.locator("#sites-table")).to_contain_text("plant-b")
    expect(page.locator("#models-table")).to_contain_text("vib-cls")
    # All online; the two with an open alert (the test rules fire at once) count as degraded.
    expect(page.locator("#n-offline")).to_have_text("0")
    expect(page.locator("#n-degraded")).to_have_text("2", timeout=30_000)
    expect(page.locator("#n-online")).to_have_text("1")
    # The live column counts events pushed over SSE since the page loaded: it grows without a reload.
    cell = table.locator(f'tr[data-device="{_device(live_service)}"] .live-count')
    eventually(lambda: int(cell.inner_text()) > 0, 15)
    expect(page.locator("#live-state")).to_have_text("live")
    eventually(lambda: page.locator("#n-rate").inner_text() not in ("–", "0", "0.0"), 70, 1)
    screenshot(page, "overview")
    # On a tablet (portrait) the page fits its width: wide tables scroll inside their own box.
    page.set_viewport_size({"width": 820, "height": 1180})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator("#sites-chart svg").bounding_box()["width"] <= 820  # type: ignore[index]


def test_device_page_gets_new_events_live(live_service: LiveService, page: Page) -> None:
    device = _device(live_service, 2)
    page.goto(f"{live_service.base_url}/devices/{device}")
    expect(page.locator("h1")).to_contain_text(device)
    expect(page.locator("#dev-model")).to_contain_text("vib-cls v4")
    expect(page.locator("#dev-site")).to_have_text("plant-b")
    rows = page.locator("#events-table tbody tr")
    expect(rows.first).not_to_have_class("empty")
    # A row that arrives after the load is marked `fresh`: it came over the live stream, not from a reload.
    expect(page.locator("#events-table tbody tr.fresh").first).to_be_visible(timeout=15_000)
    newest_before = page.locator("#events-table tbody tr").first.inner_text()
    eventually(lambda: page.locator("#events-table tbody tr").first.inner_text() != newest_before, 10)
    expect(page.locator("#anom-chart svg")).to_be_visible()
    expect(page.locator("#anom-chart")).to_contain_text("threshold 0.6")
    expect(page.locator("#label-chart svg")).to_be_visible()
    expect(page.locator("#tel-chart svg")).to_be_visible(timeout=20_000)
    expect(page.locator("#tel-latest")).to_contain_text("battery")
    screenshot(page, "device")


def test_operator_acknowledges_an_alert_and_the_database_and_audit_say_so(
    live_service: LiveService, page: Page
) -> None:
    device = _device(live_service, 1)
    eventually(lambda: live_service.db("SELECT id FROM alerts WHERE group_key = %s AND state = 'open'", device), 30)
    (alert_id,) = live_service.db("SELECT id FROM alerts WHERE group_key = %s AND state = 'open'", device)[0]
    login(page, live_service.base_url, "olga", "/alerts")
    expect(page.locator(".who")).to_contain_text("olga")
    expect(page.locator(".who")).to_contain_text("operator")
    row = page.locator(f'#alerts-table tr[data-alert="{alert_id}"]')
    expect(row).to_contain_text("slow-inference")
    screenshot(page, "alerts")
    row.get_by_role("button", name=f"Acknowledge alert {alert_id}").click()
    expect(page.locator("#alert-message")).to_have_text(f"alert {alert_id} is acknowledged")
    state, by = live_service.db("SELECT state, acknowledged_by FROM alerts WHERE id = %s", alert_id)[0]
    assert (state, by) == ("acknowledged", "olga")
    audit = live_service.db(
        "SELECT actor, action, status FROM audit WHERE target = %s AND action LIKE %s", str(alert_id), "%/ack"
    )
    assert ("user:olga", "POST /api/v1/alerts/{alert_id}/ack", 200) in audit
    # The history of the alert shows the acknowledgement.
    page.locator("#f-state").select_option("")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("button", name=f"History of alert {alert_id}").click()
    expect(page.locator("#history")).to_contain_text("ack")
    # Logged in as the operator, sending a command reaches the broker and is audited.
    page.goto(f"{live_service.base_url}/devices/{device}")
    expect(page.locator("#dev-model")).to_contain_text("vib-cls")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#cmd-result")).to_contain_text("sent identify")
    assert live_service.db("SELECT actor FROM audit WHERE action = %s", "POST /api/v1/devices/{device_id}/commands")


def test_read_only_user_cannot_act_and_csrf_less_posts_are_refused(
    live_service: LiveService, page: Page, context: BrowserContext
) -> None:
    login(page, live_service.base_url, "rita", "/alerts")
    expect(page.locator(".who")).to_contain_text("read-only")
    expect(page.locator("#alerts-table tbody tr").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    (alert_id,) = eventually(lambda: live_service.db("SELECT id FROM alerts WHERE state = 'open' LIMIT 1"), 30)[0]
    # With the session's CSRF token the API still says no: the role lacks the write scope.
    refused = page.evaluate(
        """async (id) => { const r = await fetch(`/api/v1/alerts/${id}/ack`, {method: "POST", headers:
        {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}}); return r.status; }""",
        alert_id,
    )
    assert refused == 403
    # The operator's session without the CSRF token: refused, and the alert is unchanged.
    page.goto(live_service.base_url + "/login")
    page.get_by_role("button", name="Log out").click()
    login(page, live_service.base_url, "olga", "/alerts")
    no_csrf = page.evaluate(
        "async (id) => (await fetch(`/api/v1/alerts/${id}/ack`, {method: 'POST'})).status", alert_id
    )
    assert no_csrf == 403
    assert live_service.db("SELECT state FROM alerts WHERE id = %s", alert_id)[0][0] == "open"
    wrong = page.evaluate(
        "async (id) => (await fetch(`/api/v1/alerts/${id}/ack`,"
        " {method: 'POST', headers: {'X-CSRF-Token': 'x'}})).status",
        alert_id,
    )
    assert wrong == 403
    # A cross-site form post cannot log in either: the login form needs the session's token.
    r = httpx.post(f"{live_service.base_url}/login", data={"username": "olga", "password": "operator-pass-123"})
    assert r.status_code == 403
    # Wrong passwords are refused with the form again.
    fresh = context.browser.new_context() if context.browser else None
    assert fresh is not None
    p2 = fresh.new_page()
    p2.goto(live_service.base_url + "/login")
    p2.get_by_label("User name").fill("olga")
    p2.get_by_label("Password", exact=True).fill("not-the-password")
    p2.get_by_role("button", name="Log in", exact=True).click()
    expect(p2.get_by_role("alert")).to_contain_text("Wrong user name or password")
    fresh.close()


def test_login_with_an_api_key(live_service: LiveService, page: Page) -> None:
    page.goto(live_service.base_url + "/login?next=/rules")
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Log in with the key").click()
    page.wait_for_url(live_service.base_url + "/rules", timeout=30_000)
    expect(page.locator(".who")).to_contain_text("admin")
    expect(page.locator("#rules-table")).to_contain_text("cls-burst")
    expect(page.locator("#rules-table")).to_contain_text("test.yml")
    page.get_by_role("button", name="Reload rules from disk").click()
    expect(page.locator("#rules-message")).to_have_text("rules reloaded")
    assert live_service.db("SELECT actor FROM audit WHERE action = 'POST /api/v1/rules/reload'") == [("admin-env",)]


def test_a_rolled_back_rollout_shows_its_waves_gates_and_evidence(live_service: LiveService, page: Page) -> None:
    """A real staged rollout: simulated devices that verify the signed manifest, download the model and run it
    in TFLM; the new version always says "no", the canary-vs-control gate fails and the rollout rolls back."""
    v1 = KWS.read_bytes()
    bad = patch_output_bias(v1, label=3, delta=2**24)
    devices = [f"kws-{live_service.prefix.split('/')[0]}-{i}" for i in range(5)]
    sims = [SimDevice(d, "kws", 1, artifact=v1, caps=DeviceCapabilities(flash=1 << 20, ram=256 << 10, arena=128 << 10))
            for d in devices]  # fmt: skip
    with live_service.admin() as api:
        for version, data in ((1, v1), (2, bad)):
            r = api.put(f"/api/v1/models/kws/versions/{version}", content=data,
                        params={"labels": KWS_LABELS, "task": "keyword spotting"})  # fmt: skip
            assert r.status_code in (200, 201), r.text
        with OtaFleet(sims, host=MQTT_HOST, port=MQTT_PORT, prefix=live_service.prefix,
                      trusted_keys=[live_service.extra["public_key"]], events_per_s=8.0):  # fmt: skip

            def registered() -> bool:
                items = api.get("/api/v1/devices", params={"limit": 500}).json()["items"]
                return len([d for d in items if d["model"] == "kws" and d["mver"] == 1]) == len(devices)

            eventually(registered, 30)
            for d in devices:
                assert api.patch(f"/api/v1/devices/{d}/tags", json={"tags": {"fleet": "kws"}}).status_code == 200
            waves = [{"percent": 40, "soak_s": 200}, {"percent": 100, "soak_s": 0}]
            plan = {"waves": waves, "gates": {"min_events": 40}}
            r = api.post("/api/v1/releases", json={"name": "kws-v2-says-no", "model": "kws", "model_version": 2,
                                                   "cohort": {"tags": {"fleet": "kws"}}, "plan": plan})  # fmt: skip
            assert r.status_code == 201, r.text
            ro = api.post(f"/api/v1/releases/{r.json()['id']}/rollouts").json()
            try:  # the canaries' label shift is found within the soak; a loaded CI machine is slow
                eventually(lambda: api.get(f"/api/v1/rollouts/{ro['id']}").json()["state"] == "rolled_back", 170, 0.5)
            except AssertionError:
                state = api.get(f"/api/v1/rollouts/{ro['id']}").json()
                decisions = api.get(f"/api/v1/rollouts/{ro['id']}/decisions").json()["items"]
                raise AssertionError(f"{state} {[(d['action'], d['reason']) for d in decisions]}") from None
    login(page, live_service.base_url, "olga", "/models")
    expect(page.locator("#registry")).to_contain_text("kws")
    page.get_by_role("button", name="Inspect kws v2").click()
    expect(page.locator("#inspection")).to_contain_text("TFLM arena")
    expect(page.locator("#rollouts-table")).to_contain_text("kws-v2-says-no")
    page.get_by_role("link", name=f"#{ro['id']}").click()
    expect(page.locator("#ro-state")).to_have_text("rolled_back")
    expect(page.locator("#gates")).to_contain_text("label_psi")
    expect(page.locator("#gates tr", has_text="label_psi")).to_contain_text("fail")
    expect(page.locator("#decisions")).to_contain_text("rollback")
    expect(page.locator("#waves svg")).to_be_visible()
    expect(page.locator("#gate-chart svg")).to_be_visible()
    screenshot(page, "rollout")


@pytest.mark.parametrize("path", [*PAGES, "/login"])
def test_pages_have_no_serious_accessibility_violations(live_service: LiveService, page: Page, path: str) -> None:
    page.goto(live_service.base_url + path.format(device=_device(live_service)))
    page.wait_for_timeout(1500)  # the script has filled the page (live stream: never network-idle)
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:5]) for v in serious]
