"""The rollouts part of the service: registry catalogue, signer, publisher and controller, started together.

The signing key comes from the settings (`TINYFLEET_OTA_SIGNING_KEY_FILE` / `TINYFLEET_OTA_SIGNING_KEY`). In
development mode without one, a key is generated once into ``<data_dir>/ota-signing-key.pem`` (mode 0600) so
that the quick start needs no setup and devices keep trusting the same key across restarts; in production a
missing key disables rollouts (the routes answer 503 and say why) rather than signing with a throwaway key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tinyfleet.config import Environment, Settings
from tinyfleet.ota.keys import (
    SigningKeyError,
    generate_signing_key,
    load_signing_key,
    load_signing_key_file,
    write_signing_key,
)
from tinyfleet.registry import service as registry
from tinyfleet.registry.compat import check_compatibility
from tinyfleet.registry.errors import ModelNotFoundError
from tinyfleet.rollouts.context import RolloutsContext
from tinyfleet.rollouts.controller import RolloutController
from tinyfleet.rollouts.mqtt import MqttManifestPublisher
from tinyfleet.rollouts.ports import Artifact
from tinyfleet.rollouts.signing import Ed25519ManifestSigner
from tinyfleet.wire import Topics

log = logging.getLogger("tinyfleet.rollouts")

DEV_KEY_FILE = "ota-signing-key.pem"


class RegistryCatalog:
    """Model versions of the registry as the controller needs them: size, hash, download URI, requirements."""

    def __init__(self, sessionmaker: Callable[[], async_sessionmaker[AsyncSession]], public_url: str) -> None:
        self._sessionmaker = sessionmaker  # looked up per call: the API's database may be replaced (tests)
        self._base = public_url.rstrip("/")

    async def artifact(self, model: str, version: int) -> Artifact | None:
        async with self._sessionmaker()() as session:
            try:
                row = await registry.get_version(session, model, version)
            except ModelNotFoundError:
                return None
        ops = [str(op["name"]) if isinstance(op, dict) else str(op) for op in row.ops or []]
        requirements: dict[str, Any] = {"flash": row.size, "ops": ops}
        if row.arena_bytes is not None:
            requirements["arena"] = row.arena_bytes
        return Artifact(
            model=model,
            version=version,
            size=row.size,
            sha256=bytes.fromhex(row.sha256),
            uri=f"{self._base}/api/v1/models/{model}/versions/{version}/artifact",
            requirements=requirements,
            labels=tuple(row.labels or ()),
            facts=row,
        )


def compatibility_problems(capabilities: dict[str, Any] | None, artifact: Artifact) -> list[str]:
    if artifact.facts is None:
        return []
    return [i.message for i in check_compatibility(artifact.facts, capabilities)]


def signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    try:
        return load_signing_key(settings)
    except SigningKeyError as exc:
        if settings.ota_signing_key is not None or settings.ota_signing_key_file is not None:
            raise  # configured but unusable: say so at start-up
        if settings.env is not Environment.DEV:
            log.warning("rollouts disabled: %s", exc)
            return None
    path = settings.data_dir / DEV_KEY_FILE
    if path.exists():
        return load_signing_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key()
    write_signing_key(path, key)
    log.warning("development mode: generated the OTA signing key %s (set TINYFLEET_OTA_SIGNING_KEY_FILE in "
                "production)", path)  # fmt: skip
    return key


class Rollouts:
    """`async with Rollouts(settings, sessionmaker) as r:` → r.context for the API (None when disabled)."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *,
                 controller: bool = True) -> None:  # fmt: skip
        self.settings = settings
        self._sessionmaker = sessionmaker
        self._run_controller = controller
        self.context: RolloutsContext | None = None
        self.controller: RolloutController | None = None
        self.key: Ed25519PrivateKey | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        s = self.settings
        sessionmaker = self._sessionmaker
        catalog = RegistryCatalog(lambda: sessionmaker, s.public_base_url)
        self.context = RolloutsContext(catalog=catalog, compatibility=compatibility_problems)
        self.key = signing_key(s)
        self.context.public_key = None if self.key is None else self.key.public_key()
        if self.key is None or not self._run_controller:
            return self
        publisher = MqttManifestPublisher(s)
        self._stack.push_async_callback(publisher.aclose)
        self.controller = await self._stack.enter_async_context(
            RolloutController(
                self._sessionmaker,
                catalog=catalog,
                signer=Ed25519ManifestSigner(self.key),
                publisher=publisher,
                topics=Topics(s.topic_prefix),
                interval_s=s.rollouts_interval_s,
            )
        )
        self.context.controller = self.controller
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()
