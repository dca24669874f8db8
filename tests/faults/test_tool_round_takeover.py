"""A worker killed mid-way through a round of service-side tool calls.

The model calls two operations of an OpenAPI tool in one round: one answers at once, the
other is held by the API until the test lets it go. The test kills the worker carrying the
run once the first call's outcome is in the run's event log (so it is stored) and the second
call has reached the API. The worker that takes the run over must run only the call that has
no outcome: the finished one is not made again, the unfinished one is (service-side tools are
at least once), and the run ends with one tool-calls step, one message and one set of events.

The interleaving is made, not hoped for: the held operation answers only when the test opens
its gate, and the test acts on what the run's event stream and the API have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.cluster import Cluster
from support.live import openai_client
from support.pet_api import PetApi, get_operation, pet_spec
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.sse import Event, follow_run

ANSWER = "Pet 7 is here, and the held call came back."


@pytest.fixture
def api() -> Iterator[PetApi]:
    pets = PetApi()
    with pets:
        try:
            yield pets
        finally:
            pets.gate.set()  # never leave a call waiting, whatever the test did


def _tool(api: PetApi) -> dict[str, Any]:
    spec = pet_spec(api.base_url)
    spec["paths"]["/held"] = get_operation("held")
    return {
        "type": "openapi",
        "openapi": {
            "name": "pets",
            "description": "The pet shop",
            "spec": spec,
            "auth": {"type": "anonymous"},
            "default_params": [],
        },
    }


# The round's calls, in the order the model makes them (a delta names a call by its index:
# the name went out while the model wrote the call).
CALLED = ("pets_getPet", "pets_held")


def _outputs(event: Event) -> dict[str, str]:
    """Outputs a `thread.run.step.delta` shows, by function name."""
    _, name, data = event
    if name != "thread.run.step.delta":
        return {}
    details = data["delta"].get("step_details") or {}
    return {
        CALLED[call["index"]]: call["function"]["output"]
        for call in details.get("tool_calls", [])
        if (call.get("function") or {}).get("output") is not None
    }


def test_a_worker_killed_mid_round_leaves_the_finished_call_done_and_the_other_redone(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str, api: PetApi
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("pets_getPet", {"petId": "7"}), ToolCall("pets_held", {})]),
        Reply(ANSWER),
    )
    server = cluster.api()
    first = cluster.worker()
    client = openai_client(server)
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[_tool(api)],  # type: ignore[list-item]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    followed: list[Event] = []
    killed = False
    for event in follow_run(server, thread.id, run.id):
        followed.append(event)
        if not killed and "pets_getPet" in _outputs(event):
            # The finished call's outcome is stored (its delta is written with it); the
            # other call is under way once the API has it.
            assert api.held_entered.wait(30), "the held operation was never called"
            first.kill()
            api.gate.set()  # what the dead worker asked is answered to no one
            cluster.worker()
            killed = True

    assert killed, [name for _, name, _ in followed]
    done = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert done.status == "completed", done.last_error
    # The finished call was made once; the unfinished one again by the worker that took over.
    paths = [seen["path"] for seen in api.seen]
    assert paths.count("/pets/7") == 1
    assert paths.count("/held") >= 2
    # The model was asked twice: the round's calls, then the answer with both outcomes.
    asked = scripted_model.requests(model_name)
    assert len(asked) == 2
    read = [m["content"] for m in asked[1]["messages"] if m["role"] == "tool"]
    assert len(read) == 2
    assert read[0].startswith("HTTP 200") and '"7"' in read[0]
    assert read[1].startswith("HTTP 200") and "released" in read[1]
    # One round, one message: the takeover carried on the dead worker's step.
    steps = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=thread.id, order="asc"
    ).data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    replies = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    assert [m.content[0].text.value for m in replies] == [ANSWER]  # type: ignore[union-attr]

    stored = list(follow_run(server, thread.id, run.id))
    for events in (followed, stored):
        names = [name for _, name, _ in events]
        # Taken over: queued again after it had started, and started again.
        assert names.count("thread.run.in_progress") == 2
        assert names.count("thread.run.completed") == 1
        created = [data["id"] for _, name, data in events if name == "thread.run.step.created"]
        assert sorted(created) == sorted(s.id for s in steps)
        completed = [data["id"] for _, name, data in events if name == "thread.run.step.completed"]
        assert sorted(completed) == sorted(s.id for s in steps)
        assert names.count("thread.message.created") == 1
        # Each call's outcome was shown once: the finished one by the dead worker, the other
        # by the worker that took over.
        shown = [function for event in events for function in _outputs(event)]
        assert sorted(shown) == ["pets_getPet", "pets_held"]
    # Polling and streaming agree: the stored log is what the follower saw.
    assert [(seq, name) for seq, name, _ in stored] == [(seq, name) for seq, name, _ in followed]
