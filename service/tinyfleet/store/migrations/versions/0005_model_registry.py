"""Model registry: models and their immutable versions (artifact by SHA-256, inspection, TFLM arena, card).

Revision ID: 0005_model_registry
Revises: 0004_fleet_auth
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_model_registry"
down_revision: str | Sequence[str] | None = "0004_fleet_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.create_table(
        "models",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_models")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("precision", sa.Text(), nullable=False),
        sa.Column("parameters", sa.BigInteger(), nullable=False),
        sa.Column("ops", jsonb, nullable=False, comment="[{name, count, custom, version}]"),
        sa.Column("arena_bytes", sa.BigInteger(), nullable=True, comment="smallest TFLM arena; NULL: not loadable"),
        sa.Column("arena", jsonb, nullable=False, comment="the TFLM measurement (loadable, reason, …)"),
        sa.Column("inputs", jsonb, nullable=False),
        sa.Column("outputs", jsonb, nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("card", jsonb, nullable=False, comment="task, dataset, accuracy, description, …"),
        sa.Column("inspection", jsonb, nullable=False, comment="everything the flatbuffer reader found"),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("version >= 0 AND version <= 4294967295", name=op.f("ck_model_versions_version_uint32")),
        sa.CheckConstraint("precision IN ('int8', 'float', 'mixed')", name=op.f("ck_model_versions_precision")),
        sa.ForeignKeyConstraint(
            ["model_name"], ["models.name"], name=op.f("fk_model_versions_model_name_models"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    op.create_index("ix_model_versions_sha256", "model_versions", ["sha256"], unique=False)
    op.create_index("ux_model_versions_model_version", "model_versions", ["model_name", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_model_versions_model_version", table_name="model_versions")
    op.drop_index("ix_model_versions_sha256", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
