"""`tinyfleet devices …` and `tinyfleet api-keys …`: fleet management from the shell, straight on the database.

The CLI needs no running service and no API key (it is how the first admin key is made); whoever can run it
can reach the database. Every change is recorded in the audit table as ``cli:<os user>`` and, when the broker
files are managed (``TINYFLEET_BROKER_PASSWORD_FILE``), the files are rewritten and the broker reloaded.
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.config import Settings
from tinyfleet.fleet import api_keys, audit, cohorts, users
from tinyfleet.fleet import devices as fleet_devices
from tinyfleet.fleet.broker_auth import BrokerAuth
from tinyfleet.fleet.errors import BrokerSyncError, FleetError
from tinyfleet.fleet.selectors import parse_selector
from tinyfleet.store import queries
from tinyfleet.store.db import Database

T = TypeVar("T")

devices_app = typer.Typer(
    help="Devices: provision (one or a CSV), tags, enable/disable, decommission.", no_args_is_help=True
)
api_keys_app = typer.Typer(
    help="API keys of the REST API (scopes: read, write, admin, device-provisioning).", no_args_is_help=True
)


def _settings() -> Settings:
    from tinyfleet.cli import get_settings

    return get_settings()


def _die(message: str, code: int = 1) -> None:
    typer.echo(f"tinyfleet: {message}", err=True)
    raise typer.Exit(code)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, sync_broker: bool = False) -> T:
    """Run `work` in one transaction; then, if asked, rewrite the broker files from the committed state."""

    async def main() -> T:
        async with Database(settings, pool_size=1, max_overflow=0) as db:
            async with db.session() as session:
                result = await work(session)
            if sync_broker:
                broker = BrokerAuth(settings)
                if broker.managed:
                    async with db.engine.connect() as conn:
                        count = await broker.sync(conn)
                    typer.echo(f"broker credentials rewritten ({count} device(s)) and broker reloaded", err=True)
            return result

    try:
        return asyncio.run(main())
    except BrokerSyncError as exc:
        _die(f"{exc.message}; the change is saved: run `tinyfleet devices sync-broker` once fixed")
    except FleetError as exc:
        typer.echo(f"tinyfleet: {exc.message}", err=True)
        for row in exc.details or []:
            where = f"line {row['line']}" if row.get("line") else ""
            who = f" ({row['device_id']})" if row.get("device_id") else ""
            typer.echo(f"  {where}{who}: {row['message']}", err=True)
        raise typer.Exit(1) from None
    except (DBAPIError, OSError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        _die(f"database error: {first[0] if first else type(exc).__name__} (is it up and migrated?)")
    raise AssertionError("unreachable")


def _parse_tags(pairs: list[str]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            _die(f"tag {pair!r} is not KEY=VALUE (KEY= removes a tag)")
        tags[key.strip()] = value.strip() or None
    return tags


def _device_json(d: Any) -> dict[str, Any]:
    keys = ("id", "enabled", "online", "firmware", "model", "mver", "tags", "capabilities", "provisioned_at",
            "decommissioned_at", "last_seen")  # fmt: skip
    return {k: getattr(d, k) for k in keys}


def _print_device_line(d: Any) -> None:
    state = "decommissioned" if d.decommissioned_at else ("enabled" if d.enabled else "disabled")
    tags = ",".join(f"{k}={v}" for k, v in sorted((d.tags or {}).items()))
    online = "online" if d.online else "offline"
    typer.echo(f"{d.id}\t{state}\t{online}\t{tags}")


# ------------------------------------------------------------------------------------------------ devices
@devices_app.command("list")
def devices_list(
    selector: Annotated[str | None, typer.Option(help="Tag selector, e.g. 'site=plant-a AND line in (1,2)'")] = None,
    cohort: Annotated[str | None, typer.Option(help="Devices of this saved cohort")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """List devices (id, state, online, tags), optionally those matching a selector or a cohort."""
    settings = _settings()

    async def work(session: AsyncSession) -> list[Any]:
        where = None
        if cohort is not None:
            where = cohorts.device_condition(cohorts.selector_of(await cohorts.get_cohort(session, cohort)))
        elif selector is not None:
            where = cohorts.device_condition(parse_selector(selector), include_decommissioned=True)
        out: list[Any] = []
        cursor = None
        while True:
            page = await queries.list_devices(session, limit=1000, cursor=cursor, where=where)
            out += page.items
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    for d in _run(settings, work):
        if as_json:
            typer.echo(json.dumps(_device_json(d), default=str))
        else:
            _print_device_line(d)


@devices_app.command("provision")
def devices_provision(
    device_id: Annotated[str, typer.Argument(help="Device id (= MQTT username)")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
) -> None:
    """Register one device and print its MQTT credentials (the password is shown only now)."""
    settings = _settings()
    tags = {k: v for k, v in _parse_tags(tag or []).items() if v is not None}

    async def work(session: AsyncSession) -> fleet_devices.Provisioned:
        done = await fleet_devices.provision(session, device_id, tags)
        await audit.record(session, actor=_actor(), action="cli devices provision", target=device_id,
                           summary={"tags": sorted(tags)})  # fmt: skip
        return done

    done = _run(settings, work, sync_broker=True)
    if as_json:
        typer.echo(json.dumps({"id": done.device.id, "username": done.username, "password": done.password}))
    else:
        typer.echo(f"username: {done.username}\npassword: {done.password}")


@devices_app.command("import")
def devices_import(
    csv_file: Annotated[Path, typer.Argument(help="CSV with a device_id column; other columns become tags")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write id,username,password here (default: stdout)")
    ] = None,
) -> None:
    """Provision every device of a CSV, or none when any row is bad (each bad row is listed)."""
    settings = _settings()
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _die(f"cannot read {csv_file}: {exc}")
    if output is not None and output.exists():
        _die(f"{output} exists; credentials are never overwritten")

    async def work(session: AsyncSession) -> list[fleet_devices.Provisioned]:
        done = await fleet_devices.provision_many(session, fleet_devices.parse_csv(text))
        await audit.record(session, actor=_actor(), action="cli devices import", target=None,
                           summary={"file": csv_file.name, "count": len(done),
                                    "device_ids": [p.device.id for p in done][:100]})  # fmt: skip
        return done

    done = _run(settings, work, sync_broker=True)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["device_id", "username", "password"])
    for p in done:
        writer.writerow([p.device.id, p.username, p.password])
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        output.touch(mode=0o600)
        output.write_text(buf.getvalue())
    typer.echo(f"{len(done)} device(s) provisioned", err=True)


@devices_app.command("tag")
def devices_tag(
    device_id: Annotated[str, typer.Argument()],
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE (KEY= removes the tag)")],
) -> None:
    """Set or remove tags of a device."""
    settings = _settings()
    tags = _parse_tags(pairs)

    async def work(session: AsyncSession) -> Any:
        device = await fleet_devices.update_tags(session, device_id, tags)
        await audit.record(session, actor=_actor(), action="cli devices tag", target=device_id,
                           summary={"tags": sorted(tags)})  # fmt: skip
        return device

    _print_device_line(_run(settings, work))


def _lifecycle(action: str, device_id: str, change: Callable[[AsyncSession], Awaitable[Any]]) -> None:
    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        device = await change(session)
        await audit.record(session, actor=_actor(), action=f"cli devices {action}", target=device_id)
        return device

    _print_device_line(_run(settings, work, sync_broker=True))


@devices_app.command("enable")
def devices_enable(device_id: Annotated[str, typer.Argument()]) -> None:
    """Let a disabled device connect again."""
    _lifecycle("enable", device_id, lambda s: fleet_devices.set_enabled(s, device_id, True))


@devices_app.command("disable")
def devices_disable(device_id: Annotated[str, typer.Argument()]) -> None:
    """Refuse a device's connections (credentials kept)."""
    _lifecycle("disable", device_id, lambda s: fleet_devices.set_enabled(s, device_id, False))


