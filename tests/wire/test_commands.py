"""Commands and acks (tinyfleet.wire.command): the shared vectors, round trips, the device's lenient reading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tinyfleet.wire import (
    ACK_FIELDS,
    COMMAND_FIELDS,
    AckStatus,
    Channel,
    Command,
    CommandAck,
    CommandName,
    Topics,
    WireError,
    decode_command,
    decode_command_ack,
    encode_command,
    encode_command_ack,
)

VECTORS = Path(__file__).resolve().parents[2] / "device_sdk" / "test-vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "commands.json").read_text())
DECODERS = {"commands": decode_command, "acks": decode_command_ack}
ENCODERS: dict[str, Any] = {"commands": (encode_command, Command), "acks": (encode_command_ack, CommandAck)}


def _plain(v: Any) -> dict[str, Any]:
    return {k: e for k, e in json.loads(json.dumps(msgspec.to_builtins(v))).items() if e is not None}


def _cases(section: str) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, case) for kind in ("commands", "acks") for case in DOC[kind][section]]


@pytest.mark.parametrize(("kind", "case"), _cases("valid"), ids=lambda c: c if isinstance(c, str) else c["name"])
def test_valid_vector(kind: str, case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    assert _plain(DECODERS[kind](payload, strict=case["strict"])) == case["decoded"]
    encode, struct_type = ENCODERS[kind]
    again = encode(msgspec.convert(case["decoded"], struct_type), fmt=case["format"])
    assert (again == payload) is case["canonical"]
    assert _plain(DECODERS[kind](again)) == case["decoded"]


@pytest.mark.parametrize(("kind", "case"), _cases("invalid"), ids=lambda c: c if isinstance(c, str) else c["name"])
def test_invalid_vector(kind: str, case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        DECODERS[kind](bytes.fromhex(case["hex"]), strict=case["strict"])
    assert info.value.code == case["error"]
    if "field" in case:
        assert info.value.field == case["field"]


def test_vectors_cover_both_encodings_and_are_up_to_date() -> None:
    assert {c["format"] for _, c in _cases("valid")} == {"cbor", "json"}
    assert len(_cases("valid")) + len(_cases("invalid")) >= 20
    done = subprocess.run([sys.executable, str(VECTORS / "generate_commands.py"), "--check"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_fields_topics_and_names() -> None:
    assert COMMAND_FIELDS == {0: "v", 1: "ts", 2: "id", 3: "cmd", 4: "args"}
    assert ACK_FIELDS == {0: "v", 1: "ts", 2: "id", 3: "cmd", 4: "status", 5: "detail", 6: "boot", 13: "x"}
    topics = Topics()
    assert topics.cmd("press-7") == "tf/v1/press-7/cmd"
    assert topics.parse("tf/v1/press-7/cmd/ack").channel is Channel.CMD_ACK
    assert {c.value for c in CommandName} == {"set_threshold", "set_sampling", "inject_fault", "capture", "reboot"}


def test_encoders_refuse_what_decoders_refuse() -> None:
    with pytest.raises(WireError) as info:
        encode_command(Command(cmd="capture", args={"nested": [1, 2]}))
    assert info.value.code == "wrong_type"
    with pytest.raises(WireError):
        encode_command_ack(CommandAck(cmd="x", status=AckStatus.OK, detail="d" * 200))
    with pytest.raises(WireError) as info:
        encode_command(Command(cmd="x" * 2000))
    assert info.value.code in ("message_too_large", "out_of_range")
    ack = CommandAck(id=9, cmd="reboot", status=AckStatus.FAILED, detail="busy", boot=2)
    for fmt in ("cbor", "json"):
        assert decode_command_ack(encode_command_ack(ack, fmt=fmt)) == ack  # type: ignore[arg-type]
