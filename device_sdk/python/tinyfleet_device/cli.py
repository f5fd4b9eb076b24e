"""``tinyfleet-device``: run any TFLite Micro model as a device — dry (events as JSON lines) or against a broker.

    tinyfleet-device run --model kws_ref_model.tflite --labels down,go,… --source random --dry-run --count 5
    tinyfleet-device run --model vib-cls.tflite --source sim --mqtt-url mqtt://broker:1883 \\
        --device-id press-007 --password … --state-dir ./press-007
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from tinyfleet.wire import WireError, encode_event

from .card import read_card
from .device import Device, DeviceConfig, EventMaker
from .errors import DeviceError
from .features import FEATURES, get_pipeline
from .pipeline import InferencePipeline
from .runner import ModelRunner
from .sources import open_source

app = typer.Typer(
    name="tinyfleet-device",
    help="The tinyfleet reference device: real TFLM inference, v1 events over MQTT, store-and-forward, commands.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("tinyfleet_device")


@app.callback()
def _root() -> None:
    """tinyfleet reference device."""


def _labels(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    labels = tuple(part.strip() for part in text.split(",") if part.strip())
    return labels or None


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def run(
    model: Annotated[Path, typer.Option(help="The .tflite model file (a NAME.card.json beside it gives defaults)")],
    labels: Annotated[str | None, typer.Option(help="Class names, comma-separated (default: from the card)")] = None,
    source: Annotated[str, typer.Option(help="random | sim | wav:PATH")] = "random",
    features: Annotated[
        str | None, typer.Option(help=f"Feature pipeline: {', '.join(sorted(FEATURES))} (default: card, else raw)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the events as JSON lines; no broker")] = False,
    count: Annotated[int | None, typer.Option(min=0, help="Stop after this many events (dry run: default 10)")] = None,
    model_id: Annotated[str | None, typer.Option(help="Model id in events (default: card, else file stem)")] = None,
    mver: Annotated[int | None, typer.Option(min=0, help="Model version in events (default: card)")] = None,
    kind: Annotated[str | None, typer.Option(help="classification | anomaly | regression (default: shapes)")] = None,
    threshold: Annotated[float | None, typer.Option(help="Anomaly threshold / minimum classifier confidence")] = None,
    fault: Annotated[str | None, typer.Option(help="Inject this fault into the simulated sensor at start")] = None,
    severity: Annotated[float, typer.Option(help="Severity of --fault")] = 1.0,
    interval: Annotated[float, typer.Option(min=0, help="Seconds between inference windows (device mode)")] = 1.0,
    fmt: Annotated[str, typer.Option("--format", help="Event encoding on the wire: cbor | json")] = "cbor",
    mqtt_url: Annotated[str, typer.Option(envvar="TINYFLEET_DEVICE_MQTT_URL")] = "mqtt://127.0.0.1:1883",
    device_id: Annotated[str | None, typer.Option(envvar="TINYFLEET_DEVICE_ID", help="= MQTT username")] = None,
    password: Annotated[str | None, typer.Option(envvar="TINYFLEET_DEVICE_PASSWORD", help="MQTT password")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Store-and-forward queue, boot counter, settings")] = None,
    http_url: Annotated[
        str | None, typer.Option(envvar="TINYFLEET_DEVICE_HTTP_URL", help="The service's base URL (capture uploads)")
    ] = None,
    mqtt_protocol: Annotated[str, typer.Option(help="auto (5, else 3.1.1) | 5 | 3.1.1")] = "auto",
    telemetry_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between telemetry messages")] = 30.0,
    max_events: Annotated[int, typer.Option(min=1, help="Bound of the on-disk event queue (oldest dropped)")] = 100_000,
    batch_max: Annotated[int, typer.Option(min=1, max=256, help="Events per message when a backlog drains")] = 64,
    arena_size: Annotated[int | None, typer.Option(min=1, help="Tensor arena for the model (default: search)")] = None,
    backend: Annotated[str | None, typer.Option(help="tflm | litert | auto (env TINYFLEET_DEVICE_BACKEND)")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated sensor")] = 0,
    trust: Annotated[
        list[str] | None, typer.Option(help="OTA: a trusted manifest signer (raw Ed25519 public key, hex); repeatable")
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="MQTT topic prefix")] = "tf/v1",
    summary: Annotated[bool, typer.Option("--summary", help="Print one JSON summary line at exit")] = False,
    log_level: Annotated[str, typer.Option(envvar="TINYFLEET_DEVICE_LOG_LEVEL")] = "INFO",
) -> None:
    """Run a model as a device. With --dry-run: print the events it would publish, as JSON lines."""
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if fmt not in ("cbor", "json"):
        raise _fail("--format must be cbor or json")
    if mqtt_protocol not in ("auto", "5", "3.1.1"):
        raise _fail("--mqtt-protocol must be auto, 5 or 3.1.1")
    if kind is not None and kind not in ("classification", "anomaly", "regression"):
        raise _fail("--kind must be classification, anomaly or regression")
    try:
        card = read_card(model)
    except DeviceError as exc:
        raise _fail(str(exc)) from exc
    label_names = _labels(labels) or (card.labels if card else None)
    feature_name = features or (card.features if card and card.features in FEATURES else None) or "raw"
    name = model_id or (card.name if card and card.name else None) or model.name.removesuffix(".tflite")
    version = mver if mver is not None else (card.version if card else None)
    kind_name: Any = kind or (card.kind if card else None)
    limit = threshold if threshold is not None else (card.threshold if card else None)
    try:
        pipeline_def = get_pipeline(feature_name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from exc
    if dry_run:
        try:
            _dry_run(model, label_names, pipeline_def.name, source, count if count is not None else 10, name, version,
                     kind_name, limit, fault, severity, backend, seed, arena_size)  # fmt: skip
        except (DeviceError, WireError) as exc:
            raise _fail(str(exc)) from exc
        return
    if device_id is None:
        raise _fail("--device-id is required without --dry-run")
    fmt_value: Literal["cbor", "json"] = "json" if fmt == "json" else "cbor"
    try:
        keys = tuple(bytes.fromhex(k) for k in trust or ())
    except ValueError as exc:
        raise _fail(f"--trust takes a public key in hex: {exc}") from exc
    if any(len(k) != 32 for k in keys):
        raise _fail("--trust takes a raw Ed25519 public key: 32 bytes, 64 hex digits")
    try:
        config = DeviceConfig(
            device_id=device_id, model_path=model, state_dir=state_dir or Path(f"{device_id}.state"),
            mqtt_url=mqtt_url, password=password, labels=label_names, features=pipeline_def.name, source=source,
            model_id=name, mver=version, kind=kind_name, threshold=limit, interval_s=interval, fmt=fmt_value,
            telemetry_s=telemetry_interval, http_url=http_url, protocol=mqtt_protocol,  # type: ignore[arg-type]
            max_events=max_events, batch_max=batch_max, arena_size=arena_size or (card.arena if card else None),
            seed=seed, count=count, backend=backend, initial_fault=(fault, severity) if fault else None,
            trusted_keys=keys, topic_prefix=topic_prefix,
        )  # fmt: skip
        device = Device(config)
    except (DeviceError, WireError) as exc:
        raise _fail(str(exc)) from exc

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        device.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        sessions = device.run()
    except (DeviceError, WireError) as exc:
        raise _fail(str(exc)) from exc
    if summary:
        typer.echo(json.dumps({"device": device_id, "sessions": sessions}))


def _dry_run(
    model: Path, labels: tuple[str, ...] | None, features: str, source: str, count: int, name: str,
    mver: int | None, kind: Any, threshold: float | None, fault: str | None, severity: float, backend: str | None,
    seed: int, arena_size: int | None,
) -> None:  # fmt: skip
    runner = ModelRunner.from_file(model, labels=labels, backend=backend, kind=kind, arena_size=arena_size)
    pipeline_def = get_pipeline(features)
    src = open_source(source, pipeline=pipeline_def, seed=seed)
    if fault:
        src.inject(fault, severity)
    pipe = InferencePipeline(runner, pipeline_def, src)
    maker = EventMaker(runner, boot=0, model=name, mver=mver, threshold=threshold)
    out = sys.stdout
    made = tries = 0
    while made < count:
        tries += 1
        if tries > 100 * max(count, 1):
            raise DeviceError(f"no result reached the threshold {threshold} in {tries - 1} inferences")
        step = pipe.step()
        event = maker.make(step.result, ts=time.time_ns() // 1_000_000)
        if event is None:
            continue
        out.write(encode_event(event, fmt="json").decode() + "\n")
        out.flush()
        made += 1


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app()
