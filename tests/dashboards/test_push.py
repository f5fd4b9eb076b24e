"""`tinyfleet dashboards push` against a local HTTP server that checks every request against Grafana's
documented HTTP API (docs: developers/http_api — data source, folder, dashboard APIs) and answers as Grafana
does. No Grafana server runs here; the push was verified against a live Grafana only through docker-compose."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from tinyfleet.cli import app
from tinyfleet.grafana.definitions import DATASOURCE_TYPE, DATASOURCE_UID
from tinyfleet.grafana.push import DatasourceSpec, GrafanaPusher, GrafanaPushError, load_dashboards

TOKEN = "glsa_test_token_0123456789"
DB_URL = "postgresql://grafana_reader:s3cret@timescaledb:5432/tinyfleet"


@dataclass
class FakeGrafana:
    """State and request log of the fake; `problems` collects every request that breaks the documented API."""

    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)  # by uid
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _check_datasource_body(g: FakeGrafana, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body is not an object"
    for key in ("name", "type", "access"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"datasource body needs {key}"
    if body["access"] not in ("proxy", "direct"):
        return "access must be proxy or direct"
    if not isinstance(body.get("jsonData", {}), dict) or not isinstance(body.get("secureJsonData", {}), dict):
        return "jsonData/secureJsonData must be objects"
    return None


def make_handler(g: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.command in ("POST", "PUT"):
                if not self.headers.get("Content-Type", "").startswith("application/json"):
                    g.problems.append(f"{self.command} {self.path} without Content-Type: application/json")
                try:
                    return json.loads(raw)
                except ValueError:
                    g.problems.append(f"{self.command} {self.path}: body is not JSON")
            return None

        def _handle(self) -> None:
            path = self.path.split("?", 1)[0]
            g.log.append((self.command, path))
            body = self._body()
            if path == "/api/health" and self.command == "GET":
                return self._send(200, {"commit": "0123abc", "database": "ok", "version": "11.3.0"})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Unauthorized"})
            for pattern, method, fn in ROUTES:
                m = re.fullmatch(pattern, path)
                if m and self.command == method:
                    status, answer = fn(g, body, *m.groups())
                    return self._send(status, answer)
            g.problems.append(f"undocumented request {self.command} {path}")
            return self._send(404, {"message": "Not found"})

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


def _ds_get_uid(g: FakeGrafana, _b: Any, uid: str) -> tuple[int, Any]:
    return (200, g.datasources[uid]) if uid in g.datasources else (404, {"message": "Data source not found"})


def _ds_get_name(g: FakeGrafana, _b: Any, name: str) -> tuple[int, Any]:
    for ds in g.datasources.values():
        if ds["name"] == name:
            return 200, ds
    return 404, {"message": "Data source not found"}


def _ds_stored(g: FakeGrafana, body: dict[str, Any], uid: str, ds_id: int, version: int) -> dict[str, Any]:
    stored = {k: v for k, v in body.items() if k != "secureJsonData"}
    stored.update(id=ds_id, uid=uid, orgId=1, version=version, readOnly=False, basicAuth=False, database="")
    stored["secureJsonFields"] = {k: True for k in body.get("secureJsonData", {})}
    g.datasources[uid] = stored
    return stored


def _ds_create(g: FakeGrafana, body: Any) -> tuple[int, Any]:
    if (problem := _check_datasource_body(g, body)) is not None:
        g.problems.append(problem)
        return 400, {"message": problem}
    if any(ds["name"] == body["name"] for ds in g.datasources.values()):
        return 409, {"message": "data source with the same name already exists"}
    uid = body.get("uid") or f"ds{g.next_id}"
    stored = _ds_stored(g, body, uid, g.new_id(), 1)
    return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": stored["name"]}


def _ds_update(g: FakeGrafana, body: Any, uid: str) -> tuple[int, Any]:
    if uid not in g.datasources:
        return 404, {"message": "Data source not found"}
    if (problem := _check_datasource_body(g, body)) is not None:
        g.problems.append(problem)
        return 400, {"message": problem}
    old = g.datasources[uid]
    stored = _ds_stored(g, body, uid, old["id"], old["version"] + 1)
    return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated", "name": stored["name"]}


def _folder_get(g: FakeGrafana, _b: Any, uid: str) -> tuple[int, Any]:
    return (200, g.folders[uid]) if uid in g.folders else (404, {"message": "folder not found"})


def _folder_create(g: FakeGrafana, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not body.get("title"):
        g.problems.append("folder needs a title")
        return 400, {"message": "folder title cannot be empty"}
    uid = body.get("uid") or f"f{g.next_id}"
    if uid in g.folders:
        return 409, {"message": "a folder with the same uid already exists"}
    g.folders[uid] = {"id": g.new_id(), "uid": uid, "title": body["title"], "url": f"/dashboards/f/{uid}/",
                      "version": 1}  # fmt: skip
    return 200, g.folders[uid]


def _dash_get(g: FakeGrafana, _b: Any, uid: str) -> tuple[int, Any]:
    if uid not in g.dashboards:
        return 404, {"message": "Dashboard not found"}
    d = g.dashboards[uid]
    return 200, {"dashboard": d["dashboard"], "meta": {"folderUid": d["folderUid"], "version": d["version"]}}


def _dash_save(g: FakeGrafana, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
        g.problems.append("POST /api/dashboards/db needs a dashboard object")
        return 400, {"message": "bad request data"}
    dash = body["dashboard"]
    if set(body) - {"dashboard", "folderUid", "folderId", "overwrite", "message"}:
        g.problems.append(f"unknown keys in save body: {set(body)}")
    if not dash.get("title") or not dash.get("uid"):
        return 400, {"message": "Dashboard title cannot be empty"}
    uid, folder = dash["uid"], body.get("folderUid", "")
    if folder and folder not in g.folders:
        return 400, {"message": "folder not found"}
    existing = g.dashboards.get(uid)
    if dash.get("id") is not None and (existing is None or existing["id"] != dash["id"]):
        return 404, {"message": "Dashboard not found"}
    if existing is not None and not body.get("overwrite"):
        return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
    version = existing["version"] + 1 if existing else 1
    dash_id = existing["id"] if existing else g.new_id()
    slug = re.sub(r"[^a-z0-9]+", "-", dash["title"].lower()).strip("-")
    g.dashboards[uid] = {"id": dash_id, "dashboard": {**dash, "id": dash_id, "version": version},
                         "folderUid": folder, "version": version}  # fmt: skip
    return 200, {"id": dash_id, "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success", "version": version,
                 "slug": slug}  # fmt: skip


ROUTES: list[tuple[str, str, Any]] = [
    (r"/api/datasources/uid/([^/]+)", "GET", _ds_get_uid),
    (r"/api/datasources/name/([^/]+)", "GET", _ds_get_name),
    (r"/api/datasources", "POST", _ds_create),
    (r"/api/datasources/uid/([^/]+)", "PUT", _ds_update),
    (r"/api/folders/([^/]+)", "GET", _folder_get),
    (r"/api/folders", "POST", _folder_create),
    (r"/api/dashboards/uid/([^/]+)", "GET", _dash_get),
    (r"/api/dashboards/db", "POST", _dash_save),
]


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    g = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(g))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield g, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    assert g.problems == []


def _refs(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        own = {doc["uid"]} if doc.get("type") == DATASOURCE_TYPE and "uid" in doc else set()
        return own.union(*(_refs(v) for v in doc.values()))
    if isinstance(doc, list):
        return set().union(*(_refs(v) for v in doc))
    return set()


def test_push_creates_then_updates_without_duplicates(grafana):
    g, url = grafana
    docs = load_dashboards()
    spec = DatasourceSpec.from_url(DB_URL)
    first = GrafanaPusher(url, TOKEN).push(docs, spec)
    assert first.datasource == "created"
    assert first.folder == "created"
    assert [what for _, _, what, _ in first.dashboards] == ["created"] * len(docs)
    ds = g.datasources[DATASOURCE_UID]
    assert (ds["name"], ds["type"], ds["url"], ds["user"]) == ("tinyfleet", DATASOURCE_TYPE, "timescaledb:5432",
                                                              "grafana_reader")  # fmt: skip
    assert ds["jsonData"]["database"] == "tinyfleet"
    assert ds["jsonData"]["timescaledb"] is True
    assert ds["secureJsonFields"] == {"password": True}
    assert set(g.dashboards) == {d["uid"] for d in docs}
    assert all(d["folderUid"] == "tinyfleet" for d in g.dashboards.values())
    assert {("POST", "/api/datasources"), ("POST", "/api/folders")} <= set(g.log)

    g.log.clear()
    second = GrafanaPusher(url, TOKEN).push(docs, spec)
    assert second.datasource == "updated"
    assert second.folder == "exists"
    assert [what for _, _, what, _ in second.dashboards] == ["updated"] * len(docs)
    assert len(g.datasources) == 1
    assert len(g.folders) == 1
    assert len(g.dashboards) == len(docs)
    assert g.datasources[DATASOURCE_UID]["version"] == 2
    assert all(d["version"] == 2 for d in g.dashboards.values())
    assert ("POST", "/api/datasources") not in g.log
    assert ("POST", "/api/folders") not in g.log
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in g.log
    assert g.log.count(("POST", "/api/dashboards/db")) == len(docs)


def test_push_adopts_a_datasource_found_by_name(grafana):
    g, url = grafana
    g.datasources["old-uid"] = {"id": 9, "uid": "old-uid", "name": "tinyfleet", "type": DATASOURCE_TYPE,
                                "access": "proxy", "version": 3}  # fmt: skip
    report = GrafanaPusher(url, TOKEN).push(load_dashboards(), DatasourceSpec.from_url(DB_URL))
    assert (report.datasource, report.datasource_uid) == ("updated", "old-uid")
    assert list(g.datasources) == ["old-uid"]
    assert g.datasources["old-uid"]["version"] == 4
    for d in g.dashboards.values():
        assert _refs(d["dashboard"]) == {"old-uid"}  # the panels point at the existing data source


def test_cli_push_and_its_errors(grafana):
    g, url = grafana
    runner = CliRunner()
    args = ["dashboards", "push", "--url", url, "--database-url", DB_URL]
    ok = runner.invoke(app, [*args, "--token", TOKEN])
    assert ok.exit_code == 0, ok.output
    assert "data source tinyfleet-timescaledb: created" in ok.output
    assert "dashboard tinyfleet-device" in ok.output
    bad = runner.invoke(app, [*args, "--token", "wrong"])
    assert bad.exit_code == 1
    assert "refused the token (401)" in bad.output
    g.log.clear()
    skip = runner.invoke(app, [*args, "--token", TOKEN, "--no-datasource", "--folder", "ops"])
    assert skip.exit_code == 0, skip.output
    assert not any(p.startswith("/api/datasources") for _, p in g.log)
    assert "ops" in g.folders


def test_unreachable_grafana_is_a_clear_error():
    pusher = GrafanaPusher("http://127.0.0.1:9", TOKEN, timeout=2)
    with pytest.raises(GrafanaPushError, match="cannot reach Grafana"):
        pusher.push(load_dashboards(), None)
    with pytest.raises(GrafanaPushError, match="URL must look like"):
        GrafanaPusher("grafana:3000", TOKEN)
