"""Releases and staged rollouts: waves, per-device update status, decisions, and every OTA status report.

Revision ID: 0007_rollouts
Revises: 0005_model_registry
Create Date: 2026-12-01

``ota_manifest_seq`` numbers every signed manifest: one sequence for the whole fleet is monotonic for each
device too, so a rollback manifest always carries a higher number than the update it undoes (anti-rollback
on the device compares with the last number it applied).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_rollouts"
down_revision: str | Sequence[str] | None = "0005_model_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE ota_manifest_seq AS bigint START 1")
    op.add_column(
        "devices",
        sa.Column(
            "state_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the last online state (model, firmware, capabilities) arrived",
        ),
    )
    op.create_table(
        "ota_reports",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("mver", sa.Integer(), nullable=True),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="the decoded message"),
        sa.CheckConstraint(
            "state IN ('downloading', 'downloaded', 'verified', 'applied', 'failed', 'rolled_back')",
            name=op.f("ck_ota_reports_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_reports")),
    )
    op.create_index("ix_ota_reports_device_received", "ota_reports", ["device_id", "received_at"], unique=False)
    op.create_table(
        "releases",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("component", sa.Text(), server_default="model", nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("firmware_version", sa.Text(), nullable=True),
        sa.Column(
            "cohort",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="device selector (tags) the release is for",
        ),
        sa.Column(
            "plan",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="waves, gates, confirmation (RolloutPlan)",
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint("component IN ('model', 'firmware')", name=op.f("ck_releases_component")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint("name", name=op.f("uq_releases_name")),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), server_default="running", nullable=False),
        sa.Column("wave", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wave_started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'paused', 'completed', 'aborted', 'rolling_back', 'rolled_back')",
            name=op.f("ck_rollouts_state"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_rollouts_release_id_releases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index(op.f("ix_rollouts_release_id"), "rollouts", ["release_id"], unique=False)
    op.create_index(
        "ux_rollouts_active_release",
        "rollouts",
        ["release_id"],
        unique=True,
        postgresql_where=sa.text("state IN ('running', 'paused', 'rolling_back')"),
    )
    op.create_table(
        "rollout_decisions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), server_default="controller", nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_decisions_rollout_id_rollouts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_decisions")),
    )
    op.create_index(op.f("ix_rollout_decisions_rollout_id"), "rollout_decisions", ["rollout_id"], unique=False)
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("from_model", sa.Text(), nullable=True),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True, comment="sequence number of the manifest sent last"),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'current', 'sent', 'downloading', 'downloaded', 'verified', 'applied', "
            "'confirmed', 'failed', 'rollback_sent', 'rolled_back', 'skipped')",
            name=op.f("ck_rollout_devices_status"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_rollout_devices_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_devices_rollout_id_rollouts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rollout_id", "device_id", name=op.f("pk_rollout_devices")),
    )
    op.create_index(op.f("ix_rollout_devices_device_id"), "rollout_devices", ["device_id"], unique=False)
    op.create_index("ix_rollout_devices_status", "rollout_devices", ["rollout_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rollout_devices_status", table_name="rollout_devices")
    op.drop_index(op.f("ix_rollout_devices_device_id"), table_name="rollout_devices")
    op.drop_table("rollout_devices")
    op.drop_index(op.f("ix_rollout_decisions_rollout_id"), table_name="rollout_decisions")
    op.drop_table("rollout_decisions")
    op.drop_index(
        "ux_rollouts_active_release",
        table_name="rollouts",
        postgresql_where=sa.text("state IN ('running', 'paused', 'rolling_back')"),
    )
    op.drop_index(op.f("ix_rollouts_release_id"), table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("releases")
    op.drop_index("ix_ota_reports_device_received", table_name="ota_reports")
    op.drop_table("ota_reports")
    op.execute("DROP SEQUENCE ota_manifest_seq")
    op.drop_column("devices", "state_at")
