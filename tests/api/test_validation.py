"""Every field the clients send is checked as their own schemas say, or refused until the
service can carry it out: never accepted and then quietly ignored.

Each refusal is checked three ways: the status, the OpenAI-shaped body naming the field
(`param`), and that nothing was stored or changed, read back through the API (assistants,
threads through `GET /threads`, messages, runs). Each check has its valid edge beside it,
accepted.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai.types.beta import CodeInterpreterToolParam
from support.azure_agents import API_KEY
from support.errors import assert_error_body, sdk_error
from support.live import CODE_OFF_REASON, openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess

FUNCTION = {"type": "function", "function": {"name": "get_weather"}}
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)


# -- helpers -------------------------------------------------------------------------------


def raw(client: openai.OpenAI, path: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(path, cast_to=httpx.Response).json()
    return body


def post(server: ServerProcess, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=30, **kwargs)


def refused(response: httpx.Response, param: str, status: int = 400) -> dict[str, Any]:
    error = assert_error_body(response.json(), status, response.status_code)
    assert error["param"] == param, error
    return error


def newest_assistant(client: openai.OpenAI) -> str:
    return client.beta.assistants.list(limit=1).data[0].id


def newest_thread(client: openai.OpenAI) -> str:
    """`GET /threads` (the openai SDK has no call for it): the project's newest thread."""
    threads: list[dict[str, Any]] = raw(client, "/threads?limit=1")["data"]
    return str(threads[0]["id"])


def assistant(client: openai.OpenAI, model: str = "gpt-4o", **fields: Any) -> str:
    return client.beta.assistants.create(model=model, **fields).id


def messages_of(client: openai.OpenAI, thread_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = raw(client, f"/threads/{thread_id}/messages?limit=100")["data"]
    return data


def runs_of(client: openai.OpenAI, thread_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = raw(client, f"/threads/{thread_id}/runs?limit=100")["data"]
    return data


# -- what does not exist or cannot run: refused, naming the field, nothing stored -------------

MISSING_ON_ASSISTANTS = [
    (
        {"tool_resources": {"code_interpreter": {"file_ids": ["file-abc"]}}},
        "tool_resources.code_interpreter.file_ids[0]",
        "No file found with id 'file-abc'",
    ),
    (
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_abc"]}}},
        "tool_resources.file_search.vector_store_ids[0]",
        "No vector store found with id 'vs_abc'",
    ),
    (
        {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-gone"]}]}}},
        "tool_resources.file_search.vector_stores[0].file_ids[0]",
        "No file found with id 'file-gone'",
    ),
]
MISSING_IDS = ["code-interpreter-file", "vector-store-id", "inline-store-file"]


@pytest.mark.parametrize(("fields", "param", "message"), MISSING_ON_ASSISTANTS, ids=MISSING_IDS)
def test_assistant_create_refuses_what_does_not_exist(
    client: openai.OpenAI, fields: dict[str, Any], param: str, message: str
) -> None:
    before = assistant(client)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model="gpt-4o", **fields)

    error = sdk_error(caught.value, 400)
    assert error["param"] == param and message in error["message"]
    assert newest_assistant(client) == before


@pytest.mark.parametrize(("fields", "param", "message"), MISSING_ON_ASSISTANTS, ids=MISSING_IDS)
def test_assistant_update_refuses_what_does_not_exist(
    client: openai.OpenAI, fields: dict[str, Any], param: str, message: str
) -> None:
    assistant_id = assistant(client, tools=[FUNCTION])
    before = raw(client, f"/assistants/{assistant_id}")

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.update(assistant_id, name="renamed", **fields)

    error = sdk_error(caught.value, 400)
    assert error["param"] == param and message in error["message"]
    assert raw(client, f"/assistants/{assistant_id}") == before


@pytest.mark.parametrize(
    ("tool_resources", "stored"),
    [
        ({}, {}),
        ({"code_interpreter": {"file_ids": []}}, {"code_interpreter": {"file_ids": []}}),
        ({"file_search": {"vector_store_ids": []}}, {"file_search": {"vector_store_ids": []}}),
        (
            {"code_interpreter": {}, "file_search": {"vector_stores": []}},
            # Inline stores are made and named by id; none asked, none made.
            {"code_interpreter": {"file_ids": []}, "file_search": {"vector_store_ids": []}},
        ),
    ],
    ids=["empty", "no-file-ids", "no-vector-store-ids", "all-empty"],
)
def test_empty_tool_resources_are_accepted_everywhere(
    client: openai.OpenAI,
    model_name: str,
    tool_resources: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    assistant_id = assistant(client, model=model_name, tool_resources=tool_resources)
    client.beta.assistants.update(assistant_id, tool_resources=tool_resources)
    thread = client.beta.threads.create(tool_resources=tool_resources)
    client.beta.threads.update(thread.id, tool_resources=tool_resources)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        extra_body={"tool_resources": tool_resources},
    )
    both = client.beta.threads.create_and_run_poll(
        assistant_id=assistant_id, tool_resources=tool_resources
    )

    assert run.status == "completed" and both.status == "completed"
    # OpenAI's run has no `tool_resources` (Azure's does: `test_azure.py`).
    assert "tool_resources" not in raw(client, f"/threads/{thread.id}/runs/{run.id}")
    assert raw(client, f"/threads/{thread.id}")["tool_resources"] == stored
    assert raw(client, f"/assistants/{assistant_id}")["tool_resources"] == stored


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"tool_resources": {"code_interpreter": {"file_ids": ["file-1"]}}},
            "tool_resources.code_interpreter.file_ids[0]",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "attachments": [{"file_id": "f"}]}]},
            "messages[0].attachments[0].file_id",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "ok"},
                    {
                        "role": "user",
                        "content": [{"type": "image_file", "image_file": {"file_id": "file-i"}}],
                    },
                ]
            },
            "messages[1].content[0].image_file.file_id",
        ),
    ],
    ids=["tool-resources", "attachment", "image-file"],
)
def test_thread_create_refuses_files_that_do_not_exist(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any], param: str
) -> None:
    before = client.beta.threads.create().id

    refused(post(server, "/threads", body), param)

    assert newest_thread(client) == before


