"""What the demo's alerts are delivered to on a laptop: a local mail catcher and, when installed, Node-RED.

* :class:`MailCatcher`: an SMTP server (aiosmtpd) on a free loopback port; every message the email actions
  send is written to ``<folder>/NNNN.eml`` and logged with its recipients and subject.
* :class:`LocalNodeRed`: the Node-RED 4 that ``make test`` installs into ``.tinyfleet/nodered`` (or
  ``make nodered``), run headless with the example flow ``rules/nodered/flow.json``, which appends every alert
  it receives to ``<folder>/alerts.jsonl``. Not installed: the demo says so and the rules' Node-RED actions
  are retried, then marked dead in the outbox, as they would be with a Node-RED that is down.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tinyfleet.demo.embedded import LOOPBACK, free_port

log = logging.getLogger(__name__)


class _SaveHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.count += 1
        content: bytes = envelope.original_content or envelope.content
        path = self.folder / f"{self.count:04d}.eml"
        path.write_bytes(content)
        subject = email.message_from_bytes(content, policy=email.policy.default).get("Subject", "")
        log.info("mail catcher: to %s: %s (%s)", ", ".join(envelope.rcpt_tos), subject, path)
        return "250 Message accepted for delivery"


class MailCatcher:
    """``with MailCatcher(folder) as mc:`` — an SMTP server on ``mc.port`` that keeps what it receives."""

    def __init__(self, folder: Path) -> None:
        from aiosmtpd.controller import Controller  # the `embedded` extra

        folder.mkdir(parents=True, exist_ok=True)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
        self.folder = folder
        self.port = free_port()
        self.handler = _SaveHandler(folder)
        self._controller = Controller(self.handler, hostname=LOOPBACK, port=self.port)

    @property
    def received(self) -> int:
        return self.handler.count

    def __enter__(self) -> MailCatcher:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


FLOW = Path("rules") / "nodered" / "flow.json"


def nodered_red_js(data_dir: Path) -> Path | None:
    """``red.js`` of the Node-RED installed under ``<data_dir>/nodered``, if it is there and node runs."""
    red = data_dir / "nodered" / "node_modules" / "node-red" / "red.js"
    return red if red.is_file() and shutil.which("node") else None


class LocalNodeRed:
    """A headless Node-RED with the example flow on a free port; ``url`` is what TINYFLEET_NODERED_URL takes."""

    def __init__(self, red: Path, folder: Path, flow: Path = FLOW) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.red = red
        self.folder = folder
        self.port = free_port()
        self.alerts = folder / "alerts.jsonl"
        shutil.copy(flow, folder / "flows.json")
        (folder / "settings.js").write_text(
            "module.exports = {"
            f" uiHost: '{LOOPBACK}', uiPort: {self.port}, httpAdminRoot: false, flowFile: 'flows.json',"
            " credentialSecret: false, logging: { console: { level: 'warn' } } };\n"
        )
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self, wait_s: float = 30.0) -> None:
        with (self.folder / "nodered.log").open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                "node", str(self.red), "--settings", str(self.folder / "settings.js"), "--userDir", str(self.folder),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TF_ALERT_FILE": str(self.alerts),
                     "HOME": str(self.folder)},
                stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while loop.time() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"Node-RED exited (see {self.folder / 'nodered.log'})")
                try:
                    if (await client.get(f"{self.url}/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"Node-RED did not answer within {wait_s:.0f} s (see {self.folder / 'nodered.log'})")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


__all__ = ["LocalNodeRed", "MailCatcher", "nodered_red_js"]
