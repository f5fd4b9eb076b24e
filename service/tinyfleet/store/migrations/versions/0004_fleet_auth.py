"""Fleet management: device credentials and lifecycle, cohorts, API keys, audit.

Revision ID: 0004_fleet_auth
Revises: 0003_rules_checkpoints
Create Date: 2026-12-01

Devices get `enabled`, `provisioned_at` and `decommissioned_at`; each device's MQTT passwords are kept as
Mosquitto `$7$` hashes in ``device_credentials`` (one active at a time); ``cohorts`` are saved tag selectors;
``api_keys`` hold SHA-256 digests of the API tokens; ``audit`` records every mutation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_fleet_auth"
down_revision: str | Sequence[str] | None = "0003_rules_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.add_column("devices", sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False))
    op.add_column("devices", sa.Column("provisioned_at", ts, nullable=True))
    op.add_column("devices", sa.Column("decommissioned_at", ts, nullable=True))

    op.create_table(
        "device_credentials",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column(
            "password_hash", sa.Text(), nullable=False, comment="mosquitto_passwd format: $7$iterations$salt$hash"
        ),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("rotated_at", ts, nullable=True, comment="when a newer credential replaced this one"),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_credentials_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_credentials")),
    )
    op.create_index(op.f("ix_device_credentials_device_id"), "device_credentials", ["device_id"], unique=False)
    op.create_index(
        "ux_device_credentials_active",
        "device_credentials",
        ["device_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )

    op.create_table(
        "cohorts",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False, comment="the selector in its canonical text form"),
        sa.Column("selector", jsonb, nullable=False, comment="the parsed selector (tinyfleet.fleet.selectors)"),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cohorts")),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False, comment="hex SHA-256 of the whole token"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("last_used_at", ts, nullable=True),
        sa.Column("revoked_at", ts, nullable=True),
        sa.CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin', 'device-provisioning']::text[]",
            name=op.f("ck_api_keys_scopes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_keys_token_sha256")),
    )

    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False, comment="key:<id>, admin-env, cli:<os user>"),
        sa.Column(
            "action", sa.Text(), nullable=False, comment="e.g. 'POST /api/v1/devices' or 'cli devices provision'"
        ),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True, comment="HTTP status of the answer"),
        sa.Column("summary", jsonb, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_at"), table_name="audit")
    op.drop_table("audit")
    op.drop_table("api_keys")
    op.drop_table("cohorts")
    op.drop_index("ux_device_credentials_active", table_name="device_credentials")
    op.drop_index(op.f("ix_device_credentials_device_id"), table_name="device_credentials")
    op.drop_table("device_credentials")
    op.drop_column("devices", "decommissioned_at")
    op.drop_column("devices", "provisioned_at")
    op.drop_column("devices", "enabled")