def test_thread_update_refuses_files_that_do_not_exist(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(metadata={"a": "1"})
    before = raw(client, f"/threads/{thread.id}")

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.update(
            thread.id,
            metadata={"a": "2"},
            tool_resources={"file_search": {"vector_store_ids": ["vs_1"]}},
        )

    assert sdk_error(caught.value, 400)["param"] == "tool_resources.file_search.vector_store_ids[0]"
    assert raw(client, f"/threads/{thread.id}") == before


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"content": "x", "attachments": [{"file_id": "file-1", "tools": []}]},
            "attachments[0].file_id",
            None,
        ),
        (
            {
                "content": "x",
                "attachments": [
                    {
                        "data_source": {"uri": "https://example.com/a.pdf", "type": "uri_asset"},
                        "tools": [{"type": "file_search"}],
                    }
                ],
            },
            "attachments[0].data_source",
            "unsupported_value",
        ),
        (
            {
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_file", "image_file": {"file_id": "file-img"}},
                ]
            },
            "content[1].image_file.file_id",
            None,
        ),
    ],
    ids=["attachment-file-id", "attachment-data-source", "image-file"],
)
def test_message_create_refuses_files_that_do_not_exist(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any], param: str, code: Any
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    before = messages_of(client, thread.id)

    error = refused(post(server, f"/threads/{thread.id}/messages", {"role": "user", **body}), param)

    assert error["code"] == code
    if code == "unsupported_value":
        assert error["message"] == "attachments with data_source are not supported yet."
    assert messages_of(client, thread.id) == before


