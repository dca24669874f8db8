"""What every measurement shares: sizes, statistics, result rows and child processes."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
START_TIMEOUT = 60.0
# Every server the harness starts gets these; the measurements add their own.
SERVER_ENV = {
    # Polling clients (ours and the SDKs' `create_and_poll`) wait this long between polls.
    "THREADLINE_POLL_AFTER_MS": "5",
    "THREADLINE_SHUTDOWN_GRACE_SECONDS": "1",
}


def use_test_support() -> None:
    """Make `tests/support` importable as `support`, as the test suite's conftest does."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


use_test_support()
from support.server import free_port as free_port  # noqa: E402
from support.server import stop_gracefully  # noqa: E402

# -- sizes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    name: str
    warmup: int
    turns_sequential: int
    turns_concurrent: int
    concurrency: int
    overhead_runs: int
    append_messages: int
    append_rounds: int
    big_thread_messages: int
    big_thread_reads: int
    context_repeats: int
    many_runs: int
    many_runs_model_seconds: float
    many_runs_bursts: int
    local_samples: int
    local_tokens: int
    stream_sequential: int
    stream_concurrent: int
    stream_concurrent_delay: float
    worker_turns: int
    tool_round_pairs: int
    tool_concurrent_runs: int
    tool_rounds_per_run: int
    file_pdf_pages: int
    file_search_chunks_small: int
    file_search_chunks_large: int
    file_searches: int
    file_search_pairs: int
    code_cold_starts: int
    code_call_pairs: int
    code_threads_at_once: int
    resume_chunks: int
    resume_reads: int


SIZES = {
    "tiny": Size(
        name="tiny",
        warmup=2,
        turns_sequential=5,
        turns_concurrent=16,
        concurrency=4,
        overhead_runs=5,
        append_messages=10,
        append_rounds=2,
        big_thread_messages=1_000,
        big_thread_reads=5,
        context_repeats=3,
        many_runs=20,
        many_runs_model_seconds=0.2,
        many_runs_bursts=1,
        local_samples=1,
        local_tokens=16,
        stream_sequential=3,
        stream_concurrent=10,
        stream_concurrent_delay=0.2,
        worker_turns=8,
        tool_round_pairs=5,
        tool_concurrent_runs=10,
        tool_rounds_per_run=5,
        file_pdf_pages=3,
        file_search_chunks_small=1_000,
        file_search_chunks_large=5_000,
        file_searches=10,
        file_search_pairs=5,
        code_cold_starts=3,
        code_call_pairs=5,
        code_threads_at_once=4,
        resume_chunks=50,
        resume_reads=5,
    ),
    "full": Size(
        name="full",
        warmup=30,
        turns_sequential=300,
        turns_concurrent=400,
        concurrency=16,
        overhead_runs=300,
        append_messages=400,
        append_rounds=4,
        big_thread_messages=100_000,
        big_thread_reads=300,
        context_repeats=50,
        many_runs=1_000,
        many_runs_model_seconds=2.0,
        many_runs_bursts=3,
        local_samples=40,
        local_tokens=64,
        stream_sequential=200,
        stream_concurrent=200,
        stream_concurrent_delay=1.0,
        worker_turns=300,
        tool_round_pairs=300,
        tool_concurrent_runs=200,
        tool_rounds_per_run=5,
        file_pdf_pages=60,
        file_search_chunks_small=10_000,
        file_search_chunks_large=100_000,
        file_searches=200,
        file_search_pairs=200,
        code_cold_starts=30,
        code_call_pairs=100,
        code_threads_at_once=20,
        resume_chunks=400,
        resume_reads=100,
    ),
}


