"""The dashboard JSON files against Grafana's own dashboard schema, the provisioning files, and the generator.

Grafana publishes its dashboard model as TypeScript types in the npm package `@grafana/schema` (generated from
its CUE kinds: `dist/types/raw/dashboard/x/types.gen.d.ts`, interface `Dashboard` — the classic v1 JSON model
that file provisioning and `POST /api/dashboards/db` take). It ships no JSON Schema, so the test setup derives
one from those types with `ts-json-schema-generator` (both pinned below, installed once with npm into
.tinyfleet/grafana-schema, like the Node-RED of the action tests). The derived schema is strict: Grafana's
interfaces are closed, so an unknown or misspelt key fails validation.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tinyfleet.grafana import definitions
from tinyfleet.grafana.push import dashboards_dir, load_dashboards

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / ".tinyfleet" / "grafana-schema"
GRAFANA_SCHEMA = "@grafana/schema@13.2.3"
GENERATOR = "ts-json-schema-generator@2.9.0"
TYPES = "node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts"


@pytest.fixture(scope="module")
def dashboard_schema() -> dict[str, Any]:
    out = SCHEMA_DIR / f"dashboard-{GRAFANA_SCHEMA.rsplit('@', 1)[1]}.schema.json"
    if not out.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to derive Grafana's dashboard schema from @grafana/schema", pytrace=False)
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(SCHEMA_DIR),
             GRAFANA_SCHEMA, GENERATOR],
            check=True, timeout=600,
        )  # fmt: skip
        tmp = out.with_suffix(".tmp")
        subprocess.run(
            [str(SCHEMA_DIR / "node_modules" / ".bin" / "ts-json-schema-generator"), "--path", str(SCHEMA_DIR / TYPES),
             "--type", "Dashboard", "--no-type-check", "--out", str(tmp)],
            check=True, timeout=300,
        )  # fmt: skip
        tmp.rename(out)
    schema: dict[str, Any] = json.loads(out.read_text())
    assert schema["$ref"] == "#/definitions/Dashboard"
    assert schema["definitions"]["Panel"]["additionalProperties"] is False
    return schema


DASHBOARDS = load_dashboards()


@pytest.mark.parametrize("doc", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_dashboard_validates_against_grafana_schema(dashboard_schema, doc):
    validator = jsonschema.Draft7Validator(dashboard_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert doc["schemaVersion"] == definitions.SCHEMA_VERSION
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0
        assert g["x"] + g["w"] <= 24


def test_the_schema_catches_mistakes(dashboard_schema):
    bad = copy.deepcopy(DASHBOARDS[0])
    bad["panels"][0]["gridpos"] = bad["panels"][0].pop("gridPos")
    assert list(jsonschema.Draft7Validator(dashboard_schema).iter_errors(bad))
    bad = copy.deepcopy(DASHBOARDS[0])
    bad["templating"] = {"list": [{"name": "x", "type": "nonsense"}]}
    assert list(jsonschema.Draft7Validator(dashboard_schema).iter_errors(bad))


def test_committed_json_is_what_the_definitions_build():
    directory = dashboards_dir()
    assert directory == REPO / "dashboards" / "json"
    for d in definitions.all_dashboards():
        path = directory / definitions.FILE_NAMES[d.uid]
        assert path.read_text(encoding="utf-8") == definitions.render(d), (
            f"{path.name} differs: run `python -m tinyfleet.grafana.definitions dashboards/json`"
        )
    assert sorted(p.name for p in directory.glob("*.json")) == sorted(definitions.FILE_NAMES.values())


def test_every_panel_uses_the_tinyfleet_datasource():
    for doc in DASHBOARDS:
        for panel in doc["panels"]:
            assert panel["datasource"] == definitions.DATASOURCE
            assert all(t["datasource"] == definitions.DATASOURCE for t in panel["targets"])


def test_provisioning_files():
    ds = yaml.safe_load((REPO / "dashboards/provisioning/datasources/tinyfleet.yml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["uid"] == definitions.DATASOURCE_UID
    assert source["name"] == definitions.DATASOURCE_NAME
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["jsonData"]["timescaledb"] is True
    assert "password" in source["secureJsonData"]
    dash = yaml.safe_load((REPO / "dashboards/provisioning/dashboards/tinyfleet.yml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == "tinyfleet"
    # the path the provider reads is where docker-compose.yml mounts dashboards/json
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards/json:{provider['options']['path']}:ro" in volumes
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in volumes
