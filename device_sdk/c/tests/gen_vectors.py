"""Turn the shared test vectors (device_sdk/test-vectors/*.json) into C tables for the C SDK's tests.

    python gen_vectors.py VECTORS_DIR OUT.c

Every case of every file becomes one table row; a case with a key this script does not know fails the build
(so no case is silently dropped), and the C tests check that they handled as many cases as each file holds.
The expected re-encodings of decoded payloads come from the reference implementation (tinyfleet.wire, the
Python service's codec), so the C decoder is compared with it value by value. JSON cases are expected to give
the same results as CBOR ones: the C tests read them through the JSON reader (tf_json.h).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tinyfleet.wire import (
    Limits,
    decode_events,
    decode_ota_status,
    decode_state,
    decode_telemetry,
    encode_event,
    encode_events,
    encode_ota_status,
    encode_state,
    encode_telemetry,
)
from tinyfleet_device.tflite_ops import BUILTIN_OP_CODES

WIRE_CASE_KEYS = {
    "name",
    "format",
    "hex",
    "decoded",
    "canonical",
    "strict",
    "encode",
    "now_ms",
    "note",
    "error",
    "index",
    "field",
    "limits",
}
MANIFEST_CASE_KEYS = {"name", "hex", "size", "trusted_keys", "last_seq", "now", "device", "verdict", "payload", "note"}
DEVICE_KEYS = {"flash", "ram", "arena", "ops", "class", "id"}
LIMIT_FIELDS = [
    "max_event_bytes",
    "max_batch_events",
    "max_message_bytes",
    "max_future_ms",
    "max_extras_keys",
    "max_extras_bytes",
    "max_top_k",
    "max_val_len",
    "max_text_len",
    "max_telemetry_bytes",
    "max_state_bytes",
    "max_ops",
]
PRE_FORMAT_ERRORS = {"empty_payload", "message_too_large"}


class Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.n = 0

    def blob(self, data: bytes) -> str:
        self.n += 1
        name = f"b{self.n}"
        body = ",".join(f"0x{b:02x}" for b in data) or "0"
        self.lines.append(f"static const uint8_t {name}[] = {{{body}}};")
        return name


def c_str(s: str | None) -> str:
    if s is None:
        return "NULL"
    out = []
    for ch in s.encode("utf-8"):
        if 32 <= ch < 127 and ch not in (34, 92, 63):
            out.append(chr(ch))
        else:
            out.append(f"\\{ch:03o}")
    return '"' + "".join(out) + '"'


def check_keys(case: dict[str, Any], known: set[str], what: str) -> None:
    unknown = set(case) - known
    if unknown:
        raise SystemExit(f"gen_vectors: {what} case {case.get('name')!r} has keys the C tests do not handle: {unknown}")


def expected_reencoding(kind: str, case: dict[str, Any]) -> bytes | None:
    """The reference's canonical CBOR of what the case decodes to (valid events of an invalid batch)."""
    data = bytes.fromhex(case["hex"])
    limits = Limits(**case.get("limits", {}))
    kw: dict[str, Any] = {"strict": case["strict"], "now_ms": case.get("now_ms"), "limits": limits}
    if "error" in case:
        if "decoded" not in case or case["decoded"] is None:
            return None
        if kind != "events":
            return None
        try:
            res = decode_events(data, **kw)
        except Exception:
            # an invalid single JSON event or message: nothing decodes
            return None
        return encode_events(res.events) if res.is_batch else encode_event(res.events[0])
    if kind == "events":
        res = decode_events(data, **kw)
        return encode_events(res.events) if res.is_batch else encode_event(res.events[0])
    if kind == "state":
        st = decode_state(data, **kw)
        return encode_state(st)
    if kind == "telemetry":
        return encode_telemetry(decode_telemetry(data, **kw))
    return encode_ota_status(decode_ota_status(data, **kw))


