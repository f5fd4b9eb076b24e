"""API keys on every route: 401 (with WWW-Authenticate) without or with a bad key, 403 without the scope, dev-mode
GETs from localhost open, prod closed; keys created, listed and revoked over REST; mutations audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from tests.api.conftest import api_settings, bearer
from tinyfleet.api import create_app

PROD_ADMIN = "prod-admin-key-with-enough-entropy-0123456789"


def remote_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client seen from another host (not loopback)."""
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 4711))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def test_dev_mode_get_from_localhost_needs_no_key_but_mutations_do(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/devices")).status_code == 200
    r = await client.post("/api/v1/devices", json={"id": "press-01"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"
    assert (await client.post("/api/v1/rules/reload")).status_code == 401
    assert (await client.post("/api/v1/alerts/1/ack")).status_code == 401
    # Admin-only reads are never open.
    assert (await client.get("/api/v1/api-keys")).status_code == 401
    assert (await client.get("/api/v1/audit")).status_code == 401


async def test_remote_get_needs_a_key_and_health_stays_open(app: FastAPI, keys: dict[str, str]) -> None:
    async with app.router.lifespan_context(app), remote_client(app) as c:
        for path in ("/api/v1/devices", "/api/v1/events/stats", "/api/v1/dead-letters", "/api/v1/alerts",
                     "/api/v1/rules", "/api/v1/cohorts"):  # fmt: skip
            r = await c.get(path)
            assert r.status_code == 401, path
            assert "WWW-Authenticate" in r.headers
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200
        assert (await c.get("/api/v1/devices", headers=bearer(keys["read"]))).status_code == 200


async def test_invalid_and_revoked_keys_get_401_and_wrong_scope_403(
    app: FastAPI, keys: dict[str, str], migrated_db: str
) -> None:
    async with app.router.lifespan_context(app), remote_client(app) as c:
        r = await c.get("/api/v1/devices", headers=bearer("tfk_00000000_not-a-real-key"))
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert (await c.get("/api/v1/devices", headers={"Authorization": "Basic dXNlcjpwYXNz"})).status_code == 401

        # read cannot write; write cannot provision; provisioning cannot manage keys
        r = await c.post("/api/v1/cohorts", json={"name": "a", "query": "site=x"}, headers=bearer(keys["read"]))
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert "write" in r.json()["error"]["message"]
        r = await c.post("/api/v1/devices", json={"id": "d1"}, headers=bearer(keys["write"]))
        assert r.status_code == 403
        r = await c.get("/api/v1/api-keys", headers=bearer(keys["device-provisioning"]))
        assert r.status_code == 403
        # scopes that imply read
        for scope in ("write", "device-provisioning", "admin"):
            assert (await c.get("/api/v1/devices", headers=bearer(keys[scope]))).status_code == 200, scope

        # a revoked key stops working at once
        listed = (await c.get("/api/v1/api-keys", headers=bearer(keys["admin"]))).json()["items"]
        read_key = next(k for k in listed if k["scopes"] == ["read"])
        assert keys["read"].startswith(read_key["prefix"] + "_")
        assert read_key["last_used_at"] is not None  # it was used above
        r = await c.delete(f"/api/v1/api-keys/{read_key['prefix']}", headers=bearer(keys["admin"]))
        assert r.status_code == 200
        assert r.json()["revoked_at"] is not None
        assert (await c.get("/api/v1/devices", headers=bearer(keys["read"]))).status_code == 401
    # only the digest is stored, never the token
    with psycopg.connect(migrated_db) as conn:
        stored = [str(r[0]) for r in conn.execute("SELECT token_sha256 FROM api_keys").fetchall()]
    assert all(len(s) == 64 for s in stored)
    assert not any(token in s for token in keys.values() for s in stored)


async def test_create_key_over_rest_shows_the_token_once(app: FastAPI, keys: dict[str, str]) -> None:
    async with app.router.lifespan_context(app), remote_client(app, bearer(keys["admin"])) as c:
        r = await c.post("/api/v1/api-keys", json={"name": "grafana", "scopes": ["read"]})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert token.startswith(r.json()["prefix"] + "_")
        assert len(token) > 40
        assert r.json()["created_by"] == "key:" + str(
            next(k["id"] for k in (await c.get("/api/v1/api-keys")).json()["items"] if k["scopes"] == ["admin"])
        )
        listed = (await c.get("/api/v1/api-keys")).json()["items"]
        assert all("token" not in k for k in listed)
        r = await c.post("/api/v1/api-keys", json={"name": "x", "scopes": ["superuser"]})
        assert r.status_code == 422
        assert "superuser" in r.json()["error"]["message"]
        assert (await c.delete("/api/v1/api-keys/999999")).status_code == 404
    async with remote_client(app, bearer(token)) as c2:
        assert (await c2.get("/api/v1/devices")).status_code == 200


async def test_mutations_are_audited_with_the_key_and_outcome(
    app: FastAPI, keys: dict[str, str], migrated_db: str
) -> None:
    async with app.router.lifespan_context(app), remote_client(app) as c:
        r = await c.post("/api/v1/devices", json={"id": "press-09", "tags": {"site": "a"}},
                         headers=bearer(keys["device-provisioning"]))  # fmt: skip
        assert r.status_code == 201
        r = await c.post("/api/v1/devices", json={"id": "press-09"}, headers=bearer(keys["device-provisioning"]))
        assert r.status_code == 409
        assert (await c.post("/api/v1/devices", json={"id": "x"}, headers=bearer(keys["read"]))).status_code == 403
        assert (await c.post("/api/v1/devices", json={"id": "x"})).status_code == 401  # no key: nothing to audit
        entries = (await c.get("/api/v1/audit", headers=bearer(keys["admin"]))).json()["items"]
    rows = [(e["action"], e["status"], e["summary"].get("device_id")) for e in entries]
    assert rows == [
        ("POST /api/v1/devices", 403, None),
        ("POST /api/v1/devices", 409, None),
        ("POST /api/v1/devices", 201, "press-09"),
    ]
    with psycopg.connect(migrated_db) as conn:
        actors = {str(r[0]) for r in conn.execute("SELECT actor FROM audit").fetchall()}
        summary = str(conn.execute("SELECT summary::text FROM audit WHERE status = 201").fetchone())
    assert all(a.startswith("key:") for a in actors)
    assert "password" not in summary


async def test_prod_mode_has_no_open_get_and_takes_the_configured_admin_key(
    migrated_db: str, make_client: Callable[[FastAPI], Any]
) -> None:
    settings = api_settings(
        migrated_db,
        env="prod",
        admin_api_key=PROD_ADMIN,
        mqtt_url="mqtt://svc:pw@127.0.0.1:1883",
    )
    app = create_app(settings)
    async with make_client(app) as c:  # from localhost, yet prod: a key is needed
        assert (await c.get("/api/v1/devices")).status_code == 401
        r = await c.get("/api/v1/devices", headers=bearer(PROD_ADMIN))
        assert r.status_code == 200
        assert (await c.get("/api/v1/api-keys", headers=bearer(PROD_ADMIN))).status_code == 200
        assert (await c.get("/api/v1/devices", headers=bearer(PROD_ADMIN + "x"))).status_code == 401


def test_prod_without_admin_key_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="TINYFLEET_ADMIN_API_KEY"):
        api_settings("postgresql://db.example/x", env="prod", mqtt_url="mqtt://svc:pw@broker:1883")


async def test_every_mutation_in_the_openapi_document_answers_401_without_a_key(app: FastAPI) -> None:
    """So a route added later without a scope dependency fails here."""
    import re

    spec = app.openapi()
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
        for path, item in spec["paths"].items()
        for method in item
        if method.upper() not in ("GET", "HEAD")
    ]
    assert len(operations) >= 12
    async with app.router.lifespan_context(app), remote_client(app) as c:
        for method, path in operations:
            r = await c.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
    protected_gets = [p for p, item in spec["paths"].items() if "get" in item and p.startswith("/api/")]
    for path in protected_gets:
        assert "401" in spec["paths"][path]["get"]["responses"], path
