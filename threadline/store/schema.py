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
    # NULL for a message; the type of any other item of the thread (`function_call`, ...),
    # which the Assistants API does not show.
    sa.Column("kind", sa.String(32), nullable=True),
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

files = sa.Table(
    "files",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_files_project_seq", "project", "seq"),
)

vector_stores = sa.Table(
    "vector_stores",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(128), nullable=False),
    # Epoch seconds; NULL for a store that never expires. The sweeper finds the expired.
    sa.Column("expires_at", sa.BigInteger(), nullable=True),
    # Raised whenever chunks of the store are deleted, so a search's in-memory copy of its
    # vectors knows to load them anew (added chunks show as a higher `seq`).
    sa.Column("index_generation", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_vector_stores_project_seq", "project", "seq"),
)

# A file in a vector store: the file's id is its id within the store, so the pair is the key.
vector_store_files = sa.Table(
    "vector_store_files",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("vector_store_id", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("usage_bytes", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("body", Json, nullable=False),
    sa.UniqueConstraint("vector_store_id", "id", name="ux_vector_store_files_store_file"),
    sa.Index("ix_vector_store_files_store_seq", "vector_store_id", "seq"),
    sa.Index("ix_vector_store_files_file", "id"),
    sa.Index("ix_vector_store_files_batch", "batch_id"),
)

file_batches = sa.Table(
    "file_batches",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("vector_store_id", sa.String(64), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_file_batches_store", "vector_store_id"),
)

# The searchable pieces of a vector store's files. `seq` is also the full-text index's row id
# (SQLite FTS5's `content_rowid`); the text index itself is dialect-specific and made by the
# migration (`chunks_fts` on SQLite, a generated `tsvector` column on PostgreSQL).
chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("vector_store_id", sa.String(64), nullable=False),
    sa.Column("file_id", sa.String(64), nullable=False),
    sa.Column("chunk_index", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    # float32 little-endian, L2-normalised; the model that made it beside it, so a change of
    # embedding model is found (`threadline reembed`) rather than mixing vector spaces.
    sa.Column("embedding", sa.LargeBinary(), nullable=False),
    sa.Column("embedding_model", sa.String(128), nullable=False),
    sa.Index("ix_chunks_store_seq", "vector_store_id", "seq"),
    sa.Index("ix_chunks_file", "file_id"),
)

# Background work other than runs (a file's ingestion into a vector store), claimed the way
# runs are: oldest first, with a lease the worker renews and the sweeper takes back when it
# lapses. A job is deleted when done.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", sa.Float(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_jobs_lease_seq", "lease_owner", "seq"),
)

# Foundry's new agents (`domain/agent_versions.py`): an agent by its name within its project,
# with the highest version number it gave and its latest version in its body.
agents = sa.Table(
    "agents",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.UniqueConstraint("project", "id", name="ux_agents_project_id"),
    sa.Index("ix_agents_project_seq", "project", "seq"),
)

# An agent's versions; the unique key is what keeps two versions from taking one number.
agent_versions = sa.Table(
    "agent_versions",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(80), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.UniqueConstraint("project", "agent", "version", name="ux_agent_versions_number"),
    sa.Index("ix_agent_versions_agent_seq", "project", "agent", "seq"),
)

# Made by migration 0006 in each dialect's own terms, outside what this file describes: the
# FTS5 table over `chunks` (with the shadow tables SQLite keeps for it) and PostgreSQL's
# generated `tsvector` column with its GIN index.
TEXT_INDEX_TABLE_PREFIX = "chunks_fts"
TEXT_INDEX_COLUMN = "tsv"
TEXT_INDEX_NAME = "ix_chunks_tsv"
# Made by migration 0007 where PostgreSQL has pgvector: the `vector` column beside each
# chunk's bytes and the HNSW index over the bundled model's vectors.
VECTOR_COLUMN = "embedding_vec"
VECTOR_INDEX_NAME = "ix_chunks_embedding_vec_hnsw"


def described_here(name: str | None, kind: str) -> bool:
    """Whether a name found in a database is one this file describes (for schema checks)."""
    if name is None:
        return True
    if kind == "table":
        return not name.startswith(TEXT_INDEX_TABLE_PREFIX)
    if kind == "column":
        return name not in (TEXT_INDEX_COLUMN, VECTOR_COLUMN)
    if kind == "index":
        return name not in (TEXT_INDEX_NAME, VECTOR_INDEX_NAME)
    return True
