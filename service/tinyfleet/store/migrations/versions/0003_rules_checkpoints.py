"""Rules checkpoints, and a BRIN index on events.received_at for the replay after a restart.

Revision ID: 0003_rules_checkpoints
Revises: 0002_alerts_outbox
Create Date: 2026-12-01

The rules runtime saves its engine state every few seconds into ``rules_checkpoints`` and, when it starts,
replays the events received since then (``events.received_at``, in receive order): windows, `for:` and absence
clocks survive a restart. ``received_at`` follows insertion order, so a BRIN index serves the range scan and
costs the ingest next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_rules_checkpoints"
down_revision: str | Sequence[str] | None = "0002_alerts_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "rules_checkpoints",
        sa.Column("name", sa.Text(), nullable=False, comment="the runtime: its ingest client id"),
        sa.Column("saved_at", ts, nullable=False),
        sa.Column("fed_until", ts, nullable=True),
        sa.Column(
            "fed_keys",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="[device, boot, seq] fed at fed_until",
        ),
        sa.Column("events_fed", sa.BigInteger(), nullable=False),
        sa.Column(
            "snapshot", sa.LargeBinary(), nullable=False, comment="zlib-compressed JSON of RuleEngine.snapshot()"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rules_checkpoints")),
    )
    op.create_index("ix_events_received_at_brin", "events", ["received_at"], unique=False, postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("ix_events_received_at_brin", table_name="events", postgresql_using="brin")
    op.drop_table("rules_checkpoints")
