"""Users of the web UI: username, scrypt password hash, role (read-only / operator / admin).

Revision ID: 0009_users
Revises: 0008_captures
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_users"
down_revision: str | Sequence[str] | None = "0008_captures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column(
            "password_hash",
            sa.Text(),
            nullable=False,
            comment="scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>",
        ),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("last_login_at", ts, nullable=True),
        sa.Column("disabled_at", ts, nullable=True),
        sa.CheckConstraint("role IN ('read-only', 'operator', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )


def downgrade() -> None:
    op.drop_table("users")
