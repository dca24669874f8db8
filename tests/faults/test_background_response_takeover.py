"""A background response whose worker is killed while the model is answering.

The response runs in a conversation, so its run's events can be followed on the thread the
conversation is (`/threads/{conversation}/runs/{response}/events`), and its Responses stream
is replayed once it has settled (`/responses/{id}?stream=true`). The model holds
its first answer after one piece until the test lets it go, and the test kills the worker
once that piece is in the run's log: the interleaving is made, not hoped for. Another worker
takes the response over, withdraws the half-written reply and answers again; the response
completes with one output item, and its log names one message, one step, one ending.

A background response cancelled while the model is answering ends `cancelled`, on the same
cluster.
"""

from __future__ import annotations

import threading
from typing import Any

import openai
from support.cluster import Cluster
from support.live import openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.sse import Event, follow_run
from support.waiting import TERMINAL, wait_until

FIRST = "The first attempt began this and never finished it."
ANSWER = "The second attempt says all of this."


def _settled(client: openai.OpenAI, response_id: str) -> Any:
    return wait_until(
        lambda: client.responses.retrieve(response_id),
        lambda response: response.status in TERMINAL,
        f"response {response_id} to settle",
    )


def _text(item: Any) -> str:
    return str(item.content[0].text)


def test_a_background_response_taken_over_mid_answer_completes_once(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    hold = threading.Event()
    scripted_model.script(model_name, Reply(FIRST, hold=hold), Reply(ANSWER))
    api = cluster.api()
    first = cluster.worker()
    client = openai_client(api)
    conversation = client.conversations.create()
    followed: list[Event] = []
    try:
        response = client.responses.create(
            model=model_name, input="go", conversation=conversation.id, background=True
        )
        assert response.status == "queued" and response.background
        for event in follow_run(api, conversation.id, response.id):
            followed.append(event)
            if event[1] == "thread.message.delta" and not hold.is_set():
                # The reply's first piece is stored; the model holds the rest.
                first.kill()
                hold.set()  # what the dead worker asked is answered to no one
                cluster.worker()
    finally:
        hold.set()

    done = _settled(client, response.id)
    assert done.status == "completed", done.error
    [item] = done.output
    assert item.type == "message" and _text(item) == ANSWER
    assert done.output_text == ANSWER
    assert len(scripted_model.requests(model_name)) == 2
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [_text(i) for i in items] == ["go", ANSWER]
    assert items[1].id == item.id
    steps = client.beta.threads.runs.steps.list(
        run_id=response.id, thread_id=conversation.id, order="asc"
    ).data
    assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]

    stored = list(follow_run(api, conversation.id, response.id))
    for events in (followed, stored):
        names = [name for _, name, _ in events]
        # Taken over: started, queued again, started again, completed once.
        assert names.count("thread.run.in_progress") == 2
        assert names.count("thread.run.completed") == 1
        assert names[-1] == "thread.run.completed"
        # Every message and step event names the one message and the one step.
        messages = {data["id"] for _, name, data in events if name.startswith("thread.message")}
        assert messages == {item.id}
        step_ids = {data["id"] for _, name, data in events if name.startswith("thread.run.step")}
        assert step_ids == {steps[0].id}
        assert names.count("thread.message.completed") == 1
        assert names.count("thread.run.step.completed") == 1
    # The follower saw the dead worker's reply begin and the same message announced again
    # by the worker that took over; the stored log keeps only the answer given.
    assert [name for _, name, _ in followed].count("thread.message.created") == 2
    assert [name for _, name, _ in stored].count("thread.message.created") == 1
    deltas = [
        data["delta"]["content"][0]["text"]["value"]
        for _, name, data in stored
        if name == "thread.message.delta"
    ]
    assert "".join(deltas) == ANSWER
    assert [seq for seq, _, _ in stored] == sorted({seq for seq, _, _ in stored})
    # The Responses stream, replayed by another API process: one item, added and done once.
    replayed = list(openai_client(cluster.api()).responses.retrieve(response.id, stream=True))
    kinds = [event.type for event in replayed]
    assert kinds.count("response.output_item.added") == 1
    assert kinds.count("response.output_item.done") == 1
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in replayed] == list(range(len(replayed)))
    text = "".join(e.delta for e in replayed if e.type == "response.output_text.delta")
    assert text == ANSWER


def test_a_background_response_cancelled_mid_answer_ends_cancelled(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    hold = threading.Event()
    scripted_model.script(model_name, Reply(FIRST, hold=hold))
    api = cluster.api()
    cluster.worker()
    client = openai_client(api)
    conversation = client.conversations.create()
    try:
        response = client.responses.create(
            model=model_name, input="go", conversation=conversation.id, background=True
        )
        for _, name, _ in follow_run(api, conversation.id, response.id):
            if name == "thread.message.delta":
                break  # the model is answering, and holds the rest of its reply
        cancelled = client.responses.cancel(response.id)
    finally:
        hold.set()

    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(response.id).status == "cancelled"
    [run] = client.beta.threads.runs.list(conversation.id).data
    assert run.id == response.id and run.status == "cancelled"
    # The conversation is free again: a next response runs in it.
    scripted_model.script(model_name, Reply("Again."))
    again = client.responses.create(model=model_name, input="again", conversation=conversation.id)
    assert again.output_text == "Again."
