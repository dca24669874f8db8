"""13. The code interpreter: a sandbox's start, a call on a warm one, and 20 threads at once.

(a) Cold start: a sandbox started as the worker starts one (bubblewrap, its namespaces and
mounts, the kernel's Python), from the call to its first answer, one after another in this
process; beside it, the first `print(1)` of each.

(b) A call on a warm sandbox, through the service, paired as section 11 pairs tool rounds:
on a thread whose sandbox is already up, a run whose model calls the code interpreter once
with `print(1)` is set against a run with no call, started just before or after it; each
run's model time, stamped by the model server, is taken out of its wall time, so the
difference is what the call adds on the service's side (the tool-call step written durably,
the call to the sandbox, its outputs recorded, the second model call's client side). The
floor: `print(1)` sent to a warm sandbox straight, in this process.

(c) 20 threads computing at once: 20 runs on 20 threads, started together, each calling the
code interpreter once with a loop of about a second of CPU, on a worker with its default of
8 live sandboxes: how long all took, and the first and last to finish (none starved: each
waits its turn, first come first served).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    arrival,
    at_most,
    expect,
    http_client,
    ms,
    p50,
    p95,
)
from bench.harness import Bench
from bench.model_server import ModelRecord, tools_model
from bench.overhead import streamed_run
from threadline.config import Settings
from threadline.tools.code_interpreter.availability import launcher_of
from threadline.tools.code_interpreter.sandbox import Launcher, Sandbox

WARM_TARGET_MS = 30.0
COLD_TARGET_MS = 1000.0
BUSY = "sum(i * i for i in range(4_000_000))"


async def _cold_starts(launcher: Launcher, count: int) -> tuple[list[float], list[float]]:
    starts, firsts = [], []
    for _ in range(count):
        started = time.perf_counter()
        sandbox = await Sandbox.start(launcher)
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        await sandbox.run("print(1)")
        firsts.append(time.perf_counter() - started)
        await sandbox.close()
    return starts, firsts


async def _warm_calls(launcher: Launcher, count: int) -> list[float]:
    sandbox = await Sandbox.start(launcher)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await sandbox.run("print(1)")
            times.append(time.perf_counter() - started)
    finally:
        await sandbox.close()
    return times


async def _say(client: httpx.AsyncClient, thread_id: str, text: str) -> None:
    expect(
        await client.post(
            f"/v1/threads/{thread_id}/messages", json={"role": "user", "content": text}
        ),
        "add message",
    )


async def _run(client: httpx.AsyncClient, thread_id: str, assistant: str, model: str) -> float:
    started, events = await streamed_run(
        client, thread_id, {"assistant_id": assistant, "model": model}
    )
    return arrival(events, "thread.run.completed") - started


def _model_seconds(records: list[ModelRecord], count: int, model: str) -> float:
    if len(records) != count:
        raise RuntimeError(f"{model}: the model server saw {len(records)} calls, not {count}")
    return sum(record.seconds for record in records)


async def _paired_calls(bench: Bench, client: httpx.AsyncClient, assistant: str) -> list[float]:
    size = bench.size
    prefix = f"ci-{time.time_ns()}-"
    thread = expect(await client.post("/v1/threads", json={}), "create thread")["id"]
    await _say(client, thread, "print(1)")
    await _run(client, thread, assistant, tools_model(1, f"{prefix}start"))  # the cold start
    added = []
    for index in range(size.warmup + size.code_call_pairs):
        walls: dict[int, tuple[float, str]] = {}
        for rounds in (0, 1) if index % 2 == 0 else (1, 0):
            await _say(client, thread, "print(1)")
            model = tools_model(rounds, f"{prefix}{index}")
            walls[rounds] = (await _run(client, thread, assistant, model), model)
        if index < size.warmup:
            continue
        (wall_0, model_0), (wall_1, model_1) = walls[0], walls[1]
        model_time_0 = _model_seconds(bench.model.records(model_0), 1, model_0)
        model_time_1 = _model_seconds(bench.model.records(model_1), 2, model_1)
        added.append((wall_1 - model_time_1) - (wall_0 - model_time_0))
    return added


async def _at_once(
    client: httpx.AsyncClient, assistant: str, count: int
) -> tuple[float, list[float]]:
    prefix = f"ci-busy-{time.time_ns()}-"
    threads = []
    for _ in range(count):
        created = await client.post(
            "/v1/threads", json={"messages": [{"role": "user", "content": BUSY}]}
        )
        threads.append(expect(created, "create thread")["id"])
    started = time.perf_counter()

    async def one(index: int, thread: str) -> float:
        await _run(client, thread, assistant, tools_model(1, f"{prefix}{index}"))
        return time.perf_counter() - started

    done = await asyncio.gather(*(one(i, thread) for i, thread in enumerate(threads)))
    wall = time.perf_counter() - started
    for thread in threads:
        await _check_answers(client, thread)
    return wall, sorted(done)


async def _check_answers(client: httpx.AsyncClient, thread_id: str) -> None:
    """The last run's step holds the code's output: the call ran, it did not fail."""
    runs = expect(await client.get(f"/v1/threads/{thread_id}/runs?limit=1"), "list runs")
    run_id = runs["data"][0]["id"]
    steps = expect(
        await client.get(f"/v1/threads/{thread_id}/runs/{run_id}/steps?order=asc"), "steps"
    )
    call: dict[str, Any] = steps["data"][0]["step_details"]["tool_calls"][0]
    logs = call["code_interpreter"]["outputs"][0]["logs"]
    if "Error" in logs or "killed" in logs:
        raise RuntimeError(f"the code did not run: {logs[:300]}")


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("code_interpreter", "13. The code interpreter")
    section.method = [" ".join(part.split()) for part in (__doc__ or "").split("\n\n")[1:]]
    launcher = launcher_of(Settings())
    if launcher is None:
        raise RuntimeError("no sandbox can be started here: bwrap was not found")
    if launcher.font_cache is not None:
        launcher.font_cache.wait()
    starts, firsts = await _cold_starts(launcher, size.code_cold_starts)
    warm = await _warm_calls(launcher, size.warmup + size.code_call_pairs)
    warm = warm[size.warmup :]
    with ThreadlineServer(
        bench.sqlite_url("code"), bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with http_client(server.url) as client:
            assistant = expect(
                await client.post(
                    "/v1/assistants",
                    json={"model": "ci-assistant", "tools": [{"type": "code_interpreter"}]},
                ),
                "create assistant",
            )["id"]
            added = await _paired_calls(bench, client, assistant)
            wall, finished = await _at_once(client, assistant, size.code_threads_at_once)
    cold = ms(p50(starts))
    section.add(
        Figure(
            "A fresh sandbox's start (to its first answer), p50",
            cold,
            "ms",
            target=f"≤ {COLD_TARGET_MS:g} ms",
            ok=at_most(cold, COLD_TARGET_MS),
        )
    )
    section.add(Figure("A fresh sandbox's start, p95", ms(p95(starts)), "ms"))
    section.add(Figure("Its first `print(1)`, p50", ms(p50(firsts)), "ms", digits=2))
    value = ms(p50(added))
    floor = f"{ms(p50(warm)):.2f} ms (`print(1)` sent to a warm sandbox straight)"
    section.add(
        Figure(
            "A call on a warm sandbox: service overhead (paired), p50",
            value,
            "ms",
            floor=floor,
            target=f"≤ {WARM_TARGET_MS:g} ms",
            ok=at_most(value, WARM_TARGET_MS),
            digits=2,
        )
    )
    section.add(
        Figure(
            "A call on a warm sandbox: service overhead (paired), p95",
            ms(p95(added)),
            "ms",
            floor=f"{ms(p95(warm)):.2f} ms",
            digits=2,
        )
    )
    count = size.code_threads_at_once
    section.add(
        Figure(
            f"{count} threads computing at once: all done in",
            wall,
            "s",
            target=f"all {count} complete",
            ok=len(finished) == count,
            digits=2,
        )
    )
    section.add(Figure("… the first to finish", finished[0], "s", digits=2))
    section.add(Figure("… the last to finish", finished[-1], "s", digits=2))
    return section
