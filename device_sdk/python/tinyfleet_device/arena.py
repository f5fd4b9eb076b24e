"""The smallest tensor arena TFLM allocates a model with, found by binary search.

``tflite_micro.runtime.Interpreter.from_bytes(data, arena_size=N)`` allocates every tensor at construction and
raises RuntimeError when N is too small; the size it prints ("Arena allocation total") leaves out alignment and
temporary planning memory, hence the search. It runs in this process (the device loads its own model); the
service's registry runs the same search in a child process (``tinyfleet.registry._arena_worker``) because a
damaged upload may crash native code.

TFLM does not always fail cleanly: an arena a few bytes short of the minimum can end in ``abort()`` ("All temp
buffers must be freed before calling ResetTempAllocations()") or a segmentation fault instead of a
RuntimeError. So each probe of the bisection runs in a forked child (a crash is a
failed probe) and only the size found is loaded in this process.

TFLM writes its complaints to file descriptor 2; :func:`search_arena` sends them to a temporary file while it
probes and returns the text of the largest probe's failure as the reason when the model does not load at all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ArenaError

__all__ = ["DEFAULT_MAX_ARENA", "ArenaSearch", "captured_stderr", "search_arena", "tflm_loader"]

#: Larger than any microcontroller's RAM: a model that does not load with this much is not loadable.
DEFAULT_MAX_ARENA = 16 * 1024 * 1024

#: ``load(data, arena_size)`` returns an interpreter, or raises RuntimeError when the arena is too small.
Loader = Callable[[bytes, int], Any]


@dataclass(frozen=True)
class ArenaSearch:
    arena_bytes: int
    #: allocations tried (the largest first, then the bisection)
    probes: int
    #: an interpreter built with ``arena_bytes`` (ready to use)
    interpreter: Any


def tflm_loader() -> Loader:
    """``tflite_micro.runtime.Interpreter.from_bytes`` as a loader (ImportError where there is no wheel)."""
    from tflite_micro import runtime

    def load(data: bytes, arena_size: int) -> Any:
        return runtime.Interpreter.from_bytes(data, arena_size=arena_size)

    return load


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Point file descriptor 2 at a temporary file for the block; the yielded function reads what was written."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)

        def text() -> str:
            sink.flush()
            sink.seek(0)
            return sink.read().decode("utf-8", errors="replace")

        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def search_arena(
    data: bytes,
    *,
    max_arena: int = DEFAULT_MAX_ARENA,
    load: Loader | None = None,
    capture_first: bool = True,
    isolate: bool = True,
) -> ArenaSearch:
    """Binary search of the smallest ``arena_size`` with which ``load`` succeeds, between 0 and ``max_arena``.

    Raises :class:`ArenaError` (with TFLM's own words) when the model does not load with ``max_arena``; any
    other exception than RuntimeError at that first probe (a flatbuffer the wrapper cannot read) too.
    ``capture_first=False`` leaves fd 2 alone for that first probe (a parent process reading this one's fd 2
    then sees TFLM's words even if the native code crashes). ``isolate`` (where ``os.fork`` exists) runs each
    probe of the bisection in a forked child, so an abort in native code is a failed probe, not a crash."""
    loader = load if load is not None else tflm_loader()
    with captured_stderr() if capture_first else contextlib.nullcontext(lambda: "") as stderr:
        try:
            biggest = loader(data, max_arena)
        except Exception as exc:  # RuntimeError from TFLM; the wrapper's own flatbuffer reader fails otherwise
            said = _condense(stderr())
            raise ArenaError(
                f"TFLM cannot load the model even with a {max_arena}-byte arena ({type(exc).__name__}: {exc})"
                + (f": {said}" if said else "")
            ) from exc
        del biggest
    isolated = isolate and hasattr(os, "fork")
    with captured_stderr():
        low, high, probes = 0, max_arena, 1  # invariant: `low` fails, `high` works
        while high - low > 1:
            middle = (low + high) // 2
            probes += 1
            if _loads(loader, data, middle, isolated=isolated):
                high = middle
            else:
                low = middle
        try:
            interpreter = loader(data, high)
        except RuntimeError as exc:
            raise ArenaError(f"the smallest arena found ({high} bytes) did not load a second time") from exc
    return ArenaSearch(arena_bytes=high, probes=probes, interpreter=interpreter)


def _loads(loader: Loader, data: bytes, arena_size: int, *, isolated: bool) -> bool:
    """Whether ``loader`` allocates the model in ``arena_size`` bytes; ``isolated``: try it in a forked child."""
    if not isolated:
        try:
            interpreter = loader(data, arena_size)
        except RuntimeError:
            return False
        del interpreter
        return True
    pid = os.fork()
    if pid == 0:  # the child: try, and say how it went with the exit status only
        status = 2
        try:
            loader(data, arena_size)
            status = 0
        except RuntimeError:
            status = 1
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status) == 0


def _condense(text: str, limit: int = 2000) -> str:
    """TFLM's messages, repeated lines once, cut to a readable length."""
    seen: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and line not in seen:
            seen.append(line)
    out = "; ".join(seen)
    return out if len(out) <= limit else out[: limit - 1] + "…"
