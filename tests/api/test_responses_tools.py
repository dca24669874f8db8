"""Built-in tools in the Responses API through the openai SDK's `client.responses`, with the
scripted model calling them: file_search in vector stores (its citations as `file_citation`
annotations), the code interpreter in the conversation's sandbox (files in, a figure and a
file out), and a real MCP server's tools, listed, called, and approved or refused across two
responses. Each streamed, its final response the one stored; bad input refused, named, with
nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from support.azure_agents import API_KEY
from support.errors import sdk_error
from support.live import CODE_OFF_REASON, openai_client
from support.mcp_server import McpServer
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

FERRY = b"# Timetable\n\nThe first ferry to the island leaves at 7:15.\n"


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with McpServer() as server:
        yield server


def _store(client: openai.OpenAI, name: str, text: bytes, **attributes: Any) -> tuple[str, str]:
    store = client.vector_stores.create(name=name)
    file = client.files.create(file=(name, text), purpose="assistants")
    done = client.vector_stores.files.create_and_poll(
        file.id, vector_store_id=store.id, attributes=attributes or None, poll_interval_ms=50
    )
    assert done.status == "completed", done.last_error
    return store.id, file.id


def _tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def _unparsed(value: Any) -> Any:
    """A parsed response's fields as the plain response has them (no `parsed`)."""
    if isinstance(value, dict):
        return {k: _unparsed(v) for k, v in value.items() if k != "parsed"}
    if isinstance(value, list):
        return [_unparsed(v) for v in value]
    return value


def _streamed(client: openai.OpenAI, **request: Any) -> tuple[list[Any], Any]:
    """The stream's events and its final response, which must be the one stored."""
    with client.responses.stream(**request) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _unparsed(final.to_dict()) == client.responses.retrieve(final.id).to_dict()
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    return events, final


def _kinds(events: list[Any]) -> list[str]:
    return [event.type for event in events]


def _mcp(server: McpServer, **fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "calc", "server_url": server.url, **fields}


# -- file_search ---------------------------------------------------------------------------


def test_file_search_finds_the_passage_and_the_answer_cites_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store_id, file_id = _store(client, "ferry.md", FERRY)
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["first ferry time"]})]),
        Reply("It leaves at 7:15【0:0†ferry.md】."),
    )
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 5}
    response = client.responses.create(
        model=model_name,
        input="When does the first ferry leave?",
        tools=[tool],  # type: ignore[list-item]
        include=["file_search_call.results"],
    )

    assert response.status == "completed"
    call, message = response.output
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.queries == ["first ferry time"]
    assert call.results is not None and call.results[0].file_id == file_id
    assert call.results[0].filename == "ferry.md" and "7:15" in (call.results[0].text or "")
    assert message.type == "message"
    [part] = message.content
    assert part.type == "output_text" and part.text == "It leaves at 7:15【0:0†ferry.md】."
    [citation] = part.annotations
    assert citation.type == "file_citation"
    assert citation.file_id == file_id and citation.filename == "ferry.md"
    assert response.tools[0].type == "file_search"
    assert response.tools[0].vector_store_ids == [store_id]  # type: ignore[union-attr]
    assert response.tools[0].max_num_results == 5  # type: ignore[union-attr]
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert read.startswith("【0:0†ferry.md】") and "7:15" in read
    assert client.responses.retrieve(response.id).to_dict() == response.to_dict()