def wire_file(out: Out, kind: str, doc: dict[str, Any]) -> list[str]:
    rows = []
    for valid in (True, False):
        for case in doc["valid" if valid else "invalid"]:
            check_keys(case, WIRE_CASE_KEYS, kind)
            data = bytes.fromhex(case["hex"])
            is_json = case["format"] == "json"
            if case["format"] not in ("json", "cbor"):
                raise SystemExit(f"gen_vectors: unknown format {case['format']!r}")
            limits = Limits(**case.get("limits", {}))
            expect = expected_reencoding(kind, case)
            error = None if valid else case["error"]
            c_error = error  # JSON cases too: the C side reads them with tf_json.h
            if kind == "state" and valid and not data:
                c_error = "end"  # the empty payload clears the retained state
            index = case.get("index")
            kept = len(case["decoded"]) if (not valid and isinstance(case.get("decoded"), list)) else 0
            canonical = bool(case.get("canonical")) and not is_json
            flags = "TF_ENC_SCORE_UINT8" if case.get("encode", {}).get("score_uint8") else "0"
            if set(case.get("encode", {})) - {"score_uint8"}:
                raise SystemExit(f"gen_vectors: unknown encode option in {case['name']}")
            limit_vals = ",".join(f"{getattr(limits, f)}u" for f in LIMIT_FIELDS)
            d = out.blob(data)
            e = out.blob(expect) if expect is not None else "NULL"
            rows.append(
                f"{{{c_str(case['name'])}, {d}, {len(data)}, {int(valid)}, {int(is_json)}, {int(case['strict'])}, "
                f"{int('now_ms' in case)}, {case.get('now_ms') or 0}ull, {{{limit_vals}}}, "
                f"{c_str(c_error)}, {c_str(error)}, {-1 if index is None else index}, {c_str(case.get('field'))}, "
                f"{e}, {len(expect) if expect is not None else 0}, {int(canonical)}, {flags}, {kept}}}"
            )
    return rows


