"""Many API processes and workers on PostgreSQL: no run lost, none done twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import openai
from openai.types.beta.threads import Run
from support.cluster import Cluster
from support.live import openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess
from support.sse import parse_sse
from support.waiting import wait_for_run, wait_until

ANSWER = "one two three four five"


def _events(api: ServerProcess, thread_id: str, run_id: str) -> list[tuple[int, str, dict]]:
    url = f"{api.base_url}/threads/{thread_id}/runs/{run_id}/events"
    with httpx.stream("GET", url, timeout=60) as response:
        events = parse_sse(response.iter_lines())
    return [(seq, name, json.loads(data)) for seq, name, data in events]


async def _leases(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT lease_owner, count(*) AS held FROM runs "
            "WHERE lease_owner IS NOT NULL GROUP BY lease_owner"
        )
    finally:
        await connection.close()
    return {row["lease_owner"]: row["held"] for row in rows}


def _start_runs(client: openai.OpenAI, model_name: str, count: int) -> list[Run]:
    """`count` runs of a new assistant, each on a new thread with one question."""
    assistant = client.beta.assistants.create(model=model_name)
    return [
        client.beta.threads.create_and_run(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": f"q{i}"}]}
        )
        for i in range(count)
    ]


def _assert_done_once(
    client: openai.OpenAI, api: ServerProcess, thread_id: str, run_id: str
) -> bool:
    """Checks one completed run's thread, steps and event log; True if it was taken over."""
    replies = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert [m.content[0].text.value for m in replies] == [ANSWER]  # type: ignore[union-attr]
    steps = client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id).data
    assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]
    events = _events(api, thread_id, run_id)
    names = [name for _, name, _ in events]
    assert [seq for seq, _, _ in events] == sorted(seq for seq, _, _ in events)
    assert names.count("thread.message.created") == 1
    assert names.count("thread.run.step.created") == 1
    assert names.count("thread.run.completed") == 1
    deltas = [
        data["delta"]["content"][0]["text"]["value"]
        for _, n, data in events
        if n == "thread.message.delta"
    ]
    assert "".join(deltas) == ANSWER
    return names.count("thread.run.in_progress") > 1


def test_a_killed_worker_s_runs_are_finished_by_the_other_exactly_once(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[Reply(ANSWER, pause=0.4)] * 200)
    api = cluster.api()
    first, second = cluster.worker(), cluster.worker()
    client = openai_client(api)
    runs = _start_runs(client, model_name, 50)
    leases = wait_until(
        lambda: asyncio.run(_leases(cluster.database_url)),
        lambda held: sum(held.values()) >= 20 and len(held) == 2,
        "both workers to hold runs",
    )
    victim = first if any(f":{first.pid}:" in owner for owner in leases) else second

    victim.kill()

    taken_over = 0
    for run in runs:
        done = wait_for_run(client, run.thread_id, run.id, "completed")
        taken_over += _assert_done_once(client, api, done.thread_id, done.id)
    assert taken_over > 0


def test_many_api_processes_and_workers_stream_every_run_in_order(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[Reply(ANSWER, pause=0.05)] * 200)
    apis = [cluster.api(), cluster.api()]
    cluster.worker(), cluster.worker()
    assistant = openai_client(apis[0]).beta.assistants.create(model=model_name)

    async def stream_one(http: httpx.AsyncClient, index: int) -> list[tuple[str, dict]]:
        api = apis[index % 2]
        body = {
            "assistant_id": assistant.id,
            "thread": {"messages": [{"role": "user", "content": f"q{index}"}]},
            "stream": True,
        }
        async with http.stream("POST", f"{api.base_url}/threads/runs", json=body) as response:
            assert response.status_code == 200
            events = parse_sse([line async for line in response.aiter_lines()])
        seqs = [seq for seq, _, _ in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        return [(name, json.loads(data)) for _, name, data in events]

    async def stream_all() -> list[list[tuple[str, dict]]]:
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:
            return await asyncio.gather(*(stream_one(http, i) for i in range(200)))

    streams = asyncio.run(stream_all())
    asked = Counter(body["messages"][-1]["content"] for body in scripted_model.requests(model_name))
    assert [q for q, times in asked.items() if times > 1] == []  # no reply used up twice
    for events in streams:
        names = [name for name, _ in events]
        assert names[:3] == ["thread.created", "thread.run.created", "thread.run.queued"]
        assert names[-1] == "thread.run.completed"
        text = "".join(
            data["delta"]["content"][0]["text"]["value"]
            for name, data in events
            if name == "thread.message.delta"
        )
        assert text == ANSWER


def test_a_reply_that_outlasts_several_leases_stays_with_its_worker(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """Leases of 2 s, replies of about 6 s: their worker keeps renewing them, so the other
    worker never takes one over mid-reply."""
    scripted_model.script(model_name, *[Reply(ANSWER, pause=1.5)] * 8)
    api = cluster.api()
    cluster.worker(), cluster.worker()
    client = openai_client(api)
    runs = _start_runs(client, model_name, 8)

    for run in runs:
        done = wait_for_run(client, run.thread_id, run.id, "completed")
        assert _assert_done_once(client, api, done.thread_id, done.id) is False


def test_racing_api_processes_start_one_run_per_thread(cluster: Cluster, model_name: str) -> None:
    apis = [cluster.api(), cluster.api()]
    client = openai_client(apis[0])
    assistant = client.beta.assistants.create(model=model_name)

    for attempt in range(5):
        thread = client.beta.threads.create()

        def create(index: int, thread_id: str = thread.id) -> int:
            url = f"{apis[index % 2].base_url}/threads/{thread_id}/runs"
            return httpx.post(url, json={"assistant_id": assistant.id}, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(create, range(8)))

        assert statuses == [200] + [400] * 7, f"attempt {attempt}: {statuses}"
        assert len(client.beta.threads.runs.list(thread.id).data) == 1


def test_a_worker_stopped_with_sigterm_finishes_its_runs(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[Reply(ANSWER, pause=0.2)] * 20)
    api = cluster.api()
    worker = cluster.worker(THREADLINE_SHUTDOWN_GRACE_SECONDS="30")
    client = openai_client(api)
    runs = _start_runs(client, model_name, 5)
    wait_until(
        lambda: asyncio.run(_leases(cluster.database_url)),
        lambda held: sum(held.values()) == 5,
        "the worker to hold every run",
    )

    assert worker.terminate() == 0

    for run in runs:
        done = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
        assert done.status == "completed"


async def _cut_connections(database_url: str) -> int:
    """End every other session on the test's database, as a database restart or a network
    cut does; returns how many were ended."""
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


def test_after_the_database_connections_were_cut_every_request_succeeds(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, *[Reply(ANSWER)] * 2)
    api = cluster.api()
    # Upkeep only after a minute: the worker's next claim is the first to use its pool.
    cluster.worker(THREADLINE_SWEEP_INTERVAL_SECONDS="60")
    client = openai_client(api)
    assistant = client.beta.assistants.create(model=model_name)
    before = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert before.status == "completed"

    assert asyncio.run(_cut_connections(cluster.database_url)) > 0

    # Pooled connections are checked before use: the first request after the cut succeeds
    # (the client does not retry), and so does the worker's next claim.
    after = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert wait_for_run(client, after.thread_id, after.id, "completed").status == "completed"
