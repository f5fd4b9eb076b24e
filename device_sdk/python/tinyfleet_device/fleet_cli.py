"""``tinyfleet-device fleet``: the fleet simulator on the command line (registered by :mod:`tinyfleet_device.cli`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from .errors import DeviceError
from .fleet import PROFILES, Fleet, FleetError, FleetModel, FleetTotals, bundled_models, read_credentials

log = logging.getLogger("tinyfleet_device.fleet")


def fleet(
    count: Annotated[int, typer.Option(help="Devices (ids ID_PREFIX0000…), or the first N of --credentials")] = 100,
    profile: Annotated[str, typer.Option(help=f"Behaviour mix: {', '.join(PROFILES)}")] = "mixed",
    mqtt_url: Annotated[str, typer.Option(envvar="TINYFLEET_DEVICE_MQTT_URL", help="Broker, mqtt://host:1883")] = (
        "mqtt://127.0.0.1:1883"
    ),
    credentials: Annotated[
        Path | None,
        typer.Option(help="CSV device_id,username,password (as `tinyfleet devices import -o` writes it)"),
    ] = None,
    model: Annotated[
        list[Path] | None,
        typer.Option(help="A .tflite (NAME.card.json beside it gives its defaults); repeatable; default: vib-*"),
    ] = None,
    topic_prefix: Annotated[str, typer.Option(envvar="TINYFLEET_TOPIC_PREFIX")] = "tf/v1",
    id_prefix: Annotated[str, typer.Option(help="Device ids without --credentials")] = "sim-",
    rate: Annotated[float, typer.Option(help="Inferences per second per device (each model's)")] = 1.0,
    degrade_s: Annotated[float, typer.Option(help="Seconds a degrading device takes from healthy to severe")] = 600.0,
    outage_scale: Annotated[float, typer.Option(help="Scale of flaky/offline periods (0.1: ten times as often)")] = 1.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    mqtt_protocol: Annotated[int | None, typer.Option(help="5 or 4 (3.1.1); default: 5, else 3.1.1")] = None,
    status_every: Annotated[float, typer.Option(help="Seconds between status lines on stderr")] = 10.0,
) -> None:
    """Simulate a fleet: every device its own MQTT connection, real TFLM inference, diverse behaviour.

    Prints a JSON summary line when it stops."""
    try:
        paths = list(model or bundled_models())
        if not paths:
            raise FleetError("no model: pass --model FILE.tflite (`make models` builds models/artifacts/vib-cls)")
        models = [FleetModel.from_files(p) for p in paths]
        creds = read_credentials(credentials) if credentials else []
        sim = Fleet(
            models, count=count, credentials=creds, mqtt_url=mqtt_url, topic_prefix=topic_prefix,
            id_prefix=id_prefix, profile=profile, rate_hz=rate, seed=seed, degrade_s=degrade_s,
            outage_scale=outage_scale, mqtt_protocol=mqtt_protocol,
        )  # fmt: skip
    except (FleetError, DeviceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    totals = asyncio.run(_run(sim, duration, status_every))
    typer.echo(json.dumps({"fleet": dataclasses.asdict(totals), "models": [f"{m.name}:{m.version}" for m in models]}))


async def _run(sim: Fleet, duration: float | None, status_every: float) -> FleetTotals:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    started = time.monotonic()
    async with sim:
        behaviours = {str(d.behaviour) for d in sim.devices}
        typer.echo(
            f"fleet: {len(sim.devices)} devices ({', '.join(sorted(behaviours))}) on {sim.broker.host}:"
            f"{sim.broker.port} (MQTT {sim.protocol.name}), models {', '.join(m.name for m in sim.models)}",
            err=True,
        )
        task = asyncio.create_task(sim.run(stop), name="fleet")
        while not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=status_every)
            t = sim.totals()
            typer.echo(
                f"fleet: {time.monotonic() - started:6.0f} s  {t.connected}/{t.devices} connected  {t.events} events"
                f" acknowledged  {t.buffered_now} buffered  {t.dropped} dropped  {t.drops} connection drops",
                err=True,
            )
        await task
    return sim.totals()
