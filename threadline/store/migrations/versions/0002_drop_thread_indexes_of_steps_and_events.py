"""Drop the thread_id indexes of run steps and run events.

Only deleting a thread used them; it now finds a thread's steps and events through its
runs. Each step and event written (every streamed delta among them) no longer updates a
third index.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_run_events_thread", table_name="run_events")
    op.drop_index("ix_run_steps_thread", table_name="run_steps")


def downgrade() -> None:
    op.create_index("ix_run_steps_thread", "run_steps", ["thread_id"])
    op.create_index("ix_run_events_thread", "run_events", ["thread_id"])
