"""Downlink commands (``tf/v1/{id}/cmd``): decode, act, acknowledge on ``tf/v1/{id}/cmd/ack``.

=================  =========================================  ==============================================
command            args                                       effect
=================  =========================================  ==============================================
``set_threshold``  ``threshold`` (number)                     anomaly models: events get ``label`` 1 when the
                                                              score ≥ threshold, else 0; classifiers: results
                                                              below this confidence are not published
``set_sampling``   ``interval_ms`` (uint, 10..3600000)        time between inference windows
``inject_fault``   ``fault`` (text), ``severity`` (number)    into the simulated sensor (``normal`` clears)
``capture``        ``samples`` (uint) or ``seconds``,         uploads the last raw sensor window(s) as CSV to
                   ``label`` (text, optional)                 ``POST /api/v1/devices/{id}/captures``
``reboot``         —                                          restarts the device loop, boot counter + 1
=================  =========================================  ==============================================

Settings (threshold, sampling, injected faults) persist in the device store, so they survive a reboot.
Rule actions send bare JSON (``{"cmd": "capture", "seconds": 10}``); commands are decoded in lenient mode so
such keys become ``args``. An unknown command is acked ``unsupported``; bad arguments ``rejected``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tinyfleet.wire import AckStatus, Command, CommandAck, CommandName, WireError, decode_command

from .errors import DeviceError

__all__ = ["CommandProcessor", "Controls", "Outcome", "parse_command"]

log = logging.getLogger(__name__)

MIN_INTERVAL_MS = 10
MAX_INTERVAL_MS = 3_600_000
MAX_CAPTURE_SAMPLES = 1_000_000


class Controls(Protocol):
    """What commands act on (the device session implements it)."""

    def set_threshold(self, threshold: float) -> None: ...

    def set_interval_ms(self, interval_ms: int) -> None: ...

    def inject_fault(self, fault: str, severity: float) -> None: ...

    def capture(
        self, samples: int | None, seconds: float | None, label: str | None, done: Callable[[Outcome], None]
    ) -> None: ...

    def reboot(self) -> None: ...


@dataclass(frozen=True)
class Outcome:
    status: AckStatus
    detail: str | None = None
    x: dict[str, Any] | None = None


def parse_command(payload: bytes) -> Command:
    """Lenient decoding: unknown top-level keys become ``args``. Raises WireError."""
    return decode_command(payload, strict=False)


def _number(args: dict[str, Any], name: str, *, default: float | None = None) -> float:
    v = args.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number")
    return float(v)


class CommandProcessor:
    """Turns one command into an action on ``controls`` and an ack (``send_ack``). Not thread-safe: the device
    calls it from its loop thread, between inferences."""

    def __init__(self, controls: Controls, send_ack: Callable[[CommandAck], None], *, boot: int) -> None:
        self.controls = controls
        self.send_ack = send_ack
        self.boot = boot
        self.handled = 0

    def _ack(self, cmd: Command | None, outcome: Outcome, *, name: str = "?") -> None:
        detail = outcome.detail[:160] if outcome.detail else None
        ack = CommandAck(
            id=cmd.id if cmd is not None else None, cmd=cmd.cmd if cmd is not None else name, status=outcome.status,
            detail=detail, boot=self.boot, x=outcome.x,
        )  # fmt: skip
        self.send_ack(ack)

    def handle_payload(self, payload: bytes) -> None:
        try:
            cmd = parse_command(payload)
        except WireError as exc:
            log.warning("refused a command: %s", exc)
            self._ack(None, Outcome(AckStatus.REJECTED, f"{exc.code}: {exc}"), name="invalid")
            return
        self.handle(cmd)

    def handle(self, cmd: Command) -> None:
        self.handled += 1
        args = cmd.args or {}
        log.info("command %s (id %s) %s", cmd.cmd, cmd.id, args)
        try:
            outcome = self._run(cmd, args)
        except ValueError as exc:
            outcome = Outcome(AckStatus.REJECTED, str(exc))
        except DeviceError as exc:
            outcome = Outcome(AckStatus.FAILED, str(exc))
        if outcome is not None:
            self._ack(cmd, outcome)

    def _run(self, cmd: Command, args: dict[str, Any]) -> Outcome | None:
        name = cmd.cmd
        c = self.controls
        if name == CommandName.SET_THRESHOLD:
            threshold = _number(args, "threshold")
            c.set_threshold(threshold)
            return Outcome(AckStatus.OK, x={"threshold": threshold})
        if name == CommandName.SET_SAMPLING:
            interval = args.get("interval_ms")
            if isinstance(interval, bool) or not isinstance(interval, int):
                raise ValueError("interval_ms must be an integer")
            if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
                raise ValueError(f"interval_ms must be in {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}")
            c.set_interval_ms(interval)
            return Outcome(AckStatus.OK, x={"interval_ms": interval})
        if name == CommandName.INJECT_FAULT:
            fault = args.get("fault")
            if not isinstance(fault, str) or not fault:
                raise ValueError("fault must be a fault name")
            severity = _number(args, "severity", default=1.0)
            c.inject_fault(fault, severity)
            return Outcome(AckStatus.OK, x={"fault": fault, "severity": severity})
        if name == CommandName.CAPTURE:
            samples = args.get("samples")
            seconds = args.get("seconds")
            if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)):
                raise ValueError("samples must be an integer")
            if samples is not None and not 0 < samples <= MAX_CAPTURE_SAMPLES:
                raise ValueError(f"samples must be in 1..{MAX_CAPTURE_SAMPLES}")
            if seconds is not None:
                seconds = _number(args, "seconds")
                if not seconds > 0:
                    raise ValueError("seconds must be positive")
            label = args.get("label")
            if label is not None and not isinstance(label, str):
                raise ValueError("label must be text")
            c.capture(samples, seconds, label, lambda outcome: self._ack(cmd, outcome))
            return None  # acked when the upload is done
        if name == CommandName.REBOOT:
            self._ack(cmd, Outcome(AckStatus.OK, "rebooting"))
            c.reboot()
            return None
        return Outcome(AckStatus.UNSUPPORTED, f"unknown command {name[:64]!r}")
