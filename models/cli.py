"""The pipeline's command line (typer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="tinyfleet's TinyML pipeline for the vibration models (models/README.md)",
                  no_args_is_help=True)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@app.command()
def build(
    quick: Annotated[bool, typer.Option(help="Small data and few epochs (CI); writes to models/build/quick")] = False,
    out: Annotated[Path | None, typer.Option(help="Output directory")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Dataset cache (default models/data)")] = None,
    recordings: Annotated[list[Path] | None, typer.Option(
        help="CSV/WAV recordings or directories of them (repeatable), added to the simulated data")] = None,
) -> None:
    """Generate data, train, quantize, prune, evaluate in TFLM, write .tflite files and model cards."""
    from models.dataset import DatasetError
    from models.pipeline import FULL, QUICK
    from models.pipeline import build as run

    try:
        run(QUICK if quick else FULL, out=out, data_dir=data_dir, recordings=recordings or ())
    except DatasetError as exc:
        typer.echo(f"models: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def push(
    artifacts: Annotated[Path, typer.Option(help="Directory with the .tflite files and cards")] = ARTIFACTS,
    version: Annotated[int | None, typer.Option(help="Registry version (default: the card's)")] = None,
    url: Annotated[str | None, typer.Option(envvar="TINYFLEET_URL", help="The tinyfleet API")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="TINYFLEET_API_KEY", help="API key (write scope)")] = None,
) -> None:
    """Push vib-cls and vib-ad into the registry with `tinyfleet models push` (the card's figures go along)."""
    for name in ("vib-cls", "vib-ad"):
        card_path = artifacts / f"{name}.card.json"
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            typer.echo(f"models: cannot read {card_path}: {exc}", err=True)
            raise typer.Exit(1) from exc
        cmd = [sys.executable, "-c", "from tinyfleet.cli import main; main()", "models", "push",
               str(artifacts / card["file"]),
               "--name", card["name"], "--version", str(version if version is not None else card["version"]),
               "--task", card["task"], "--accuracy", str(card["accuracy"]),
               "--dataset", "tinyfleet vibration simulator (models/), test machines",
               "--description", card["description"]]
        if card["kind"] == "classification":
            cmd += ["--labels", ",".join(card["labels"])]
        if url:
            cmd += ["--url", url]
        env_key = {"TINYFLEET_API_KEY": api_key} if api_key else {}
        result = subprocess.run(cmd, env={**os.environ, **env_key}, check=False)
        if result.returncode:
            raise typer.Exit(result.returncode)


def main() -> None:
    app()