@devices_app.command("decommission")
def devices_decommission(device_id: Annotated[str, typer.Argument()]) -> None:
    """Retire a device for good: credentials revoked, history kept."""
    _lifecycle("decommission", device_id, lambda s: fleet_devices.decommission(s, device_id))


@devices_app.command("rotate")
def devices_rotate(device_id: Annotated[str, typer.Argument()]) -> None:
    """Give a device a new MQTT password (printed once); the old one stops working."""
    settings = _settings()

    async def work(session: AsyncSession) -> fleet_devices.Provisioned:
        done = await fleet_devices.rotate_credentials(session, device_id)
        await audit.record(session, actor=_actor(), action="cli devices rotate", target=device_id)
        return done

    done = _run(settings, work, sync_broker=True)
    typer.echo(f"username: {done.username}\npassword: {done.password}")


@devices_app.command("sync-broker")
def devices_sync_broker() -> None:
    """Rewrite the broker's password and ACL files from the database and reload the broker."""
    settings = _settings()
    if not BrokerAuth(settings).managed:
        _die("TINYFLEET_BROKER_PASSWORD_FILE is not set: the broker files are not managed here", 2)

    async def work(_session: AsyncSession) -> None:
        return None

    _run(settings, work, sync_broker=True)


# ----------------------------------------------------------------------------------------------- api keys
@api_keys_app.command("create")
def api_keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'grafana'")],
    scope: Annotated[list[str], typer.Option("--scope", help="read, write, admin, device-provisioning; repeatable")],
) -> None:
    """Create an API key and print its token (shown only now)."""
    settings = _settings()

    async def work(session: AsyncSession) -> api_keys.NewApiKey:
        new = await api_keys.create_key(session, name, scope, created_by=_actor())
        await audit.record(session, actor=_actor(), action="cli api-keys create", target=new.key.prefix,
                           summary={"name": name, "scopes": list(new.key.scopes)})  # fmt: skip
        return new

    new = _run(settings, work)
    typer.echo(new.token)
    typer.echo(f"key {new.key.id} ({new.key.prefix}) scopes {','.join(new.key.scopes)}: store the token now", err=True)


