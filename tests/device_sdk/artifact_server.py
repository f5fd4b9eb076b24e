"""A real HTTP artifact server (http.server, threads) that can misbehave on purpose, for the OTA client tests.

It serves one body with an ETag and one ``Range: bytes=N-`` (honouring ``If-Range``), like the tinyfleet
registry, and records every request. ``mode`` makes it an attacker or a bad network:

* ``ok``: what the registry does;
* ``longer``: the body and more, with a Content-Length that says so;
* ``endless``: no Content-Length, bytes until the client goes away (TUF's endless-data attack);
* ``stall``: the first ``stall_after`` bytes, then silence (slow retrieval: a stalled server);
* ``slow``: ``trickle`` bytes every ``interval_s`` (slow retrieval: each read in time, the whole never);
* ``throttle``: the body in ``trickle``-byte pieces every ``interval_s`` (a slow link, for kill -9 mid-download);
* ``no_range``: ignores Range (always 200 with the whole body).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int = 0
    sent: int = 0  #: body bytes written before the response ended (or the client left)


@dataclass
class ServerConfig:
    body: bytes = b""
    etag: str | None = '"v1"'
    mode: str = "ok"
    stall_after: int = 1000
    trickle: int = 1024
    interval_s: float = 0.02
    requests: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    config: ServerConfig
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        c = self.config
        req = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
        c.requests.append(req)
        body = c.body
        start = 0
        match = _RANGE.match(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if match and c.mode != "no_range" and (if_range is None or if_range == c.etag):
            start = int(match.group(1))
            if start >= len(body):
                req.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        req.status = 206 if start else 200
        self.send_response(req.status)
        if c.etag:
            self.send_header("ETag", c.etag)
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        payload = body[start:]
        if c.mode == "longer":
            payload += b"\x00" * 4096
        if c.mode in ("endless", "stall", "slow"):
            self.send_header("Connection", "close")  # no length: the body ends when the connection does
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client went away (as it should)
            self._body(req, payload)
        if c.mode in ("endless", "stall", "slow"):
            self.close_connection = True

    def _write(self, req: Request, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        req.sent += len(data)

    def _body(self, req: Request, payload: bytes) -> None:
        c = self.config
        if c.mode == "endless":
            chunk = b"\xaa" * 8192
            while not c.stop.is_set() and req.sent < 64 << 20:  # a bound, so a broken client cannot fill the disk
                self._write(req, chunk)
        elif c.mode == "stall":
            self._write(req, payload[: c.stall_after])
            c.stop.wait(60)
        elif c.mode in ("slow", "throttle"):
            for i in range(0, len(payload), c.trickle):
                if c.stop.wait(c.interval_s):
                    return
                self._write(req, payload[i : i + c.trickle])
        else:
            self._write(req, payload)


@contextmanager
def artifact_server(config: ServerConfig) -> Iterator[str]:
    """Serve ``config`` on a free port of 127.0.0.1; yields the URL of the artifact."""
    handler = type("Handler", (_Handler,), {"config": config})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="artifact-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/models/kws/versions/2/artifact"
    finally:
        config.stop.set()
        server.shutdown()
        server.server_close()
