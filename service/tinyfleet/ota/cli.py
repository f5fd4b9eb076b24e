"""`tinyfleet keys …` (the manifest signing key) and `tinyfleet manifest …` (sign, verify, show) for operators.

The key comes from the settings (TINYFLEET_OTA_SIGNING_KEY_FILE or TINYFLEET_OTA_SIGNING_KEY) unless
``--key-file`` names one. Errors print one line and exit 1 (2 for invalid settings).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from tinyfleet_device.manifest import (
    DeviceCapabilities,
    ManifestError,
    TrustedKeys,
    decode_payload,
    key_id,
    parse_manifest,
    verify_manifest,
)

from .keys import (
    PublicKeyFormat,
    SigningKeyError,
    export_public_key,
    generate_signing_key,
    load_signing_key,
    load_signing_key_file,
    parse_public_key,
    write_signing_key,
)
from .manifest import ManifestDescriptionError, artifact_digest, parse_description, sign_manifest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tinyfleet.config import Settings

keys_app = typer.Typer(help="The Ed25519 key that signs OTA manifests.", no_args_is_help=True)
manifest_app = typer.Typer(help="Signed OTA manifests (COSE_Sign1, docs/ota.md).", no_args_is_help=True)

KeyFileOption = Annotated[
    Path | None,
    typer.Option("--key-file", help="PEM signing key (default: TINYFLEET_OTA_SIGNING_KEY_FILE / _KEY)"),
]


def _die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"tinyfleet: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    from tinyfleet.cli import get_settings  # the CLI module imports this one

    return get_settings()


def _signing_key(key_file: Path | None) -> Ed25519PrivateKey:
    try:
        return load_signing_key_file(key_file) if key_file is not None else load_signing_key(_settings())
    except SigningKeyError as exc:
        _die(str(exc))


# ------------------------------------------------------------------------------------------------- keys
@keys_app.command("generate")
def keys_generate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the PEM key (mode 0600; never overwritten). Default: "
            "TINYFLEET_OTA_SIGNING_KEY_FILE, else <data_dir>/ota-signing-key.pem",
        ),
    ] = None,
) -> None:
    """Generate a new signing key and print its public half."""
    if out is None:
        settings = _settings()
        out = settings.ota_signing_key_file or settings.data_dir / "ota-signing-key.pem"
    key = generate_signing_key()
    try:
        write_signing_key(out, key)
    except (SigningKeyError, OSError) as exc:
        _die(str(exc))
    public = key.public_key()
    typer.echo(f"wrote {out} (mode 0600)")
    typer.echo(f"kid:        {key_id(public).hex()}")
    typer.echo(f"public key: {export_public_key(public)}")
    typer.echo(f"use it with: TINYFLEET_OTA_SIGNING_KEY_FILE={out}")


@keys_app.command("show-public")
def keys_show_public(
    fmt: Annotated[PublicKeyFormat, typer.Option("--format", help="hex / base64 (raw 32 bytes), pem, c")] = (
        PublicKeyFormat.HEX
    ),
    key_file: KeyFileOption = None,
) -> None:
    """Print the public key devices must trust (and its kid, as a comment, on stderr)."""
    public = _signing_key(key_file).public_key()
    typer.echo(export_public_key(public, fmt))
    typer.echo(f"kid {key_id(public).hex()}", err=True)


# ---------------------------------------------------------------------------------------------- manifest
_HEX = re.compile(rb"[0-9a-fA-F\s]+")


def _read_manifest(path: Path) -> bytes:
    """A manifest file: binary COSE_Sign1, or the same as hex text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        _die(f"cannot read {path}: {exc.strerror or exc}")
    if data and _HEX.fullmatch(data):
        try:
            return bytes.fromhex(data.decode())
        except ValueError:
            return data
    return data


def _public_keys(specs: list[str], key_file: Path | None) -> TrustedKeys:
    if not specs:
        return TrustedKeys([_signing_key(key_file).public_key()])
    keys = []
    for spec in specs:
        path = Path(spec)
        try:
            text = path.read_text() if path.is_file() else spec
        except (OSError, UnicodeDecodeError) as exc:
            _die(f"cannot read the public key {spec}: {exc}")
        try:
            keys.append(parse_public_key(text, where=spec))
        except (SigningKeyError, ValueError) as exc:
            _die(str(exc))
    return TrustedKeys(keys)


