"""The `tinyfleet` command line (typer).

Settings come from the environment and `.env` (``TINYFLEET_*``); options given on the command line override
them. Invalid settings (e.g. prod mode with development defaults) print one clear line and exit with 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

import tinyfleet
from tinyfleet.config import Settings, load_settings
from tinyfleet.logging import setup_logging
from tinyfleet.ota import cli as ota_cli
from tinyfleet.registry.cli import models_app

if TYPE_CHECKING:
    from tinyfleet.rules.loader import RuleSet

log = logging.getLogger("tinyfleet.cli")

app = typer.Typer(
    name="tinyfleet",
    help="tinyfleet: MQTT ingest of TinyML inference events into TimescaleDB, with a REST API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (Alembic, packaged with tinyfleet).", no_args_is_help=True)
app.add_typer(db_app, name="db")
rules_app = typer.Typer(help="Alert rules kept as YAML files (rules/*.yml).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(ota_cli.keys_app, name="keys")
app.add_typer(ota_cli.manifest_app, name="manifest")
app.add_typer(models_app, name="models")

EXIT_SETTINGS = 2


def _die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"tinyfleet: {message}", err=True)
    raise typer.Exit(code)


def _load_rules_or_exit(directory: str) -> RuleSet:
    """The rule set in `directory`, or every problem as file:line:column on stderr and exit 1."""
    from tinyfleet.rules.loader import RuleSetError, load_rules

    try:
        return load_rules(directory)
    except RuleSetError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        _die(f"{len(exc.issues)} problem(s); the rule set would be refused")
    except OSError as exc:
        _die(f"cannot read rules from {directory}: {exc}")


def describe_settings_error(exc: ValidationError) -> str:
    """One line: ``invalid settings: TINYFLEET_X: reason; …``."""
    parts = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"TINYFLEET_{loc.upper()}: {msg}" if loc else msg)
    return "invalid settings: " + "; ".join(parts)


def get_settings(**overrides: Any) -> Settings:
    """Settings from env/.env with the non-None overrides on top; exits 2 with one line when invalid."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = load_settings(**given)
    except ValidationError as exc:
        _die(describe_settings_error(exc), EXIT_SETTINGS)
    setup_logging(settings.log_level)
    return settings


def _force_exit() -> None:
    os._exit(130)


# --------------------------------------------------------------------------------------------- commands
@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"tinyfleet {tinyfleet.__version__}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="HTTP bind address [env TINYFLEET_HTTP_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [env TINYFLEET_HTTP_PORT]")] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id of the ingest worker")] = None,
    shared_group: Annotated[
        str | None, typer.Option(help="MQTT 5 shared-subscription group, to split load with other workers")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING… [env TINYFLEET_LOG_LEVEL]")] = None,
) -> None:
    """Run the API, the ingest worker and the maintenance scheduler in one process."""
    settings = get_settings(
        http_host=host,
        http_port=port,
        mqtt_client_id=client_id,
        mqtt_shared_group=shared_group,
        log_level=log_level,
    )
    from tinyfleet.app import Service, install_stop_signals

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop, on_second=_force_exit)
        async with Service(settings) as service:
            await service.serve(
                stop,
                started=lambda: log.info(
                    "tinyfleet %s serving on http://%s:%d (ingest from %s)",
                    tinyfleet.__version__,
                    settings.http_host,
                    settings.http_port,
                    settings.mqtt,
                ),
            )
        log.info("stopped")

    try:
        asyncio.run(main())
    except RuntimeError as exc:
        _die(str(exc))


