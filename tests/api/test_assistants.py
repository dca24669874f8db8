"""Assistants through the openai SDK: every field, partial updates, exact cursors, and errors.

Every error test checks three things: the HTTP status, an OpenAI-shaped body
(`{"error": {"message", "type", "param", "code"}}`) and that nothing was stored or changed.
The server is shared by the whole session, so list assertions are scoped to the test's own
objects (an "anchor" assistant created first bounds what the test may see).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest
from openai.types.beta import Assistant
from support.errors import assert_error_body, sdk_error
from support.server import ServerProcess

FUNCTION_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

PING_TOOL: dict[str, Any] = {"type": "function", "function": {"name": "ping"}}

JSON_SCHEMA_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "weather_report",
        "description": "A weather report.",
        "schema": {
            "type": "object",
            "properties": {"temperature": {"type": "number"}},
            "required": ["temperature"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

ASSISTANT_KEYS = {
    "id",
    "object",
    "created_at",
    "name",
    "description",
    "model",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
    "reasoning_effort",
}


# -- helpers -------------------------------------------------------------------------------


def raw_assistant(client: openai.OpenAI, assistant_id: str) -> dict[str, Any]:
    """The assistant exactly as the server sent it, not as the SDK parsed it."""
    response = client.beta.assistants.with_raw_response.retrieve(assistant_id)
    body: dict[str, Any] = response.http_response.json()
    return body


def http_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    return assert_error_body(response.json(), status, response.status_code)


def anchor(client: openai.OpenAI) -> str:
    """An assistant created before the test acts: anything newer was created by the test."""
    return client.beta.assistants.create(model="anchor-model", name="anchor").id


def created_since(client: openai.OpenAI, anchor_id: str) -> list[Assistant]:
    return list(client.beta.assistants.list(order="asc", after=anchor_id, limit=100))


def post_raw(server: ServerProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", timeout=30, **kwargs)


def full_assistant(client: openai.OpenAI, **overrides: Any) -> Assistant:
    fields: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "name": "Weather bot",
        "description": "Answers questions about the weather.",
        "instructions": "You are a weather bot. Use the tools.",
        # Built-in tools and file ids are refused until the service can run and hold them
        # (test_validation.py); empty resources are what clients send meanwhile.
        "tools": [FUNCTION_TOOL, PING_TOOL],
        "tool_resources": {
            "code_interpreter": {"file_ids": []},
            "file_search": {"vector_store_ids": []},
        },
        "metadata": {"team": "weather", "tag": uuid.uuid4().hex},
        "temperature": 0.25,
        "top_p": 0.5,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
    }
    fields.update(overrides)
    return client.beta.assistants.create(**fields)


# -- create and retrieve ---------------------------------------------------------------------


def test_create_with_every_field_returns_them_field_for_field(client: openai.OpenAI) -> None:
    tag = uuid.uuid4().hex
    created = full_assistant(client, metadata={"team": "weather", "tag": tag})

    assert created.id.startswith("asst_")
    assert created.object == "assistant"
    assert isinstance(created.created_at, int) and created.created_at > 0
    assert created.model == "gpt-4o-mini"
    assert created.name == "Weather bot"
    assert created.description == "Answers questions about the weather."
    assert created.instructions == "You are a weather bot. Use the tools."
    assert [tool.type for tool in created.tools] == ["function", "function"]
    assert created.metadata == {"team": "weather", "tag": tag}
    assert created.temperature == 0.25
    assert created.top_p == 0.5
    assert created.tool_resources is not None
    assert created.tool_resources.code_interpreter is not None
    assert created.tool_resources.code_interpreter.file_ids == []
    assert created.tool_resources.file_search is not None
    assert created.tool_resources.file_search.vector_store_ids == []

    raw = raw_assistant(client, created.id)
    assert set(raw) == ASSISTANT_KEYS
    assert raw["tools"] == [FUNCTION_TOOL, PING_TOOL]
    assert raw["response_format"] == {"type": "json_object"}
    assert raw["reasoning_effort"] == "low"
    assert raw["tool_resources"] == {
        "code_interpreter": {"file_ids": []},
        "file_search": {"vector_store_ids": []},
    }


def test_retrieve_returns_what_create_returned(client: openai.OpenAI) -> None:
    created = full_assistant(client)

    retrieved = client.beta.assistants.retrieve(created.id)

    assert retrieved.model_dump() == created.model_dump()


def test_create_with_only_a_model_fills_the_defaults(client: openai.OpenAI) -> None:
    created = client.beta.assistants.create(model="gpt-4o")

    raw = raw_assistant(client, created.id)
    assert set(raw) == ASSISTANT_KEYS
    assert raw["model"] == "gpt-4o"
    assert raw["name"] is None
    assert raw["description"] is None
    assert raw["instructions"] is None
    assert raw["tools"] == []
    assert raw["metadata"] == {}
    assert raw["temperature"] is None
    assert raw["top_p"] is None
    assert raw["response_format"] == "auto"
    assert raw["tool_resources"] == {}
    assert raw["reasoning_effort"] is None


@pytest.mark.parametrize(
    "response_format",
    ["auto", {"type": "text"}, {"type": "json_object"}, JSON_SCHEMA_FORMAT],
    ids=["auto", "text", "json_object", "json_schema"],
)
def test_response_format_round_trips(client: openai.OpenAI, response_format: Any) -> None:
    created = client.beta.assistants.create(model="gpt-4o", response_format=response_format)

    assert raw_assistant(client, created.id)["response_format"] == response_format
    if isinstance(response_format, dict):
        assert created.response_format is not None
        assert created.response_format.type == response_format["type"]  # type: ignore[union-attr]
    else:
        assert created.response_format == "auto"


def test_function_tool_parameters_round_trip_exactly(client: openai.OpenAI) -> None:
    minimal = {"type": "function", "function": {"name": "ping"}}
    created = client.beta.assistants.create(
        model="gpt-4o",
        tools=[FUNCTION_TOOL, minimal],  # type: ignore[list-item]
    )

    tools = raw_assistant(client, created.id)["tools"]
    assert tools == [FUNCTION_TOOL, minimal]
    function = created.tools[0]
    assert function.type == "function"
    assert function.function.name == "get_weather"
    assert function.function.parameters == FUNCTION_TOOL["function"]["parameters"]
    assert function.function.strict is True


def test_function_parameters_keep_every_number_and_character(client: openai.OpenAI) -> None:
    parameters = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "maximum": 10**30, "minimum": -(2**63)},
            "ratio": {"type": "number", "multipleOf": 0.1},
            "note": {"type": "string", "description": 'naïve café ": 日本語 🧵 "quoted"'},
        },
    }
    tool = {"type": "function", "function": {"name": "count", "parameters": parameters}}
    created = client.beta.assistants.create(model="gpt-4o", tools=[tool])  # type: ignore[list-item]

    stored = raw_assistant(client, created.id)["tools"][0]["function"]["parameters"]
    assert stored == parameters
    assert stored["properties"]["count"]["maximum"] == 10**30
    assert isinstance(stored["properties"]["count"]["maximum"], int)


def test_limits_at_the_boundary_are_accepted(client: openai.OpenAI) -> None:
    metadata = {f"k{i:02d}": "v" for i in range(15)}
    metadata["k" * 64] = "v" * 512
    tools = [{"type": "function", "function": {"name": f"tool_{i}"}} for i in range(128)]

    created = client.beta.assistants.create(
        model="gpt-4o",
        metadata=metadata,
        tools=tools,  # type: ignore[arg-type]
        temperature=2,
        top_p=0,
    )

    retrieved = client.beta.assistants.retrieve(created.id)
    assert retrieved.metadata == metadata
    assert len(retrieved.tools) == 128
    assert retrieved.temperature == 2
    assert retrieved.top_p == 0


# -- modify ----------------------------------------------------------------------------------


def test_modify_changes_only_the_given_fields(client: openai.OpenAI) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    updated = client.beta.assistants.update(created.id, name="Renamed")

    after = raw_assistant(client, created.id)
    assert updated.name == "Renamed"
    assert after == {**before, "name": "Renamed"}
    assert updated.model_dump() == client.beta.assistants.retrieve(created.id).model_dump()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "gpt-4.1"),
        ("description", "New description"),
        ("instructions", "New instructions"),
        ("metadata", {"only": "this"}),
        ("temperature", 1.5),
        ("top_p", 0.1),
        ("tools", [PING_TOOL]),
        ("response_format", JSON_SCHEMA_FORMAT),
        ("response_format", "auto"),
        ("tool_resources", {"code_interpreter": {"file_ids": []}}),
        ("reasoning_effort", "max"),
    ],
)
def test_modify_one_field_leaves_the_others(client: openai.OpenAI, field: str, value: Any) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    client.beta.assistants.update(created.id, **{field: value})

    after = raw_assistant(client, created.id)
    assert after[field] == value
    assert {k: v for k, v in after.items() if k != field} == {
        k: v for k, v in before.items() if k != field
    }


def test_modify_with_no_fields_changes_nothing(client: openai.OpenAI) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    updated = client.beta.assistants.update(created.id)

    assert updated.model_dump() == created.model_dump()
    assert raw_assistant(client, created.id) == before


def test_modify_can_clear_nullable_text_fields(client: openai.OpenAI) -> None:
    created = full_assistant(client)

    client.beta.assistants.update(created.id, name=None, description=None, instructions=None)

    after = raw_assistant(client, created.id)
    assert after["name"] is None
    assert after["description"] is None
    assert after["instructions"] is None
    assert after["model"] == "gpt-4o-mini"


def test_modify_metadata_replaces_it_whole(client: openai.OpenAI) -> None:
    created = client.beta.assistants.create(model="gpt-4o", metadata={"a": "1", "b": "2"})

    client.beta.assistants.update(created.id, metadata={"c": "3"})
    assert client.beta.assistants.retrieve(created.id).metadata == {"c": "3"}

    client.beta.assistants.update(created.id, metadata={})
    assert client.beta.assistants.retrieve(created.id).metadata == {}

    client.beta.assistants.update(created.id, metadata={"d": "4"})
    client.beta.assistants.update(created.id, metadata=None)
    assert raw_assistant(client, created.id)["metadata"] == {}


# -- delete ----------------------------------------------------------------------------------


def test_delete_then_retrieve_is_not_found(client: openai.OpenAI) -> None:
    created = client.beta.assistants.create(model="gpt-4o")

    deleted = client.beta.assistants.delete(created.id)

    assert deleted.id == created.id
    assert deleted.object == "assistant.deleted"
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.assistants.retrieve(created.id)
    error = sdk_error(caught.value, 404)
    assert created.id in error["message"]


def test_deleted_assistant_leaves_the_list_and_cannot_be_deleted_again(
    client: openai.OpenAI,
) -> None:
    start = anchor(client)
    keep = client.beta.assistants.create(model="gpt-4o")
    gone = client.beta.assistants.create(model="gpt-4o")

    client.beta.assistants.delete(gone.id)

    assert [a.id for a in created_since(client, start)] == [keep.id]
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.assistants.delete(gone.id)
    sdk_error(caught.value, 404)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.update(gone.id, name="zombie")
    assert [a.id for a in created_since(client, start)] == [keep.id]


# -- list --------------------------------------------------------------------------------------


def _batch(client: openai.OpenAI, count: int) -> tuple[str, list[str], str]:
    """An anchor, `count` assistants (oldest first) and a sentinel after them."""
    start = anchor(client)
    batch = uuid.uuid4().hex
    ids = [
        client.beta.assistants.create(
            model="gpt-4o", name=f"listed-{i}", metadata={"batch": batch, "i": str(i)}
        ).id
        for i in range(count)
    ]
    sentinel = client.beta.assistants.create(model="gpt-4o", name="sentinel").id
    return start, ids, sentinel


def test_list_pages_ascending_with_after(client: openai.OpenAI) -> None:
    start, ids, sentinel = _batch(client, 7)
    assistants = client.beta.assistants

    first = assistants.list(limit=3, order="asc", after=start)
    second = assistants.list(limit=3, order="asc", after=first.last_id)
    third = assistants.list(limit=3, order="asc", after=second.last_id, before=sentinel)

    assert [a.id for a in first.data] == ids[0:3]
    assert (first.first_id, first.last_id, first.has_more) == (ids[0], ids[2], True)
    assert [a.id for a in second.data] == ids[3:6]
    assert (second.first_id, second.last_id, second.has_more) == (ids[3], ids[5], True)
    assert [a.id for a in third.data] == ids[6:7]
    assert (third.first_id, third.last_id, third.has_more) == (ids[6], ids[6], False)
    assert [a.metadata["i"] for a in first.data + second.data + third.data] == [
        str(i) for i in range(7)
    ]


def test_list_pages_descending_with_after(client: openai.OpenAI) -> None:
    start, ids, sentinel = _batch(client, 7)
    assistants = client.beta.assistants
    newest_first = ids[::-1]

    first = assistants.list(limit=3, order="desc", after=sentinel)
    second = assistants.list(limit=3, order="desc", after=first.last_id)
    third = assistants.list(limit=3, order="desc", after=second.last_id, before=start)

    assert [a.id for a in first.data] == newest_first[0:3]
    assert (first.first_id, first.last_id, first.has_more) == (ids[6], ids[4], True)
    assert [a.id for a in second.data] == newest_first[3:6]
    assert (second.first_id, second.last_id, second.has_more) == (ids[3], ids[1], True)
    assert [a.id for a in third.data] == newest_first[6:7]
    assert (third.first_id, third.last_id, third.has_more) == (ids[0], ids[0], False)


def test_list_pages_backwards_with_before(client: openai.OpenAI) -> None:
    start, ids, sentinel = _batch(client, 7)
    assistants = client.beta.assistants

    # Ascending, walking back from the sentinel: the 3 just before it, still in asc order.
    asc_last = assistants.list(limit=3, order="asc", before=sentinel)
    asc_middle = assistants.list(limit=3, order="asc", before=asc_last.first_id)
    asc_first = assistants.list(limit=3, order="asc", before=asc_middle.first_id, after=start)

    assert [a.id for a in asc_last.data] == ids[4:7]
    assert (asc_last.first_id, asc_last.last_id, asc_last.has_more) == (ids[4], ids[6], True)
    assert [a.id for a in asc_middle.data] == ids[1:4]
    assert asc_middle.has_more is True
    assert [a.id for a in asc_first.data] == ids[0:1]
    assert asc_first.has_more is False

    # Descending, walking back from the anchor: the 3 just after it, newest first.
    desc_oldest = assistants.list(limit=3, order="desc", before=start)
    desc_middle = assistants.list(limit=3, order="desc", before=desc_oldest.first_id)
    desc_newest = assistants.list(
        limit=3, order="desc", before=desc_middle.first_id, after=sentinel
    )

    assert [a.id for a in desc_oldest.data] == [ids[2], ids[1], ids[0]]
    assert (desc_oldest.first_id, desc_oldest.last_id) == (ids[2], ids[0])
    assert desc_oldest.has_more is True
    assert [a.id for a in desc_middle.data] == [ids[5], ids[4], ids[3]]
    assert desc_middle.has_more is True
    assert [a.id for a in desc_newest.data] == [ids[6]]
    assert desc_newest.has_more is False


def test_list_between_two_cursors_is_exact(client: openai.OpenAI) -> None:
    _, ids, _ = _batch(client, 7)

    asc = client.beta.assistants.list(order="asc", after=ids[1], before=ids[5], limit=100)
    desc = client.beta.assistants.list(order="desc", after=ids[5], before=ids[1], limit=100)

    assert [a.id for a in asc.data] == ids[2:5]
    assert asc.has_more is False
    assert [a.id for a in desc.data] == ids[4:1:-1]
    assert desc.has_more is False


def test_list_envelope_is_openai_shaped(client: openai.OpenAI) -> None:
    start, ids, _ = _batch(client, 2)

    response = client.beta.assistants.with_raw_response.list(
        limit=2, order="asc", after=start
    ).http_response

    body = response.json()
    assert body["object"] == "list"
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert [a["id"] for a in body["data"]] == ids
    assert all(set(a) == ASSISTANT_KEYS for a in body["data"])
    assert body["first_id"] == ids[0] and body["last_id"] == ids[1]
    assert body["has_more"] is True  # the sentinel follows


def test_list_empty_page_has_null_cursors(client: openai.OpenAI) -> None:
    _, ids, sentinel = _batch(client, 1)

    page = client.beta.assistants.list(order="asc", after=ids[0], before=sentinel)

    assert page.data == []
    assert page.first_id is None and page.last_id is None
    assert page.has_more is False


def test_list_default_order_is_newest_first_with_limit_20(client: openai.OpenAI) -> None:
    start, ids, sentinel = _batch(client, 22)

    page = client.beta.assistants.list(after=sentinel)

    assert [a.id for a in page.data] == ids[::-1][:20]
    assert page.has_more is True
    rest = client.beta.assistants.list(after=page.last_id, before=start)
    assert [a.id for a in rest.data] == ids[1::-1]
    assert rest.has_more is False


def test_sdk_auto_pagination_yields_every_assistant_in_order(client: openai.OpenAI) -> None:
    start, ids, sentinel = _batch(client, 7)
    batch = client.beta.assistants.retrieve(ids[0]).metadata["batch"]  # type: ignore[index]

    newest_first = [
        a.id
        for a in client.beta.assistants.list(limit=2)
        if (a.metadata or {}).get("batch") == batch
    ]
    bounded = client.beta.assistants.list(limit=2, order="asc", after=start, before=sentinel)
    oldest_first = [a.id for a in bounded]
    pages = list(
        client.beta.assistants.list(limit=2, order="asc", after=start, before=sentinel).iter_pages()
    )

    assert newest_first == ids[::-1]
    assert oldest_first == ids
    assert [len(p.data) for p in pages] == [2, 2, 2, 1]
    assert [p.has_more for p in pages] == [True, True, True, False]


# -- errors: create --------------------------------------------------------------------------


def test_unknown_field_is_refused_and_nothing_is_stored(client: openai.OpenAI) -> None:
    start = anchor(client)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model="gpt-4o", extra_body={"colour": "blue"})

    error = sdk_error(caught.value, 400)
    assert error["param"] == "colour"
    assert "colour" in error["message"]
    assert created_since(client, start) == []


def test_unknown_field_over_raw_http_is_refused(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    start = anchor(client)

    response = post_raw(server, "/assistants", json={"model": "gpt-4o", "file_ids": []})

    assert http_error(response, 400)["param"] == "file_ids"
    assert created_since(client, start) == []


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("temperature", "0.5", "temperature"),
        ("temperature", "hot", "temperature"),
        ("temperature", 2.5, "temperature"),
        ("top_p", 1.5, "top_p"),
        ("tools", "code_interpreter", "tools"),
        ("tools", {"type": "code_interpreter"}, "tools"),
        ("tools", [{"type": "web_browser"}], "tools[0]"),
        (
            "tools",
            [{"type": "function", "function": {"name": "has spaces"}}],
            "tools[0].function.name",
        ),
        (
            "tools",
            [{"type": "function", "function": {"name": "ok", "strict": "yes"}}],
            "tools[0].function.strict",
        ),
        ("tools", [{"type": "function"}], "tools[0].function"),
        ("metadata", {"n": 1}, "metadata.n"),
        ("metadata", ["a"], "metadata"),
        ("name", 5, "name"),
        ("name", "x" * 257, "name"),
        ("description", "x" * 513, "description"),
        ("model", 4, "model"),
        ("model", "", "model"),
        ("response_format", "json", "response_format"),
        ("response_format", {"type": "xml"}, "response_format"),
        ("response_format", {"type": "json_schema"}, "response_format.json_schema"),
        (
            "tool_resources",
            {"code_interpreter": {"file_ids": "file-1"}},
            "tool_resources.code_interpreter.file_ids",
        ),
    ],
)
def test_ill_typed_field_is_refused_and_nothing_is_stored(
    client: openai.OpenAI, field: str, value: Any, param: str
) -> None:
    start = anchor(client)
    body = {"model": "gpt-4o", field: value}

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(**body)

    error = sdk_error(caught.value, 400)
    assert error["param"] == param
    assert f"'{param}'" in error["message"]
    assert created_since(client, start) == []


def test_missing_model_is_refused(client: openai.OpenAI, server: ServerProcess) -> None:
    start = anchor(client)

    response = post_raw(server, "/assistants", json={"name": "no model"})

    error = http_error(response, 400)
    assert error["param"] == "model"
    assert "model" in error["message"]
    assert created_since(client, start) == []


def test_null_model_is_refused(client: openai.OpenAI, server: ServerProcess) -> None:
    start = anchor(client)

    response = post_raw(server, "/assistants", json={"model": None})

    assert http_error(response, 400)["param"] == "model"
    assert created_since(client, start) == []


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ({f"k{i}": "v" for i in range(17)}, "object_above_max_properties"),
        ({"k" * 65: "v"}, "string_above_max_length"),
        ({"key": "v" * 513}, "string_above_max_length"),
    ],
    ids=["17-pairs", "key-65-chars", "value-513-chars"],
)
def test_metadata_over_the_limits_is_refused(
    client: openai.OpenAI, metadata: dict[str, str], code: str
) -> None:
    start = anchor(client)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model="gpt-4o", metadata=metadata)

    error = sdk_error(caught.value, 400)
    assert error["param"] is not None and error["param"].startswith("metadata")
    assert error["code"] == code
    assert created_since(client, start) == []


def test_129_tools_are_refused(client: openai.OpenAI) -> None:
    start = anchor(client)
    tools = [{"type": "function", "function": {"name": f"tool_{i}"}} for i in range(129)]

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model="gpt-4o", tools=tools)  # type: ignore[arg-type]

    error = sdk_error(caught.value, 400)
    assert error["param"] == "tools"
    assert error["code"] == "array_above_max_length"
    assert created_since(client, start) == []


def test_duplicate_function_names_are_refused(client: openai.OpenAI) -> None:
    start = anchor(client)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(
            model="gpt-4o",
            tools=[FUNCTION_TOOL, FUNCTION_TOOL],  # type: ignore[list-item]
        )

    assert sdk_error(caught.value, 400)["param"] == "tools"
    assert created_since(client, start) == []


def test_malformed_json_body_is_refused(client: openai.OpenAI, server: ServerProcess) -> None:
    start = anchor(client)

    response = post_raw(
        server,
        "/assistants",
        content=b'{"model": "gpt-4o",',
        headers={"content-type": "application/json"},
    )

    error = http_error(response, 400)
    assert error["param"] is None
    assert "could not parse the JSON body" in error["message"]
    assert created_since(client, start) == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_a_number_that_is_not_finite_is_refused(
    client: openai.OpenAI, server: ServerProcess, constant: str
) -> None:
    start = anchor(client)
    tool = '{"type": "function", "function": {"name": "f", "parameters": {"maximum": %s}}}'

    response = post_raw(
        server,
        "/assistants",
        content=('{"model": "gpt-4o", "tools": [%s]}' % (tool % constant)).encode(),
        headers={"content-type": "application/json"},
    )

    error = http_error(response, 400)
    assert "could not parse the JSON body" in error["message"]
    assert created_since(client, start) == []


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
        (b'"gpt-4o"', {"content-type": "application/json"}),
        (b"null", {"content-type": "application/json"}),
        (b"model=gpt-4o", {"content-type": "application/x-www-form-urlencoded"}),
    ],
    ids=["empty", "array", "string", "null", "form"],
)
def test_body_that_is_not_a_json_object_is_refused(
    client: openai.OpenAI, server: ServerProcess, content: bytes, headers: dict[str, str]
) -> None:
    start = anchor(client)

    response = post_raw(server, "/assistants", content=content, headers=headers)

    error = http_error(response, 400)
    assert error["param"] is None
    assert created_since(client, start) == []


# -- errors: modify ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "blue"},
        {"temperature": "hot"},
        {"tools": "code_interpreter"},
        {"model": None},
        {"model": ""},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"key": "v" * 513}},
        {"tools": [{"type": "function", "function": {"name": f"t{i}"}} for i in range(129)]},
        {"name": "fine", "temperature": 9},
    ],
    ids=[
        "unknown-field",
        "temperature-string",
        "tools-not-list",
        "null-model",
        "empty-model",
        "17-metadata-pairs",
        "metadata-key-65",
        "metadata-value-513",
        "129-tools",
        "one-bad-field-among-good",
    ],
)
def test_bad_modify_is_refused_and_changes_nothing(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any]
) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    response = post_raw(server, f"/assistants/{created.id}", json=body)

    http_error(response, 400)
    assert raw_assistant(client, created.id) == before


def test_bad_modify_through_the_sdk_raises_bad_request(client: openai.OpenAI) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.update(created.id, metadata={f"k{i}": "v" for i in range(17)})

    assert sdk_error(caught.value, 400)["param"] == "metadata"
    assert raw_assistant(client, created.id) == before


def test_malformed_json_modify_changes_nothing(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    created = full_assistant(client)
    before = raw_assistant(client, created.id)

    response = post_raw(
        server,
        f"/assistants/{created.id}",
        content=b'{"name": "half',
        headers={"content-type": "application/json"},
    )

    http_error(response, 400)
    assert raw_assistant(client, created.id) == before


# -- errors: list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
    ],
    ids=["limit-0", "limit-101", "limit-negative", "limit-not-int", "order-sideways"],
)
def test_bad_list_parameters_are_refused(
    client: openai.OpenAI, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.list(**params)

    assert sdk_error(caught.value, 400)["param"] == param


def test_list_limits_at_the_boundary_are_accepted(client: openai.OpenAI) -> None:
    start, ids, _ = _batch(client, 1)

    one = client.beta.assistants.list(limit=1, order="asc", after=start)
    hundred = client.beta.assistants.list(limit=100, order="asc", after=start)

    assert [a.id for a in one.data] == ids
    assert one.has_more is True
    assert [a.id for a in hundred.data][:1] == ids


# -- errors: not found ------------------------------------------------------------------------


def test_unknown_id_is_not_found_everywhere(client: openai.OpenAI) -> None:
    missing = "asst_doesnotexist0000000000"

    with pytest.raises(openai.NotFoundError) as on_retrieve:
        client.beta.assistants.retrieve(missing)
    with pytest.raises(openai.NotFoundError) as on_update:
        client.beta.assistants.update(missing, name="x")
    with pytest.raises(openai.NotFoundError) as on_delete:
        client.beta.assistants.delete(missing)

    for caught in (on_retrieve, on_update, on_delete):
        error = sdk_error(caught.value, 404)
        assert missing in error["message"]
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(missing)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no-such-thing"),
        ("POST", "/assistantz"),
        ("GET", "/assistants/asst_1/extra/segments"),
    ],
)
def test_unknown_route_is_404(server: ServerProcess, method: str, path: str) -> None:
    response = httpx.request(method, f"{server.base_url}{path}", json={}, timeout=30)

    http_error(response, 404)


def test_unknown_route_through_the_sdk_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/no-such-route", cast_to=object)

    sdk_error(caught.value, 404)
