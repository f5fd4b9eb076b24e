"""Wire contract v1 of tinyfleet: topics, device ids, and the event / telemetry / state / ota-status / command
payloads.

Pure: no I/O and no imports of other tinyfleet packages but the device package's OTA reason codes (the
reference device uses it as is).
The reference is docs/protocol.md; the shared test vectors are in device_sdk/test-vectors/.
"""

from .command import (
    ACK_FIELDS,
    COMMAND_FIELDS,
    MAX_COMMAND_BYTES,
    AckStatus,
    Command,
    CommandAck,
    CommandName,
    decode_command,
    decode_command_ack,
    encode_command,
    encode_command_ack,
)
from .errors import ErrorCode, WireError
from .event import EVENT_FIELDS, DecodeResult, Event, EventKind, decode_events, encode_event, encode_events
from .limits import DEFAULT_LIMITS, TS_FLOOR_MS, TS_MAX_MS, Limits
from .ota_status import OTA_REASONS, OTA_STATUS_FIELDS, OtaState, OtaStatus, decode_ota_status, encode_ota_status
from .state import CAPS_FIELDS, STATE_FIELDS, Caps, DeviceState, decode_state, encode_state
from .telemetry import TELEMETRY_FIELDS, Telemetry, decode_telemetry, encode_telemetry
from .topics import DEVICE_ID_PATTERN, Channel, ParsedTopic, Topics, validate_device_id

__all__ = [
    "ACK_FIELDS",
    "CAPS_FIELDS",
    "COMMAND_FIELDS",
    "DEFAULT_LIMITS",
    "DEVICE_ID_PATTERN",
    "EVENT_FIELDS",
    "MAX_COMMAND_BYTES",
    "OTA_REASONS",
    "OTA_STATUS_FIELDS",
    "STATE_FIELDS",
    "TELEMETRY_FIELDS",
    "TS_FLOOR_MS",
    "TS_MAX_MS",
    "AckStatus",
    "Caps",
    "Channel",
    "Command",
    "CommandAck",
    "CommandName",
    "DecodeResult",
    "DeviceState",
    "ErrorCode",
    "Event",
    "EventKind",
    "Limits",
    "OtaState",
    "OtaStatus",
    "ParsedTopic",
    "Telemetry",
    "Topics",
    "WireError",
    "decode_command",
    "decode_command_ack",
    "decode_events",
    "decode_ota_status",
    "decode_state",
    "decode_telemetry",
    "encode_command",
    "encode_command_ack",
    "encode_event",
    "encode_events",
    "encode_ota_status",
    "encode_state",
    "encode_telemetry",
    "validate_device_id",
]
