"""Can a device run a model version? Compared with the capabilities it reports in its `state`.

    problems = check_compatibility(version, capabilities)     # [] when nothing stands in the way

`capabilities` is what ``devices.capabilities`` holds (the `caps` of the state message: ``flash`` bytes free
for a model, ``ram`` bytes, ``arena`` = the largest tensor arena it can give, ``ops`` = the TFLite ops its
firmware has kernels for) plus ``firmware`` (the state's `fw`). A limit the device did not report is not
checked (see :func:`unchecked_limits`); rollouts decide whether that is acceptable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

LIMITS = ("arena", "ram", "flash", "ops", "firmware")


class VersionFacts(Protocol):
    """What the check needs of a version (a `ModelVersion` row has it)."""

    @property
    def size(self) -> int: ...
    @property
    def arena_bytes(self) -> int | None: ...
    @property
    def ops(self) -> list[Any]: ...
    @property
    def card(self) -> dict[str, Any]: ...
    @property
    def arena(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Incompatibility:
    """One reason the device cannot run the version: which limit, what the model needs, what the device has."""

    limit: str
    needed: Any
    available: Any
    message: str


def _op_names(ops: list[Any]) -> list[str]:
    return [str(op["name"]) if isinstance(op, dict) else str(op) for op in ops]


def _version_tuple(text: str) -> tuple[int, ...] | None:
    match = re.match(r"^v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def check_compatibility(version: VersionFacts, capabilities: dict[str, Any] | None) -> list[Incompatibility]:
    caps = capabilities or {}
    problems: list[Incompatibility] = []
    if version.arena_bytes is None:
        reason = version.arena.get("reason") or "unknown reason"
        problems.append(
            Incompatibility("tflm", "a model TFLM can load", None, f"TFLM could not load this version: {reason}")
        )
    else:
        arena = caps.get("arena")
        if isinstance(arena, int) and version.arena_bytes > arena:
            problems.append(
                Incompatibility(
                    "arena",
                    version.arena_bytes,
                    arena,
                    f"needs a {version.arena_bytes}-byte tensor arena, the device offers at most {arena} bytes",
                )
            )
        ram = caps.get("ram")
        if isinstance(ram, int) and version.arena_bytes > ram:
            problems.append(
                Incompatibility(
                    "ram",
                    version.arena_bytes,
                    ram,
                    f"its {version.arena_bytes}-byte arena does not fit in the device's {ram} bytes of RAM",
                )
            )
    flash = caps.get("flash")
    if isinstance(flash, int) and version.size > flash:
        problems.append(
            Incompatibility(
                "flash",
                version.size,
                flash,
                f"the model is {version.size} bytes, the device has {flash} bytes of flash",
            )
        )
    supported = caps.get("ops")
    if isinstance(supported, list):
        missing = sorted(set(_op_names(version.ops)) - {str(op) for op in supported})
        if missing:
            problems.append(
                Incompatibility(
                    "ops", missing, sorted(str(op) for op in supported),
                    f"the device's firmware has no kernel for {', '.join(missing)}",
                )
            )  # fmt: skip
    minimum = version.card.get("min_firmware")
    firmware = caps.get("firmware")
    if isinstance(minimum, str) and isinstance(firmware, str):
        need, have = _version_tuple(minimum), _version_tuple(firmware)
        if need is not None and have is not None and have < need:
            problems.append(
                Incompatibility(
                    "firmware", minimum, firmware, f"needs firmware {minimum} or later, the device runs {firmware}"
                )
            )
    return problems


def unchecked_limits(version: VersionFacts, capabilities: dict[str, Any] | None) -> list[str]:
    """The limits :func:`check_compatibility` could not check because the device did not report them."""
    caps = capabilities or {}
    unchecked = [name for name in ("arena", "ram", "flash") if not isinstance(caps.get(name), int)]
    if not isinstance(caps.get("ops"), list):
        unchecked.append("ops")
    if isinstance(version.card.get("min_firmware"), str) and (
        not isinstance(caps.get("firmware"), str) or _version_tuple(str(caps["firmware"])) is None
    ):
        unchecked.append("firmware")
    return unchecked
