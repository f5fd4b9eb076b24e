"""Captures: raw sensor windows uploaded by devices (the ``capture`` command) for retraining.

Revision ID: 0008_captures
Revises: 0007_rollouts
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_captures"
down_revision: str | Sequence[str] | None = "0007_rollouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("sample_rate_hz", sa.Double(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("mver", sa.BigInteger(), nullable=True),
        sa.Column("features", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "meta", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="every header entry of the file"
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False, comment="the CSV exactly as uploaded"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_captures_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
    )
    op.create_index("ix_captures_device_id_id", "captures", ["device_id", "id"], unique=False)
    op.create_index("ix_captures_label", "captures", ["label"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_captures_label", table_name="captures")
    op.drop_index("ix_captures_device_id_id", table_name="captures")
    op.drop_table("captures")
