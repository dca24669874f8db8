"""4. A big thread: reading its newest messages, and building a run's context from it.

The 100,000 messages are written straight through the store (`SqlStore.transaction()` and
`insert_messages`, in batches) before the server starts, since adding them one request at a
time would take the whole time budget; the reads are then measured over HTTP. Context
building is measured by calling `threadline.engine.context.build_context` against the store,
with the budget the executor gives a run.
"""

from __future__ import annotations

import time
from typing import cast

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    at_most,
    expect,
    http_client,
    ms,
    p50,
    p95,
)
from bench.harness import Bench
from threadline.domain.records import Run
from threadline.engine.context import BATCH as CONTEXT_BATCH
from threadline.engine.context import DEFAULT_COMPLETION_RESERVE, build_context
from threadline.providers.base import ModelProvider
from threadline.service.objects import user_message
from threadline.service.requests import MessageCreate, ThreadCreate
from threadline.service.threads import insert_thread
from threadline.store.sql_store import SqlStore

RATIO_TARGET = 1.5
CONTEXT_TARGET_MS = 20.0
SMALL_THREAD = 10
BATCH = 5_000
SENTENCE = (
    "the report shows that our numbers for the last quarter were better than expected and"
    " we should plan the next steps with the team before the review on"
)


def _text(index: int) -> str:
    """A message of about 200 characters, different for each index."""
    vocabulary = SENTENCE.split()
    start = index % len(vocabulary)
    words = [vocabulary[(start + k) % len(vocabulary)] for k in range(34)]
    return f"Message {index}: " + " ".join(words) + "."


async def _fill(store: SqlStore, thread_id: str, count: int) -> None:
    for first in range(0, count, BATCH):
        batch = [
            user_message(
                thread_id,
                MessageCreate(role="user" if index % 2 == 0 else "assistant", content=_text(index)),
            )
            for index in range(first, min(first + BATCH, count))
        ]
        async with store.transaction() as tx:
            await tx.insert_messages(thread_id, batch)


def _run(thread_id: str) -> Run:
    """What `build_context` reads of a run."""
    return cast(
        Run,
        {
            "id": "run_bench",
            "model": "bench-model",
            "instructions": "You are a helpful assistant.",
            "thread_id": thread_id,
            "truncation_strategy": {"type": "auto", "last_messages": None},
        },
    )


