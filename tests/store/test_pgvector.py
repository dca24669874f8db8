"""Vectors searched inside PostgreSQL where it has pgvector (migration 0007), on a server of
the tests' own that has it (`support/pgvector.py`, started once for these tests).

The machine's PostgreSQL has no pgvector: the rest of the suite runs on it, and so covers the
fallback (vectors compared in memory); the last tests here check that it is the one taken.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import openai
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support.live import TEST_SERVER_ENV, openai_client
from support.pgvector import PgvectorServer
from support.scripted_model import ScriptedModelServer
from support.server import ServerProcess

from threadline.providers.embedders.minilm_files import DIMENSIONS, MODEL_ID
from threadline.store.drivers import PostgresDriver
from threadline.store.engine import create_postgres_engine
from threadline.store.migrate import alembic_config
from threadline.store.schema import VECTOR_COLUMN, VECTOR_INDEX_NAME, described_here, metadata
from threadline.store.sql import SqlTx
from threadline.store.sql_files import nearest_query, vector_floats
from threadline.store.sql_store import SqlStore

T = TypeVar("T")
Matrix = npt.NDArray[np.float32]
OTHER_MODEL = "an-upstream-embedder"


class Runner(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgvectorServer]:
    with PgvectorServer() as server:
        yield server


@pytest.fixture(scope="session")
def pgvector_url(pgvector_server: PgvectorServer) -> str:
    return pgvector_server.create_database()


@pytest.fixture
def vector_store(pgvector_url: str, run: Runner) -> Iterator[SqlStore]:
    """A migrated store on pgvector, its chunks emptied."""
    store = SqlStore(pgvector_url)
    try:
        run(store.migrate())
        run(_sql(store, "DELETE FROM chunks"))
        yield store
    finally:
        run(store.close())


async def _sql(store: SqlStore, statement: str) -> list[tuple[Any, ...]]:
    async with store.transaction() as tx:
        return await tx.db.execute_sql(statement)


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _unit(rows: npt.NDArray[Any]) -> Matrix:
    unit: Matrix = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype("<f4")
    return unit


def _topics(count: int, dims: int = DIMENSIONS, seed: int = 7) -> Matrix:
    """Vectors in tight groups around a few directions, as texts on a few topics embed: the
    nearest of each are clearly nearer than the rest."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((8, dims)))
    return _unit(centres[np.arange(count) % 8] + 0.05 * rng.standard_normal((count, dims)))


def _rows(
    store_id: str, vectors: Matrix, files: int = 3, model: str = MODEL_ID
) -> list[dict[str, Any]]:
    return [
        {
            "vector_store_id": store_id,
            "file_id": f"file-{store_id}-{index % files}",
            "chunk_index": index,
            "text": f"chunk {index} of {store_id}",
            "embedding": vector.tobytes(),
            "embedding_model": model,
        }
        for index, vector in enumerate(vectors)
    ]