@app.command()
def ingest(
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (unique per worker)")] = None,
    shared_group: Annotated[
        str | None, typer.Option(help="MQTT 5 shared-subscription group: workers of one group split the load")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING…")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve this worker's Prometheus metrics on this port")
    ] = None,
) -> None:
    """Run an ingest worker alone (no API), e.g. to scale out. SIGTERM/SIGINT drain the current batch."""
    settings = get_settings(mqtt_client_id=client_id, mqtt_shared_group=shared_group, log_level=log_level)
    from tinyfleet.app import Service, install_stop_signals

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop, on_second=_force_exit)
        async with Service(settings, http=False, maintenance=False) as service:
            assert service.ingest is not None
            if metrics_port is not None:
                from prometheus_client import start_http_server

                start_http_server(metrics_port, addr=settings.http_host, registry=service.ingest.metrics.registry)
                log.info("metrics on http://%s:%d/metrics", settings.http_host, metrics_port)
            log.info(
                "ingest worker %s running (broker %s%s); stop with SIGTERM or Ctrl-C",
                service.ingest.client_id,
                settings.mqtt,
                f", shared group {settings.mqtt_shared_group}" if settings.mqtt_shared_group else "",
            )
            await stop.wait()
            log.info("draining the current batch")
        log.info("stopped")

    asyncio.run(main())


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=200, help="Simulated devices")] = 5,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Always use the embedded broker and database, even if some run")
    ] = False,
    port: Annotated[int | None, typer.Option(help="HTTP port [env TINYFLEET_HTTP_PORT, default 8080]")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the simulated devices")] = None,
) -> None:
    """The service with simulated devices; uses the configured or local broker/database, else embedded ones."""
    get_settings(http_port=port)  # validates early, sets up logging
    from tinyfleet.demo.runner import DemoOptions, run

    code = run(DemoOptions(devices=devices, embedded=embedded, seed=seed), {"http_port": port} if port else {})
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
    timescaledb: Annotated[
        bool | None,
        typer.Option(
            "--timescaledb/--no-timescaledb", help="Hypertables when available [env TINYFLEET_USE_TIMESCALEDB]"
        ),
    ] = None,
) -> None:
    """Migrate the database (TINYFLEET_DATABASE_URL) up to a revision."""
    settings = get_settings(use_timescaledb=timescaledb)
    from tinyfleet.store.migrate import current, upgrade

    try:
        upgrade(settings.database_url, revision, use_timescaledb=settings.use_timescaledb)
        typer.echo(f"database at revision {current(settings.database_url)}")
    except Exception as exc:
        _die(f"upgrade failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. 'base' or '-1'")]) -> None:
    """Migrate the database down to a revision ('base' removes everything tinyfleet created)."""
    settings = get_settings()
    from tinyfleet.store.migrate import current, downgrade

    try:
        downgrade(settings.database_url, revision)
        typer.echo(f"database at revision {current(settings.database_url) or 'base'}")
    except Exception as exc:
        _die(f"downgrade failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision."""
    settings = get_settings()
    from tinyfleet.store.migrate import current

    try:
        typer.echo(current(settings.database_url) or "base (not migrated)")
    except Exception as exc:
        _die(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")


@rules_app.command("validate")
def rules_validate(
    directory: Annotated[str, typer.Argument(help="Folder of *.yml rule files")] = "rules",
) -> None:
    """Check a rule set; print every problem as file:line:column. Exit 1 when the set would be refused."""
    ruleset = _load_rules_or_exit(directory)
    typer.echo(f"{len(ruleset.rules)} rules OK ({', '.join(r.id for r in ruleset.rules)})")


RULES_TEST_HELP = (
    "Replay recorded events through the rules and print what would have fired, and when.\n\n"
    "Events come from a file (--events FILE) or from the database at TINYFLEET_DATABASE_URL (--from/--to, "
    "optionally --device; the events table in time order).\n\n"
    'FILE is JSON lines, one event per line: "device", "time" (ISO-8601 or epoch ms) and "model" are required; '
    '"mver", "kind" (0..3 or classification/anomaly/regression/detection), "label" (index or a label name of the '
    'model), "score", "anom", "lat" (µs), "x" (extras), "site" and "tags" are optional; blank lines and # comments '
    "are skipped. Example line:\n\n"
    '{"device": "pump-1", "time": "2026-11-25T10:08:00Z", "model": "vib-cls", "label": "bearing_fault", '
    '"score": 0.9}\n\n'
    "Time-driven transitions (absence, for:, auto-resolve, escalation) are printed at the simulated times at "
    "which they would have happened. Output: one line per transition, then opened/resolved/escalated counts per "
    "rule (--json: one JSON document). Exit 0 when the replay ran, alerts or not; 1 for invalid rules "
    "(file:line:column) or unreadable events (file:line)."
)


@rules_app.command("test", help=RULES_TEST_HELP)
def rules_test(
    directory: Annotated[str, typer.Argument(help="Folder of *.yml rule files")] = "rules",
    events: Annotated[
        str | None, typer.Option("--events", help="JSON-lines file of recorded events (format above)")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Replay the database's events from this time (ISO-8601)")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="... up to this time, excluded (ISO-8601)")] = None,
    device: Annotated[str | None, typer.Option(help="With --from/--to: only this device's events")] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="With --events: replay the clock on to this time (ISO-8601) or for this long after "
            "the last event (+20m); default: the last event"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of text")] = False,
) -> None:
    import json

    from tinyfleet.rules.model import parse_duration
    from tinyfleet.rules.recorded import EventsFileError, Replayer, parse_time, read_events_file

    if (events is None) == (start is None and end is None):
        _die("give either --events FILE or --from TIME --to TIME")
    if events is None and (start is None or end is None):
        _die("--from and --to go together")
    if device is not None and events is not None:
        _die("--device goes with --from/--to (filter the file instead)")
    if until is not None and events is None:
        _die("--until goes with --events (the database replay runs to --to)")
    ruleset = _load_rules_or_exit(directory)

    replayer = Replayer(ruleset)
    if events is not None:
        try:
            recorded = read_events_file(events, ruleset)
        except EventsFileError as exc:
            _die(f"bad event: {exc}")
        except (OSError, UnicodeDecodeError) as exc:
            _die(f"cannot read events from {events}: {exc}")
        replayer.feed(recorded)
        until_ms: int | None = None
        if until is not None:
            try:
                if until.startswith("+"):
                    last = replayer.result.last_ms
                    until_ms = (last if last is not None else 0) + parse_duration(until[1:])
                else:
                    until_ms = parse_time(until)
            except ValueError as exc:
                _die(f"--until: {exc}")
        result = replayer.finish(until_ms)
    else:
        assert start is not None
        assert end is not None
        try:
            start_ms, end_ms = parse_time(start), parse_time(end)
        except ValueError as exc:
            _die(f"--from/--to: {exc}")
        if end_ms <= start_ms:
            _die("--to must be after --from")
        settings = get_settings()
        from tinyfleet.rules.recorded import db_event_pages

        async def from_db() -> None:
            async for page in db_event_pages(settings.database_url, start_ms, end_ms, device):
                replayer.feed(page)

        try:
            asyncio.run(from_db())
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _die(f"cannot read events from the database: {type(exc).__name__}: {first}")
        result = replayer.finish(end_ms)

    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, default=str))
        return
    for t in result.transitions:
        typer.echo(result.line(t))
    if not result.transitions:
        typer.echo("nothing would have fired")
    typer.echo("")
    span = ""
    if result.first_ms is not None and result.until_ms is not None:
        from tinyfleet.rules.recorded import format_time

        span = f" from {format_time(result.first_ms)} to {format_time(result.until_ms)}"
    typer.echo(f"replayed {result.events} events of {len(result.devices)} device(s){span}")
    for row in result.table():
        typer.echo(row)


def main() -> None:
    """Entry point of the `tinyfleet` script."""
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C outside the graceful handlers (e.g. during start-up)
        sys.exit(130)


# Fleet management (tinyfleet.fleet.cli); imported last because its commands use get_settings() from here.
from tinyfleet.fleet.cli import api_keys_app, devices_app, users_app  # noqa: E402
from tinyfleet.grafana.cli import dashboards_app  # noqa: E402

app.add_typer(devices_app, name="devices")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(users_app, name="users")
app.add_typer(dashboards_app, name="dashboards")
