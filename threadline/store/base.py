"""The Store interface: operations named for what they mean to the domain.

Every operation runs inside a `StoreTx`, so a use case that touches several objects (a
run, its step, its message, its events) commits all of them or none. Records are passed as
the domain holds them (`domain/records.py`) and kept as JSON bodies; the store does not
interpret them beyond the columns it indexes.

An object is written whole once, when it is made. Every later change (`update_*`) writes
only the fields it changes and hands back the object as it then is, so a writer holding an
earlier copy (a worker finishing a run while its user sets the run's metadata) cannot undo
another's change.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from threadline.domain.agent_versions import Agent, AgentVersion
from threadline.domain.keys import ApiKey
from threadline.domain.records import (
    Assistant,
    FileBatch,
    FileRecord,
    Job,
    Message,
    Obj,
    Page,
    PageRequest,
    Run,
    RunEvent,
    RunStep,
    Thread,
    VectorStore,
    VectorStoreFile,
)
from threadline.store.signal import EventSignal


class FileStoreTx(Protocol):
    """Files, vector stores, their chunks and the jobs queue (`sql_files.py`)."""

    # -- files
    async def insert_file(self, project: str, file: FileRecord) -> None: ...
    async def get_file(self, project: str, file_id: str) -> FileRecord | None: ...
    async def get_files(self, project: str, file_ids: Sequence[str]) -> list[FileRecord]: ...
    async def page_files(
        self, project: str, page: PageRequest, purpose: str | None = None
    ) -> Page[FileRecord]: ...
    async def delete_file(self, project: str, file_id: str) -> FileRecord | None:
        """The file's row, its place in every vector store and its chunks; returns what was
        deleted (its blob is the caller's to remove, after the commit)."""
        ...

    # -- vector stores
    async def insert_vector_store(self, project: str, store: VectorStore) -> None: ...
    async def get_vector_store(self, project: str, store_id: str) -> VectorStore | None: ...
    async def get_vector_stores(
        self, project: str, store_ids: Sequence[str]
    ) -> list[VectorStore]: ...
    async def update_vector_store(
        self, project: str, store_id: str, changes: Obj
    ) -> VectorStore | None: ...
    async def delete_vector_store(self, project: str, store_id: str) -> bool: ...
    async def page_vector_stores(self, project: str, page: PageRequest) -> Page[VectorStore]: ...
    async def file_counts(self, store_id: str) -> tuple[dict[str, int], int]:
        """Files of the store by status, and the bytes its indexed files take."""
        ...

    async def batch_counts(self, batch_id: str) -> dict[str, int]: ...

    # -- a vector store's files
    async def insert_vector_store_file(self, file: VectorStoreFile) -> bool:
        """False when the file is in the store already (the pair is unique)."""
        ...

    async def get_vector_store_file(
        self, store_id: str, file_id: str
    ) -> VectorStoreFile | None: ...
    async def files_of_vector_stores(self, store_ids: Sequence[str]) -> list[VectorStoreFile]: ...
    async def vector_store_files_named(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[VectorStoreFile]:
        """The store files of these (vector store id, file id) pairs that exist."""
        ...

    async def update_vector_store_file(
        self, store_id: str, file_id: str, changes: Obj
    ) -> VectorStoreFile | None: ...
    async def delete_vector_store_file(self, store_id: str, file_id: str) -> bool: ...
    async def page_vector_store_files(
        self,
        store_id: str,
        page: PageRequest,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> Page[VectorStoreFile]: ...

    # -- batches
    async def insert_file_batch(self, batch: FileBatch) -> None: ...
    async def get_file_batch(self, store_id: str, batch_id: str) -> FileBatch | None: ...
    async def update_file_batch(
        self, store_id: str, batch_id: str, changes: Obj
    ) -> FileBatch | None: ...
    async def batch_files_in_progress(self, batch_id: str) -> list[str]: ...

    # -- chunks
    async def insert_chunks(self, rows: list[dict[str, Any]]) -> None:
        """Rows of `vector_store_id, file_id, chunk_index, text, embedding, embedding_model`."""
        ...

    async def delete_chunks(self, store_id: str, file_id: str) -> None: ...
    async def index_state(self, store_id: str) -> tuple[int, int]:
        """The store's chunk generation and its newest chunk's `seq`: a copy of its vectors
        holding both is current."""
        ...

    async def chunk_vectors(
        self, store_id: str, model: str, after_seq: int
    ) -> list[tuple[int, str, bytes]]: ...
    async def chunk_texts(self, seqs: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """By seq: the chunk's vector store, file and text."""
        ...

    async def text_search(
        self, store_ids: Sequence[str], words: Sequence[str], limit: int
    ) -> list[tuple[int, str]]:
        """The chunks that best match any of `words` (seq, file id), best first."""
        ...

    async def stores_with_other_embeddings(self, model: str) -> list[str]: ...
    async def chunks_with_other_embeddings(
        self, model: str, after_seq: int, limit: int
    ) -> list[tuple[int, str]]: ...
    async def set_embedding(self, seq: int, embedding: bytes, model: str) -> None: ...
    @property
    def supports_ann(self) -> bool:
        """Whether `nearest_chunks` searches the vectors inside the database (PostgreSQL with
        pgvector: the bundled model's on an HNSW index, another model's exactly). Otherwise
        a search loads them (`chunk_vectors`) and compares them in its own process."""
        ...

    async def nearest_chunks(
        self,
        store_ids: Sequence[str],
        model: str,
        query_vector: bytes,
        limit: int,
        allowed_file_ids: Collection[str] | None = None,
    ) -> list[tuple[float, int]]:
        """The `limit` chunks of the stores (of those files, if given) whose vectors of
        `model` are most like `query_vector` (float32 little-endian, unit length):
        (similarity, seq), best first. Only where `supports_ann`."""
        ...

    async def bump_index_generation(self, store_ids: Sequence[str]) -> None: ...

    # -- jobs
    async def insert_job(self, job_id: str, kind: str, body: Obj) -> None: ...
    async def claim_next_jobs(self, owner: str, lease_until: float, limit: int) -> list[Job]: ...
    async def renew_job_leases(
        self, owner: str, job_ids: list[str], lease_until: float
    ) -> None: ...
    async def finish_job(self, job_id: str, owner: str) -> bool:
        """Done: the job leaves the queue, if this owner still holds it."""
        ...

    async def hand_back_job(self, job_id: str, owner: str) -> None: ...
    async def free_lapsed_jobs(self, now: float | None) -> int:
        """Jobs whose worker's lease lapsed go back to the queue; `None` frees every job
        (a SQLite file at start, where the embedded worker is the only one)."""
        ...


class AgentStoreTx(Protocol):
    """Foundry's new agents and their versions (`sql_agents.py`), by agent name within a
    project and version number within an agent."""

    async def get_agent(self, project: str, name: str) -> Agent | None: ...
    async def lock_agent(self, project: str, name: str) -> Agent | None:
        """Read an agent and hold it until commit: its versions change under this lock."""
        ...

    async def page_agents(self, project: str, page: PageRequest) -> Page[Agent]: ...
    async def insert_agent_version(
        self, project: str, version: AgentVersion, agent: Agent | None = None
    ) -> None:
        """The version, and `agent` with it when it is the agent's first. Raises `Conflict`
        when its number is taken (another request's version of the same agent, at once)."""
        ...

    async def update_agent(self, project: str, name: str, changes: Obj) -> None: ...
    async def delete_agent(self, project: str, name: str) -> None:
        """The agent and every version of it."""
        ...

    async def get_agent_version(
        self, project: str, name: str, number: int
    ) -> AgentVersion | None: ...
    async def delete_agent_version(self, project: str, name: str, number: int) -> bool: ...
    async def newest_agent_version(self, project: str, name: str) -> AgentVersion | None: ...
    async def page_agent_versions(
        self, project: str, name: str, page: PageRequest
    ) -> Page[AgentVersion]: ...


class StoreTx(FileStoreTx, AgentStoreTx, Protocol):
    """One transaction. Nothing is visible to others until the context manager exits."""

    # assistants
    async def insert_assistant(self, project: str, assistant: Assistant) -> None: ...
    async def get_assistant(self, project: str, assistant_id: str) -> Assistant | None: ...
    async def update_assistant(
        self, project: str, assistant_id: str, changes: Obj
    ) -> Assistant | None: ...
    async def delete_assistant(self, project: str, assistant_id: str) -> bool: ...
    async def page_assistants(self, project: str, page: PageRequest) -> Page[Assistant]: ...

    # threads
    async def insert_thread(
        self, project: str, thread: Thread, first_messages: Sequence[Message] = ()
    ) -> None:
        """The thread, and the messages it starts with (`first_messages`, in order): its row
        is written with their count, with no update after."""
        ...

    async def get_thread(self, project: str, thread_id: str) -> Thread | None: ...
    async def page_threads(self, project: str, page: PageRequest) -> Page[Thread]: ...
    async def lock_thread(self, project: str, thread_id: str) -> Thread | None:
        """Read a thread and hold it until commit, so checks on its runs cannot race."""
        ...

    async def update_thread(self, project: str, thread_id: str, changes: Obj) -> Thread | None:
        """Set these top-level fields; the thread as it now is, None if there is none."""
        ...

    async def delete_thread(self, project: str, thread_id: str) -> bool: ...

    # messages
    async def insert_messages(self, thread_id: str, messages: list[Message]) -> None: ...
    async def get_message(self, thread_id: str, message_id: str) -> Message | None: ...
    async def update_message(
        self, thread_id: str, message_id: str, changes: Obj
    ) -> Message | None: ...
    async def delete_message(self, thread_id: str, message_id: str) -> bool: ...
    async def page_messages(
        self, thread_id: str, page: PageRequest, run_id: str | None = None, items: bool = False
    ) -> Page[Message]:
        """The thread's messages; with `items`, its other items too (function calls and
        their outputs), in order among them."""
        ...

    async def newest_messages(
        self, thread_id: str, limit: int, before_seq: int | None = None
    ) -> list[tuple[int, Message]]:
        """Newest first, with their sequence numbers, for windowed context building."""
        ...

    async def count_messages(self, thread_id: str) -> int: ...

    # runs
    async def insert_run(self, project: str, run: Run) -> None:
        """Raises `Conflict` when the thread already has an active run."""
        ...

    async def get_run(self, thread_id: str, run_id: str) -> Run | None: ...
    async def get_run_by_id(self, run_id: str) -> Run | None: ...
    async def project_of_run(self, run_id: str) -> str | None:
        """The project a run was made in (what a run's tools may reach)."""
        ...

    async def active_run(self, thread_id: str) -> Run | None: ...
    async def update_run(
        self,
        run_id: str,
        changes: Obj,
        *,
        expected_status: str | None = None,
        lease_owner: str | None = None,
    ) -> Run | None:
        """Set these top-level fields; with `expected_status`, only if the stored status
        still is that; with `lease_owner`, only if that worker still holds the run's lease.
        The run as it now is, or None when it was not written. A run moved out of the active
        statuses or to `requires_action` is released by its worker."""
        ...

    async def hold_run(self, run_id: str) -> None:
        """Hold the run's row until commit: a transaction that writes a run's step or message
        and then the run takes the run first, as every writer does, so none waits on another
        in the opposite order."""
        ...

    async def holds_lease(self, run_id: str, owner: str) -> bool:
        """Whether `owner` holds the run's lease, which then stays its until this commits."""
        ...

    async def delete_run(self, run_id: str) -> bool:
        """Delete a run with its steps and events; its messages stay. False if none."""
        ...

    async def page_runs(self, thread_id: str, page: PageRequest) -> Page[Run]: ...
    async def claim_next_runs(self, owner: str, lease_until: float, limit: int) -> list[Run]:
        """Lease up to `limit` queued runs nobody holds, oldest first."""
        ...

    async def renew_leases(self, owner: str, run_ids: list[str], lease_until: float) -> None: ...
    async def release_run(self, run_id: str, owner: str) -> None:
        """Give up `owner`'s lease, unless the run is still in progress or cancelling: then
        the lease lapses and the sweeper hands the run to another worker."""
        ...

    async def runs_with_lapsed_lease(self, now: float, limit: int) -> list[Run]: ...
    async def runs_past_expiry(self, now: int, limit: int) -> list[Run]: ...
    async def runs_in_status(self, run_ids: list[str], status: str) -> list[str]: ...

    # run steps
    async def insert_step(self, step: RunStep) -> None: ...
    async def update_step(self, run_id: str, step_id: str, changes: Obj) -> RunStep | None: ...
    async def delete_step(self, step_id: str) -> None: ...
    async def get_step(self, run_id: str, step_id: str) -> RunStep | None: ...
    async def steps_of_run(self, run_id: str) -> list[RunStep]: ...
    async def page_steps(self, run_id: str, page: PageRequest) -> Page[RunStep]: ...

    # the event log
    async def append_events(self, run_id: str, thread_id: str, events: list[RunEvent]) -> int:
        """Append in order; returns the sequence number of the last one."""
        ...

    async def withdraw_events(self, run_id: str, object_ids: list[str]) -> None:
        """Remove the events that carried these objects (an abandoned attempt's work)."""
        ...

    async def prune_events(self, older_than: float, limit: int) -> int:
        """Drop up to `limit` events older than that time (epoch seconds) of runs that are no
        longer active; returns how many went."""
        ...

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]: ...
    async def last_event_seq(self, run_id: str) -> int:
        """The sequence number of the run's newest event; 0 when it has none."""
        ...

    # API keys
    async def insert_api_key(self, key: ApiKey) -> None: ...
    async def api_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Oldest first; only the keys in force unless `include_revoked`."""
        ...

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        """False when no key in force has that id."""
        ...


class Store(Protocol):
    signal: EventSignal

    def transaction(
        self, *, durable: bool = True, reserved: bool = False
    ) -> AbstractAsyncContextManager[StoreTx]:
        """One transaction. `durable=False` is for the engine's own progress, which no client
        is waiting to have acknowledged: it survives a killed process but not a power cut
        (a run cut off that way is redone from its last durable state). `reserved` runs it
        on a connection kept for it alone (lease renewal), never queued for the pool behind
        others (SQLite has one connection, on which no transaction waits long)."""
        ...

    async def migrate(self) -> None: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    @property
    def supports_many_workers(self) -> bool: ...
