"""``python -m models push`` (``make models-push``) of the committed models into a real running service (uvicorn on
a free port, a migrated database): both versions registered with the card's labels and accuracy, the arena
measured by TFLM, and a second push is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.registry.test_cli import ApiServer, api_server  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "models" / "artifacts"


def push(server: ApiServer, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models", "push", "--url", server.url],
        cwd=ROOT, env={**os.environ, "TINYFLEET_API_KEY": key}, capture_output=True, text=True, timeout=300,
        check=False,
    )


def test_push_registers_both_models(api_server: ApiServer) -> None:  # noqa: F811
    key = api_server.keys[0]
    first = push(api_server, key)
    assert first.returncode == 0, first.stderr
    assert "vib-cls v1 registered" in first.stdout
    assert "vib-ad v1 registered" in first.stdout
    for name in ("vib-cls", "vib-ad"):
        card = json.loads((ARTIFACTS / f"{name}.card.json").read_text())
        got = httpx.get(f"{api_server.url}/api/v1/models/{name}/versions/1",
                        headers={"Authorization": f"Bearer {key}"}).json()
        assert got["sha256"] == card["sha256"]
        assert got["precision"] == "int8"
        assert got["arena_bytes"] == card["arena_bytes"]  # the registry's TFLM measurement agrees with the card
        assert got["card"]["accuracy"] == card["accuracy"]
        assert got["card"]["task"] == card["task"]
        if name == "vib-cls":
            assert got["labels"] == card["labels"]
    again = push(api_server, key)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already registered (same bytes)") == 2
    refused = push(api_server, "not-a-key")
    assert refused.returncode == 1
    assert "refused" in refused.stderr
