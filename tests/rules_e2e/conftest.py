"""Fixtures for the rules end-to-end tests: the actions tests' real HTTP receiver and migrated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.actions.conftest import db, http_receiver, migrated_url  # noqa: F401 - fixtures
from tests.ingest.conftest import migrated_db, prefix, publisher  # noqa: F401 - fixtures

__all__ = ["rule_file"]


def rule_file(url: str, *, count: int = 3, within: str = "1m") -> str:
    """A count-in-window rule on model vib-cls (score ≥ 0.8) whose action is a signed webhook to `url`."""
    return f"""
models:
  vib-cls: {{labels: [normal, bearing_fault]}}
rules:
  - id: bearing-burst
    description: {count} confident bearing faults within {within}
    match: {{model: vib-cls, label: bearing_fault, score: {{gte: 0.8}}}}
    window: {{count: {count}, within: {within}, per: device}}
    severity: major
    resolve: manual
    actions:
      - webhook: {url}/hook
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    return d