@api_keys_app.command("list")
def api_keys_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """List API keys (never their tokens)."""
    settings = _settings()
    for k in _run(settings, api_keys.list_keys):
        row = {"id": k.id, "prefix": k.prefix, "name": k.name, "scopes": list(k.scopes), "created_at": k.created_at,
               "last_used_at": k.last_used_at, "revoked_at": k.revoked_at}  # fmt: skip
        if as_json:
            typer.echo(json.dumps(row, default=str))
        else:
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id}\t{k.prefix}\t{state}\t{','.join(k.scopes)}\t{k.name}")


@api_keys_app.command("revoke")
def api_keys_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix (tfk_…)")]) -> None:
    """Revoke an API key (it stops working at once)."""
    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        revoked = await api_keys.revoke_key(session, key)
        await audit.record(session, actor=_actor(), action="cli api-keys revoke", target=revoked.prefix)
        return revoked

    revoked = _run(settings, work)
    typer.echo(f"revoked key {revoked.id} ({revoked.prefix})")


# --------------------------------------------------------------------------------------------------- users
users_app = typer.Typer(
    help="Users of the web UI (roles: read-only, operator, admin) with a password.", no_args_is_help=True
)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="read-only, operator or admin")] = "read-only",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input")
    ] = False,
) -> None:
    """Create a UI user (the password is asked twice, or read from stdin with --password-stdin)."""
    settings = _settings()
    try:
        users.check_username(username)
        users.check_role(role)
        password = users.check_password(_read_password(password_stdin))
    except FleetError as exc:
        _die(exc.message, 2)

    async def work(session: AsyncSession) -> Any:
        user = await users.create_user(session, username, password, role, created_by=_actor())
        await audit.record(session, actor=_actor(), action="cli users create", target=username,
                           summary={"role": role})  # fmt: skip
        return user

    user = _run(settings, work)
    typer.echo(f"user {user.id} {user.username} ({user.role}) created")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """List UI users (never their password hashes)."""
    settings = _settings()
    for u in _run(settings, users.list_users):
        row = {"id": u.id, "username": u.username, "role": u.role, "created_at": u.created_at,
               "last_login_at": u.last_login_at, "disabled_at": u.disabled_at}  # fmt: skip
        if as_json:
            typer.echo(json.dumps(row, default=str))
        else:
            typer.echo(f"{u.id}\t{u.username}\t{u.role}\t{'disabled' if u.disabled_at else 'active'}")


def _toggle(username: str, disabled: bool) -> None:
    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        user = await users.set_disabled(session, username, disabled)
        await audit.record(session, actor=_actor(), action=f"cli users {'disable' if disabled else 'enable'}",
                           target=username)  # fmt: skip
        return user

    _run(settings, work)
    typer.echo(f"user {username} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Disable a user: their sessions stop working at the next request."""
    _toggle(username, True)


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Let a disabled user log in again."""
    _toggle(username, False)


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Login name")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the new password from stdin")] = False,
) -> None:
    """Set a user's password."""
    settings = _settings()
    try:
        password = users.check_password(_read_password(password_stdin))
    except FleetError as exc:
        _die(exc.message, 2)

    async def work(session: AsyncSession) -> Any:
        user = await users.set_password(session, username, password)
        await audit.record(session, actor=_actor(), action="cli users passwd", target=username)
        return user

    _run(settings, work)
    typer.echo(f"password of {username} changed")