def _device(path: Path | None) -> DeviceCapabilities:
    if path is None:
        return DeviceCapabilities()
    try:
        d = json.loads(path.read_text())
        ops = d.get("ops")
        for name in ("flash", "ram", "arena"):
            if d.get(name) is not None and type(d[name]) is not int:
                raise TypeError(f"{name} must be an integer")
        return DeviceCapabilities(
            flash=d.get("flash"),
            ram=d.get("ram"),
            arena=d.get("arena"),
            ops=frozenset(ops) if ops is not None else None,
            device_class=d.get("class"),
            device_id=d.get("id"),
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        _die(f"{path}: expected a JSON object with flash, ram, arena, ops, class, id: {exc}")


def _unverified_payload(data: bytes) -> dict[str, Any] | None:
    try:
        return decode_payload(parse_manifest(data).payload).as_dict()
    except ManifestError:
        return None


@manifest_app.command("sign")
def manifest_sign(
    description: Annotated[Path, typer.Argument(help="JSON description: the payload fields by name (docs/ota.md)")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the COSE_Sign1 here (default: hex on stdout)")] = (
        None
    ),
    seq: Annotated[int | None, typer.Option(help="Sequence number (overrides the description's)")] = None,
    artifact: Annotated[Path | None, typer.Option(help="Take size and SHA-256 from this file")] = None,
    key_file: KeyFileOption = None,
) -> None:
    """Sign a manifest from a JSON description."""
    try:
        desc = parse_description(description.read_bytes())
        digest = artifact_digest(artifact) if artifact is not None else None
        manifest = desc.to_manifest(seq=seq, artifact=digest)
    except OSError as exc:
        _die(f"cannot read {exc.filename}: {exc.strerror or exc}")
    except ManifestDescriptionError as exc:
        _die(f"{description}: {exc}")
    key = _signing_key(key_file)
    try:
        signed = sign_manifest(manifest, key)
    except ManifestError as exc:
        _die(f"{description}: a device would refuse this manifest: {exc.message}")
    if out is None:
        typer.echo(signed.hex())
    else:
        out.write_bytes(signed)
    where = f" to {out}" if out else ""
    typer.echo(f"signed {len(signed)} bytes{where}: seq {manifest.seq}, kid {key_id(key.public_key()).hex()}", err=True)


@manifest_app.command("verify")
def manifest_verify(
    path: Annotated[Path, typer.Argument(help="Manifest file (binary COSE_Sign1 or hex)")],
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            help="Trusted public key: a file or a literal (PEM, or raw hex/base64); repeat for several. "
            "Default: the public half of the configured signing key",
        ),
    ] = None,
    last_seq: Annotated[int, typer.Option(help="The device's last applied sequence number")] = 0,
    now: Annotated[int | None, typer.Option(help="Clock in Unix seconds (default: this machine's)")] = None,
    no_clock: Annotated[bool, typer.Option("--no-clock", help="Skip the expiry check, as a clockless device")] = False,
    device: Annotated[
        Path | None, typer.Option(help="JSON of the device's capabilities: flash, ram, arena, ops, class, id")
    ] = None,
    key_file: KeyFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
) -> None:
    """Verify a manifest as a device would; print the payload and the verdict (exit 1 when rejected)."""
    data = _read_manifest(path)
    keys = _public_keys(public_key or [], key_file)
    clock = None if no_clock else (now if now is not None else int(time.time()))
    caps = _device(device)
    result: dict[str, Any] = {"size": len(data)}
    try:
        parsed = parse_manifest(data)
        result["kid"] = parsed.kid.hex()
    except ManifestError:
        pass
    try:
        manifest = verify_manifest(data, keys=keys, last_seq=last_seq, now=clock, device=caps)
    except ManifestError as exc:
        result |= {"verdict": "rejected", "reason": exc.reason.value, "message": exc.message}
        result["payload"] = _unverified_payload(data)
        result["payload_verified"] = False
    else:
        result |= {"verdict": "valid", "payload": manifest.as_dict(), "payload_verified": True}
    _print_result(result, as_json)
    if result["verdict"] != "valid":
        raise typer.Exit(1)


@manifest_app.command("show")
def manifest_show(
    path: Annotated[Path, typer.Argument(help="Manifest file (binary COSE_Sign1 or hex)")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
) -> None:
    """Decode a manifest WITHOUT checking its signature (use `verify` for that)."""
    data = _read_manifest(path)
    try:
        parsed = parse_manifest(data)
        payload = decode_payload(parsed.payload)
    except ManifestError as exc:
        _die(f"{path}: {exc}")
    result = {
        "size": len(data),
        "kid": parsed.kid.hex(),
        "alg": parsed.alg,
        "payload": payload.as_dict(),
        "payload_verified": False,
    }
    _print_result(result, as_json)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=1))
        return
    head = f"manifest: {result['size']} bytes"
    if "kid" in result:
        head += f", kid {result['kid']}"
    typer.echo(head)
    if result.get("payload") is not None:
        note = "" if result["payload_verified"] else " (NOT verified)"
        typer.echo(f"payload{note}:")
        typer.echo(json.dumps(result["payload"], indent=1))
    if "verdict" in result:
        line = "verdict: valid" if result["verdict"] == "valid" else f"verdict: rejected: {result['reason']}"
        if result["verdict"] != "valid":
            line += f": {result['message']}"
        typer.echo(line)
    sys.stdout.flush()
