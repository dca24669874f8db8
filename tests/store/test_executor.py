"""The executor on the real store, both backends: what a failed run tells its user, and a
turn done again after its worker died.

An exception's text is for the service's operators, not its users: it can carry file paths,
SQL, other users' data. The run says that the service failed, in fixed words; the log says
what failed, under the run's id.

A turn a dead worker had begun is withdrawn and done again under the same ids, so that the
run's log tells one story of one message to whoever follows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, Protocol, TypeVar

import pytest
from support.scripted_model import Reply, ScriptedModelServer

from tests.store.started_runs import PROJECT, claim_and_start
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import Obj, PageRequest, RunEvent
from threadline.domain.run_states import RunStatus
from threadline.engine.executor import INTERNAL_ERROR, RunExecutor
from threadline.engine.recorder import TurnRecorder
from threadline.providers.base import ChatChunk, ChatRequest
from threadline.providers.openai_compat import OpenAICompatibleProvider
from threadline.service.objects import assistant_message
from threadline.service.run_status import change_status
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


async def _queued_run(store: SqlStore, model: str = "any") -> None:
    thread = {"id": new_id(IdKind.THREAD), "metadata": {}}
    run = {
        "id": new_id(IdKind.RUN),
        "thread_id": thread["id"],
        "assistant_id": new_id(IdKind.ASSISTANT),
        "status": "queued",
        "expires_at": None,
        "model": model,
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
        "reasoning_effort": None,
        "pending_tool_calls": None,
        "last_error": None,
        "tool_resources": {},
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


def test_a_turn_done_again_after_its_worker_died_keeps_the_withdrawn_ids(
    store: SqlStore, run: Runner, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Hello again, whole."))

    async def scenario() -> tuple[TurnRecorder, Obj, list[Obj], list[Obj], list[RunEvent]]:
        await _queued_run(store, model_name)
        # Worker A streams a first piece, then dies: its lease (to epoch second 100) lapses.
        begun = await claim_and_start(store, OWNER, 100.0)
        dead = TurnRecorder(store, begun, OWNER)
        await dead.add_text("Hel")
        # The sweeper hands the run back; worker B takes it and carries it.
        async with store.transaction() as tx:
            (lapsed,) = await tx.runs_with_lapsed_lease(1_000.0, 10)
            await change_status(tx, lapsed, RunStatus.QUEUED)
        taken = await claim_and_start(store, "worker-b", time.time() + 60)
        provider = OpenAICompatibleProvider(scripted_model.base_url, None, max_retries=0)
        try:
            await RunExecutor(store, provider, "worker-b", expiry_seconds=600).execute(taken)
        finally:
            await provider.close()
        async with store.transaction() as tx:
            done = await tx.get_run_by_id(taken["id"])
            page = await tx.page_messages(taken["thread_id"], PageRequest(100), taken["id"])
            steps = await tx.steps_of_run(taken["id"])
            events = await tx.events_after(taken["id"], 0, 1000)
        assert done is not None
        return dead, done, page.data, steps, events

    dead, done, messages, steps, events = run(scenario())

    assert done["status"] == "completed"
    assert dead.message is not None and dead.message_step is not None
    [message] = messages
    assert message["id"] == dead.message["id"]
    assert message["content"][0]["text"] == "Hello again, whole."
    assert [s["id"] for s in steps] == [dead.message_step["id"]]
    names = [e.event for e in events]
    assert names.count("thread.message.created") == 1
    assert names.count("thread.run.step.created") == 1
    deltas = [e.data["content"][0]["text"] for e in events if e.event == "thread.message.delta"]
    assert "".join(deltas) == "Hello again, whole."
