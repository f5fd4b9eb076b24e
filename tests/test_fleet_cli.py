"""`tinyfleet devices …` and `tinyfleet api-keys …` as real subprocesses against a real database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import psycopg

from tests.api.conftest import api_settings
from tests.test_cli import run_cli
from tinyfleet.api import create_app
from tinyfleet.fleet.passwords import verify_mosquitto_hash
from tinyfleet.store.migrate import upgrade


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_first_admin_key_from_the_cli_works_on_the_api(database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    env = {"TINYFLEET_DATABASE_URL": database_url}
    made = run_cli("api-keys", "create", "--name", "ops", "--scope", "admin", cwd=tmp_path, **env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tfk_")
    assert "store the token now" in made.stderr
    assert token not in str(_rows(database_url, "SELECT * FROM api_keys"))

    async def call() -> int:
        app = create_app(api_settings(database_url))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return (await c.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"})).status_code

    assert asyncio.run(call()) == 200
    listed = run_cli("api-keys", "list", "--json", cwd=tmp_path, **env)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["scopes"] == ["admin"]
    assert row["revoked_at"] is None
    bad = run_cli("api-keys", "create", "--name", "x", "--scope", "root", cwd=tmp_path, **env)
    assert bad.returncode == 1
    assert "unknown scope" in bad.stderr
    revoked = run_cli("api-keys", "revoke", row["prefix"], cwd=tmp_path, **env)
    assert revoked.returncode == 0, revoked.stderr
    assert asyncio.run(call()) == 401
    assert run_cli("api-keys", "revoke", "tfk_deadbeef", cwd=tmp_path, **env).returncode == 1
    actions = [str(a) for (a,) in _rows(database_url, "SELECT action FROM audit ORDER BY id")]
    assert actions == ["cli api-keys create", "cli api-keys revoke"]


def test_devices_provision_import_lifecycle_and_broker_files(database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    marker = tmp_path / "reloaded"
    env = {
        "TINYFLEET_DATABASE_URL": database_url,
        "TINYFLEET_MQTT_URL": "mqtt://tinyfleet-service:svc-pw@127.0.0.1:1883",
        "TINYFLEET_BROKER_PASSWORD_FILE": str(tmp_path / "broker" / "passwd"),
        "TINYFLEET_BROKER_ACL_FILE": str(tmp_path / "broker" / "acl"),
        "TINYFLEET_BROKER_RELOAD_COMMAND": f"touch {marker}",
        "TINYFLEET_TOPIC_PREFIX": "acme/v1",
    }
    one = run_cli("devices", "provision", "press-01", "--tag", "site=plant-a", "--json", cwd=tmp_path, **env)
    assert one.returncode == 0, one.stderr
    creds = json.loads(one.stdout)
    assert creds["username"] == "press-01"
    assert marker.exists(), "the broker was not reloaded"
    passwd = dict(line.split(":", 1) for line in (tmp_path / "broker" / "passwd").read_text().splitlines())
    assert set(passwd) == {"tinyfleet-service", "press-01"}
    assert verify_mosquitto_hash(creds["password"], passwd["press-01"])
    assert verify_mosquitto_hash("svc-pw", passwd["tinyfleet-service"])
    acl = (tmp_path / "broker" / "acl").read_text()
    assert "user tinyfleet-service\ntopic readwrite #" in acl
    assert "pattern write acme/v1/%u/evt" in acl
    assert "pattern read acme/v1/%u/cmd" in acl

    # A CSV with one bad row: nothing is provisioned, the row is named.
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("device_id,site,line\npress-02,plant-a,1\npress 03,plant-a,2\n")
    bad = run_cli("devices", "import", str(bad_csv), cwd=tmp_path, **env)
    assert bad.returncode == 1
    assert "line 3 (press 03)" in bad.stderr
    assert "nothing was provisioned" in bad.stderr
    assert _rows(database_url, "SELECT count(*) FROM devices") == [(1,)]

    good_csv = tmp_path / "good.csv"
    good_csv.write_text("device_id,site,line\npress-02,plant-a,1\npress-03,plant-b,2\n")
    out = tmp_path / "creds.csv"
    imported = run_cli("devices", "import", str(good_csv), "-o", str(out), cwd=tmp_path, **env)
    assert imported.returncode == 0, imported.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "device_id,username,password"
    assert len(lines) == 3
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert run_cli("devices", "import", str(good_csv), "-o", str(out), cwd=tmp_path, **env).returncode == 1

    listed = run_cli("devices", "list", "--selector", "site=plant-a", cwd=tmp_path, **env)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["press-01", "press-02"]
    assert run_cli("devices", "tag", "press-02", "line=", "machine=m2", cwd=tmp_path, **env).returncode == 0
    assert _rows(database_url, "SELECT tags FROM devices WHERE id = 'press-02'") == [
        ({"site": "plant-a", "machine": "m2"},)
    ]

    assert run_cli("devices", "disable", "press-02", cwd=tmp_path, **env).returncode == 0
    assert "press-02" not in (tmp_path / "broker" / "passwd").read_text()
    assert run_cli("devices", "enable", "press-02", cwd=tmp_path, **env).returncode == 0
    assert "press-02:" in (tmp_path / "broker" / "passwd").read_text()
    rotated = run_cli("devices", "rotate", "press-02", cwd=tmp_path, **env)
    new_password = rotated.stdout.split("password: ")[1].strip()
    stored = (tmp_path / "broker" / "passwd").read_text().split("press-02:")[1].splitlines()[0]
    assert verify_mosquitto_hash(new_password, stored)
    assert run_cli("devices", "decommission", "press-03", cwd=tmp_path, **env).returncode == 0
    assert "press-03" not in (tmp_path / "broker" / "passwd").read_text()
    again = run_cli("devices", "enable", "press-03", cwd=tmp_path, **env)
    assert again.returncode == 1
    assert "decommissioned" in again.stderr

    (tmp_path / "broker" / "passwd").unlink()
    assert run_cli("devices", "sync-broker", cwd=tmp_path, **env).returncode == 0
    assert (tmp_path / "broker" / "passwd").read_text().count("\n") == 3  # service, press-01, press-02

    audit = [str(a) for (a,) in _rows(database_url, "SELECT action FROM audit ORDER BY id")]
    assert audit == [
        "cli devices provision", "cli devices import", "cli devices tag", "cli devices disable",
        "cli devices enable", "cli devices rotate", "cli devices decommission",
    ]  # fmt: skip
    assert {str(a) for (a,) in _rows(database_url, "SELECT actor FROM audit")} == {f"cli:{_user()}"}


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_cli_reports_an_unmigrated_database_in_one_line(database_url: str, tmp_path: Path) -> None:
    result = run_cli("devices", "list", cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url)
    assert result.returncode == 1
    assert result.stderr.startswith("tinyfleet: database error")
    assert len(result.stderr.splitlines()) == 1