async def _context_times(
    store: SqlStore, provider: ModelProvider, thread_id: str, repeats: int
) -> tuple[list[float], float, int, int]:
    """Wall times of building a run's context (transaction included), after the first; the
    first's; how many thread messages it took in (besides the system prompt), and its
    tokens."""
    window = provider.context_window("bench-model")
    budget = window - min(DEFAULT_COMPLETION_RESERVE, window // 4)
    times: list[float] = []
    messages = tokens = 0
    for _ in range(repeats + 1):
        started = time.perf_counter()
        async with store.transaction() as tx:
            context = await build_context(tx, provider, _run(thread_id), [], budget)
        times.append(time.perf_counter() - started)
        messages, tokens = len(context.messages) - 1, context.prompt_tokens
    return times[1:], times[0], messages, tokens


async def measure(bench: Bench) -> Section:
    size = bench.size
    count = size.big_thread_messages
    section = Section("big_thread", "4. Big thread")
    section.method = [
        f"A thread of {count:,} messages (alternating user/assistant, about 200 characters each)"
        f" and one of {SMALL_THREAD}, in one SQLite database, written through the store before"
        " the server starts.",
        "Newest 20: `GET /v1/threads/{id}/messages?limit=20` (newest first), alternating between"
        f" the two threads, {size.big_thread_reads} reads each after {size.warmup} warm-up reads;"
        " ratio = p50 on the big thread ÷ p50 on the small one.",
        "Context building: `build_context` for a run with default truncation (`auto`), the budget"
        " the executor computes (context window - completion reserve), in a store transaction,"
        f" {size.context_repeats} times after one warm-up, with the OpenAI-compatible provider"
        " (128,000-token window, estimated token counts), as the other figures use; and with the"
        " embedded local model's provider (8,192-token window, its exact tokenizer, whose"
        " counts it keeps: its first build tokenizes every message, the ones after it none).",
    ]
    path = bench.sqlite_path("big-thread")
    url = f"sqlite:///{path}"
    store = SqlStore(url)
    await store.open()
    try:
        async with store.transaction() as tx:
            big = (await insert_thread(tx, "default", ThreadCreate()))["id"]
            small = (await insert_thread(tx, "default", ThreadCreate()))["id"]
        filled = time.perf_counter()
        await _fill(store, big, count)
        await _fill(store, small, SMALL_THREAD)
        section.notes.append(
            f"Writing the {count:,} messages through the store took"
            f" {time.perf_counter() - filled:.1f} s."
        )
        from threadline.providers.openai_compat import OpenAICompatibleProvider

        upstream = OpenAICompatibleProvider("http://127.0.0.1:9/v1", None)
        try:
            big_ctx, _, big_msgs, big_tokens = await _context_times(
                store, upstream, big, size.context_repeats
            )
            small_ctx, *_ = await _context_times(store, upstream, small, size.context_repeats)
        finally:
            await upstream.close()
        from threadline.providers.local_llama import LocalLlamaProvider

        local = LocalLlamaProvider()
        try:
            await local.prepare("bench-model")
            local_ctx, local_first, local_msgs, local_tokens = await _context_times(
                store, local, big, size.context_repeats
            )
        finally:
            await local.close()
    finally:
        await store.close()

    with ThreadlineServer(url, bench.workdir, model_url=bench.model.base_url) as server:
        async with http_client(server.url) as client:
            reads: dict[str, list[float]] = {big: [], small: []}
            for index in range(size.warmup + size.big_thread_reads):
                for thread_id in (big, small):
                    started = time.perf_counter()
                    page = expect(
                        await client.get(f"/v1/threads/{thread_id}/messages", params={"limit": 20}),
                        "list messages",
                    )
                    elapsed = time.perf_counter() - started
                    if len(page["data"]) != min(20, count if thread_id == big else SMALL_THREAD):
                        raise RuntimeError(f"wrong page size: {len(page['data'])}")
                    if index >= size.warmup:
                        reads[thread_id].append(elapsed)
    ratio = p50(reads[big]) / p50(reads[small])
    section.add(
        Figure(
            f"Newest 20 of {count:,} messages, p50",
            ms(p50(reads[big])),
            "ms",
            floor=f"{ms(p50(reads[small])):.2f} ms (of {SMALL_THREAD} messages)",
            digits=2,
        )
    )
    section.add(
        Figure(
            f"Newest 20 of {count:,} messages, p95",
            ms(p95(reads[big])),
            "ms",
            floor=f"{ms(p95(reads[small])):.2f} ms (of {SMALL_THREAD} messages)",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Big-thread read ratio (p50 ÷ p50)",
            ratio,
            "x",
            floor="1.00 x",
            target=f"≤ {RATIO_TARGET}",
            ok=at_most(ratio, RATIO_TARGET),
            digits=2,
        )
    )
    value = ms(p50(big_ctx))
    context = section.add(
        Figure(
            f"Context building on the big thread, p50 ({big_msgs:,} messages, {big_tokens:,}"
            " tokens)",
            value,
            "ms",
            floor=f"{ms(p50(small_ctx)):.2f} ms (the {SMALL_THREAD}-message thread)",
            target=f"≤ {CONTEXT_TARGET_MS:g} ms",
            ok=at_most(value, CONTEXT_TARGET_MS),
            digits=2,
        )
    )
    section.add(Figure("Context building on the big thread, p95", ms(p95(big_ctx)), "ms", digits=2))
    section.add(
        Figure(
            f"Context building on the big thread, local model provider, first build ({local_msgs:,}"
            f" messages, {local_tokens:,} tokens)",
            ms(local_first),
            "ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Context building on the big thread, local model provider, builds after it, p50"
            " (the token counts of the first kept)",
            ms(p50(local_ctx)),
            "ms",
            digits=2,
        )
    )
    if context.ok is False:
        section.notes.append(
            f"Target missed. The window holds {big_msgs:,} thread messages (the default"
            " 128,000-token window of an OpenAI-compatible upstream, about 70 tokens each),"
            f" read newest first {CONTEXT_BATCH} at a time: about {-(-big_msgs // CONTEXT_BATCH)}"
            " queries, each row's JSON body decoded and converted. The profile is in the issue"
            " note."
        )
    return section