def manifest_rows(out: Out, doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    rows = []
    for case in doc["cases"]:
        check_keys(case, MANIFEST_CASE_KEYS, "manifests")
        dev = case["device"]
        if set(dev) - DEVICE_KEYS:
            raise SystemExit(f"gen_vectors: unknown device capability in {case['name']}: {set(dev) - DEVICE_KEYS}")
        data = bytes.fromhex(case["hex"])
        keys = b"".join(bytes.fromhex(k) for k in case["trusted_keys"])
        ops = dev.get("ops")
        op_codes = [BUILTIN_OP_CODES[o] for o in ops or [] if o in BUILTIN_OP_CODES]
        op_names = [o for o in ops or [] if o not in BUILTIN_OP_CODES]
        codes = "{" + (",".join(str(c) for c in op_codes) or "0") + "}"
        names = "{" + (",".join(c_str(n) for n in op_names) or "NULL") + "}"
        p = case.get("payload") or {}
        pid, pver = p.get("id"), p.get("ver")
        rows.append(
            f"{{{c_str(case['name'])}, {out.blob(data)}, {len(data)}, {out.blob(keys)}, {len(case['trusted_keys'])}, "
            f"{case['last_seq']}u, {int(case['now'] is not None)}, {case['now'] or 0}u, "
            f"{int('flash' in dev)}, {dev.get('flash', 0)}u, {int('ram' in dev)}, {dev.get('ram', 0)}u, "
            f"{int('arena' in dev)}, {dev.get('arena', 0)}u, {int(ops is not None)}, {codes}, {len(op_codes)}, "
            f"{names}, {len(op_names)}, {c_str(dev.get('class'))}, {c_str(dev.get('id'))}, {c_str(case['verdict'])}, "
            f"{p.get('seq', 0)}u, {p.get('exp', 0)}u, {p.get('size', 0)}u, "
            f"{out.blob(bytes.fromhex(p['sha256'])) if p else 'NULL'}, {c_str(p.get('uri'))}, "
            f"{int(p.get('component') == 'firmware')}, {c_str(pid if isinstance(pid, str) else None)}, "
            f"{pid if isinstance(pid, int) else 0}u, {c_str(pver if isinstance(pver, str) else None)}, "
            f"{pver if isinstance(pver, int) else 0}u, {len(p.get('labels') or [])}, {c_str(p.get('dev'))}}}"
        )
    arts = []
    for case in doc["artifacts"]:
        check_keys(case, {"name", "hex", "verdict", "note"}, "artifacts")
        data = bytes.fromhex(case["hex"])
        arts.append(f"{{{c_str(case['name'])}, {out.blob(data)}, {len(data)}, {c_str(case['verdict'])}}}")
    return rows, arts


def main() -> None:
    vectors, target = Path(sys.argv[1]), Path(sys.argv[2])
    out = Out()
    tables: list[str] = []
    for kind in ("events", "state", "telemetry", "ota_status"):
        doc = json.loads((vectors / f"{kind}.json").read_text())
        rows = wire_file(out, kind, doc)
        total = len(doc["valid"]) + len(doc["invalid"])
        tables.append(f"const tf_vec_wire_t tf_vec_{kind}[] = {{\n  " + ",\n  ".join(rows) + "\n};")
        tables.append(f"const size_t tf_vec_{kind}_count = {len(rows)};")
        tables.append(f"const size_t tf_vec_{kind}_in_file = {total};")
    topics = json.loads((vectors / "topics.json").read_text())
    if set(topics) - {"version", "description", "prefix", "device_ids", "topics"}:
        raise SystemExit("gen_vectors: topics.json has sections the C tests do not handle")
    ids_ok = [c_str(s) for s in topics["device_ids"]["valid"]]
    ids_bad = [
        f"{{{c_str(c['id'])}, {len(c['id'].encode())}, {c_str(c['error'])}}}" for c in topics["device_ids"]["invalid"]
    ]
    t_ok = [
        f"{{{c_str(c['topic'])}, {c_str(c['device_id'])}, {c_str(c['channel'])}}}" for c in topics["topics"]["valid"]
    ]
    t_bad = [f"{{{c_str(c['topic'])}, {c_str(c['error'])}}}" for c in topics["topics"]["invalid"]]
    tables += [
        f"const char *const tf_vec_prefix = {c_str(topics['prefix'])};",
        "const char *const tf_vec_ids_valid[] = {" + ", ".join(ids_ok) + "};",
        f"const size_t tf_vec_ids_valid_count = {len(ids_ok)};",
        "const tf_vec_bad_id_t tf_vec_ids_invalid[] = {" + ", ".join(ids_bad) + "};",
        f"const size_t tf_vec_ids_invalid_count = {len(ids_bad)};",
        "const tf_vec_topic_t tf_vec_topics_valid[] = {" + ", ".join(t_ok) + "};",
        f"const size_t tf_vec_topics_valid_count = {len(t_ok)};",
        "const tf_vec_bad_topic_t tf_vec_topics_invalid[] = {" + ", ".join(t_bad) + "};",
        f"const size_t tf_vec_topics_invalid_count = {len(t_bad)};",
    ]
    man = json.loads((vectors / "manifests.json").read_text())
    rows, arts = manifest_rows(out, man)
    tables += [
        "const tf_vec_manifest_t tf_vec_manifests[] = {\n  " + ",\n  ".join(rows) + "\n};",
        f"const size_t tf_vec_manifests_count = {len(rows)};",
        f"const size_t tf_vec_manifests_in_file = {len(man['cases'])};",
        "const tf_vec_artifact_t tf_vec_artifacts[] = {\n  " + ",\n  ".join(arts) + "\n};",
        f"const size_t tf_vec_artifacts_count = {len(arts)};",
        f"const uint32_t tf_vec_artifact_size = {man['artifact']['size']}u;",
        "const uint8_t tf_vec_artifact_sha256[32] = {"
        + ",".join(f"0x{b:02x}" for b in bytes.fromhex(man["artifact"]["sha256"]))
        + "};",
    ]
    text = "/* generated by tests/gen_vectors.py from device_sdk/test-vectors: do not edit */\n"
    text += '#include "vectors.h"\n\n' + "\n".join(out.lines) + "\n\n" + "\n\n".join(tables) + "\n"
    target.write_text(text)


if __name__ == "__main__":
    main()
