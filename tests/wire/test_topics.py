"""Topic tree and device ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfleet.wire import Channel, ErrorCode, ParsedTopic, Topics, WireError, validate_device_id

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
valid_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ID_ALPHABET[:62]),
    st.text(alphabet=ID_ALPHABET, max_size=63),
)


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "a+b", "+", "#", "a#", "a\x00b", "\x00", "a" * 65, "dév", "名前", "-a", ".a", "_a", ":a", "a b",
     " a", "a\n", "$SYS", "a\t", "a,b", "a*b"],
)  # fmt: skip
def test_bad_device_ids(bad: str) -> None:
    with pytest.raises(WireError) as info:
        validate_device_id(bad)
    assert info.value.code is ErrorCode.BAD_DEVICE_ID
    assert info.value.field == "device"


def test_device_id_not_text() -> None:
    with pytest.raises(WireError) as info:
        validate_device_id(b"dev")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.BAD_DEVICE_ID


@settings(max_examples=300)
@given(valid_ids)
def test_valid_ids_round_trip_through_every_topic(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id
    topics = Topics()
    for ch in Channel:
        topic = topics.topic(device_id, ch)
        assert topic == f"tf/v1/{device_id}/{ch.value}"
        assert topics.parse(topic) == ParsedTopic(device_id, ch)


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_arbitrary_text_ids_never_crash(s: str) -> None:
    err: WireError | None = None
    try:
        validate_device_id(s)
    except WireError as exc:
        err = exc
    if err is not None:
        assert err.code is ErrorCode.BAD_DEVICE_ID
    else:
        assert 1 <= len(s) <= 64
        assert s.isascii()
        assert not any(c in s for c in "/+#\x00 $")


@settings(max_examples=500)
@given(st.text(max_size=100))
def test_arbitrary_topics_never_crash(topic: str) -> None:
    err: WireError | None = None
    try:
        Topics().parse(topic)
    except WireError as exc:
        err = exc
    assert err is None or err.code in (ErrorCode.BAD_TOPIC, ErrorCode.BAD_DEVICE_ID)


def test_named_helpers() -> None:
    t = Topics()
    assert t.evt("d1") == "tf/v1/d1/evt"
    assert t.tel("d1") == "tf/v1/d1/tel"
    assert t.state("d1") == "tf/v1/d1/state"
    assert t.ota("d1") == "tf/v1/d1/ota"
    assert t.ota_status("d1") == "tf/v1/d1/ota/status"
    assert t.cmd("d1") == "tf/v1/d1/cmd"
    assert t.cmd_ack("d1") == "tf/v1/d1/cmd/ack"
    with pytest.raises(WireError) as info:
        t.evt("d/1")
    assert info.value.code is ErrorCode.BAD_DEVICE_ID


def test_subscriptions() -> None:
    assert Topics().subscriptions() == ["tf/v1/+/evt", "tf/v1/+/tel", "tf/v1/+/state", "tf/v1/+/ota/status"]
    assert Topics("acme/tf").subscriptions(share="tinyfleet") == [
        "$share/tinyfleet/acme/tf/+/evt",
        "$share/tinyfleet/acme/tf/+/tel",
        "$share/tinyfleet/acme/tf/+/state",
        "$share/tinyfleet/acme/tf/+/ota/status",
    ]
    assert Topics().subscriptions(channels=(Channel.OTA_STATUS, Channel.CMD_ACK)) == [
        "tf/v1/+/ota/status",
        "tf/v1/+/cmd/ack",
    ]
    with pytest.raises(WireError):
        Topics().subscriptions(share="a/b")


def test_custom_prefix_parse() -> None:
    t = Topics("site-7/tf/v1")
    assert t.parse("site-7/tf/v1/dev/ota/status") == ("dev", Channel.OTA_STATUS)
    with pytest.raises(WireError) as info:
        t.parse("tf/v1/dev/evt")
    assert info.value.code is ErrorCode.BAD_TOPIC


@pytest.mark.parametrize("prefix", ["", "/tf", "tf/", "tf//v1", "tf/+", "tf/#", "$SYS", "a\x00"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(WireError) as info:
        Topics(prefix)
    assert info.value.code is ErrorCode.BAD_TOPIC


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("tf/v1/dev", ErrorCode.BAD_TOPIC),
        ("tf/v1/dev/evt/", ErrorCode.BAD_TOPIC),
        ("tf/v1/dev/ota/", ErrorCode.BAD_TOPIC),
        ("tf/v1/dev/EVT", ErrorCode.BAD_TOPIC),
        ("tf/v1", ErrorCode.BAD_TOPIC),
        ("tf/v1/", ErrorCode.BAD_TOPIC),
        ("tf/v1//evt", ErrorCode.BAD_DEVICE_ID),
        ("tf/v1/#/evt", ErrorCode.BAD_DEVICE_ID),
        ("tf/v1/a\x00/evt", ErrorCode.BAD_DEVICE_ID),
    ],
)
def test_parse_errors(topic: str, code: ErrorCode) -> None:
    t = Topics()
    for _ in range(2):  # the parse cache must not turn an error into a success
        with pytest.raises(WireError) as info:
            t.parse(topic)
        assert info.value.code is code


def test_parse_cache_is_bounded() -> None:
    t = Topics(cache_size=8)
    for i in range(50):
        assert t.parse(f"tf/v1/d{i}/evt").device_id == f"d{i}"
    assert len(t._cache) <= 8
