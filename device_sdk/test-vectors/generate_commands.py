#!/usr/bin/env python3
"""Generate the command / ack test vectors (commands.json): topics ``tf/v1/{device}/cmd`` and ``…/cmd/ack``.

Every payload is built byte by byte with the small raw CBOR writer below (or written as JSON text), the
expected decoded value or error code of each case is written here by hand, and the generator asserts that
``tinyfleet.wire`` agrees before it writes anything. ``canonical``: the canonical encoder reproduces the bytes.

    .venv/bin/python device_sdk/test-vectors/generate_commands.py           # rewrite the file
    .venv/bin/python device_sdk/test-vectors/generate_commands.py --check   # fail if the file is stale
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import msgspec

from tinyfleet.wire import (
    Command,
    CommandAck,
    WireError,
    decode_command,
    decode_command_ack,
    encode_command,
    encode_command_ack,
)

HERE = Path(__file__).resolve().parent
VERSION = 1


def check(cond: object, *context: object) -> None:
    """An assertion that also runs under ``python -O``."""
    if not cond:
        raise AssertionError(*context)


def head(major: int, n: int) -> bytes:
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n <= 0xFF:
        return bytes((mt | 24, n))
    if n <= 0xFFFF:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


def u(n: int) -> bytes:
    return head(0, n) if n >= 0 else head(1, -1 - n)


def t(s: str) -> bytes:
    b = s.encode()
    return head(3, len(b)) + b


def f64(x: float) -> bytes:
    return b"\xfb" + struct.pack(">d", x)


def f32(x: float) -> bytes:
    return b"\xfa" + struct.pack(">f", x)


def mp(*pairs: tuple[bytes, bytes]) -> bytes:
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


TRUE = b"\xf5"
TS = 1_790_000_000_000

VALID: dict[str, list[dict[str, Any]]] = {"commands": [], "acks": []}
INVALID: dict[str, list[dict[str, Any]]] = {"commands": [], "acks": []}


def valid(kind: str, name: str, payload: bytes, decoded: dict[str, Any], *, fmt: str = "cbor", strict: bool = True,
          note: str | None = None) -> None:  # fmt: skip
    case: dict[str, Any] = {"name": name, "format": fmt, "hex": payload.hex(), "decoded": decoded, "strict": strict}
    if note:
        case["note"] = note
    VALID[kind].append(case)


def invalid(kind: str, name: str, payload: bytes, error: str, field: str | None = None, *, fmt: str = "cbor",
            strict: bool = True, note: str | None = None) -> None:  # fmt: skip
    case: dict[str, Any] = {"name": name, "format": fmt, "hex": payload.hex(), "error": error, "strict": strict}
    if field is not None:
        case["field"] = field
    if note:
        case["note"] = note
    INVALID[kind].append(case)


# -------------------------------------------------------------------------------------------- commands
valid("commands", "set_threshold", mp((u(0), u(1)), (u(2), t("c1")), (u(3), t("set_threshold")),
      (u(4), mp((t("threshold"), f64(0.2))))), {"v": 1, "id": "c1", "cmd": "set_threshold",
      "args": {"threshold": 0.2}})  # fmt: skip
valid("commands", "reboot_numeric_id", mp((u(0), u(1)), (u(1), u(TS)), (u(2), u(7)), (u(3), t("reboot"))),
      {"v": 1, "ts": TS, "id": 7, "cmd": "reboot"})  # fmt: skip
valid("commands", "capture_json", b'{"v":1,"id":"cap-1","cmd":"capture","args":{"samples":1024,"label":"normal"}}',
      {"v": 1, "id": "cap-1", "cmd": "capture", "args": {"samples": 1024, "label": "normal"}}, fmt="json")  # fmt: skip
valid("commands", "no_version", mp((u(3), t("reboot"))), {"v": 1, "cmd": "reboot"},
      note="v may be omitted in a command (absent means 1)")  # fmt: skip
valid("commands", "rule_action_json_lenient", b'{"cmd":"capture","seconds":10}',
      {"v": 1, "cmd": "capture", "args": {"seconds": 10}}, fmt="json", strict=False,
      note="a rule action's bare JSON: unknown top-level keys become args in lenient mode")  # fmt: skip
valid("commands", "inject_fault_float32", mp((u(0), u(1)), (u(3), t("inject_fault")),
      (u(4), mp((t("fault"), t("bearing_fault")), (t("severity"), f32(0.5))))),
      {"v": 1, "cmd": "inject_fault", "args": {"fault": "bearing_fault", "severity": 0.5}})  # fmt: skip
invalid("commands", "missing_cmd", mp((u(0), u(1)), (u(2), t("c1"))), "missing_field", "cmd")
invalid("commands", "cmd_not_text", mp((u(0), u(1)), (u(3), u(5))), "wrong_type", "cmd")
invalid("commands", "empty_cmd", mp((u(0), u(1)), (u(3), t(""))), "out_of_range", "cmd")
invalid("commands", "version_2", mp((u(0), u(2)), (u(3), t("reboot"))), "unsupported_version", "v")
invalid("commands", "rule_action_json_strict", b'{"cmd":"capture","seconds":10}', "unknown_key", "seconds",
        fmt="json", note="strict mode: parameters belong in args")  # fmt: skip
invalid("commands", "args_not_a_map", mp((u(3), t("capture")), (u(4), u(3))), "wrong_type", "args")
invalid("commands", "args_nested", mp((u(3), t("capture")), (u(4), mp((t("a"), mp()))),), "wrong_type", "args.a")
invalid("commands", "not_a_map", head(4, 1) + t("reboot"), "not_an_event")
invalid("commands", "id_too_long", mp((u(2), t("x" * 65)), (u(3), t("reboot"))), "out_of_range", "id")
invalid("commands", "too_large", b'{"cmd":"' + b"a" * 1100 + b'"}', "message_too_large", fmt="json")

# ------------------------------------------------------------------------------------------------ acks
valid("acks", "ok_with_result", mp((u(0), u(1)), (u(1), u(TS)), (u(2), t("cap-1")), (u(3), t("capture")),
      (u(4), t("ok")), (u(5), t("uploaded")), (u(6), u(3)), (u(13), mp((t("capture"), u(12))))),
      {"v": 1, "ts": TS, "id": "cap-1", "cmd": "capture", "status": "ok", "detail": "uploaded", "boot": 3,
       "x": {"capture": 12}})  # fmt: skip
valid("acks", "rejected", mp((u(0), u(1)), (u(2), u(2)), (u(3), t("set_sampling")), (u(4), t("rejected")),
      (u(5), t("interval_ms must be in 10..3600000"))),
      {"v": 1, "id": 2, "cmd": "set_sampling", "status": "rejected",
       "detail": "interval_ms must be in 10..3600000"})  # fmt: skip
valid("acks", "unsupported_json", b'{"v":1,"cmd":"self_destruct","status":"unsupported"}',
      {"v": 1, "cmd": "self_destruct", "status": "unsupported"}, fmt="json")  # fmt: skip
invalid("acks", "missing_status", mp((u(0), u(1)), (u(3), t("reboot"))), "missing_field", "status")
invalid("acks", "unknown_status", mp((u(0), u(1)), (u(3), t("reboot")), (u(4), t("maybe"))), "out_of_range", "status")
invalid("acks", "missing_version", mp((u(3), t("reboot")), (u(4), t("ok"))), "missing_field", "v",
        note="unlike a command, an ack always says v")  # fmt: skip
invalid("acks", "detail_too_long", mp((u(0), u(1)), (u(3), t("x")), (u(4), t("ok")), (u(5), t("d" * 161))),
        "out_of_range", "detail")  # fmt: skip
invalid("acks", "boot_negative", mp((u(0), u(1)), (u(3), t("x")), (u(4), t("ok")), (u(6), u(-1))),
        "out_of_range", "boot")  # fmt: skip


def _plain(v: Any) -> dict[str, Any]:
    return {k: e for k, e in json.loads(json.dumps(msgspec.to_builtins(v))).items() if e is not None}


def verify() -> None:
    decoders = {"commands": decode_command, "acks": decode_command_ack}
    encoders: dict[str, Any] = {"commands": (encode_command, Command), "acks": (encode_command_ack, CommandAck)}
    for kind in ("commands", "acks"):
        for case in VALID[kind]:
            payload = bytes.fromhex(case["hex"])
            got = _plain(decoders[kind](payload, strict=case["strict"]))
            check(got == case["decoded"], case["name"], got)
            encode, struct_type = encoders[kind]
            again = encode(msgspec.convert(case["decoded"], struct_type), fmt=case["format"])
            case["canonical"] = again == payload
        for case in INVALID[kind]:
            try:
                decoders[kind](bytes.fromhex(case["hex"]), strict=case["strict"])
            except WireError as exc:
                check(exc.code == case["error"], case["name"], exc.code, exc.detail)
                if "field" in case:
                    check(exc.field == case["field"], case["name"], exc.field)
            else:
                raise AssertionError(f"{case['name']}: accepted")


def document() -> dict[str, Any]:
    verify()
    return {
        "version": VERSION,
        "description": "tinyfleet wire contract v1: commands (topic tf/v1/{device}/cmd) and acks "
        "(tf/v1/{device}/cmd/ack); same layout as telemetry.json.",
        "commands": {"valid": VALID["commands"], "invalid": INVALID["commands"]},
        "acks": {"valid": VALID["acks"], "invalid": INVALID["acks"]},
    }


def main() -> int:
    text = json.dumps(document(), indent=1, ensure_ascii=False) + "\n"
    path = HERE / "commands.json"
    if "--check" in sys.argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
