"""Vectors searched inside PostgreSQL where the server has pgvector: a `vector` column beside
each chunk's float32 bytes, and an HNSW index over the bundled model's vectors.

Only where pgvector is there to be had. A server without the extension, or a role that may
not create it, keeps what 0006 built: a search loads a store's vectors into its process and
compares them exactly (`tools/file_search/search.py`). Creating the extension is tried under
a savepoint, so a refusal leaves this migration's transaction usable and the database as it
was; why is logged. SQLite is left as it is (the Python it runs in cannot load extensions).

The column has no fixed dimension: an upstream's embedder may make vectors of any length,
and `threadline reembed` rewrites them in place. The index is therefore a partial expression
index on the bundled model's vectors cast to its dimension (HNSW needs one); a search for
them repeats that expression and that predicate word for word (`store/sql_files.py`), so the
planner can use it. Another model's vectors are compared exactly in SQL, without the index:
a change of model is followed by `threadline reembed`, so they are few and short-lived.

The bundled model's id and dimension are read from where the embedder reads them, so the
index always names the model the embedder stores. A later change of that id needs a
migration that rebuilds the index for the new one (until then its vectors are compared
exactly in SQL, as another model's are).

Chunks already stored are given their `vector` from their bytes here, in batches of
`BATCH`, before the index is built (a bulk build is faster than one row at a time).

A database that gains the extension after this ran keeps searching in memory until it is
migrated down to 0006 and up again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import sqlalchemy as sa
from alembic import op

from threadline.providers.embedders.minilm_files import DIMENSIONS, MODEL_ID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("threadline.store.migrations")

BATCH = 500
COLUMN = "embedding_vec"
INDEX = "ix_chunks_embedding_vec_hnsw"

_READ_BATCH = sa.text(
    "SELECT seq, embedding FROM chunks WHERE seq > :after ORDER BY seq LIMIT :batch"
)
# The batch's vectors in one `real[]`, row i's from offset `offsets[i]`, `dims[i]` long.
_WRITE_BATCH = sa.text(
    f"UPDATE chunks SET {COLUMN} = CAST((CAST(:floats AS real[]))[u.o + 1 : u.o + u.d] AS vector) "
    "FROM unnest(CAST(:seqs AS bigint[]), CAST(:offsets AS integer[]), CAST(:dims AS integer[])) "
    "AS u(seq, o, d) WHERE chunks.seq = u.seq"
)


def _model_literal() -> str:
    return "'" + MODEL_ID.replace("'", "''") + "'"


def _extension_ready(bind: sa.Connection) -> bool:
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'vector'").first():
        return True
    available = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
    ).first()
    if not available:
        log.info("pgvector is not installed on this PostgreSQL: vectors are searched in memory")
        return False
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pgvector is installed on this PostgreSQL but the extension could not be created "
            "(%s): vectors are searched in memory. A superuser can run `CREATE EXTENSION "
            "vector` in this database; then migrate down to 0006 and up again.",
            str(exc.orig).strip(),
        )
        return False
    return True


def _backfill(bind: sa.Connection) -> None:
    after = 0
    while True:
        rows = bind.execute(_READ_BATCH, {"after": after, "batch": BATCH}).all()
        if not rows:
            return
        embeddings = [bytes(row[1]) for row in rows]
        dims = [len(embedding) // 4 for embedding in embeddings]
        bind.execute(
            _WRITE_BATCH,
            {
                "floats": np.frombuffer(b"".join(embeddings), "<f4").tolist(),
                "seqs": [int(row[0]) for row in rows],
                "offsets": list(itertools.accumulate(dims, initial=0))[:-1],
                "dims": dims,
            },
        )
        after = int(rows[-1][0])


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _extension_ready(bind):
        return
    op.execute(f"ALTER TABLE chunks ADD COLUMN {COLUMN} vector")
    _backfill(bind)
    op.execute(
        f"CREATE INDEX {INDEX} ON chunks USING hnsw "
        f"(({COLUMN}::vector({DIMENSIONS})) vector_cosine_ops) "
        f"WHERE embedding_model = {_model_literal()}"
    )


def downgrade() -> None:
    """The index and the column go; the extension stays (other tables may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute(f"ALTER TABLE chunks DROP COLUMN IF EXISTS {COLUMN}")
