"""The Dockerfile, as far as it can be checked without a Docker engine: every file it copies exists, it runs as
a non-root user with a healthcheck on a route the service has, and the wheel it builds (`uv build` from the
lock, as its build stage does) is the one the tests expect: it installs with the locked requirements and its
entry points run."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
WHEEL = f"tinyfleet-{VERSION}-py3-none-any.whl"


def _uv() -> str:
    uv = REPO / ".venv-tools" / "bin" / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (make env installs it into .venv-tools)", pytrace=False)
    return found


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_copied_files_exist_and_are_not_ignored():
    ignored = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"]
    copies = [rest for word, rest in _instructions() if word == "COPY" and "--from=" not in rest]
    assert copies
    for rest in copies:
        parts = [p for p in rest.split() if not p.startswith("--")]
        for src in parts[:-1]:
            assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
            assert src not in ignored, f"COPY {src} is excluded by .dockerignore"
    assert ".venv" in ignored
    assert ".git" in ignored


def test_runtime_stage_is_non_root_with_healthcheck_and_entrypoint():
    stages = [rest for word, rest in _instructions() if word == "FROM"]
    assert len(stages) == 2, "multi-stage: build + runtime"
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    (health,) = [rest for word, rest in _instructions() if word == "HEALTHCHECK"]
    assert "http://127.0.0.1:8080/healthz" in health
    assert '@router.get("/healthz"' in (REPO / "service/tinyfleet/api/routes/health.py").read_text()
    entry = (REPO / "deploy/compose/tinyfleet-entrypoint.sh").read_text()
    assert "tinyfleet db upgrade" in entry
    assert "exec tinyfleet serve" in entry
    # the build stage pins the same uv as the Makefile, and builds/exports from the lock
    make_uv = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert make_uv is not None
    assert f"ARG UV_VERSION={make_uv.group(1)}" in DOCKERFILE
    assert "uv build --wheel --out-dir /dist" in DOCKERFILE
    assert "uv export --frozen --no-emit-project" in DOCKERFILE
    assert "--require-hashes" in DOCKERFILE
    assert "/tmp/dist/tinyfleet-*.whl" in DOCKERFILE


def test_entrypoint_script_runs_migrations_only_for_serve(tmp_path):
    log = tmp_path / "calls"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tinyfleet").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (fake / "tinyfleet").chmod(0o755)
    script = REPO / "deploy/compose/tinyfleet-entrypoint.sh"
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    subprocess.run(["sh", str(script)], env=env, check=True, timeout=30)
    subprocess.run(["sh", str(script), "serve", "--port", "9000"], env=env, check=True, timeout=30)
    subprocess.run(["sh", str(script), "ingest", "--client-id", "ingest-1"], env=env, check=True, timeout=30)
    assert log.read_text().splitlines() == [
        "db upgrade", "serve", "db upgrade", "serve --port 9000", "ingest --client-id ingest-1",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out)], cwd=REPO, check=True, timeout=600,
                   capture_output=True)  # fmt: skip
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert wheels == [WHEEL]
    return out / WHEEL


def test_wheel_contents(built_wheel: Path):
    names = zipfile.ZipFile(built_wheel).namelist()
    assert "tinyfleet/cli.py" in names
    assert "tinyfleet_device/manifest.py" in names
    assert "tinyfleet/store/migrations/versions/0001_initial.py" in names
    dashboards = sorted(n for n in names if n.startswith("tinyfleet/grafana/files/json/"))
    assert [Path(n).name for n in dashboards] == sorted(p.name for p in (REPO / "dashboards/json").glob("*.json"))
    entry_points = zipfile.ZipFile(built_wheel).read(f"tinyfleet-{VERSION}.dist-info/entry_points.txt").decode()
    assert "tinyfleet = tinyfleet.cli:main" in entry_points


def test_wheel_installs_with_the_locked_requirements_and_runs(built_wheel: Path, tmp_path: Path):
    uv = _uv()
    reqs = tmp_path / "requirements.txt"
    subprocess.run([uv, "export", "--frozen", "--no-emit-project", "--format", "requirements-txt", "--output-file",
                    str(reqs)], cwd=REPO, check=True, timeout=120, capture_output=True)  # fmt: skip
    assert "--hash=sha256:" in reqs.read_text()
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", shutil.which("python3") or "python3", str(venv)], check=True,
                   timeout=120, capture_output=True)  # fmt: skip
    py = venv / "bin" / "python"
    for args in (["--require-hashes", "--no-deps", "-r", str(reqs)], ["--no-deps", str(built_wheel)]):
        subprocess.run([uv, "pip", "install", "--python", str(py), *args], check=True, timeout=600,
                       capture_output=True)  # fmt: skip
    out = subprocess.run([str(venv / "bin" / "tinyfleet"), "version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tinyfleet {VERSION}"
    commands = (["db", "upgrade", "--help"], ["serve", "--help"], ["ingest", "--help"])
    commands += (["dashboards", "push", "--help"],)
    for cmd in commands:
        run = subprocess.run([str(venv / "bin" / "tinyfleet"), *cmd], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (cmd, run.stderr)
    # the installed package finds the dashboards inside itself, not in a checkout
    code = "from tinyfleet.grafana.push import dashboards_dir; print(dashboards_dir())"
    where = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().endswith("site-packages/tinyfleet/grafana/files/json")
    imported = subprocess.run([str(py), "-c", "import tinyfleet_device.manifest"], capture_output=True, timeout=60)
    assert imported.returncode == 0
