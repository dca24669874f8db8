"""Foundry's new agents: `agents` (one per name in a project) and `agent_versions` (its
numbered, immutable definitions), unique on (project, agent, version) so that two versions
made at once cannot take one number.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.UniqueConstraint("project", "id", name="ux_agents_project_id"),
    )
    op.create_index("ix_agents_project_seq", "agents", ["project", "seq"])
    op.create_table(
        "agent_versions",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.UniqueConstraint("project", "agent", "version", name="ux_agent_versions_number"),
    )
    op.create_index("ix_agent_versions_agent_seq", "agent_versions", ["project", "agent", "seq"])


def downgrade() -> None:
    op.drop_table("agent_versions")
    op.drop_table("agents")
