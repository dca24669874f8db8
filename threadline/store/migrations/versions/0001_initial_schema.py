"""Initial schema: assistants, threads, messages, runs, run steps and the run event log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = "status IN ('queued', 'in_progress', 'requires_action', 'cancelling')"


def _keyed(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        *columns,
        sa.Column("body", Json, nullable=False),
    )


def upgrade() -> None:
    _keyed("assistants", sa.Column("project", sa.String(128), nullable=False))
    op.create_index("ix_assistants_project_seq", "assistants", ["project", "seq"])
    _keyed(
        "threads",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False, server_default="0"),
    )
    _keyed(
        "messages",
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_messages_thread_seq", "messages", ["thread_id", "seq"])
    op.create_index("ix_messages_run", "messages", ["run_id"])
    _keyed(
        "runs",
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
    )
    op.create_index("ix_runs_thread_seq", "runs", ["thread_id", "seq"])
    op.create_index("ix_runs_status_seq", "runs", ["status", "seq"])
    op.create_index(
        "ux_runs_one_active_per_thread",
        "runs",
        ["thread_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    _keyed(
        "run_steps",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_run_steps_run_seq", "run_steps", ["run_id", "seq"])
    op.create_index("ix_run_steps_thread", "run_steps", ["thread_id"])
    op.create_table(
        "run_events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("data", Json, nullable=False),
    )
    op.create_index("ix_run_events_run_seq", "run_events", ["run_id", "seq"])
    op.create_index("ix_run_events_created_at", "run_events", ["created_at"])
    op.create_index("ix_run_events_thread", "run_events", ["thread_id"])


def downgrade() -> None:
    for table in ("run_events", "run_steps", "runs", "messages", "threads", "assistants"):
        op.drop_table(table)
