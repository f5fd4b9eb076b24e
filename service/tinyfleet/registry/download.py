"""HTTP conditional and range requests for artifact downloads (RFC 9110 §13, §14), one range at a time.

Starlette's FileResponse serves ranges of local files only; artifacts may live in S3, so the decision is
made here and the bytes come from the :class:`~tinyfleet.registry.storage.ArtifactStore`.

    plan = plan_download(size, etag, range_header, if_none_match, if_range)
    plan.status   # 200 whole, 206 one range, 304 not modified, 416 unsatisfiable
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class DownloadPlan:
    status: int
    start: int = 0
    end: int = -1  # inclusive; -1 with start 0: empty body

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def quoted_etag(sha256: str) -> str:
    return f'"{sha256}"'


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"."""
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in _etags(header))


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) inclusive; None when the header is to be ignored (malformed, several ranges); False when
    it is well formed but no byte of it is in the file (416)."""
    match = _RANGE.match(header)
    if match is None:
        return None  # several ranges, another unit, garbage: RFC 9110 lets a server ignore Range
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid byte-range-spec: ignore
    if start >= size:
        return False
    return start, min(end, size - 1)


def plan_download(
    size: int,
    etag: str,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> DownloadPlan:
    if if_none_match is not None and _weak_match(if_none_match, etag):
        return DownloadPlan(304)
    whole = DownloadPlan(200, 0, size - 1)
    if range_header is None:
        return whole
    # If-Range: ranges only while the client's copy is this one (strong comparison; a date never matches,
    # the registry sends no Last-Modified, so the client gets the whole, current file).
    if if_range is not None and if_range.strip() != etag:
        return whole
    parsed = parse_range(range_header, size)
    if parsed is None:
        return whole
    if parsed is False:
        return DownloadPlan(416)
    assert isinstance(parsed, tuple)
    return DownloadPlan(206, parsed[0], parsed[1])