def test_the_calls_of_the_service_s_tools_are_items_of_the_conversation(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """A conversation lists a file_search call where it was made, as the response showed it,
    and the next response's prompt reads the call and what it found before the answer; an
    Assistants run's calls on the same thread are items too."""
    store_id, file_id = _store(client, "ferry.md", FERRY)
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["first ferry"]})]),
        Reply("At 7:15."),
        Reply("Still 7:15."),
    )
    tool = {"type": "file_search", "vector_store_ids": [store_id]}
    conversation = client.conversations.create()
    first = client.responses.create(
        model=model_name,
        conversation=conversation.id,
        input="First ferry?",
        tools=[tool],  # type: ignore[list-item]
    )
    items = client.conversations.items.list(
        conversation.id, order="asc", include=["file_search_call.results"]
    ).data
    assert [item.type for item in items] == ["message", "file_search_call", "message"]
    call = items[1]
    assert call.id == first.output[0].id and call.queries == ["first ferry"]  # type: ignore[union-attr]
    assert call.results is not None and call.results[0].file_id == file_id  # type: ignore[union-attr]
    bare = client.conversations.items.retrieve(call.id, conversation_id=conversation.id)
    assert bare.results is None  # type: ignore[union-attr]
    assert [m.role for m in client.beta.threads.messages.list(conversation.id).data] == [
        "assistant",
        "user",
    ]

    client.responses.create(model=model_name, conversation=conversation.id, input="Sure?")
    sent = scripted_model.requests(model_name)[2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "file_search"
    assert "7:15" in sent[2]["content"]

    scripted_model.script(
        model_name, CallTools([ToolCall("file_search", {"queries": ["last ferry"]})]), Reply("?")
    )
    assistant = client.beta.assistants.create(
        model=model_name,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=conversation.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed"
    later = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.type for item in later[-2:]] == ["file_search_call", "message"]
    assert later[-2].queries == ["last ferry"]  # type: ignore[union-attr]


def test_a_round_of_the_service_s_tool_and_a_client_function_ends_with_the_function(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The service runs its own call of the round, and the response ends with the client's
    function call, as one of function calls alone does; the output goes in the next one."""
    store_id, _ = _store(client, "ferry.md", FERRY)
    scripted_model.script(
        model_name,
        CallTools(
            [ToolCall("file_search", {"queries": ["ferry"]}), ToolCall("book", {"at": "7:15"})]
        ),
        Reply("Booked the 7:15."),
    )
    tools = [
        {"type": "file_search", "vector_store_ids": [store_id]},
        {"type": "function", "name": "book", "parameters": {"type": "object"}},
    ]
    first = client.responses.create(model=model_name, input="Book the first ferry.", tools=tools)  # type: ignore[arg-type]
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["file_search_call", "function_call"]
    call = first.output[1]
    second = client.responses.create(
        model=model_name,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "booked"}],  # type: ignore[union-attr]
        tools=tools,  # type: ignore[arg-type]
    )
    assert second.output_text == "Booked the 7:15."
    sent = scripted_model.requests(model_name)[1]["messages"]
    # Each call before its output: the service's search, then the client's function.
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert "7:15" in sent[2]["content"] and sent[4]["content"] == "booked"


def test_file_search_results_are_shown_only_when_included(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store_id, _ = _store(client, "ferry.md", FERRY)
    scripted_model.script(
        model_name, CallTools([ToolCall("file_search", {"queries": ["ferry"]})]), Reply("7:15.")
    )
    response = client.responses.create(
        model=model_name,
        input="Ferry?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    )
    assert response.output[0].type == "file_search_call"
    assert response.output[0].results is None
    included = client.responses.retrieve(response.id, include=["file_search_call.results"])
    assert included.output[0].results[0].text  # type: ignore[union-attr,index]


def test_file_search_filters_choose_the_files_by_their_attributes(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store = client.vector_stores.create(name="timetables")
    for name, text, season in (
        ("summer.md", b"In summer the ferry leaves at 6:00.", "summer"),
        ("winter.md", b"In winter the ferry leaves at 8:30.", "winter"),
    ):
        file = client.files.create(file=(name, text), purpose="assistants")
        done = client.vector_stores.files.create_and_poll(
            file.id, vector_store_id=store.id, attributes={"season": season}, poll_interval_ms=50
        )
        assert done.status == "completed"
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["ferry leaves"]})]),
        Reply("At 8:30."),
    )
    tool = {
        "type": "file_search",
        "vector_store_ids": [store.id],
        "filters": {"type": "eq", "key": "season", "value": "winter"},
    }
    response = client.responses.create(
        model=model_name,
        input="When in winter?",
        tools=[tool],  # type: ignore[list-item]
        include=["file_search_call.results"],
    )
    results = response.output[0].results  # type: ignore[union-attr]
    assert [r.filename for r in results] == ["winter.md"]
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "8:30" in read and "6:00" not in read
    assert response.tools[0].filters.key == "season"  # type: ignore[union-attr]


def test_file_search_streams_its_call_and_the_citation(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    store_id, file_id = _store(client, "ferry.md", FERRY)
    scripted_model.script(
        model_name,
        CallTools([ToolCall("file_search", {"queries": ["ferry"]})]),
        Reply("At 7:15【0:0†ferry.md】."),
    )
    events, final = _streamed(
        client,
        model=model_name,
        input="Ferry?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    )
    kinds = _kinds(events)
    order = [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert [kind for kind in kinds if kind in order][:5] == order
    done = next(e for e in events if e.type == "response.output_item.done")
    assert done.item.type == "file_search_call" and done.item == final.output[0]
    citation = final.output[1].content[0].annotations[0]  # type: ignore[union-attr]
    assert citation.file_id == file_id


# -- code_interpreter ----------------------------------------------------------------------


def test_code_reads_a_file_and_writes_a_figure_and_a_file(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    data = client.files.create(
        file=("sales.csv", b"month,units\njan,3\nfeb,5\nmar,8\n"), purpose="assistants"
    )
    code = (
        "import pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\n"
        "df['double'] = df.units * 2\n"
        "df.to_csv('/mnt/data/doubled.csv', index=False)\n"
        "plt.plot(df.month, df.units)\n"
        "int(df.units.sum())"
    )
    answer = "Total 16. Download [the table](sandbox:/mnt/data/doubled.csv)."
    scripted_model.script(
        model_name, CallTools([ToolCall("code_interpreter", {"code": code})]), Reply(answer)
    )
    tool = {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}
    response = client.responses.create(
        model=model_name,
        input="Sum the units.",
        tools=[tool],  # type: ignore[list-item]
        include=["code_interpreter_call.outputs"],
    )

    assert response.status == "completed"
    call, message = response.output
    assert call.type == "code_interpreter_call" and call.status == "completed"
    assert call.code == code
    assert call.container_id
    assert call.outputs is not None
    assert [output.type for output in call.outputs] == ["logs", "image"]
    assert "16" in call.outputs[0].logs  # type: ignore[union-attr]
    image_path = call.outputs[1].url  # type: ignore[union-attr]
    image_id = image_path.split("/")[-2]
    assert client.files.content(image_id).read().startswith(b"\x89PNG")
    [part] = message.content  # type: ignore[union-attr]
    assert part.text == answer  # type: ignore[union-attr]
    [link] = part.annotations  # type: ignore[union-attr]
    assert link.type == "container_file_citation"
    assert link.filename == "doubled.csv" and link.container_id == call.container_id
    assert answer[link.start_index : link.end_index] == "sandbox:/mnt/data/doubled.csv"
    table = client.files.content(link.file_id).read().decode()
    assert table.splitlines()[0] == "month,units,double"
    assert response.tools[0].type == "code_interpreter"
    assert response.tools[0].container.file_ids == [data.id]  # type: ignore[union-attr]
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "16" in read
    without = client.responses.retrieve(response.id)
    assert without.output[0].outputs is not None  # asked for when it was made

    # The container's files, as the Foundry samples fetch what the code wrote.
    container = link.container_id
    fetched = client.containers.files.content.retrieve(link.file_id, container_id=container)
    assert fetched.read().decode() == table
    held = client.containers.files.retrieve(link.file_id, container_id=container)
    assert (held.path, held.source, held.bytes) == (
        "/mnt/data/doubled.csv",
        "assistant",
        len(table),
    )
    listed = {f.path: f.source for f in client.containers.files.list(container, order="asc")}
    assert listed["/mnt/data/sales.csv"] == "user" and "/mnt/data/doubled.csv" in listed
    one_by_one = [f.path for f in client.containers.files.list(container, order="asc", limit=1)]
    assert one_by_one == list(listed)  # the pager walks them all
    with pytest.raises(openai.BadRequestError):
        client.containers.files.list(container, after="file-nope")
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(link.file_id, container_id="thread_nope")
    with pytest.raises(openai.NotFoundError):
        client.containers.files.content.retrieve(image_id, container_id=container)


def test_code_streams_as_it_is_written_and_run(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    code = "print(sum(range(10)))"
    scripted_model.script(
        model_name, CallTools([ToolCall("code_interpreter", {"code": code})]), Reply("45.")
    )
    events, final = _streamed(
        client,
        model=model_name,
        input="Sum 0..9.",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        include=["code_interpreter_call.outputs"],
    )
    kinds = _kinds(events)
    deltas = [e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"]
    assert "".join(deltas) == code
    order = [
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    assert [k for i, k in enumerate(kinds) if k in order and k not in kinds[:i]][:7] == order
    call = final.output[0]
    assert call.type == "code_interpreter_call"
    assert call.outputs[0].logs == "45\n"  # type: ignore[union-attr,index]


def test_a_container_by_id_is_refused(client: openai.OpenAI, model_name: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            input="x",
            tools=[{"type": "code_interpreter", "container": "cntr_123"}],
        )
    error = sdk_error(caught.value, 400)
    assert error["param"] == "tools[0].container" and error["code"] == "unsupported_value"


def test_with_the_code_interpreter_off_the_tool_is_refused(
    code_off_server: ServerProcess, model_name: str
) -> None:
    client = openai_client(code_off_server, API_KEY)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            input="x",
            tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        )
    error = sdk_error(caught.value, 400)
    assert error["param"] == "tools[0]" and error["code"] == "unsupported_value"
    assert CODE_OFF_REASON in error["message"]


# -- mcp -------------------------------------------------------------------------------------


def test_an_mcp_server_s_tools_are_listed_and_called(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("add", {"a": 2, "b": 3})]), Reply("It is 5.")
    )
    tool = _mcp(mcp, allowed_tools=["add", "shout"], require_approval="never")
    response = client.responses.create(
        model=model_name,
        input="2 + 3?",
        tools=[tool],  # type: ignore[list-item]
    )

    assert response.status == "completed"
    listed, call, message = response.output
    assert listed.type == "mcp_list_tools" and listed.server_label == "calc"
    assert sorted(t.name for t in listed.tools) == ["add", "shout"]
    assert call.type == "mcp_call" and call.status == "completed"
    assert call.name == "add" and json.loads(call.arguments) == {"a": 2, "b": 3}
    assert call.output == "5" and call.error is None and call.server_label == "calc"
    assert message.type == "message" and response.output_text == "It is 5."
    offered = [t["function"]["name"] for t in scripted_model.requests(model_name)[0]["tools"]]
    assert sorted(offered) == ["add", "shout"]
    assert response.tools[0].type == "mcp" and response.tools[0].server_label == "calc"


def test_max_tool_calls_caps_the_calls_of_the_service_s_tools(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    """With `max_tool_calls: 1`, of two calls made at once the first is made and the second
    answered as not made; then the model is offered none of the service's tools."""
    scripted_model.script(
        model_name,
        CallTools([ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", {"a": 4, "b": 5})]),
        Reply("Only 5."),
    )
    response = client.responses.create(
        model=model_name,
        input="2 + 3, 4 + 5?",
        tools=[_mcp(mcp, allowed_tools=["add"], require_approval="never")],  # type: ignore[list-item]
        max_tool_calls=1,
    )
    assert response.max_tool_calls == 1 and response.output_text == "Only 5."
    made, capped = [item for item in response.output if item.type == "mcp_call"]
    assert made.output == "5" and made.error is None
    assert capped.output is None and capped.error is not None
    assert "max_tool_calls" in str(capped.error)
    first, second = scripted_model.requests(model_name)
    assert [t["function"]["name"] for t in first["tools"]] == ["add"]
    assert not second.get("tools")
    assert "max_tool_calls" in _tool_messages(second)[1]


def test_a_failing_mcp_tool_is_an_error_the_model_reads(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("fail", {})]), Reply("It failed."))
    response = client.responses.create(
        model=model_name,
        input="Fail.",
        tools=[_mcp(mcp, require_approval="never", headers={"X-Secret": "s3"})],  # type: ignore[list-item]
    )
    call = response.output[1]
    assert call.type == "mcp_call" and call.status == "failed" and call.output is None
    assert call.error is not None and call.error.type == "mcp_tool_execution_error"
    # The headers reach the server, and are not shown back.
    assert response.tools[0].headers is None  # type: ignore[union-attr]


def test_an_approval_request_ends_the_response_and_the_next_makes_the_call(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("add", {"a": 20, "b": 22})]), Reply("42.")
    )
    tools: Any = [_mcp(mcp, allowed_tools=["add"])]  # approval by default
    first = client.responses.create(model=model_name, input="20 + 22?", tools=tools)

    assert first.status == "completed"
    listed, request = first.output
    assert listed.type == "mcp_list_tools"
    assert request.type == "mcp_approval_request"
    assert request.name == "add" and request.server_label == "calc"
    assert json.loads(request.arguments) == {"a": 20, "b": 22}
    assert len(scripted_model.requests(model_name)) == 1  # nothing made yet

    second = client.responses.create(
        model=model_name,
        previous_response_id=first.id,
        tools=tools,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
    )

    assert second.status == "completed"
    [call] = [item for item in second.output if item.type == "mcp_call"]
    assert call.output == "42" and call.approval_request_id == request.id
    assert second.output_text == "42."
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert read == "42"
    # Answered once: the request is no longer pending.
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            previous_response_id=second.id,
            tools=tools,
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": request.id,
                    "approve": True,
                }
            ],
        )
    assert sdk_error(caught.value, 400)["param"] == "input[0].approval_request_id"


