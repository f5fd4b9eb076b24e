"""UI users: scrypt hashes, roles as scopes, authentication against the database, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinyfleet.config import Settings
from tinyfleet.fleet import users
from tinyfleet.fleet.errors import InvalidUserInput, UserConflict
from tinyfleet.store.db import Database
from tinyfleet.store.migrate import upgrade

TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))
FAST = users.ScryptParams(log2_n=10)


def test_hash_and_verify() -> None:
    encoded = users.hash_password("correct horse battery", params=FAST)
    assert encoded.startswith("scrypt$10$8$1$")
    assert users.verify_password("correct horse battery", encoded)
    assert not users.verify_password("correct horse batterx", encoded)
    assert encoded != users.hash_password("correct horse battery", params=FAST)  # salted
    for bad in ("", "scrypt$x", "scrypt$10$8$1$!!$!!", "pbkdf2$1$2$3$4$5", "scrypt$40$8$1$AAAA$AAAA"):
        assert not users.verify_password("x", bad)


def test_roles_are_scopes() -> None:
    assert users.ROLE_SCOPES["read-only"] == {"read"}
    assert users.ROLE_SCOPES["operator"] == {"read", "write"}
    assert "admin" in users.ROLE_SCOPES["admin"]
    assert "device-provisioning" in users.ROLE_SCOPES["admin"]


async def test_create_authenticate_disable(database_url: str) -> None:
    upgrade(database_url)
    async with Database(Settings(_env_file=None, database_url=database_url)) as db:  # type: ignore[call-arg]
        async with db.session() as s:
            u = await users.create_user(s, "olga", "operator-pass-123", "operator", created_by="test")
            with pytest.raises(UserConflict):
                await users.create_user(s, "olga", "another-pass-123", "operator", created_by="test")
            with pytest.raises(InvalidUserInput):
                await users.create_user(s, "bad name", "another-pass-123", "operator", created_by="test")
            with pytest.raises(InvalidUserInput):
                await users.create_user(s, "short", "123", "operator", created_by="test")
            with pytest.raises(InvalidUserInput):
                await users.create_user(s, "x", "another-pass-123", "root", created_by="test")
        async with db.session() as s:
            assert (await users.authenticate(s, "olga", "operator-pass-123")) is not None
            assert (await users.authenticate(s, "olga", "wrong-pass-1234")) is None
            assert (await users.authenticate(s, "nobody", "operator-pass-123")) is None
            await users.set_disabled(s, "olga", True)
        async with db.session() as s:
            assert (await users.authenticate(s, "olga", "operator-pass-123")) is None
            assert (await users.active_user(s, u.id)) is None


def test_cli_users_create_and_list(database_url: str) -> None:
    upgrade(database_url)
    env = {"TINYFLEET_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([TINYFLEET, "users", "create", "rita", "--role", "read-only", "--password-stdin"],
                         input="reader-pass-1234\n", env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    short = subprocess.run([TINYFLEET, "users", "create", "x", "--password-stdin"], input="short\n", env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert short.returncode == 2
    assert "10 to 1024" in short.stderr
    listed = subprocess.run([TINYFLEET, "users", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert "rita\tread-only\tactive" in listed.stdout
    import psycopg

    with psycopg.connect(database_url) as conn:
        (actor, action) = conn.execute("SELECT actor, action FROM audit WHERE target = 'rita'").fetchone()  # type: ignore[misc]
    assert actor.startswith("cli:")
    assert action == "cli users create"
