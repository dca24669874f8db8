"""Files, vector stores with their files, batches and searchable chunks, and the jobs queue
that ingests files in the background.

The full-text index of chunks is each dialect's own: an external-content FTS5 table kept by
triggers on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The store's id is indexed too, so a search of one store among many intersects the words'
# matches with the store's own rows inside the index (`sql_files._SQLITE_TEXT_SEARCH_IN`).
_SQLITE_TEXT_INDEX = [
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, vector_store_id, "
    "content='chunks', content_rowid='seq', tokenize='porter unicode61')",
    "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, text, vector_store_id) "
    "VALUES (new.seq, new.text, new.vector_store_id); END",
    "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    "INSERT INTO chunks_fts(chunks_fts, rowid, text, vector_store_id) "
    "VALUES ('delete', old.seq, old.text, old.vector_store_id); END",
]
_POSTGRES_TEXT_INDEX = [
    "ALTER TABLE chunks ADD COLUMN tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)",
]


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("body", Json, nullable=False),
    )
    op.create_index("ix_files_project_seq", "files", ["project", "seq"])
    op.create_table(
        "vector_stores",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("index_generation", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("body", Json, nullable=False),
    )
    op.create_index("ix_vector_stores_project_seq", "vector_stores", ["project", "seq"])
    op.create_table(
        "vector_store_files",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("body", Json, nullable=False),
        sa.UniqueConstraint("vector_store_id", "id", name="ux_vector_store_files_store_file"),
    )
    op.create_index(
        "ix_vector_store_files_store_seq", "vector_store_files", ["vector_store_id", "seq"]
    )
    op.create_index("ix_vector_store_files_file", "vector_store_files", ["id"])
    op.create_index("ix_vector_store_files_batch", "vector_store_files", ["batch_id"])
    op.create_table(
        "file_batches",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("body", Json, nullable=False),
    )
    op.create_index("ix_file_batches_store", "file_batches", ["vector_store_id"])
    op.create_table(
        "chunks",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_model", sa.String(128), nullable=False),
    )
    op.create_index("ix_chunks_store_seq", "chunks", ["vector_store_id", "seq"])
    op.create_index("ix_chunks_file", "chunks", ["file_id"])
    op.create_table(
        "jobs",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("body", Json, nullable=False),
    )
    op.create_index("ix_jobs_lease_seq", "jobs", ["lease_owner", "seq"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_TEXT_INDEX if sqlite else _POSTGRES_TEXT_INDEX:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS chunks_fts_insert")
        op.execute("DROP TRIGGER IF EXISTS chunks_fts_delete")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
    for table in ("jobs", "chunks", "file_batches", "vector_store_files", "vector_stores"):
        op.drop_table(table)
    op.drop_table("files")
