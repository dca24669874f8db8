"""Threads are listed per project (`GET /threads`, the Azure client's `threads.list`): one
index range scan a page, as assistants are.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_threads_project_seq", "threads", ["project", "seq"])


def downgrade() -> None:
    op.drop_index("ix_threads_project_seq", table_name="threads")
