"""A thread holds items other than messages (a function call, its output), in order among its
messages: the Responses API reads and writes them, the Assistants API skips them. `kind` says
which rows are not messages, so that a page of messages is still one index range scan that
leaves them out.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("kind", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("kind")