# -- statistics ------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def p50(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def p95(values: Sequence[float]) -> float:
    return quantile(values, 0.95)


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- results ---------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured number, with the floor it is read against and the issue's target.

    `ok` is None when the issue sets no target for the figure.
    """

    label: str
    value: float | None
    unit: str
    floor: str = "—"
    target: str = "—"
    ok: bool | None = None
    digits: int = 1

    def shown(self) -> str:
        if self.value is None or math.isnan(self.value):
            return "n/a"
        return f"{self.value:,.{self.digits}f} {self.unit}".strip()

    def verdict(self) -> str:
        return {None: "", True: "met", False: "**missed**"}[self.ok]


@dataclass
class Section:
    name: str
    title: str
    method: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "seconds": self.seconds,
            "error": self.error,
            "notes": self.notes,
            "figures": [
                {
                    "label": f.label,
                    "value": f.value,
                    "unit": f.unit,
                    "floor": f.floor,
                    "target": f.target,
                    "ok": f.ok,
                }
                for f in self.figures
            ],
        }


def at_most(value: float, limit: float) -> bool:
    return not math.isnan(value) and value <= limit


def at_least(value: float, limit: float) -> bool:
    return not math.isnan(value) and value >= limit


# -- processes -------------------------------------------------------------------------------


def _proc_status(pid: int, key: str) -> int | None:
    """A `/proc/<pid>/status` size line (VmRSS, VmHWM), in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int, tid: int | None = None) -> float | None:
    """User + system CPU time so far of a process (or of one of its threads), from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Child:
    """A child process the harness started; stopped (SIGTERM, then SIGKILL) by its own pid."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, name: str):
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def spawn(self, stdout: int | None = None) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=stdout if stdout is not None else log,
                stderr=log,
            )
        return self.process

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def peak_rss_mb(self) -> float | None:
        kb = _proc_status(self.pid, "VmHWM")
        return None if kb is None else kb / 1024

    def rss_mb(self) -> float | None:
        kb = _proc_status(self.pid, "VmRSS")
        return None if kb is None else kb / 1024

    def cpu_seconds(self) -> float:
        """CPU time the whole process has used so far (every thread, user + system)."""
        return _cpu_seconds(self.pid) or 0.0

    def main_thread_cpu_seconds(self) -> float:
        """CPU time of the process's main thread, which runs the event loop, to the
        nanosecond (`schedstat`; `stat` counts in 10 ms ticks, too coarse for one run)."""
        try:
            runtime = int(
                Path(f"/proc/{self.pid}/task/{self.pid}/schedstat").read_text().split()[0]
            )
        except OSError:
            runtime = 0
        if runtime == 0:  # a kernel that keeps no scheduler statistics
            return _cpu_seconds(self.pid, self.pid) or 0.0
        return runtime / 1e9

    def stop(self) -> None:
        if self.process is not None:
            stop_gracefully(self.process)
        self.process = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def wait_healthy(child: Child, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not start: {child.log_tail()}")


def clean_environment() -> dict[str, str]:
    """This process's environment without any THREADLINE_ setting the user may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}


class ThreadlineServer(Child):
    """`threadline serve` on a free loopback port, logging warnings only."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        model_url: str | None,
        env: dict[str, str] | None = None,
        no_worker: bool = False,
        name: str = "server",
    ):
        self.port = free_port()
        settings = {**clean_environment(), **SERVER_ENV, **(env or {})}
        settings["THREADLINE_DATABASE_URL"] = database_url
        if model_url is not None:
            settings["THREADLINE_OPENAI_BASE_URL"] = model_url
        argv = [sys.executable, "-m", "threadline.cli", "serve", "--port", str(self.port)]
        argv += ["--log-level", "warning"]
        if no_worker:
            argv.append("--no-worker")
        super().__init__(argv, settings, workdir / f"{name}-{self.port}.log", name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.spawn()
        wait_healthy(self, f"{self.url}/health")
        return self

    def __enter__(self) -> Self:
        return self.start()


class ThreadlineWorker(Child):
    """`threadline worker` (PostgreSQL only)."""

    def __init__(self, database_url: str, workdir: Path, *, model_url: str, index: int):
        settings = {**clean_environment(), **SERVER_ENV}
        settings["THREADLINE_DATABASE_URL"] = database_url
        settings["THREADLINE_OPENAI_BASE_URL"] = model_url
        argv = [sys.executable, "-m", "threadline.cli", "worker", "--log-level", "warning"]
        super().__init__(argv, settings, workdir / f"worker-{index}.log", f"worker {index}")

    def __enter__(self) -> Self:
        self.spawn()
        return self


# -- HTTP ------------------------------------------------------------------------------------


def http_client(base_url: str, connections: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(120.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def expect(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class SseEvent:
    received: float  # perf_counter() when the event's last byte arrived
    event: str
    data: str

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


async def read_sse(response: httpx.Response) -> list[SseEvent]:
    """All events of a streamed response, each stamped when it arrived."""
    events: list[SseEvent] = []
    buffer = b""
    async for chunk in response.aiter_bytes():
        received = time.perf_counter()
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            name, data = "message", []
            for line in frame.decode().splitlines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
            if data:
                events.append(SseEvent(received, name, "\n".join(data)))
    return events


def delta_text(event: SseEvent) -> str:
    """The text of a `thread.message.delta` event."""
    parts = event.json()["delta"]["content"]
    return "".join(part["text"]["value"] for part in parts if part["type"] == "text")


async def create_assistant(
    client: httpx.AsyncClient, model: str, instructions: str = "You are a benchmark."
) -> str:
    body = {"model": model, "name": "bench", "instructions": instructions}
    return str(expect(await client.post("/v1/assistants", json=body), "create assistant")["id"])


TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


async def poll_run(client: httpx.AsyncClient, thread_id: str, run: dict[str, Any]) -> int:
    """Poll as the SDKs' `create_and_poll` do (waiting `openai-poll-after-ms` between polls)
    until the run ends; returns how many polls it took. A run that does not complete raises."""
    polls = 0
    while run["status"] not in TERMINAL:
        response = await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")
        polls += 1
        run = expect(response, "get run")
        if run["status"] in TERMINAL:
            break
        wait_ms = int(response.headers.get("openai-poll-after-ms", "1000"))
        await asyncio.sleep(wait_ms / 1000)
    if run["status"] != "completed":
        raise RuntimeError(f"run {run['id']} ended {run['status']}: {run.get('last_error')}")
    return polls


async def turn(client: httpx.AsyncClient, assistant_id: str, text: str = "hi") -> float:
    """One conversational turn as a user's code does it; returns its wall time (s).

    Create a thread, add a message, start a run, poll it to completion, read the reply.
    """
    started = time.perf_counter()
    thread = expect(await client.post("/v1/threads", json={}), "create thread")
    thread_id = thread["id"]
    message = {"role": "user", "content": text}
    expect(await client.post(f"/v1/threads/{thread_id}/messages", json=message), "add message")
    run = expect(
        await client.post(f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id}),
        "create run",
    )
    await _polled_reply(client, thread_id, run)
    return time.perf_counter() - started


async def thread_and_run_turn(
    client: httpx.AsyncClient, assistant_id: str, text: str = "hi"
) -> float:
    """A turn in one create request, as the SDKs' `create_and_run_poll` makes it: a thread
    with its message and a run on it (`POST /v1/threads/runs`), polled to completion, then
    the reply read; returns its wall time (s)."""
    started = time.perf_counter()
    body = {
        "assistant_id": assistant_id,
        "thread": {"messages": [{"role": "user", "content": text}]},
    }
    run = expect(await client.post("/v1/threads/runs", json=body), "create thread and run")
    await _polled_reply(client, run["thread_id"], run)
    return time.perf_counter() - started


async def _polled_reply(client: httpx.AsyncClient, thread_id: str, run: dict[str, Any]) -> None:
    """Poll the run to completion and read its reply, the thread's newest message."""
    await poll_run(client, thread_id, run)
    reply = expect(
        await client.get(f"/v1/threads/{thread_id}/messages", params={"limit": 1}), "read reply"
    )
    newest = reply["data"][0]
    if newest["role"] != "assistant" or not newest["content"]:
        raise RuntimeError(f"no reply in thread {thread_id}: {newest}")


async def streamed_post(
    client: httpx.AsyncClient, path: str, body: Mapping[str, object]
) -> tuple[float, list[SseEvent]]:
    """POST `body` with `stream: true` and read the stream to its end; when the request was
    sent, and the events."""
    started = time.perf_counter()
    async with client.stream("POST", path, json={**body, "stream": True}) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"POST {path}: HTTP {response.status_code} {response.text[:300]}")
        events = await read_sse(response)
    return started, events


def arrival(events: list[SseEvent], name: str) -> float:
    """When the first event called `name` arrived; raises if none did."""
    for event in events:
        if event.event == name:
            return event.received
    raise RuntimeError(f"no {name} event in {[e.event for e in events]}")


async def streamed_turn(client: httpx.AsyncClient, assistant_id: str, text: str = "hi") -> float:
    """The same turn, but the run is created with `stream: true` and followed to its end
    instead of polled; returns its wall time (s)."""
    started = time.perf_counter()
    thread = expect(await client.post("/v1/threads", json={}), "create thread")
    thread_id = thread["id"]
    message = {"role": "user", "content": text}
    expect(await client.post(f"/v1/threads/{thread_id}/messages", json=message), "add message")
    body = {"assistant_id": assistant_id}
    _, events = await streamed_post(client, f"/v1/threads/{thread_id}/runs", body)
    if "thread.run.completed" not in [event.event for event in events]:
        raise RuntimeError(f"run did not complete: {[event.event for event in events][-3:]}")
    reply = expect(
        await client.get(f"/v1/threads/{thread_id}/messages", params={"limit": 1}), "read reply"
    )
    elapsed = time.perf_counter() - started
    if reply["data"][0]["role"] != "assistant":
        raise RuntimeError(f"no reply in thread {thread_id}")
    return elapsed
