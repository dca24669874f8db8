"""A worker killed mid-reply while a client follows the run with an SDK's stream helper.

The worker that takes the run over withdraws the dead worker's half-written message and
answers again. The client has already received deltas of the withdrawn attempt; it must
still end with one message, the stored one (same id, same text), in the `openai` SDK's
`runs.stream` helper (`get_final_messages`, `current_message_snapshot`) and for a user of
an `azure-ai-agents` event handler who keeps the last object per id.

The interleaving is made, not hoped for: the model holds its first answer after one piece
until the test lets it go, and the test kills the worker once the client has received that
piece.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import trustme
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import MessageDeltaChunk, RunStep, ThreadMessage, ThreadRun
from azure.core.credentials import AccessToken, AccessTokenInfo
from support.cluster import Cluster
from support.live import openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess, WorkerProcess

FIRST = "The first attempt began this and never finished it."
ANSWER = "The second attempt says all of this."


def _take_over(cluster: Cluster, worker: WorkerProcess) -> None:
    """SIGKILL the worker carrying the run and start another, which takes the run over once
    the dead worker's lease lapses."""
    worker.kill()
    cluster.worker()


def test_an_openai_stream_ends_with_the_stored_message_after_a_takeover(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    hold = threading.Event()
    scripted_model.script(model_name, Reply(FIRST, hold=hold), Reply(ANSWER))
    api = cluster.api()
    first = cluster.worker()
    client = openai_client(api)
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    names: list[str] = []
    try:
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id
        ) as stream:
            for event in stream:
                names.append(event.event)
                if event.event == "thread.message.delta" and names.count(event.event) == 1:
                    _take_over(cluster, first)
            final_messages = stream.get_final_messages()
            final_steps = stream.get_final_run_steps()
            snapshot = stream.current_message_snapshot
            run = stream.get_final_run()
    finally:
        hold.set()

    assert run.status == "completed"
    # The client did see the withdrawn attempt's message and a delta of it, then the takeover.
    assert names.count("thread.message.created") == 2
    assert names[names.index("thread.message.delta") :].count("thread.run.queued") == 1
    stored = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in stored] == ["user", "assistant"]
    reply = stored[1]
    assert reply.content[0].text.value == ANSWER  # type: ignore[union-attr]
    assert [(m.id, m.status, m.content) for m in final_messages] == [
        (reply.id, "completed", reply.content)
    ]
    assert snapshot is not None and (snapshot.id, snapshot.content) == (reply.id, reply.content)
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    # (The helper keeps each step as `thread.run.step.created` showed it, so only its id.)
    assert [s.id for s in final_steps] == [s.id for s in steps]
    assert len(scripted_model.requests(model_name)) == 2


def test_a_takeover_that_calls_tools_closes_the_withdrawn_message_as_stored(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The turn done again calls a tool instead of answering: the message the client saw
    begin is announced again and completed empty, as it is stored, not left in progress."""
    hold = threading.Event()
    scripted_model.script(
        model_name, Reply(FIRST, hold=hold), CallTools([ToolCall("lookup", {"q": "x"})])
    )
    api = cluster.api()
    first = cluster.worker()
    client = openai_client(api)
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant = client.beta.assistants.create(model=model_name, tools=[tool])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    seen_delta = False
    try:
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id
        ) as stream:
            for event in stream:
                if event.event == "thread.message.delta" and not seen_delta:
                    seen_delta = True
                    _take_over(cluster, first)
            final_messages = stream.get_final_messages()
            run = stream.get_final_run()
    finally:
        hold.set()

    assert seen_delta and run.status == "requires_action"
    stored = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in stored] == ["user", "assistant"]
    closed = stored[1]
    assert closed.status == "completed"
    assert [part.text.value for part in closed.content] == [""]  # type: ignore[union-attr]
    assert [(m.id, m.status, m.content) for m in final_messages] == [
        (closed.id, "completed", closed.content)
    ]


class _Credential:
    """A fixed token: the server under test runs without keys."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("no-key", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        return AccessTokenInfo("no-key", int(time.time()) + 3600)


def _tls_api(cluster: Cluster, folder: Path) -> ServerProcess:
    """An API process of the cluster serving HTTPS, which the Azure client insists on."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(folder / "ca.pem")
    certificate.private_key_and_cert_chain_pem.write_to_path(folder / "cert.pem")
    certificate.private_key_pem.write_to_path(folder / "key.pem")
    api = ServerProcess(
        cluster.database_url,
        cluster.env,
        folder / "tls-api.log",
        tls=(folder / "cert.pem", folder / "key.pem"),
        ca_file=folder / "ca.pem",
        args=("--no-worker",),
    )
    cluster.apis.append(api)
    api.start()
    return api


def test_an_azure_stream_ends_with_the_stored_message_after_a_takeover(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    hold = threading.Event()
    scripted_model.script(model_name, Reply(FIRST, hold=hold), Reply(ANSWER))
    api = _tls_api(cluster, tmp_path)
    first = cluster.worker()
    client = AgentsClient(
        endpoint=f"{api.url}/api/projects/alpha",
        credential=_Credential(),  # type: ignore[arg-type]
        connection_verify=api.verify,
    )
    agent = client.create_agent(model=model_name, name="follower")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="go")
    # What a user's handler keeps: the last object per id, and each message's text as its
    # deltas add up since it was last announced.
    messages: dict[str, ThreadMessage] = {}
    texts: dict[str, list[str]] = {}
    steps: dict[str, RunStep] = {}
    runs: list[ThreadRun] = []
    deltas = 0
    try:
        with client.runs.stream(thread_id=thread.id, agent_id=agent.id) as stream:
            for name, data, _ in stream:
                if isinstance(data, ThreadMessage):
                    messages[data.id] = data
                    if name == "thread.message.created":
                        texts[data.id] = []
                elif isinstance(data, MessageDeltaChunk):
                    texts[data.id].append(data.text)
                    deltas += 1
                    if deltas == 1:
                        _take_over(cluster, first)
                elif isinstance(data, RunStep):
                    steps[data.id] = data
                elif isinstance(data, ThreadRun):
                    runs.append(data)
    finally:
        hold.set()

    statuses = [r.status for r in runs]
    assert statuses[-1] == "completed"
    # Taken over once the client had a delta: queued again after it was in progress.
    assert statuses[statuses.index("in_progress") :].count("queued") == 1
    stored = client.messages.list(thread_id=thread.id, order="asc")
    reply = [m for m in stored if m.role == "assistant"]
    assert len(reply) == 1 and reply[0].text_messages[0].text.value == ANSWER
    assert list(messages) == [reply[0].id]
    followed = messages[reply[0].id]
    assert followed.status == "completed"
    assert followed.text_messages[0].text.value == ANSWER
    assert "".join(texts[reply[0].id]) == ANSWER
    stored_steps = client.run_steps.list(thread_id=thread.id, run_id=runs[-1].id)
    assert {s.id: s.status for s in steps.values()} == {s.id: s.status for s in stored_steps}