def test_empty_attachments_are_accepted(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    message = client.beta.threads.messages.create(
        thread.id, role="user", content="x", attachments=[]
    )

    assert message.attachments == []


RUN_REFUSED = [
    ({"tool_choice": {"type": "file_search"}}, "tool_choice", None),
    ({"tools": [FUNCTION], "tool_choice": {"type": "code_interpreter"}}, "tool_choice", None),
    (
        {"tool_resources": {"code_interpreter": {"file_ids": ["file-x"]}}},
        "tool_resources.code_interpreter.file_ids[0]",
        None,
    ),
    ({"include": ["step_details.nothing"]}, "include[0]", "invalid_value"),
    (
        {
            "additional_messages": [
                {"role": "user", "content": "x", "attachments": [{"file_id": "f"}]}
            ]
        },
        "additional_messages[0].attachments[0].file_id",
        None,
    ),
]
RUN_REFUSED_IDS = [
    "choice-file_search-without-the-tool",
    "choice-code_interpreter-without-the-tool",
    "tool-resources",
    "include-in-body",
    "additional-message-attachment",
]


@pytest.mark.parametrize(("options", "param", "code"), RUN_REFUSED, ids=RUN_REFUSED_IDS)
def test_run_create_refuses_what_it_cannot_carry_out(
    client: openai.OpenAI, server: ServerProcess, options: dict[str, Any], param: str, code: Any
) -> None:
    assistant_id = assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    before = messages_of(client, thread.id)

    body = {"assistant_id": assistant_id, **options}
    error = refused(post(server, f"/threads/{thread.id}/runs", body), param)

    assert error["code"] == code
    assert runs_of(client, thread.id) == [] and messages_of(client, thread.id) == before


def test_include_on_run_create_says_what_it_takes(client: openai.OpenAI) -> None:
    assistant_id = assistant(client)
    thread = client.beta.threads.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant_id,
            include=["step_details.everything"],  # type: ignore[list-item]
        )

    error = sdk_error(caught.value, 400)
    assert error["param"] == "include[]" and error["code"] == "invalid_value"
    assert INCLUDE in error["message"]
    assert runs_of(client, thread.id) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        (
            {"tool_resources": {"code_interpreter": {"file_ids": ["file-x"]}}},
            "tool_resources.code_interpreter.file_ids[0]",
        ),
        (
            {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}},
            "tool_resources.file_search.vector_store_ids[0]",
        ),
        (
            {
                "thread": {
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "image_file", "image_file": {"file_id": "f"}}],
                        }
                    ]
                }
            },
            "thread.messages[0].content[0].image_file.file_id",
        ),
        (
            {"thread": {"tool_resources": {"code_interpreter": {"file_ids": ["f"]}}}},
            "thread.tool_resources.code_interpreter.file_ids[0]",
        ),
    ],
    ids=[
        "tool-choice",
        "code-interpreter-file",
        "tool-resources",
        "thread-image-file",
        "thread-tool-resources",
    ],
)
def test_create_thread_and_run_refuses_what_it_cannot_carry_out(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any], param: str
) -> None:
    assistant_id = assistant(client)
    before = client.beta.threads.create().id

    refused(post(server, "/threads/runs", {"assistant_id": assistant_id, **body}), param)

    assert newest_thread(client) == before


# -- the code interpreter: taken where it runs, refused where it is switched off --------------

CODE: CodeInterpreterToolParam = {"type": "code_interpreter"}


def upload(client: openai.OpenAI) -> str:
    return client.files.create(file=("data.csv", b"x,y\n1,2\n"), purpose="assistants").id


