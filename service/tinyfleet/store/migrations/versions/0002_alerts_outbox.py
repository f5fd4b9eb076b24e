"""Alerts, their history (alert_events) and the durable action outbox.

Revision ID: 0002_alerts_outbox
Revises: 0001_initial
Create Date: 2026-11-25

``ux_alerts_active`` (unique, partial: ``state <> 'resolved'``) lets the database itself refuse a second
open or acknowledged alert for the same (rule, group). ``ix_outbox_due`` (partial: pending rows) is what the
outbox workers scan with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_alerts_outbox"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("opened_at", ts, nullable=False),
        sa.Column("acknowledged_at", ts, nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", ts, nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolved_how", sa.Text(), nullable=True),
        sa.Column("last_notified_at", ts, nullable=True),
        sa.Column("escalated", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="ck_alerts_state"),
        sa.CheckConstraint("resolved_how IS NULL OR resolved_how IN ('auto', 'manual')", name="ck_alerts_resolved_how"),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index(
        "ux_alerts_active",
        "alerts",
        ["rule_id", "group_key"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_index("ix_alerts_rule_id", "alerts", ["rule_id"])

    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('open', 'ack', 'resolve', 'escalate', 'renotify', 'action_delivered', 'action_dead')",
            name="ck_alert_events_kind",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_events_alert_id_alerts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("transition_id", sa.BigInteger(), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", ts, nullable=True),
        sa.CheckConstraint("kind IN ('email', 'webhook', 'nodered', 'mqtt')", name="ck_outbox_kind"),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="ck_outbox_state"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_outbox_alert_id_alerts", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["transition_id"], ["alert_events.id"], name="fk_outbox_transition_id_alert_events", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_alert_id", "outbox", ["alert_id"])
    op.create_index("ix_outbox_state", "outbox", ["state"])
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"], postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("alert_events")
    op.drop_table("alerts")
