"""Tables. Each record is kept as JSON (`body`, in the shape of `domain/records.py`) beside
the columns that queries need.

`seq` is a monotonic integer key: lists page on it, so cursors are exact and a page of a
100,000-message thread is one index range scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from threadline.domain.run_states import RunStatus, is_active

metadata = sa.MetaData()

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The statuses come from the state machine, so the index that allows one active run per
# thread can never disagree with it (0001 wrote them out, as a migration must).
ACTIVE_RUN_STATUSES = tuple(status.value for status in RunStatus if is_active(status))
ACTIVE_RUN_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE_RUN_STATUSES))

assistants = sa.Table(
    "assistants",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_assistants_project_seq", "project", "seq"),
)

threads = sa.Table(
    "threads",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(128), nullable=False),
    # Kept by the store on every insert and delete, so the 100,000-message limit is
    # checked without counting a large thread's rows.
    sa.Column("message_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_threads_project_seq", "project", "seq"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("thread_id", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_messages_thread_seq", "thread_id", "seq"),
    sa.Index("ix_messages_run", "run_id"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("thread_id", sa.String(64), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=True),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", sa.Float(), nullable=True),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_runs_thread_seq", "thread_id", "seq"),
    sa.Index("ix_runs_status_seq", "status", "seq"),
    sa.Index(
        "ux_runs_one_active_per_thread",
        "thread_id",
        unique=True,
        sqlite_where=sa.text(ACTIVE_RUN_SQL),
        postgresql_where=sa.text(ACTIVE_RUN_SQL),
    ),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("thread_id", sa.String(64), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_run_steps_run_seq", "run_id", "seq"),
)

run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("thread_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    # The id of the object the event carries, so an abandoned attempt's events can be
    # found and withdrawn when another worker redoes that turn.
    sa.Column("object_id", sa.String(64), nullable=True),
    # Epoch seconds, for pruning the logs of long-finished runs.
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Index("ix_run_events_run_seq", "run_id", "seq"),
    sa.Index("ix_run_events_created_at", "created_at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    # SHA-256 of the secret, hex: the secret itself is never stored.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("hint", sa.String(32), nullable=False),
    # The projects the key reaches; NULL for every project (an admin key).
    sa.Column("projects", Json, nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("revoked_at", sa.BigInteger(), nullable=True),
)
