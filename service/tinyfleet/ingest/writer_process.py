"""The decode-and-write stage in a process of its own.

Decoding, row building and the database client cost several microseconds of Python per message; on the
network thread's interpreter they would take the GIL from paho, whose own cost per message is the ceiling
of the whole service. In a child process they run on the other core, and the parent only hands over batches
of raw messages (one pickled list, ~0.2 µs per message) and acknowledges what the child reports committed.

Protocol over a duplex pipe, one batch at a time (acknowledgements must follow the order of receipt):
parent → child ``("batch", id, [(topic, payload, received_ms, retained), ...])`` or ``("stop",)``;
child → parent ``("db_error", text)`` while it retries, then ``("done", id, BatchOutcome)``.
The child ignores SIGINT/SIGTERM (the parent drains it) and exits when the parent goes away. It is started
as `python -m tinyfleet.ingest.writer_main FD CONFIG` over an inherited socket pair rather than with
multiprocessing's spawn, which would re-import the embedding program's main module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from tinyfleet.ingest.decode import BatchDecoder, RawMessage
from tinyfleet.ingest.writer import BatchWriter, PreparedBatch, WriteResult

log = logging.getLogger(__name__)


class WriterGone(RuntimeError):
    """The writer process died or could not be reached."""


class WriterStopping(RuntimeError):
    """The batch was not committed because a stop was asked while the database was unreachable."""


@dataclass(slots=True)
class BatchOutcome:
    result: WriteResult
    dead_letter_codes: dict[str, int]
    channel_counts: dict[str, int]
    # The event rows the database took as new (staging-column order, JSON columns as plain objects): no
    # duplicate, no refused row. Only when the parent asked for them (commit listeners).
    event_rows: list[tuple[Any, ...]] | None = None
    db_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WriterConfig:
    conninfo: str
    topic_prefix: str
    strict: bool
    application_name: str
    want_rows: bool = False
    log_level: int = logging.INFO


def _child_main(conn: Connection, config: WriterConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.close()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    decoder = BatchDecoder(config.topic_prefix, strict=config.strict)
    writer = BatchWriter(config.conninfo, application_name=config.application_name, want_inserted_keys=config.want_rows)
    try:
        try:
            writer.connect()
        except psycopg.Error as exc:  # the first batch retries; the parent need not wait for the database
            log.warning("database not reachable yet: %s", exc)
        conn.send(("ready",))
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg[0] == "stop":
                return
            _, batch_id, messages = msg
            prepared = decoder.prepare(messages)
            outcome = _write_until_committed(conn, writer, prepared, config.want_rows)
            if outcome is None:
                conn.send(("stopped", batch_id))
                return
            decoder.committed(prepared)
            conn.send(("done", batch_id, outcome))
    finally:
        writer.close()


def _write_until_committed(
    conn: Connection, writer: BatchWriter, prepared: PreparedBatch, want_rows: bool
) -> BatchOutcome | None:
    delay = 0.1
    errors: list[str] = []
    while True:
        try:
            try:
                result = writer.write(prepared)
                refused_codes: dict[str, int] = {}
            except psycopg.DataError as exc:
                log.warning("batch refused by the database (%s); writing it row by row", exc)
                result, refused = writer.write_isolated(prepared)
                refused_codes = {}
                for letter in refused:
                    refused_codes[letter.code] = refused_codes.get(letter.code, 0) + 1
            break
        except psycopg.Error as exc:
            text = f"{type(exc).__name__}: {exc}".strip()
            errors.append(text)
            writer.close()
            try:
                conn.send(("db_error", text))
            except OSError:
                return None
            # Wait before retrying, but give up at once when the parent says stop (or is gone).
            if conn.poll(delay):
                try:
                    msg = conn.recv()
                except EOFError:
                    return None
                if msg[0] == "stop":
                    return None
            delay = min(delay * 2, 5.0)
    codes = dict(refused_codes)
    for letter in prepared.dead_letters:
        codes[letter.code] = codes.get(letter.code, 0) + 1
    rows = None
    if want_rows:
        rows = [
            (*r[:12], None if r[12] is None else r[12].obj, r[13], None if r[14] is None else r[14].obj)
            for r in result.new_rows(prepared.event_rows)
        ]
    return BatchOutcome(result, codes, prepared.channel_counts, rows, errors)


class WriterProcess:
    """Parent-side handle of the writer process; used from one thread (the ingest writer thread)."""

    def __init__(self, config: WriterConfig, *, on_db_error: Any = None) -> None:
        self._config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._next_id = 0
        self._on_db_error = on_db_error

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        parent, child = socket.socketpair()
        config_json = json.dumps(asdict(self._config))
        with child:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tinyfleet.ingest.writer_main", str(child.fileno()), config_json],
                pass_fds=[child.fileno()],
                close_fds=True,
            )
        self._conn = Connection(parent.detach())

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the child has started and tried its first database connection."""
        if self._conn is None:
            raise WriterGone("writer process not started")
        try:
            if self._conn.poll(timeout):
                msg = self._conn.recv()
                if msg[0] == "ready":
                    return
        except (EOFError, OSError) as exc:
            raise WriterGone(f"writer process failed to start: {exc}") from exc
        raise WriterGone(f"writer process not ready within {timeout:.0f} s")

    def submit(self, messages: Sequence[RawMessage]) -> BatchOutcome:
        """Decode, write and commit one batch in the child; returns once it is committed.

        Raises WriterGone when the child died (the caller restarts it and submits again: the database
        ignores whatever of the batch was already committed) and WriterStopping when `request_stop` was
        called while the database stayed unreachable.
        """
        if self._conn is None:
            raise WriterGone("writer process not started")
        self._next_id += 1
        batch_id = self._next_id
        try:
            self._conn.send(("batch", batch_id, messages))
            while True:
                msg = self._conn.recv()
                kind = msg[0]
                if kind == "done" and msg[1] == batch_id:
                    outcome: BatchOutcome = msg[2]
                    return outcome
                if kind == "db_error":
                    if self._on_db_error is not None:
                        self._on_db_error(msg[1])
                    continue
                if kind == "stopped":
                    raise WriterStopping("stopped before the batch could be committed")
        except (EOFError, OSError) as exc:
            raise WriterGone(f"writer process went away: {exc}") from exc

    def request_stop(self) -> None:
        """Ask the child to give up retrying (if it is) and exit after the batch it is on."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("stop",))

    def restart(self) -> None:
        self.close(timeout=1.0)
        self.start()
        self.wait_ready()

    def close(self, timeout: float = 10.0) -> None:
        if self._conn is not None:
            self.request_stop()
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(2)
        if self._conn is not None:
            self._conn.close()
        self._proc = None
        self._conn = None


def wait_alive(proc: WriterProcess, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.alive:
            return True
        time.sleep(0.01)
    return proc.alive


def main(argv: list[str]) -> None:
    fd, config = int(argv[0]), WriterConfig(**json.loads(argv[1]))
    _child_main(Connection(fd), config)
