"""`tinyfleet models …`: inspect a .tflite locally (no server), push a version to the registry over HTTP.

Exit codes: 0 done, 1 the file or the server refused (the message says why), 2 bad command-line usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from tinyfleet.registry.schemas import ModelReport

# Imported by `tinyfleet` at start-up: the registry's heavy imports (tflite, httpx) wait for the command.
DEFAULT_MAX_ARENA = 16 * 1024 * 1024  # = tinyfleet.registry.arena.DEFAULT_MAX_ARENA
DEFAULT_TIMEOUT_S = 60.0

models_app = typer.Typer(
    help="The model registry: inspect a .tflite (ops, tensors, TFLM arena) and push versions.",
    no_args_is_help=True,
)

DEFAULT_URL = "http://127.0.0.1:8080"


def _die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"tinyfleet: {message}", err=True)
    raise typer.Exit(code)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _die(f"cannot read {path}: {exc.strerror or exc}")


def _quant(spec: dict[str, Any]) -> str:
    q = spec.get("quantization")
    if not q:
        return ""
    if len(q["scale"]) == 1:
        zero = q["zero_point"][0] if q["zero_point"] else 0
        return f"  scale {q['scale'][0]:.6g}  zero point {zero}"
    return f"  per-channel ({len(q['scale'])} scales, axis {q['quantized_dimension']})"


def format_report(path: str, report: ModelReport) -> str:
    """The human-readable form of `tinyfleet models inspect`."""
    i, a = report.inspection, report.arena
    lines = [
        f"{path}",
        f"  size            {i.size} bytes",
        f"  sha256          {i.sha256}",
        f"  schema version  {i.schema_version}" + (f"  ({i.description})" if i.description else ""),
        f"  precision       {i.precision}",
        f"  parameters      {i.parameters}  ({i.weight_bytes} bytes of constant tensors)",
        f"  operators       {i.operators} in {i.subgraphs} subgraph(s)",
    ]
    if a.loadable:
        lines.append(f"  TFLM arena      {a.arena_bytes} bytes  (smallest that allocates; {a.probes} probes)")
        if a.invoke_ok is False:
            lines.append(f"  TFLM invoke     failed: {a.reason}")
    else:
        lines.append(f"  TFLM            cannot load it: {a.reason}")
    lines.append("  ops")
    lines += [f"    {op.name:<24} x{op.count}" + ("  (custom)" if op.custom else "") for op in i.ops]
    for title, specs in (("inputs", i.inputs), ("outputs", i.outputs)):
        lines.append(f"  {title}")
        for spec in specs:
            d = spec.model_dump()
            lines.append(f"    {spec.name:<24} {spec.dtype} {spec.shape}{_quant(d)}")
    if i.metadata:
        lines.append("  metadata")
        lines += [f"    {m.name:<24} {m.value if m.value is not None else f'<{m.size} bytes>'}" for m in i.metadata]
    if i.embedded_labels:
        lines.append(f"  labels          {', '.join(i.embedded_labels)}")
    return "\n".join(lines)


@models_app.command("inspect")
def inspect_command(
    file: Annotated[Path, typer.Argument(help="The .tflite file")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (inspection + arena)")] = False,
    max_arena: Annotated[
        int, typer.Option(min=1024, help="Upper bound of the arena search, bytes")
    ] = DEFAULT_MAX_ARENA,
    timeout: Annotated[float, typer.Option(min=1, help="Time limit of the TFLM measurement, seconds")] = (
        DEFAULT_TIMEOUT_S
    ),
) -> None:
    """Describe a model without a server: ops, tensors, quantization, parameters, SHA-256, TFLM arena."""
    from tinyfleet.registry.analysis import analyze
    from tinyfleet.registry.errors import ModelInspectionError

    data = _read(file)
    try:
        report = analyze(data, max_arena=max_arena, timeout_s=timeout)
    except ModelInspectionError as exc:
        _die(f"{file}: {exc.message}")
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(format_report(str(file), report))


def _split_labels(labels: str | None) -> list[str] | None:
    if labels is None:
        return None
    return [label.strip() for label in labels.split(",")]


@models_app.command("push")
def push_command(
    file: Annotated[Path, typer.Argument(help="The .tflite file")],
    name: Annotated[str, typer.Option("--name", help="Model name, e.g. kws")],
    version: Annotated[int, typer.Option("--version", min=0, max=0xFFFF_FFFF, help="Version number (integer)")],
    labels: Annotated[str | None, typer.Option(help="Class names in output order, comma-separated")] = None,
    task: Annotated[str | None, typer.Option(help="e.g. classification, anomaly-detection")] = None,
    dataset: Annotated[str | None, typer.Option(help="Training dataset")] = None,
    accuracy: Annotated[float | None, typer.Option(min=0, max=1, help="Test accuracy, 0..1")] = None,
    description: Annotated[str | None, typer.Option(help="What this version is")] = None,
    min_firmware: Annotated[str | None, typer.Option(help="Oldest device firmware that runs it")] = None,
    url: Annotated[str, typer.Option(envvar="TINYFLEET_URL", help="The tinyfleet API")] = DEFAULT_URL,
    api_key: Annotated[
        str | None, typer.Option(envvar="TINYFLEET_API_KEY", help="API key (sent as Authorization: Bearer)")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="HTTP timeout, seconds (the server measures the arena)")] = 120,
) -> None:
    """Upload a version to the registry (PUT …/models/NAME/versions/VERSION). Pushing the same file again is a
    no-op; other bytes under an existing version are refused (versions are immutable)."""
    import httpx

    from tinyfleet.registry.errors import ModelInspectionError
    from tinyfleet.registry.inspect import inspect_model

    data = _read(file)
    try:
        inspect_model(data)  # refuse a broken file here, before sending it anywhere
    except ModelInspectionError as exc:
        _die(f"{file}: {exc.message}")
    params: dict[str, Any] = {
        "task": task, "dataset": dataset, "accuracy": accuracy, "description": description,
        "labels": _split_labels(labels), "min_firmware": min_firmware,
    }  # fmt: skip
    headers = {"Content-Type": "application/octet-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    endpoint = f"{url.rstrip('/')}/api/v1/models/{name}/versions/{version}"
    try:
        response = httpx.put(
            endpoint,
            content=data,
            params={k: v for k, v in params.items() if v is not None},
            headers=headers,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        _die(f"cannot reach {url}: {exc}")
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    if response.status_code not in (200, 201) or not isinstance(body, dict):
        message = body["error"]["message"] if isinstance(body, dict) and "error" in body else response.text[:300]
        _die(f"the registry refused {name} v{version} (HTTP {response.status_code}): {message}")
    state = "registered" if response.status_code == 201 else "already registered (same bytes)"
    arena = f"arena {body['arena_bytes']} B" if body.get("arena_bytes") is not None else "TFLM cannot load it"
    typer.echo(f"{name} v{version} {state}: {body['size']} bytes, sha256 {body['sha256']}, {arena}")