def filled(value: Any, names: dict[str, str]) -> Any:
    """`value` with each string that is a key of `names` (`"FILE"`, ...) replaced by its id."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [filled(item, names) for item in value]
    if isinstance(value, dict):
        return {key: filled(item, names) for key, item in value.items()}
    return value


def refused_with_nothing_stored(
    client: openai.OpenAI, path: str, body: dict[str, Any], param: str
) -> dict[str, Any]:
    """POST `body` to `path` (`{assistant}` and `{thread}` in it, `"ASSISTANT"`, `"THREAD"`
    and `"FILE"` in `body`, name a fresh assistant, thread and file): refused with a 400
    naming `param`, and no assistant, thread, message or run made or changed."""
    assistant_id = assistant(client, tools=[FUNCTION])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    names = {"ASSISTANT": assistant_id, "THREAD": thread.id, "FILE": upload(client)}
    before = (raw(client, f"/assistants/{assistant_id}"), raw(client, f"/threads/{thread.id}"))
    messages = messages_of(client, thread.id)

    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            path.format(assistant=assistant_id, thread=thread.id),
            body=filled(body, names),
            cast_to=httpx.Response,
        )

    error = sdk_error(caught.value, 400)
    assert error["param"] == param, error
    assert newest_assistant(client) == assistant_id and newest_thread(client) == thread.id
    assert (raw(client, f"/assistants/{assistant_id}"), raw(client, f"/threads/{thread.id}")) == (
        before
    )
    assert messages_of(client, thread.id) == messages and runs_of(client, thread.id) == []
    return error


def test_the_code_interpreter_tool_is_taken_by_assistants_and_runs(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """Stored, and offered to the model as its one function, `code_interpreter`."""
    coding = client.beta.assistants.create(model=model_name, tools=[CODE])
    plain = assistant(client, model=model_name, tools=[FUNCTION])
    updated = client.beta.assistants.update(plain, tools=[FUNCTION, CODE])  # type: ignore[list-item]
    toolless = assistant(client, model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    inherited = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=coding.id
    )
    chosen = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=toolless, tools=[CODE]
    )
    both = client.beta.threads.create_and_run_poll(
        assistant_id=toolless,
        tools=[CODE],
        thread={"messages": [{"role": "user", "content": "hi"}]},
    )

    assert [tool.type for tool in coding.tools] == ["code_interpreter"]
    assert raw(client, f"/assistants/{coding.id}")["tools"] == [CODE]
    assert [tool.type for tool in updated.tools] == ["function", "code_interpreter"]
    assert [tool["type"] for tool in raw(client, f"/assistants/{plain}")["tools"]] == [
        "function",
        "code_interpreter",
    ]
    assert [run.status for run in (inherited, chosen, both)] == ["completed"] * 3
    assert [[tool.type for tool in run.tools] for run in (inherited, chosen, both)] == [
        ["code_interpreter"]
    ] * 3
    offered = [
        [tool["function"]["name"] for tool in body["tools"]]
        for body in scripted_model.requests(model_name)
    ]
    assert offered == [["code_interpreter"]] * 3


def test_code_interpreter_files_that_exist_are_stored(
    client: openai.OpenAI, model_name: str
) -> None:
    file_id = upload(client)
    resources: Any = {"code_interpreter": {"file_ids": [file_id]}}
    coding = client.beta.assistants.create(model=model_name, tools=[CODE], tool_resources=resources)
    later = assistant(client, model=model_name)
    client.beta.assistants.update(later, tool_resources=resources)
    made = client.beta.threads.create(tool_resources=resources)
    changed = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    client.beta.threads.update(changed.id, tool_resources=resources)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=changed.id, assistant_id=coding.id, extra_body={"tool_resources": resources}
    )
    both = client.beta.threads.create_and_run_poll(
        assistant_id=coding.id,
        tool_resources=resources,
        thread={"messages": [{"role": "user", "content": "hi"}], "tool_resources": resources},
    )

    assert run.status == "completed" and both.status == "completed"
    for assistant_id in (coding.id, later):
        kept = client.beta.assistants.retrieve(assistant_id).tool_resources
        assert kept is not None and kept.code_interpreter is not None
        assert kept.code_interpreter.file_ids == [file_id]
    for thread_id in (made.id, changed.id, both.thread_id):
        held = client.beta.threads.retrieve(thread_id).tool_resources
        assert held is not None and held.code_interpreter is not None
        assert held.code_interpreter.file_ids == [file_id]


# Each request with a file of the project, then one that does not exist.
UNKNOWN_CODE_FILE = {"code_interpreter": {"file_ids": ["FILE", "file-gone"]}}
UNKNOWN_PARAM = "tool_resources.code_interpreter.file_ids[1]"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/assistants", {"model": "gpt-4o", "tool_resources": UNKNOWN_CODE_FILE}, UNKNOWN_PARAM),
        ("/assistants/{assistant}", {"tool_resources": UNKNOWN_CODE_FILE}, UNKNOWN_PARAM),
        ("/threads", {"tool_resources": UNKNOWN_CODE_FILE}, UNKNOWN_PARAM),
        ("/threads/{thread}", {"tool_resources": UNKNOWN_CODE_FILE}, UNKNOWN_PARAM),
        (
            "/threads/{thread}/runs",
            {"assistant_id": "ASSISTANT", "tool_resources": UNKNOWN_CODE_FILE},
            UNKNOWN_PARAM,
        ),
        (
            "/threads/runs",
            {"assistant_id": "ASSISTANT", "tool_resources": UNKNOWN_CODE_FILE},
            UNKNOWN_PARAM,
        ),
        (
            "/threads/runs",
            {"assistant_id": "ASSISTANT", "thread": {"tool_resources": UNKNOWN_CODE_FILE}},
            f"thread.{UNKNOWN_PARAM}",
        ),
    ],
    ids=[
        "assistant-create",
        "assistant-update",
        "thread-create",
        "thread-update",
        "run",
        "create-and-run",
        "create-and-run-thread",
    ],
)
def test_a_code_interpreter_file_that_does_not_exist_is_refused(
    client: openai.OpenAI, path: str, body: dict[str, Any], param: str
) -> None:
    error = refused_with_nothing_stored(client, path, body, param)

    assert error["message"] == "No file found with id 'file-gone'."


# -- ... and on a server with it switched off -------------------------------------------------

CODE_FILES = {"code_interpreter": {"file_ids": ["FILE"]}}
CODE_ATTACHMENT = {"file_id": "FILE", "tools": [CODE]}
ATTACHED = {"role": "user", "content": "run this", "attachments": [CODE_ATTACHMENT]}
THE_TOOL = "The code_interpreter tool"
OFF_REFUSALS = [
    ("/assistants", {"model": "m", "tools": [FUNCTION, CODE]}, "tools[1]", THE_TOOL),
    (
        "/assistants",
        {"model": "m", "tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    ("/assistants/{assistant}", {"tools": [CODE]}, "tools[0]", THE_TOOL),
    (
        "/assistants/{assistant}",
        {"tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    (
        "/threads",
        {"tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    ("/threads", {"messages": [ATTACHED]}, "messages[0].attachments[0].tools[0]", THE_TOOL),
    (
        "/threads/{thread}",
        {"tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    ("/threads/{thread}/messages", ATTACHED, "attachments[0].tools[0]", THE_TOOL),
    (
        "/threads/{thread}/runs",
        {"assistant_id": "ASSISTANT", "tools": [CODE]},
        "tools[0]",
        THE_TOOL,
    ),
    (
        "/threads/{thread}/runs",
        {"assistant_id": "ASSISTANT", "tool_choice": CODE},
        "tool_choice",
        "tool_choice naming the code_interpreter tool",
    ),
    (
        "/threads/{thread}/runs",
        {"assistant_id": "ASSISTANT", "tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    (
        "/threads/{thread}/runs",
        {"assistant_id": "ASSISTANT", "additional_messages": [ATTACHED]},
        "additional_messages[0].attachments[0].tools[0]",
        THE_TOOL,
    ),
    ("/threads/runs", {"assistant_id": "ASSISTANT", "tools": [CODE]}, "tools[0]", THE_TOOL),
    (
        "/threads/runs",
        {"assistant_id": "ASSISTANT", "tool_resources": CODE_FILES},
        "tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    (
        "/threads/runs",
        {"assistant_id": "ASSISTANT", "thread": {"tool_resources": CODE_FILES}},
        "thread.tool_resources.code_interpreter.file_ids",
        THE_TOOL,
    ),
    (
        "/threads/runs",
        {"assistant_id": "ASSISTANT", "thread": {"messages": [ATTACHED]}},
        "thread.messages[0].attachments[0].tools[0]",
        THE_TOOL,
    ),
]
OFF_REFUSAL_IDS = [
    "assistant-create-tool",
    "assistant-create-files",
    "assistant-update-tool",
    "assistant-update-files",
    "thread-create-files",
    "thread-create-attachment",
    "thread-update-files",
    "message-attachment",
    "run-tool",
    "run-tool-choice",
    "run-files",
    "run-additional-message-attachment",
    "create-and-run-tool",
    "create-and-run-files",
    "create-and-run-thread-files",
    "create-and-run-thread-attachment",
]


@pytest.fixture
def off_client(code_off_server: ServerProcess) -> openai.OpenAI:
    return openai_client(code_off_server, API_KEY)


@pytest.mark.parametrize(("path", "body", "param", "what"), OFF_REFUSALS, ids=OFF_REFUSAL_IDS)
def test_with_the_code_interpreter_off_every_request_for_it_is_refused(
    off_client: openai.OpenAI, path: str, body: dict[str, Any], param: str, what: str
) -> None:
    """With a file of the project: refused because the tool is off, not for the file."""
    error = refused_with_nothing_stored(off_client, path, body, param)

    assert error["code"] == "unsupported_value"
    assert error["message"] == f"{what} is not available on this server: {CODE_OFF_REASON}."


def test_with_the_code_interpreter_off_what_does_not_ask_for_it_is_taken(
    off_client: openai.OpenAI, model_name: str
) -> None:
    """The valid edge: no files for it, and other tools, as clients send by default."""
    empty: Any = {"code_interpreter": {"file_ids": []}}
    assistant_id = assistant(off_client, model=model_name, tools=[FUNCTION], tool_resources=empty)
    thread = off_client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "attachments": []}], tool_resources=empty
    )

    run = off_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, extra_body={"tool_resources": empty}
    )

    assert run.status == "completed"
    assert raw(off_client, f"/assistants/{assistant_id}")["tool_resources"] == empty
    assert raw(off_client, f"/threads/{thread.id}")["tool_resources"] == empty


# -- checked as the clients' schemas say ----------------------------------------------------


@pytest.mark.parametrize(
    ("json_schema", "param"),
    [
        ({}, "response_format.json_schema.name"),
        ({"name": "has spaces"}, "response_format.json_schema.name"),
        ({"name": "x" * 65}, "response_format.json_schema.name"),
        ({"name": 5}, "response_format.json_schema.name"),
        ({"name": "r", "strict": "yes"}, "response_format.json_schema.strict"),
        ({"name": "r", "schema": "an object"}, "response_format.json_schema.schema"),
        ({"name": "r", "schema": ["type", "object"]}, "response_format.json_schema.schema"),
        ({"name": "r", "description": 5}, "response_format.json_schema.description"),
        ({"name": "r", "colour": "blue"}, "response_format.json_schema.colour"),
    ],
    ids=[
        "no-name",
        "name-with-spaces",
        "name-65",
        "name-number",
        "strict-string",
        "schema-string",
        "schema-list",
        "description-number",
        "unknown-key",
    ],
)
def test_json_schema_response_format_is_checked(
    client: openai.OpenAI, server: ServerProcess, json_schema: dict[str, Any], param: str
) -> None:
    before = assistant(client)
    thread = client.beta.threads.create()
    response_format = {"type": "json_schema", "json_schema": json_schema}

    refused(post(server, "/assistants", {"model": "m", "response_format": response_format}), param)
    refused(post(server, f"/assistants/{before}", {"response_format": response_format}), param)
    run_body = {"assistant_id": before, "response_format": response_format}
    refused(post(server, f"/threads/{thread.id}/runs", run_body), param)

    assert newest_assistant(client) == before
    assert raw(client, f"/assistants/{before}")["response_format"] == "auto"
    assert runs_of(client, thread.id) == []


@pytest.mark.parametrize(
    "json_schema",
    [
        {"name": "x" * 64},
        {"name": "A-b_9", "strict": None, "schema": {}},
        {"name": "r", "description": "d", "schema": {"type": "object"}, "strict": False},
    ],
    ids=["name-64", "strict-null", "every-key"],
)
def test_json_schema_at_the_edges_round_trips(
    client: openai.OpenAI, json_schema: dict[str, Any]
) -> None:
    """Served back as sent, and read by the SDK with strict response validation."""
    strict = openai.OpenAI(
        base_url=str(client.base_url), api_key="k", _strict_response_validation=True
    )
    response_format = {"type": "json_schema", "json_schema": json_schema}

    created = strict.beta.assistants.create(
        model="gpt-4o",
        response_format=response_format,  # type: ignore[arg-type]
    )

    assert raw(client, f"/assistants/{created.id}")["response_format"] == response_format
    assert strict.beta.assistants.retrieve(created.id).id == created.id


@pytest.mark.parametrize(
    ("file_search", "param"),
    [
        ({"max_num_results": "lots"}, "tools[0].file_search.max_num_results"),
        ({"max_num_results": 0}, "tools[0].file_search.max_num_results"),
        ({"max_num_results": 51}, "tools[0].file_search.max_num_results"),
        ({"max_num_results": 5.5}, "tools[0].file_search.max_num_results"),
        (
            {"ranking_options": {"ranker": "best", "score_threshold": 0.5}},
            "tools[0].file_search.ranking_options.ranker",
        ),
        (
            {"ranking_options": {"score_threshold": 5}},
            "tools[0].file_search.ranking_options.score_threshold",
        ),
        (
            {"ranking_options": {"score_threshold": -0.1}},
            "tools[0].file_search.ranking_options.score_threshold",
        ),
        (
            {"ranking_options": {"ranker": "auto"}},
            "tools[0].file_search.ranking_options.score_threshold",
        ),
        ({"colour": "blue"}, "tools[0].file_search.colour"),
    ],
    ids=[
        "results-string",
        "results-0",
        "results-51",
        "results-fraction",
        "ranker-unknown",
        "threshold-5",
        "threshold-negative",
        "threshold-missing",
        "unknown-key",
    ],
)
def test_file_search_options_are_checked_before_the_tool_is_refused(
    client: openai.OpenAI, server: ServerProcess, file_search: dict[str, Any], param: str
) -> None:
    before = assistant(client)

    error = refused(
        post(
            server,
            "/assistants",
            {"model": "m", "tools": [{"type": "file_search", "file_search": file_search}]},
        ),
        param,
    )

    assert "not supported" not in error["message"]
    assert newest_assistant(client) == before


@pytest.mark.parametrize(
    "file_search",
    [
        {"max_num_results": 1},
        {"max_num_results": 50},
        {"max_num_results": 20.0},
        {"ranking_options": {"score_threshold": 0}},
        {"ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 1}},
        {"ranking_options": {"ranker": "auto", "score_threshold": 0.5}},
    ],
    ids=["results-1", "results-50", "results-20.0", "threshold-0", "threshold-1", "auto"],
)
def test_valid_file_search_options_are_kept(
    client: openai.OpenAI, server: ServerProcess, file_search: dict[str, Any]
) -> None:
    tools = [{"type": "file_search", "file_search": file_search}]

    created = post(server, "/assistants", {"model": "m", "tools": tools})

    assert created.status_code == 200, created.text
    [kept] = created.json()["tools"]
    assert kept["type"] == "file_search"
    for name, value in file_search.items():
        assert kept["file_search"][name] == value


@pytest.mark.parametrize(
    ("image_url", "param"),
    [
        ({"url": "u"}, "content[0].image_url.url"),
        ({"url": "ftp://example.com/a.png"}, "content[0].image_url.url"),
        ({"url": "https://"}, "content[0].image_url.url"),
        ({"url": "https://exa mple.com/a.png"}, "content[0].image_url.url"),
        ({"url": "https://example.com/\n.png"}, "content[0].image_url.url"),
        ({"url": "javascript:alert(1)"}, "content[0].image_url.url"),
        ({"url": "data:text/plain;base64,aGk="}, "content[0].image_url.url"),
        ({"url": "data:image/png;base64,"}, "content[0].image_url.url"),
        ({"url": "data:image/png,rawbytes"}, "content[0].image_url.url"),
        ({"url": 5}, "content[0].image_url.url"),
        ({"url": "https://example.com/a.png", "detail": "ultra"}, "content[0].image_url.detail"),
    ],
    ids=[
        "word",
        "ftp",
        "no-host",
        "space",
        "newline",
        "javascript",
        "data-not-image",
        "data-empty",
        "data-not-base64",
        "number",
        "detail",
    ],
)
def test_image_url_is_checked(
    client: openai.OpenAI, server: ServerProcess, image_url: dict[str, Any], param: str
) -> None:
    thread = client.beta.threads.create()
    body = {"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}

    refused(post(server, f"/threads/{thread.id}/messages", body), param)

    assert messages_of(client, thread.id) == []


@pytest.mark.parametrize(
    "image_url",
    [
        {"url": "https://example.com/cat.png?size=large#top", "detail": "high"},
        {"url": "http://127.0.0.1:8080/a.jpg", "detail": "low"},
        {"url": "https://bücher.example/ç.png"},
        {"url": PNG, "detail": "auto"},
    ],
    ids=["https", "http-with-port", "non-ascii", "data-url"],
)
def test_image_url_at_the_edges_is_kept(client: openai.OpenAI, image_url: dict[str, Any]) -> None:
    thread = client.beta.threads.create()

    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[{"type": "image_url", "image_url": image_url}],  # type: ignore[typeddict-item]
    )

    assert messages_of(client, thread.id)[0]["content"] == [
        {"type": "image_url", "image_url": {"detail": "auto", **image_url}}
    ]
    assert message.id == messages_of(client, thread.id)[0]["id"]


# -- integers, token minimums -----------------------------------------------------------------


def test_integer_valued_floats_are_taken_as_integers(
    client: openai.OpenAI, server: ServerProcess, model_name: str
) -> None:
    assistant_id = assistant(client, model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    body = {
        "assistant_id": assistant_id,
        "max_completion_tokens": 256.0,
        "max_prompt_tokens": 1000.0,
        "truncation_strategy": {"type": "last_messages", "last_messages": 3.0},
    }

    response = post(server, f"/threads/{thread.id}/runs", body)

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["max_completion_tokens"] == 256 and isinstance(run["max_completion_tokens"], int)
    assert run["max_prompt_tokens"] == 1000 and isinstance(run["max_prompt_tokens"], int)
    assert run["truncation_strategy"] == {"type": "last_messages", "last_messages": 3}
    done = client.beta.threads.runs.poll(run["id"], thread_id=thread.id)
    assert done.status == "completed"
    assert raw(client, "/assistants?limit=2.0")["data"][0]["id"] == assistant_id


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"max_completion_tokens": 256.5}, "max_completion_tokens"),
        ({"max_prompt_tokens": 1e3 + 0.25}, "max_prompt_tokens"),
        ({"max_completion_tokens": True}, "max_completion_tokens"),
        ({"max_completion_tokens": "256"}, "max_completion_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_prompt_tokens": 0}, "max_prompt_tokens"),
        ({"max_prompt_tokens": -1.0}, "max_prompt_tokens"),
        (
            {"truncation_strategy": {"type": "last_messages", "last_messages": 2.5}},
            "truncation_strategy.last_messages",
        ),
    ],
    ids=[
        "fraction",
        "prompt-fraction",
        "bool",
        "string",
        "completion-0",
        "prompt-0",
        "prompt-negative-float",
        "last-messages-fraction",
    ],
)
def test_numbers_that_are_not_positive_integers_are_refused(
    client: openai.OpenAI, server: ServerProcess, options: dict[str, Any], param: str
) -> None:
    assistant_id = assistant(client)
    thread = client.beta.threads.create()

    refused(
        post(server, f"/threads/{thread.id}/runs", {"assistant_id": assistant_id, **options}), param
    )

    assert runs_of(client, thread.id) == []


def test_one_token_is_the_smallest_budget_for_both(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """One rule for both minimums: any positive integer. A budget too small for the prompt
    ends the run `incomplete`, as any budget does."""
    scripted_model.script(model_name, Reply("cut", finish_reason="length", completion_tokens=1))
    assistant_id = assistant(client, model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    completion = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_completion_tokens=1
    )
    prompt = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_prompt_tokens=1
    )

    assert completion.max_completion_tokens == 1 and prompt.max_prompt_tokens == 1
    assert completion.status == "incomplete" and prompt.status == "incomplete"
    assert completion.incomplete_details is not None and prompt.incomplete_details is not None
    assert completion.incomplete_details.reason == "max_completion_tokens"
    assert prompt.incomplete_details.reason == "max_prompt_tokens"
    assert scripted_model.requests(model_name)[0]["max_tokens"] == 1


# -- reasoning_effort -------------------------------------------------------------------------


EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh", "max"]


@pytest.mark.parametrize("effort", EFFORTS)
def test_every_reasoning_effort_of_the_sdk_is_stored_on_create_and_modify(
    client: openai.OpenAI, effort: str
) -> None:
    created = assistant(client, reasoning_effort=effort)
    other = assistant(client)

    client.beta.assistants.update(other, reasoning_effort=effort)  # type: ignore[arg-type]

    assert raw(client, f"/assistants/{created}")["reasoning_effort"] == effort
    assert raw(client, f"/assistants/{other}")["reasoning_effort"] == effort


def test_reasoning_effort_is_refused_outside_the_sdk_s_values(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    before = assistant(client)

    refused(
        post(server, "/assistants", {"model": "m", "reasoning_effort": "extreme"}),
        "reasoning_effort",
    )

    assert newest_assistant(client) == before
    assert raw(client, f"/assistants/{before}")["reasoning_effort"] is None


def test_reasoning_effort_goes_from_assistant_or_run_to_the_upstream(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    thinking = assistant(client, model=model_name, reasoning_effort="max")
    plain = assistant(client, model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    inherited = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=thinking)
    chosen = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=thinking, reasoning_effort="low"
    )
    unset = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=plain)

    assert [r.status for r in (inherited, chosen, unset)] == ["completed"] * 3
    assert raw(client, f"/threads/{thread.id}/runs/{inherited.id}")["reasoning_effort"] == "max"
    assert raw(client, f"/threads/{thread.id}/runs/{chosen.id}")["reasoning_effort"] == "low"
    assert raw(client, f"/threads/{thread.id}/runs/{unset.id}")["reasoning_effort"] is None
    sent = scripted_model.requests(model_name)
    assert [body.get("reasoning_effort") for body in sent] == ["max", "low", None]
    assert "reasoning_effort" not in sent[2]


# -- what was stored before the tool was switched off -----------------------------------------


def _give_stored_tools(database_url: str, assistant_id: str, tools: list[Any]) -> None:
    """Write tools into a stored assistant as the server did while it could run them."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)) as db:
            (body,) = db.execute(
                "SELECT body FROM assistants WHERE id = ?", (assistant_id,)
            ).fetchone()
            db.execute(
                "UPDATE assistants SET body = ? WHERE id = ?",
                (json.dumps({**json.loads(body), "tools": tools}), assistant_id),
            )
            db.commit()
        return

    async def update() -> None:
        connection = await asyncpg.connect(database_url, timeout=10)
        try:
            await connection.execute(
                "UPDATE assistants SET body = jsonb_set(body, '{tools}', $1::jsonb) WHERE id = $2",
                json.dumps(tools),
                assistant_id,
            )
        finally:
            await connection.close()

    asyncio.run(update())


def test_a_run_of_an_assistant_stored_with_a_tool_since_switched_off_is_refused(
    off_client: openai.OpenAI, code_off_server: ServerProcess, model_name: str
) -> None:
    """Not run without the tool: the run says why, and may bring its own tools instead."""
    assistant_id = assistant(off_client, model=model_name, tools=[FUNCTION])
    _give_stored_tools(code_off_server.database_url, assistant_id, [CODE])
    thread = off_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    with pytest.raises(openai.BadRequestError) as caught:
        off_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    own_tools = off_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        tools=[FUNCTION],  # type: ignore[list-item]
    )

    error = sdk_error(caught.value, 400)
    assert error["param"] == "assistant_id" and error["code"] == "unsupported_value"
    assert "code_interpreter" in error["message"] and CODE_OFF_REASON in error["message"]
    assert own_tools.status == "completed"
    assert [run["id"] for run in runs_of(off_client, thread.id)] == [own_tools.id]