def test_a_refused_call_is_not_made_and_the_model_is_told(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("add", {"a": 1, "b": 1})]), Reply("As you wish.")
    )
    conversation = client.conversations.create()
    tools: Any = [_mcp(mcp, require_approval="always")]
    first = client.responses.create(
        model=model_name, input="1 + 1?", tools=tools, conversation=conversation.id
    )
    request = first.output[-1]
    assert request.type == "mcp_approval_request"

    second = client.responses.create(
        model=model_name,
        conversation=conversation.id,
        tools=tools,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}
        ],
    )

    assert [item.type for item in second.output] == ["mcp_list_tools", "message"]
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "did not approve" in read


def test_mcp_streams_its_list_and_its_call(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("shout", {"text": "hey"})]), Reply("HEY.")
    )
    events, final = _streamed(
        client,
        model=model_name,
        input="Shout hey.",
        tools=[_mcp(mcp, require_approval={"never": {"tool_names": ["shout"]}})],
    )
    kinds = _kinds(events)
    for expected in (
        ["response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed"],
        [
            "response.mcp_call.in_progress",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.completed",
        ],
    ):
        assert [kind for kind in kinds if kind in expected] == expected
    call = next(item for item in final.output if item.type == "mcp_call")
    assert call.output == "HEY"
    done = [e.item.to_dict() for e in events if e.type == "response.output_item.done"]
    assert done == [_unparsed(item.to_dict()) for item in final.output]


