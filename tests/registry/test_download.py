"""The download decision (RFC 9110 ranges and conditionals), one case per rule; the HTTP side is in
tests/api/test_models.py."""

from __future__ import annotations

import pytest

from tinyfleet.registry.download import DownloadPlan, parse_range, plan_download

ETAG = '"' + "ab" * 32 + '"'
SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=900-", (900, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes = 5 - 9", (5, 9)),
        ("BYTES=0-0", (0, 0)),
        ("bytes=1000-", False),
        ("bytes=1000-2000", False),
        ("bytes=-0", False),
        ("bytes=0-1,5-9", None),  # several ranges: whole file
        ("bytes=9-5", None),
        ("items=0-9", None),
        ("bytes=-", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, SIZE) == expected


def test_conditionals() -> None:
    assert plan_download(SIZE, ETAG, None, None, None) == DownloadPlan(200, 0, 999)
    assert plan_download(SIZE, ETAG, None, ETAG, None).status == 304
    assert plan_download(SIZE, ETAG, None, f'"other", W/{ETAG}', None).status == 304
    assert plan_download(SIZE, ETAG, None, "*", None).status == 304
    assert plan_download(SIZE, ETAG, None, '"other"', None).status == 200
    assert plan_download(SIZE, ETAG, "bytes=10-19", None, ETAG) == DownloadPlan(206, 10, 19)
    # If-Range that does not match (another version, or a date): the whole file, not a mixed one
    assert plan_download(SIZE, ETAG, "bytes=10-19", None, '"old"') == DownloadPlan(200, 0, 999)
    assert plan_download(SIZE, ETAG, "bytes=10-19", None, "Tue, 01 Dec 2026 10:00:00 GMT").status == 200
    assert plan_download(SIZE, ETAG, "bytes=5000-", None, None).status == 416
    assert plan_download(0, ETAG, None, None, None) == DownloadPlan(200, 0, -1)
