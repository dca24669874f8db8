"""What a run that failed inside the service tells its user, on the real store.

An exception's text is for the service's operators, not its users: it can carry file paths,
SQL, other users' data. The run says that the service failed, in fixed words; the log says
what failed, under the run's id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, Protocol, TypeVar

import pytest

from tests.store.started_runs import PROJECT, claim_and_start
from threadline.domain.ids import IdKind, new_id
from threadline.engine.executor import INTERNAL_ERROR, RunExecutor
from threadline.providers.base import ChatChunk, ChatRequest
from threadline.service.objects import assistant_message
from threadline.store.base import Obj
from threadline.store.sql_store import SqlStore

OWNER = "worker-a"
T = TypeVar("T")
SECRET = "/srv/threadline/secrets.py line 7: password=hunter2"


class Runner(Protocol):
    """The `run` fixture: drives a coroutine to completion on the test's event loop."""

    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


class BrokenProvider:
    """A model client with a bug: its stream raises an exception of no known kind."""

    async def prepare(self, model: str) -> None:
        return None

    def count_tokens(self, model: str, text: str) -> int:
        return len(text) // 4 + 1

    def context_window(self, model: str) -> int:
        return 8192

    async def close(self) -> None:
        return None

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        raise RuntimeError(SECRET)
        yield ChatChunk()  # never reached: makes this an async generator, as providers are


async def _queued_run(store: SqlStore) -> None:
    thread = {"id": new_id(IdKind.THREAD), "object": "thread", "metadata": {}}
    run = {
        "id": new_id(IdKind.RUN),
        "object": "thread.run",
        "thread_id": thread["id"],
        "assistant_id": new_id(IdKind.ASSISTANT),
        "status": "queued",
        "expires_at": None,
        "model": "any",
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "temperature": None,
        "top_p": None,
        "response_format": "auto",
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
    }
    question = assistant_message(run, "hello") | {"role": "user", "run_id": None}
    async with store.transaction() as tx:
        await tx.insert_thread(PROJECT, thread, [question])
        await tx.insert_run(PROJECT, run)


def test_an_internal_error_shows_fixed_words_and_logs_the_exception(
    store: SqlStore, run: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> Obj | None:
        await _queued_run(store)
        started = await claim_and_start(store, OWNER, time.time() + 60)
        executor = RunExecutor(store, BrokenProvider(), OWNER, expiry_seconds=600)
        await executor.execute(started)
        async with store.transaction() as tx:
            return await tx.get_run_by_id(started["id"])

    with caplog.at_level(logging.ERROR, "threadline.engine.executor"):
        failed = run(scenario())

    assert failed is not None and failed["status"] == "failed"
    assert failed["last_error"] == {"code": "server_error", "message": INTERNAL_ERROR}
    [record] = caplog.records
    assert failed["id"] in record.getMessage()
    assert record.exc_info is not None and SECRET in str(record.exc_info[1])
