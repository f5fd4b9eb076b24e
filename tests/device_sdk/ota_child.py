"""A device process for the kill -9 test: runs OtaClient on a manifest (or resumes), prints each OTA status
as a JSON line and the outcome last.

    python -m tests.device_sdk.ota_child STATE_DIR TRUSTED_KEY_HEX [MANIFEST_HEX | --resume]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinyfleet.wire import OtaStatus, encode_ota_status
from tinyfleet_device.manifest import DeviceCapabilities, TrustedKeys
from tinyfleet_device.ota import DownloadLimits, OtaClient
from tinyfleet_device.runner import ModelRunner


def _print(status: OtaStatus) -> None:
    encode_ota_status(status)  # what goes on the wire must encode
    print(json.dumps({"state": status.state.value, "seq": status.seq, "progress": status.progress,
                      "reason": status.reason, "msg": status.msg}), flush=True)  # fmt: skip


def main(argv: list[str]) -> int:
    state_dir, key_hex, what = Path(argv[0]), argv[1], argv[2]
    client: OtaClient[ModelRunner] = OtaClient(
        state_dir=state_dir,
        trusted_keys=TrustedKeys([bytes.fromhex(key_hex)]),
        capabilities=DeviceCapabilities(arena=256 << 10, device_id="ota-child"),
        load_model=lambda data: ModelRunner.from_bytes(data, arena_size=64 << 10),
        report=_print,
        limits=DownloadLimits(persist_interval_s=0.05, persist_bytes=4096, progress_interval_s=0.2),
    )
    with client:
        final = client.resume() if what == "--resume" else client.handle_manifest(bytes.fromhex(what))
    active = client.active
    print(json.dumps({"final": final.state.value if final else None,
                      "active": active.sha256 if active else None,
                      "downloaded": client.bytes_downloaded}), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
