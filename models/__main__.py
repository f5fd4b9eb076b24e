"""``python -m models build [--quick] [--out DIR] [--recordings DIR …]`` and ``python -m models push``."""

from __future__ import annotations

from models.cli import main

main()