def test_an_approval_request_and_its_call_stream(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(
        model_name, CallTools([ToolCall("add", {"a": 1, "b": 2})]), Reply("Three.")
    )
    tools: Any = [_mcp(mcp, allowed_tools=["add"])]
    events, first = _streamed(client, model=model_name, input="1 + 2?", tools=tools)
    request = first.output[-1]
    assert request.type == "mcp_approval_request"
    assert "response.mcp_call.in_progress" not in _kinds(events)
    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    events, second = _streamed(
        client, model=model_name, previous_response_id=first.id, tools=tools, input=[approval]
    )
    assert "response.mcp_call.completed" in _kinds(events)
    call = next(item for item in second.output if item.type == "mcp_call")
    assert call.output == "3"


# -- refusals ----------------------------------------------------------------------------------


def _items(client: openai.OpenAI, conversation_id: str) -> list[str]:
    return [item.id for item in client.conversations.items.list(conversation_id).data]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        (
            {"tools": [{"type": "file_search", "vector_store_ids": ["vs_missing"]}]},
            "tools[0].vector_store_ids[0]",
            None,
        ),
        ({"tools": [{"type": "file_search"}]}, "tools[0].vector_store_ids", None),
        (
            {
                "tools": [
                    {
                        "type": "file_search",
                        "vector_store_ids": ["vs_x"],
                        "ranking_options": {"ranker": "mine"},
                    }
                ]
            },
            "tools[0].ranking_options.ranker",
            None,
        ),
        (
            {
                "tools": [
                    {
                        "type": "file_search",
                        "vector_store_ids": ["vs_x"],
                        "ranking_options": {
                            "hybrid_search": {"embedding_weight": 1, "text_weight": 1}
                        },
                    }
                ]
            },
            "tools[0].ranking_options.hybrid_search",
            "unsupported_value",
        ),
        (
            {"tools": [{"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {}}]},
            "tools[0].filters",
            None,
        ),
        (
            {
                "tools": [
                    {"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["f"]}}
                ]
            },
            "tools[0].container.file_ids[0]",
            None,
        ),
        ({"include": ["message.output_text.logprobs"]}, "include", "unsupported_value"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice", None),
        (
            {
                "tools": [{"type": "mcp", "server_label": "x", "connector_id": "connector_gmail"}],
            },
            "tools[0].connector_id",
            "unsupported_value",
        ),
        (
            {
                "input": [
                    {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": 1}
                ]
            },
            "input[0].approve",
            None,
        ),
        (
            {
                "input": [
                    {
                        "type": "mcp_approval_response",
                        "approval_request_id": "mcpr_unknown",
                        "approve": True,
                    }
                ]
            },
            "input[0].approval_request_id",
            None,
        ),
    ],
    ids=[
        "unknown-store",
        "no-stores",
        "ranker",
        "hybrid-search",
        "bad-filter",
        "unknown-file",
        "include",
        "choice-without-tool",
        "connector",
        "approve-not-bool",
        "unknown-approval",
    ],
)
def test_a_bad_tool_request_is_refused_and_keeps_nothing(
    client: openai.OpenAI,
    model_name: str,
    fields: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "kept"}])
    before = _items(client, conversation.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name, conversation=conversation.id, **{"input": "hello", **fields}
        )
    error = sdk_error(caught.value, 400)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert _items(client, conversation.id) == before
    assert client.beta.threads.runs.list(conversation.id).data == []


def test_an_mcp_choice_forces_that_tool(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    scripted_model.script(model_name, CallTools([ToolCall("shout", {"text": "a"})]), Reply("A."))
    response = client.responses.create(
        model=model_name,
        input="Shout a.",
        tools=[_mcp(mcp, require_approval="never")],  # type: ignore[list-item]
        tool_choice={"type": "mcp", "server_label": "calc", "name": "shout"},
    )
    assert response.tool_choice.type == "mcp"  # type: ignore[union-attr]
    first = scripted_model.requests(model_name)[0]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "shout"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model_name,
            input="x",
            tools=[_mcp(mcp, allowed_tools=["add"])],  # type: ignore[list-item]
            tool_choice={"type": "mcp", "server_label": "calc", "name": "shout"},
        )
    assert sdk_error(caught.value, 400)["param"] == "tool_choice.name"
