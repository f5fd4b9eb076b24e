"""`tinyfleet models inspect|push`, run as the installed entry point; push against a real API server (uvicorn
on a free port, a migrated database)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from tests.api.conftest import api_settings, make_api_key
from tests.registry.conftest import AD01, KWS, KWS_LABELS
from tests.support.instances import free_port
from tests.test_cli import run_cli
from tinyfleet.api import create_app
from tinyfleet.store.migrate import upgrade


def test_inspect_json_without_a_server(tmp_path: Path) -> None:
    result = run_cli("models", "inspect", str(KWS), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    info, arena = report["inspection"], report["arena"]
    assert info["size"] == KWS.stat().st_size
    assert info["precision"] == "int8"
    assert info["inputs"][0]["shape"] == [1, 49, 10, 1]
    assert info["outputs"][0]["quantization"]["zero_point"] == [-128]
    assert {op["name"] for op in info["ops"]} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"}
    assert arena["loadable"] is True
    assert abs(arena["arena_bytes"] - 24 * 1024) <= 1024
    assert "Failed to allocate" not in result.stderr  # TFLM's probe noise stays in the child


def test_inspect_human_output(tmp_path: Path) -> None:
    result = run_cli("models", "inspect", str(AD01), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "precision       int8" in out
    assert "FULLY_CONNECTED" in out
    assert "int8 [1, 640]  scale 0.391015  zero point 89" in out
    assert "TFLM arena      " in out
    assert "min_runtime_version      1.5.0" in out


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty file"), (b"<html><body>404</body></html>", "HTML"), (None, "truncated")],
)
def test_inspect_refuses_broken_files(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "broken.tflite"
    path.write_bytes(KWS.read_bytes()[:5000] if content is None else content)
    result = run_cli("models", "inspect", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tinyfleet: {path}: ")
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_inspect_missing_file(tmp_path: Path) -> None:
    result = run_cli("models", "inspect", str(tmp_path / "nope.tflite"), cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


class ApiServer:
    """The API app served by uvicorn in a thread; records the Authorization headers it was sent."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.authorizations: list[str | None] = []
        self.keys: list[str] = []

        @app.middleware("http")
        async def record(request: Request, call_next: RequestResponseEndpoint) -> Response:
            self.authorizations.append(request.headers.get("authorization"))
            return await call_next(request)

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def api_server(database_url: str, tmp_path: Path) -> Iterator[ApiServer]:
    upgrade(database_url)
    app = create_app(api_settings(database_url, artifacts_dir=tmp_path / "artifacts"))
    with ApiServer(app) as server:
        server.keys = [make_api_key(database_url, "write", name=f"ci {i}") for i in range(2)]
        yield server


def test_push_registers_idempotently_and_refuses_changes(api_server: ApiServer, tmp_path: Path) -> None:
    url = ["--url", api_server.url]
    labels = ",".join(KWS_LABELS)
    args = ["models", "push", str(KWS), "--name", "kws", "--version", "2", "--labels", labels, *url]
    key, env_key = api_server.keys
    refused = run_cli(*args, cwd=tmp_path)
    assert refused.returncode == 1
    assert "HTTP 401" in refused.stderr
    first = run_cli(*args, "--task", "classification", "--accuracy", "0.93", "--api-key", key, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("kws v2 registered: 53936 bytes, sha256 ")
    assert "arena " in first.stdout
    assert api_server.authorizations[-1] == f"Bearer {key}"

    again = run_cli(*args, cwd=tmp_path, TINYFLEET_API_KEY=env_key)
    assert again.returncode == 0, again.stderr
    assert "already registered (same bytes)" in again.stdout
    assert api_server.authorizations[-1] == f"Bearer {env_key}"

    registered = httpx.get(f"{api_server.url}/api/v1/models/kws/versions/2").json()
    assert registered["labels"] == KWS_LABELS
    assert registered["card"]["accuracy"] == 0.93

    changed = run_cli("models", "push", str(AD01), "--name", "kws", "--version", "2", *url, cwd=tmp_path,
                      TINYFLEET_API_KEY=key)  # fmt: skip
    assert changed.returncode == 1
    assert "HTTP 409" in changed.stderr
    assert "immutable" in changed.stderr

    wrong_labels = run_cli("models", "push", str(KWS), "--name", "kws", "--version", "3", "--labels", "a,b", *url,
                           cwd=tmp_path, TINYFLEET_API_KEY=key)  # fmt: skip
    assert wrong_labels.returncode == 1
    assert "HTTP 422" in wrong_labels.stderr
    assert "2 labels given" in wrong_labels.stderr


def test_push_refuses_a_broken_file_before_sending(api_server: ApiServer, tmp_path: Path) -> None:
    broken = tmp_path / "page.tflite"
    broken.write_bytes(b"<!DOCTYPE html><html></html>")
    sent = len(api_server.authorizations)
    result = run_cli("models", "push", str(broken), "--name", "x", "--version", "1", "--url", api_server.url,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "HTML" in result.stderr
    assert len(api_server.authorizations) == sent  # nothing was sent


def test_push_to_an_unreachable_server(tmp_path: Path) -> None:
    result = run_cli("models", "push", str(KWS), "--name", "kws", "--version", "1",
                     "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_help(tmp_path: Path) -> None:
    result = run_cli("models", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "inspect" in result.stdout
    assert "push" in result.stdout
