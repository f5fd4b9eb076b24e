"""`tinyfleet dashboards …`: put tinyfleet's Grafana data source and dashboards into a running Grafana.

Exit codes: 0 done, 1 Grafana (or the files) refused, 2 bad command-line usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

dashboards_app = typer.Typer(
    help="Grafana dashboards (dashboards/): push the TimescaleDB data source and the dashboards to a Grafana.",
    no_args_is_help=True,
)


def _die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"tinyfleet: {message}", err=True)
    raise typer.Exit(code)


@dashboards_app.command("push")
def push(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana's base URL, e.g. http://grafana:3000")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="Service-account token (Editor or Admin role)")],
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="TINYFLEET_GRAFANA_DATABASE_URL",
            help="postgresql://user:password@host:port/db Grafana queries (a read-only role); "
            "default: TINYFLEET_DATABASE_URL",
        ),
    ] = None,
    db_host: Annotated[
        str | None, typer.Option(help="host:port of the database as Grafana reaches it (default: from the URL)")
    ] = None,
    sslmode: Annotated[str, typer.Option(help="sslmode of Grafana's connection")] = "disable",
    datasource: Annotated[
        bool, typer.Option("--datasource/--no-datasource", help="Create/update the data source too")
    ] = True,
    folder: Annotated[str, typer.Option(help="Uid (and title) of the Grafana folder")] = "tinyfleet",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Directory of dashboard JSON files (default: the shipped ones)")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds per HTTP request")] = 15.0,
) -> None:
    """Create or update the data source, the folder and every dashboard (by uid, overwrite: never duplicates)."""
    from tinyfleet.grafana.push import DashboardsError, DatasourceSpec, GrafanaPusher, load_dashboards

    try:
        docs = load_dashboards(directory)
        spec = None
        if datasource:
            if database_url is None:
                from tinyfleet.cli import get_settings

                database_url = get_settings().database_url
            spec = DatasourceSpec.from_url(database_url, host=db_host, sslmode=sslmode)
        report = GrafanaPusher(url, token, timeout=timeout).push(docs, spec, folder_uid=folder, folder_title=folder)
    except DashboardsError as exc:
        _die(str(exc))
    for line in report.lines():
        typer.echo(line)


@dashboards_app.command("check")
def check(
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="TINYFLEET_GRAFANA_DATABASE_URL",
            help="Database to run the panels on (default: TINYFLEET_DATABASE_URL)",
        ),
    ] = None,
    hours: Annotated[float, typer.Option(min=0.01, help="Time range of the panels: the last N hours")] = 6.0,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Directory of dashboard JSON files (default: the shipped ones)")
    ] = None,
) -> None:
    """Run every panel query (macros expanded as Grafana does, read-only); report rows or errors, exit 1 on errors."""
    from datetime import timedelta

    from tinyfleet.grafana.check import check_dashboards
    from tinyfleet.grafana.push import DashboardsError, load_dashboards

    if database_url is None:
        from tinyfleet.cli import get_settings

        database_url = get_settings().libpq_url
    try:
        results = check_dashboards(database_url, load_dashboards(directory), span=timedelta(hours=hours))
    except DashboardsError as exc:
        _die(str(exc))
    except Exception as exc:  # the database is unreachable: one line, not a traceback
        _die(f"cannot check the dashboards: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    for result in results:
        typer.echo(result.line())
    failed = sum(1 for r in results if r.error is not None)
    typer.echo(f"{len(results) - failed} ok, {failed} failed")
    if failed:
        raise typer.Exit(1)
