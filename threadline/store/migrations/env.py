"""Alembic environment: always handed an open connection by `threadline.store.migrate`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from threadline.store.schema import metadata

# Processes that start together on one PostgreSQL database (`serve` and `threadline
# worker`s) each migrate as they start. Without taking turns, the later ones found the
# tables or the index they were creating or dropping already done by the first, and
# failed to start. The lock is held until the migrating transaction ends; whoever waited
# for it then finds the schema current. (A key of Threadline's own, in PostgreSQL's
# database-wide advisory lock space.)
MIGRATION_LOCK = 0x74687264_6C696E65  # "thrdline"

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
