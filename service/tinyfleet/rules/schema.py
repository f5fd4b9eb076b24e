"""Write the JSON Schema of rule files: `python -m tinyfleet.rules.schema [rules/schema.json]`."""

from __future__ import annotations

import sys
from pathlib import Path

from tinyfleet.rules.loader import json_schema_text


def write_schema(path: str | Path = "rules/schema.json") -> Path:
    p = Path(path)
    p.write_text(json_schema_text(), encoding="utf-8")
    return p


if __name__ == "__main__":  # pragma: no cover
    print(write_schema(*sys.argv[1:2]))