async def _insert(store: SqlStore, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows; their seqs, in order."""
    async with store.transaction() as tx:
        await tx.insert_chunks(rows)
        found = await tx.db.execute_sql("SELECT seq FROM chunks ORDER BY seq")
    return [int(row[0]) for row in found][-len(rows) :]


async def _nearest(
    store: SqlStore,
    store_ids: list[str],
    query: Matrix,
    limit: int,
    allowed: set[str] | None = None,
    model: str = MODEL_ID,
) -> list[tuple[float, int]]:
    async with store.transaction(durable=False) as tx:
        return await tx.nearest_chunks(store_ids, model, query.tobytes(), limit, allowed)


def _schema_differences(url: str) -> list[Any]:
    def differences(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, kind, _: described_here(name, kind)}
        )
        with warnings.catch_warnings():
            # Reflection knows no `vector` type; the column is pgvector's, left out by name.
            warnings.filterwarnings("ignore", "Did not recognize type 'vector'", sa.exc.SAWarning)
            return list(compare_metadata(context, metadata))

    async def read() -> list[Any]:
        engine = create_postgres_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(differences)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _migrate(url: str, revision: str, down: bool = False) -> None:
    async def migrate() -> None:
        engine = create_postgres_engine(url, pool_size=1)
        step = command.downgrade if down else command.upgrade
        try:
            async with engine.begin() as connection:
                await connection.run_sync(lambda sync: step(alembic_config(sync), revision))
        finally:
            await engine.dispose()

    asyncio.run(migrate())


# -- the migration -------------------------------------------------------------------------


def test_the_migration_makes_the_extension_the_column_and_the_hnsw_index(
    pgvector_server: PgvectorServer,
) -> None:
    url = pgvector_server.create_database()
    _migrate(url, "head")
    database = _database(url)
    assert pgvector_server.admin(
        "SELECT extname FROM pg_extension WHERE extname = 'vector'", database
    )
    [column] = pgvector_server.admin(
        "SELECT udt_name FROM information_schema.columns "
        f"WHERE table_name = 'chunks' AND column_name = '{VECTOR_COLUMN}'",
        database,
    )
    assert column["udt_name"] == "vector"
    [index] = pgvector_server.admin(
        f"SELECT indexdef FROM pg_indexes WHERE indexname = '{VECTOR_INDEX_NAME}'", database
    )
    definition = index["indexdef"]
    assert "USING hnsw" in definition
    assert f"vector({DIMENSIONS})" in definition
    assert "vector_cosine_ops" in definition
    assert f"WHERE ((embedding_model)::text = '{MODEL_ID}'::text)" in definition
    # What 0007 adds is the dialect's own; everything else is still what schema.py says.
    assert _schema_differences(url) == []


def test_chunks_stored_before_the_migration_get_their_vectors(
    pgvector_server: PgvectorServer, run: Runner
) -> None:
    """Down to 0006 and up again: the index and column go and come back, and the chunks
    stored meanwhile (bytes only) are given their vectors from their bytes."""
    url = pgvector_server.create_database()
    _migrate(url, "head")
    _migrate(url, "0006", down=True)
    database = _database(url)
    assert not pgvector_server.admin(
        f"SELECT 1 FROM information_schema.columns WHERE column_name = '{VECTOR_COLUMN}'",
        database,
    )
    assert not pgvector_server.admin(
        f"SELECT 1 FROM pg_indexes WHERE indexname = '{VECTOR_INDEX_NAME}'", database
    )
    vectors = _topics(600)  # more than one batch of the migration's
    store = SqlStore(url)
    try:
        seqs = run(_insert(store, _rows("vs_old", vectors)))
    finally:
        run(store.close())
    _migrate(url, "head")
    [missing] = pgvector_server.admin(
        f"SELECT count(*) FROM chunks WHERE {VECTOR_COLUMN} IS NULL", database
    )
    assert missing[0] == 0
    store = SqlStore(url)
    try:
        found = run(_nearest(store, ["vs_old"], vectors[123], 5))
    finally:
        run(store.close())
    assert found[0][1] == seqs[123]
    assert found[0][0] == pytest.approx(1.0, abs=1e-5)


def test_a_role_that_may_not_create_the_extension_keeps_the_in_memory_search(
    pgvector_server: PgvectorServer, run: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    pgvector_server.admin(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') "
        "THEN CREATE ROLE app LOGIN NOSUPERUSER; END IF; END $$"
    )
    url = pgvector_server.create_database(owner="app")
    store = SqlStore(url)
    try:
        with caplog.at_level(logging.WARNING, "threadline.store.migrations"):
            run(store.migrate())
        [warning] = caplog.records
        assert "could not be created" in warning.getMessage()
        assert "permission denied" in warning.getMessage()
        assert not pgvector_server.admin(
            "SELECT 1 FROM pg_extension WHERE extname = 'vector'", _database(url)
        )

        async def fallback() -> tuple[bool, list[tuple[int, str, bytes]]]:
            async with store.transaction() as tx:
                await tx.insert_chunks(_rows("vs_a", _topics(4)))
                return tx.supports_ann, await tx.chunk_vectors("vs_a", MODEL_ID, 0)

        supports_ann, vectors = run(fallback())
        assert supports_ann is False
        assert len(vectors) == 4
    finally:
        run(store.close())


# -- the store's chunks on pgvector --------------------------------------------------------


def test_the_nearest_chunks_of_the_stores_asked_come_best_first(
    vector_store: SqlStore, run: Runner
) -> None:
    first, second = _topics(40, seed=1), _topics(40, seed=2)
    first_seqs = run(_insert(vector_store, _rows("vs_first", first)))
    second_seqs = run(_insert(vector_store, _rows("vs_second", second)))

    found = run(_nearest(vector_store, ["vs_first"], first[17], 5))
    assert found[0][1] == first_seqs[17]
    assert found[0][0] == pytest.approx(1.0, abs=1e-5)
    assert len(found) == 5
    assert {seq for _, seq in found} <= set(first_seqs)

    # Asked for more than there are: every chunk of both stores, exactly as numpy ranks them.
    query = _unit(first[3:4] + second[5:6])[0]
    found = run(_nearest(vector_store, ["vs_first", "vs_second"], query, 100))
    similarities = np.concatenate([first @ query, second @ query])
    seqs = np.array(first_seqs + second_seqs)
    order = np.argsort(-similarities, kind="stable")
    assert [seq for _, seq in found] == seqs[order].tolist()
    assert [score for score, _ in found] == pytest.approx(similarities[order].tolist(), abs=1e-5)
    assert run(_nearest(vector_store, [], query, 10)) == []
    assert run(_nearest(vector_store, ["vs_none"], query, 10)) == []


def test_nearest_chunks_keeps_to_the_files_allowed(vector_store: SqlStore, run: Runner) -> None:
    vectors = _topics(30)
    seqs = run(_insert(vector_store, _rows("vs_a", vectors, files=3)))
    of_file_1 = {seq for index, seq in enumerate(seqs) if index % 3 == 1}

    found = run(_nearest(vector_store, ["vs_a"], vectors[0], 100, {"file-vs_a-1"}))
    assert {seq for _, seq in found} == of_file_1
    assert run(_nearest(vector_store, ["vs_a"], vectors[0], 100, set())) == []


def test_deleted_chunks_are_no_longer_found(vector_store: SqlStore, run: Runner) -> None:
    vectors = _topics(30)
    seqs = run(_insert(vector_store, _rows("vs_a", vectors, files=3)))
    run(_insert(vector_store, _rows("vs_b", vectors, files=3)))

    async def delete() -> None:
        async with vector_store.transaction() as tx:
            await tx.delete_chunks("vs_a", "file-vs_a-0")

    run(delete())
    found = run(_nearest(vector_store, ["vs_a"], vectors[0], 100))
    assert {seq for _, seq in found} == {seq for i, seq in enumerate(seqs) if i % 3 != 0}
    assert len(run(_nearest(vector_store, ["vs_b"], vectors[0], 100))) == 30


def test_another_models_vectors_are_compared_exactly_and_apart(
    vector_store: SqlStore, run: Runner
) -> None:
    """An upstream's vectors (another model, another length) are searched in SQL without the
    index, never mixed with the bundled model's; `reembed` moving a chunk moves its vector."""
    bundled = _topics(20)
    upstream = _topics(20, dims=8, seed=3)
    bundled_seqs = run(_insert(vector_store, _rows("vs_a", bundled)))
    upstream_seqs = run(_insert(vector_store, _rows("vs_a", upstream, model=OTHER_MODEL)))

    query = upstream[4]
    found = run(_nearest(vector_store, ["vs_a"], query, 100, model=OTHER_MODEL))
    order = np.argsort(-(upstream @ query), kind="stable")
    assert [seq for _, seq in found] == np.array(upstream_seqs)[order].tolist()
    assert {seq for _, seq in run(_nearest(vector_store, ["vs_a"], bundled[0], 100))} == set(
        bundled_seqs
    )

    async def reembed() -> None:
        async with vector_store.transaction() as tx:
            await tx.set_embedding(upstream_seqs[4], bundled[9].tobytes(), MODEL_ID)

    run(reembed())
    found = run(_nearest(vector_store, ["vs_a"], bundled[9], 2))
    assert {seq for _, seq in found} == {bundled_seqs[9], upstream_seqs[4]}
    assert all(score == pytest.approx(1.0, abs=1e-5) for score, _ in found)
    assert upstream_seqs[4] not in {
        seq for _, seq in run(_nearest(vector_store, ["vs_a"], query, 100, model=OTHER_MODEL))
    }


def test_the_bundled_models_search_is_one_the_hnsw_index_answers(
    vector_store: SqlStore, run: Runner
) -> None:
    """The query repeats the index's expression and predicate: with every other way of
    ordering the rows turned off, the planner walks the index (on a table this small it
    would rightly sort; on tens of thousands of chunks it takes the index by itself)."""
    vectors = _topics(200)
    run(_insert(vector_store, _rows("vs_a", vectors)))

    async def plans() -> list[str]:
        found = []
        async with vector_store.transaction(durable=False) as tx:
            assert isinstance(tx, SqlTx) and isinstance(tx.db, PostgresDriver)
            await tx.db.execute_sql("SET LOCAL enable_seqscan = off")
            await tx.db.execute_sql("SET LOCAL enable_sort = off")
            for by_file in (False, True):
                rendered = nearest_query(True, by_file).rendered(tx.db.dialect)
                params: dict[str, Any] = {
                    "p_vector": vector_floats(vectors[0].tobytes()),
                    "p_store_ids": ["vs_a"],
                    "p_limit": 10,
                    "p_file_ids": ["file-vs_a-1"],
                }
                rows = await tx.db.connection.fetch(
                    "EXPLAIN " + rendered.sql, *rendered.arguments(params)
                )
                found.append("\n".join(row[0] for row in rows))
        return found

    for plan in run(plans()):
        assert f"Index Scan using {VECTOR_INDEX_NAME}" in plan, plan


# -- a live server on pgvector -------------------------------------------------------------


def test_a_server_on_pgvector_finds_files_by_what_they_mean(
    pgvector_server: PgvectorServer, scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    url = pgvector_server.create_database()
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url}
    with ServerProcess(url, env, tmp_path / "server.log") as server:
        client = openai_client(server)
        texts = {
            "parking.md": b"# Parking\n\nStaff park in garage B, on level minus two.\n",
            "ferry.md": b"# Trip\n\nThe ferry to the island leaves at 7:15 every morning.\n",
            "pancakes.md": b"# Recipes\n\nPancakes need flour, eggs and milk.\n",
        }
        ids = {
            name: client.files.create(file=(name, data), purpose="assistants").id
            for name, data in texts.items()
        }
        store = client.vector_stores.create(name="handbook", file_ids=list(ids.values()))
        for file_id in ids.values():
            done = client.vector_stores.files.poll(
                file_id, vector_store_id=store.id, poll_interval_ms=50
            )
            assert done.status == "completed", done.last_error

        # No word in common with the file that answers: found by meaning alone.
        for query, name in [
            ("where should I put my vehicle?", "parking.md"),
            ("what time does the boat go?", "ferry.md"),
            ("what goes into the batter?", "pancakes.md"),
        ]:
            found = client.vector_stores.search(store.id, query=query, max_num_results=1)
            assert [hit.file_id for hit in found.data] == [ids[name]], query
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.search("vs_missing", query="anything")
    [counts] = pgvector_server.admin(
        f"SELECT count(*), count({VECTOR_COLUMN}) FROM chunks", _database(url)
    )
    assert counts[0] == counts[1] >= 3


# -- without pgvector ----------------------------------------------------------------------


def test_without_pgvector_vectors_are_searched_in_memory(store: SqlStore, run: Runner) -> None:
    """The machine's PostgreSQL (no pgvector) and SQLite: the fallback, nothing in SQL."""

    async def check() -> bool:
        async with store.transaction() as tx:
            await tx.insert_chunks(_rows("vs_a", _topics(3)))
            assert len(await tx.chunk_vectors("vs_a", MODEL_ID, 0)) == 3
            with pytest.raises(RuntimeError):
                await tx.nearest_chunks(["vs_a"], MODEL_ID, _topics(1)[0].tobytes(), 5)
            return tx.supports_ann

    assert run(check()) is False
