"""Threads and messages through the openai SDK: objects field for field, exact cursors, errors.

Every error test checks the HTTP status, an OpenAI-shaped body
(`{"error": {"message", "type", "param", "code"}}`) and that the thread's state did not change.
Each test makes its own threads, so list assertions never depend on other tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest
from openai.types.beta.threads import Message
from support.errors import assert_error_body, sdk_error
from support.server import ServerProcess

MESSAGE_KEYS = {
    "id",
    "object",
    "created_at",
    "thread_id",
    "role",
    "content",
    "assistant_id",
    "run_id",
    "attachments",
    "metadata",
    "status",
    "incomplete_details",
    "completed_at",
    "incomplete_at",
}

THREAD_KEYS = {"id", "object", "created_at", "metadata", "tool_resources"}

MISSING_THREAD = "thread_doesnotexist000000000"


# -- helpers -------------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def raw_thread(client: openai.OpenAI, thread_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.beta.threads.with_raw_response.retrieve(
        thread_id
    ).http_response.json()
    return body


def raw_message(client: openai.OpenAI, thread_id: str, message_id: str) -> dict[str, Any]:
    response = client.beta.threads.messages.with_raw_response.retrieve(
        message_id, thread_id=thread_id
    )
    body: dict[str, Any] = response.http_response.json()
    return body


def raw_messages(client: openai.OpenAI, thread_id: str) -> list[dict[str, Any]]:
    """Every message of a thread, oldest first, as the server sent them."""
    response = client.beta.threads.messages.with_raw_response.list(
        thread_id, order="asc", limit=100
    )
    body = response.http_response.json()
    assert body["has_more"] is False
    data: list[dict[str, Any]] = body["data"]
    return data


def upload(client: openai.OpenAI, name: str) -> str:
    return client.files.create(file=(name, b"x,y\n1,2\n"), purpose="assistants").id


def for_code(file_id: str) -> Any:
    """An attachment of `file_id` for the code interpreter, as sent and as served back."""
    return {"file_id": file_id, "tools": [{"type": "code_interpreter"}]}


def http_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    return assert_error_body(response.json(), status, response.status_code)


def post_raw(server: ServerProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", timeout=30, **kwargs)


def thread_with_messages(client: openai.OpenAI, count: int) -> tuple[str, list[str]]:
    """A thread whose first 5 messages come with it and the rest are added one by one."""
    initial = min(count, 5)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": f"message {i}", "metadata": {"i": str(i)}}
            for i in range(initial)
        ]
    )
    for i in range(initial, count):
        client.beta.threads.messages.create(
            thread.id, role="user", content=f"message {i}", metadata={"i": str(i)}
        )
    stored = raw_messages(client, thread.id)
    assert [m["metadata"]["i"] for m in stored] == [str(i) for i in range(count)]
    return thread.id, [m["id"] for m in stored]


# -- threads ----------------------------------------------------------------------------------


def test_create_empty_thread(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    raw = raw_thread(client, thread.id)
    assert set(raw) == THREAD_KEYS
    assert raw["id"] == thread.id and thread.id.startswith("thread_")
    assert raw["object"] == "thread"
    assert isinstance(raw["created_at"], int) and raw["created_at"] > 0
    assert raw["metadata"] == {}
    assert raw["tool_resources"] == {}
    assert client.beta.threads.messages.list(thread.id).data == []


def test_create_thread_over_raw_http_with_no_body(server: ServerProcess) -> None:
    response = post_raw(server, "/threads")

    assert response.status_code == 200
    assert response.json()["object"] == "thread"


def test_create_thread_with_initial_messages_of_every_content_shape(
    client: openai.OpenAI,
) -> None:
    tag = uuid.uuid4().hex
    thread = client.beta.threads.create(
        metadata={"tag": tag, "user": "alice"},
        # No file ids: they are refused until files exist (test_validation.py).
        tool_resources={"code_interpreter": {"file_ids": []}},
        messages=[
            {"role": "user", "content": "plain string"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at these"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                    },
                ],
                "attachments": [],
                "metadata": {"part": "two"},
            },
            {"role": "assistant", "content": "an earlier answer"},
        ],
    )

    assert thread.metadata == {"tag": tag, "user": "alice"}
    assert raw_thread(client, thread.id)["tool_resources"] == {"code_interpreter": {"file_ids": []}}
    first, second, third = raw_messages(client, thread.id)
    for message in (first, second, third):
        assert set(message) == MESSAGE_KEYS
        assert message["thread_id"] == thread.id
        assert message["object"] == "thread.message"
        assert message["status"] == "completed"
        assert message["assistant_id"] is None and message["run_id"] is None
    assert first["role"] == "user"
    assert first["content"] == [text("plain string")]
    assert first["attachments"] == [] and first["metadata"] == {}
    assert second["content"] == [
        text("look at these"),
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
        },
    ]
    assert second["attachments"] == []
    assert second["metadata"] == {"part": "two"}
    assert third["role"] == "assistant"
    assert third["content"] == [text("an earlier answer")]


def test_retrieve_thread_returns_what_create_returned(client: openai.OpenAI) -> None:
    created = client.beta.threads.create(metadata={"k": "v"})

    retrieved = client.beta.threads.retrieve(created.id)

    assert retrieved.model_dump() == created.model_dump()


def test_modify_thread_metadata_replaces_it_and_keeps_the_rest(client: openai.OpenAI) -> None:
    created = client.beta.threads.create(
        metadata={"a": "1", "b": "2"},
        tool_resources={"file_search": {"vector_store_ids": []}},
        messages=[{"role": "user", "content": "stay"}],
    )
    before = raw_thread(client, created.id)
    messages_before = raw_messages(client, created.id)

    updated = client.beta.threads.update(created.id, metadata={"c": "3"})

    after = raw_thread(client, created.id)
    assert updated.metadata == {"c": "3"}
    assert after == {**before, "metadata": {"c": "3"}}
    assert raw_messages(client, created.id) == messages_before

    client.beta.threads.update(created.id, metadata={})
    assert raw_thread(client, created.id) == {**before, "metadata": {}}


def test_modify_thread_tool_resources_keeps_metadata(client: openai.OpenAI) -> None:
    created = client.beta.threads.create(
        metadata={"a": "1"}, tool_resources={"code_interpreter": {"file_ids": []}}
    )
    before = raw_thread(client, created.id)

    client.beta.threads.update(created.id, tool_resources={"file_search": {"vector_store_ids": []}})

    assert raw_thread(client, created.id) == {
        **before,
        "tool_resources": {"file_search": {"vector_store_ids": []}},
    }


def test_null_metadata_clears_it_on_threads_and_messages(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(metadata={"a": "1"})
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="x", metadata={"b": "2"}
    )

    client.beta.threads.update(thread.id, metadata=None)
    client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata=None)

    assert raw_thread(client, thread.id)["metadata"] == {}
    assert raw_message(client, thread.id, message.id)["metadata"] == {}


def test_modify_thread_with_no_fields_changes_nothing(client: openai.OpenAI) -> None:
    created = client.beta.threads.create(metadata={"a": "1"})
    before = raw_thread(client, created.id)

    client.beta.threads.update(created.id)

    assert raw_thread(client, created.id) == before


def test_delete_thread_removes_it_and_its_messages(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
    [message] = raw_messages(client, thread.id)

    deleted = client.beta.threads.delete(thread.id)

    assert deleted.id == thread.id
    assert deleted.object == "thread.deleted"
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as on_retrieve:
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError) as on_list:
        client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError) as on_message:
        client.beta.threads.messages.retrieve(message["id"], thread_id=thread.id)
    with pytest.raises(openai.NotFoundError) as on_create:
        client.beta.threads.messages.create(thread.id, role="user", content="late")
    with pytest.raises(openai.NotFoundError) as on_update:
        client.beta.threads.update(thread.id, metadata={"a": "b"})
    with pytest.raises(openai.NotFoundError) as on_delete:
        client.beta.threads.delete(thread.id)
    for caught in (on_retrieve, on_list, on_message, on_create, on_update, on_delete):
        error = sdk_error(caught.value, 404)
        assert thread.id in error["message"]


def test_deleting_one_thread_leaves_another(client: openai.OpenAI) -> None:
    keep = client.beta.threads.create(messages=[{"role": "user", "content": "keep me"}])
    gone = client.beta.threads.create(messages=[{"role": "user", "content": "drop me"}])
    kept_messages = raw_messages(client, keep.id)

    client.beta.threads.delete(gone.id)

    assert raw_thread(client, keep.id)["id"] == keep.id
    assert raw_messages(client, keep.id) == kept_messages


# -- messages: create, retrieve, modify, delete -----------------------------------------------


def test_message_object_field_for_field(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    created = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="What is the weather?",
        attachments=[],
        metadata={"source": "test"},
    )

    raw = raw_message(client, thread.id, created.id)
    assert set(raw) == MESSAGE_KEYS
    assert raw == {
        "id": created.id,
        "object": "thread.message",
        "created_at": raw["created_at"],
        "thread_id": thread.id,
        "role": "user",
        "content": [text("What is the weather?")],
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {"source": "test"},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": raw["completed_at"],
        "incomplete_at": None,
    }
    assert created.id.startswith("msg_")
    assert isinstance(raw["created_at"], int) and raw["created_at"] > 0
    assert isinstance(raw["completed_at"], int) and raw["completed_at"] >= raw["created_at"]
    assert created.content[0].type == "text"
    assert created.content[0].text.value == "What is the weather?"  # type: ignore[union-attr]
    assert created.content[0].text.annotations == []  # type: ignore[union-attr]


def test_retrieve_message_returns_what_create_returned(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    created = client.beta.threads.messages.create(thread.id, role="user", content="hello")

    retrieved = client.beta.threads.messages.retrieve(created.id, thread_id=thread.id)

    assert retrieved.model_dump() == created.model_dump()


def test_create_message_with_content_parts(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    created = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "first"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            {"type": "text", "text": "second"},
        ],
    )

    assert raw_message(client, thread.id, created.id)["content"] == [
        text("first"),
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "auto"}},
        text("second"),
    ]
    assert [part.type for part in created.content] == ["text", "image_url", "text"]


def test_create_assistant_role_message(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    created = client.beta.threads.messages.create(thread.id, role="assistant", content="Hi!")

    raw = raw_message(client, thread.id, created.id)
    assert raw["role"] == "assistant"
    assert raw["content"] == [text("Hi!")]
    assert raw["assistant_id"] is None and raw["run_id"] is None


def test_attachment_naming_a_file_is_refused(client: openai.OpenAI) -> None:
    """An id that names no file of the project (more in test_validation.py)."""
    thread = client.beta.threads.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(
            thread.id, role="user", content="see file", attachments=[{"file_id": "file-plain"}]
        )

    error = sdk_error(caught.value, 400)
    assert error["param"] == "attachments[0].file_id"
    assert error["message"] == "No file found with id 'file-plain'."
    assert raw_messages(client, thread.id) == []


def test_attachments_for_the_code_interpreter_join_the_thread_s_files(
    client: openai.OpenAI,
) -> None:
    """As the hosted service keeps them: after the files the thread had, in the order
    attached, each once; a file attached for no tool stays on its message only."""
    had, first, second, plain = (upload(client, f"{name}.csv") for name in "abcd")
    thread = client.beta.threads.create(
        tool_resources={"code_interpreter": {"file_ids": [had]}},
        messages=[{"role": "user", "content": "load it", "attachments": [for_code(first)]}],
    )
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="and these",
        attachments=[for_code(second), for_code(first), {"file_id": plain, "tools": []}],
    )

    resources = client.beta.threads.retrieve(thread.id).tool_resources
    assert resources is not None and resources.code_interpreter is not None
    assert resources.code_interpreter.file_ids == [had, first, second]
    assert [m["attachments"] for m in raw_messages(client, thread.id)] == [
        [for_code(first)],
        [for_code(second), for_code(first), {"file_id": plain, "tools": []}],
    ]


def test_attachments_for_the_code_interpreter_of_a_run_s_messages_join_its_thread(
    client: openai.OpenAI, model_name: str
) -> None:
    """Through `additional_messages`, and the new thread of create-and-run."""
    added, started = upload(client, "added.csv"), upload(client, "started.csv")
    assistant = client.beta.assistants.create(
        model=model_name, tools=[{"type": "code_interpreter"}]
    )
    thread = client.beta.threads.create()

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_messages=[{"role": "user", "content": "x", "attachments": [for_code(added)]}],
    )
    both = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "x", "attachments": [for_code(started)]}]},
    )

    assert run.status == "completed" and both.status == "completed"
    for thread_id, file_id in ((thread.id, added), (both.thread_id, started)):
        resources = client.beta.threads.retrieve(thread_id).tool_resources
        assert resources is not None and resources.code_interpreter is not None
        assert resources.code_interpreter.file_ids == [file_id]


def test_modify_message_changes_only_metadata(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    created = client.beta.threads.messages.create(
        thread.id, role="user", content="unchanged text", metadata={"a": "1"}
    )
    before = raw_message(client, thread.id, created.id)

    updated = client.beta.threads.messages.update(
        created.id, thread_id=thread.id, metadata={"b": "2"}
    )

    assert updated.metadata == {"b": "2"}
    assert raw_message(client, thread.id, created.id) == {**before, "metadata": {"b": "2"}}
    client.beta.threads.messages.update(created.id, thread_id=thread.id)
    assert raw_message(client, thread.id, created.id) == {**before, "metadata": {"b": "2"}}
    client.beta.threads.messages.update(created.id, thread_id=thread.id, metadata={})
    assert raw_message(client, thread.id, created.id) == {**before, "metadata": {}}


def test_delete_message(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 3)

    deleted = client.beta.threads.messages.delete(ids[1], thread_id=thread_id)

    assert deleted.id == ids[1]
    assert deleted.object == "thread.message.deleted"
    assert deleted.deleted is True
    assert [m["id"] for m in raw_messages(client, thread_id)] == [ids[0], ids[2]]
    with pytest.raises(openai.NotFoundError) as on_retrieve:
        client.beta.threads.messages.retrieve(ids[1], thread_id=thread_id)
    with pytest.raises(openai.NotFoundError) as on_delete:
        client.beta.threads.messages.delete(ids[1], thread_id=thread_id)
    with pytest.raises(openai.NotFoundError) as on_update:
        client.beta.threads.messages.update(ids[1], thread_id=thread_id, metadata={"a": "b"})
    for caught in (on_retrieve, on_delete, on_update):
        assert ids[1] in sdk_error(caught.value, 404)["message"]
    assert [m["id"] for m in raw_messages(client, thread_id)] == [ids[0], ids[2]]


def test_deleted_message_cursor_neighbours_still_page(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 5)
    client.beta.threads.messages.delete(ids[2], thread_id=thread_id)

    page = client.beta.threads.messages.list(thread_id, order="asc", after=ids[1], limit=2)

    assert [m.id for m in page.data] == [ids[3], ids[4]]
    assert page.has_more is False


# -- messages: list ------------------------------------------------------------------------------


def test_list_messages_default_is_newest_first(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 3)

    page = client.beta.threads.messages.list(thread_id)

    assert [m.id for m in page.data] == ids[::-1]
    assert page.has_more is False
    assert (page.first_id, page.last_id) == (ids[2], ids[0])


def test_list_messages_envelope_is_openai_shaped(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 2)

    body = client.beta.threads.messages.with_raw_response.list(
        thread_id, limit=1, order="asc"
    ).http_response.json()

    assert body == {
        "object": "list",
        "data": [raw_message(client, thread_id, ids[0])],
        "first_id": ids[0],
        "last_id": ids[0],
        "has_more": True,
    }


def test_list_messages_pages_ascending_and_descending_with_after(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 25)
    messages = client.beta.threads.messages

    asc = [messages.list(thread_id, order="asc", limit=10)]
    while asc[-1].has_more:
        asc.append(messages.list(thread_id, order="asc", limit=10, after=asc[-1].last_id))
    desc = [messages.list(thread_id, order="desc", limit=10)]
    while desc[-1].has_more:
        desc.append(messages.list(thread_id, order="desc", limit=10, after=desc[-1].last_id))

    assert [[m.id for m in p.data] for p in asc] == [ids[0:10], ids[10:20], ids[20:25]]
    assert [(p.first_id, p.last_id, p.has_more) for p in asc] == [
        (ids[0], ids[9], True),
        (ids[10], ids[19], True),
        (ids[20], ids[24], False),
    ]
    newest_first = ids[::-1]
    assert [[m.id for m in p.data] for p in desc] == [
        newest_first[0:10],
        newest_first[10:20],
        newest_first[20:25],
    ]
    assert [(p.first_id, p.last_id, p.has_more) for p in desc] == [
        (ids[24], ids[15], True),
        (ids[14], ids[5], True),
        (ids[4], ids[0], False),
    ]


def test_list_messages_pages_backwards_with_before(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 25)
    messages = client.beta.threads.messages

    # Ascending order, walking back from the newest message.
    asc_1 = messages.list(thread_id, order="asc", limit=10, before=ids[24])
    asc_2 = messages.list(thread_id, order="asc", limit=10, before=asc_1.first_id)
    asc_3 = messages.list(thread_id, order="asc", limit=10, before=asc_2.first_id)

    assert [m.id for m in asc_1.data] == ids[14:24]
    assert (asc_1.first_id, asc_1.last_id, asc_1.has_more) == (ids[14], ids[23], True)
    assert [m.id for m in asc_2.data] == ids[4:14]
    assert asc_2.has_more is True
    assert [m.id for m in asc_3.data] == ids[0:4]
    assert (asc_3.first_id, asc_3.last_id, asc_3.has_more) == (ids[0], ids[3], False)

    # Descending order, walking back from the oldest message.
    desc_1 = messages.list(thread_id, order="desc", limit=10, before=ids[0])
    desc_2 = messages.list(thread_id, order="desc", limit=10, before=desc_1.first_id)
    desc_3 = messages.list(thread_id, order="desc", limit=10, before=desc_2.first_id)

    assert [m.id for m in desc_1.data] == ids[10:0:-1]
    assert (desc_1.first_id, desc_1.last_id, desc_1.has_more) == (ids[10], ids[1], True)
    assert [m.id for m in desc_2.data] == ids[20:10:-1]
    assert desc_2.has_more is True
    assert [m.id for m in desc_3.data] == ids[24:20:-1]
    assert (desc_3.first_id, desc_3.last_id, desc_3.has_more) == (ids[24], ids[21], False)


def test_list_messages_between_two_cursors(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 25)
    messages = client.beta.threads.messages

    asc = messages.list(thread_id, order="asc", after=ids[3], before=ids[17], limit=10)
    asc_rest = messages.list(thread_id, order="asc", after=asc.last_id, before=ids[17], limit=10)
    desc = messages.list(thread_id, order="desc", after=ids[17], before=ids[3], limit=10)

    assert [m.id for m in asc.data] == ids[4:14]
    assert asc.has_more is True
    assert [m.id for m in asc_rest.data] == ids[14:17]
    assert asc_rest.has_more is False
    assert [m.id for m in desc.data] == ids[16:6:-1]
    assert desc.has_more is True
    empty = messages.list(thread_id, order="asc", after=ids[5], before=ids[6])
    assert empty.data == [] and empty.has_more is False
    assert empty.first_id is None and empty.last_id is None


def test_sdk_auto_pagination_yields_every_message_in_order(client: openai.OpenAI) -> None:
    thread_id, ids = thread_with_messages(client, 25)

    oldest_first = [
        m.id for m in client.beta.threads.messages.list(thread_id, order="asc", limit=10)
    ]
    newest_first = [m.id for m in client.beta.threads.messages.list(thread_id, limit=10)]
    pages = list(client.beta.threads.messages.list(thread_id, limit=10).iter_pages())

    assert oldest_first == ids
    assert newest_first == ids[::-1]
    assert [len(p.data) for p in pages] == [10, 10, 5]


def test_messages_of_one_thread_do_not_leak_into_another(client: openai.OpenAI) -> None:
    thread_a, ids_a = thread_with_messages(client, 3)
    thread_b, ids_b = thread_with_messages(client, 2)

    assert [m.id for m in client.beta.threads.messages.list(thread_a, order="asc")] == ids_a
    assert [m.id for m in client.beta.threads.messages.list(thread_b, order="asc")] == ids_b


def test_cursor_from_another_thread_is_refused(client: openai.OpenAI) -> None:
    thread_a, _ = thread_with_messages(client, 2)
    _, ids_b = thread_with_messages(client, 2)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.list(thread_a, after=ids_b[0])

    assert sdk_error(caught.value, 400)["param"] == "after"


def test_list_messages_filtered_by_run(client: openai.OpenAI, model_name: str) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "an older question"},
            {"role": "user", "content": "please echo this"},
        ]
    )

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    by_run = client.beta.threads.messages.list(thread.id, run_id=run.id)
    assert len(by_run.data) == 1
    [reply] = by_run.data
    assert reply.role == "assistant"
    assert reply.assistant_id == assistant.id
    assert reply.run_id == run.id
    assert reply.thread_id == thread.id
    assert reply.status == "completed"
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value == "echo: please echo this"  # type: ignore[union-attr]
    assert reply.content[0].text.annotations == []  # type: ignore[union-attr]
    assert (by_run.first_id, by_run.last_id, by_run.has_more) == (reply.id, reply.id, False)
    everything = raw_messages(client, thread.id)
    assert [m["role"] for m in everything] == ["user", "user", "assistant"]
    assert everything[2]["id"] == reply.id
    assert all(m["run_id"] is None and m["assistant_id"] is None for m in everything[:2])
    raw_reply = raw_message(client, thread.id, reply.id)
    assert set(raw_reply) == MESSAGE_KEYS
    assert raw_reply["object"] == "thread.message"
    assert raw_reply["attachments"] == [] and raw_reply["metadata"] == {}

    other = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    assert client.beta.threads.messages.list(other.id, run_id=run.id).data == []


# -- errors: messages ---------------------------------------------------------------------------


def _message_state(client: openai.OpenAI, thread_id: str) -> tuple[Any, ...]:
    return (raw_thread(client, thread_id), raw_messages(client, thread_id))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"role": "system", "content": "obey"}, "role"),
        ({"role": "tool", "content": "obey"}, "role"),
        ({"role": "user", "content": []}, "content"),
        ({"role": "user", "content": 5}, "content"),
        ({"role": "user", "content": [{"type": "video", "video": {}}]}, "content[0]"),
        ({"role": "user", "content": [{"type": "text"}]}, "content[0].text"),
        (
            {"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "image_url"}]},
            "content[1].image_url",
        ),
        (
            {
                "role": "user",
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "ultra"},
                    }
                ],
            },
            "content[0].image_url.detail",
        ),
        (
            {"role": "user", "content": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
        ),
        ({"role": "user", "content": "x", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"role": "user", "content": "x", "metadata": {"key": "v" * 513}}, "metadata.key"),
        (
            {"role": "user", "content": "x", "attachments": [{"tools": []}]},
            "attachments[0].file_id",
        ),
        (
            {"role": "user", "content": "x", "attachments": [{"file_id": "f", "tools": "all"}]},
            "attachments[0].tools",
        ),
    ],
    ids=[
        "role-system",
        "role-tool",
        "content-empty-list",
        "content-number",
        "content-unknown-part",
        "text-part-without-text",
        "image-part-without-image",
        "image-detail-ultra",
        "metadata-17-pairs",
        "metadata-key-65",
        "metadata-value-513",
        "attachment-without-file",
        "attachment-tools-not-list",
    ],
)
def test_bad_message_is_refused_and_nothing_changes(
    client: openai.OpenAI, body: dict[str, Any], param: str
) -> None:
    thread_id, _ = thread_with_messages(client, 2)
    before = _message_state(client, thread_id)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread_id, **body)

    error = sdk_error(caught.value, 400)
    assert error["param"] is not None and error["param"].startswith(param)
    if param != "metadata":  # a too-long key is named in the param after a dot
        assert error["param"] == param
    assert _message_state(client, thread_id) == before


@pytest.mark.parametrize(
    ("body", "param"),
    [({"content": "no role"}, "role"), ({"role": "user"}, "content")],
    ids=["role", "content"],
)
def test_message_missing_a_required_field_is_refused(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any], param: str
) -> None:
    thread_id, _ = thread_with_messages(client, 1)
    before = _message_state(client, thread_id)

    response = post_raw(server, f"/threads/{thread_id}/messages", json=body)

    error = http_error(response, 400)
    assert error["param"] == param
    assert error["message"] == f"Missing required parameter: '{param}'."
    assert _message_state(client, thread_id) == before


def test_metadata_limits_at_the_boundary_are_accepted(client: openai.OpenAI) -> None:
    metadata = {f"k{i:02d}": "v" for i in range(15)}
    metadata["k" * 64] = "v" * 512
    thread = client.beta.threads.create(metadata=metadata)

    created = client.beta.threads.messages.create(
        thread.id, role="user", content="x", metadata=metadata
    )

    assert client.beta.threads.retrieve(thread.id).metadata == metadata
    assert raw_message(client, thread.id, created.id)["metadata"] == metadata


def test_message_error_codes_for_metadata(client: openai.OpenAI) -> None:
    thread_id, _ = thread_with_messages(client, 1)
    before = _message_state(client, thread_id)

    with pytest.raises(openai.BadRequestError) as too_many:
        client.beta.threads.messages.create(
            thread_id, role="user", content="x", metadata={f"k{i}": "v" for i in range(17)}
        )
    with pytest.raises(openai.BadRequestError) as too_long:
        client.beta.threads.messages.create(
            thread_id, role="user", content="x", metadata={"key": "v" * 513}
        )

    assert sdk_error(too_many.value, 400)["code"] == "object_above_max_properties"
    assert sdk_error(too_long.value, 400)["code"] == "string_above_max_length"
    assert _message_state(client, thread_id) == before


def test_message_on_unknown_thread_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as on_create:
        client.beta.threads.messages.create(MISSING_THREAD, role="user", content="hello?")
    with pytest.raises(openai.NotFoundError) as on_list:
        client.beta.threads.messages.list(MISSING_THREAD)

    for caught in (on_create, on_list):
        assert MISSING_THREAD in sdk_error(caught.value, 404)["message"]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(MISSING_THREAD)


def test_message_of_another_thread_is_not_found(client: openai.OpenAI) -> None:
    thread_a, ids_a = thread_with_messages(client, 2)
    thread_b, _ = thread_with_messages(client, 1)
    before_a = _message_state(client, thread_a)
    before_b = _message_state(client, thread_b)

    with pytest.raises(openai.NotFoundError) as on_retrieve:
        client.beta.threads.messages.retrieve(ids_a[0], thread_id=thread_b)
    with pytest.raises(openai.NotFoundError) as on_update:
        client.beta.threads.messages.update(ids_a[0], thread_id=thread_b, metadata={"x": "y"})
    with pytest.raises(openai.NotFoundError) as on_delete:
        client.beta.threads.messages.delete(ids_a[0], thread_id=thread_b)

    for caught in (on_retrieve, on_update, on_delete):
        assert ids_a[0] in sdk_error(caught.value, 404)["message"]
    assert _message_state(client, thread_a) == before_a
    assert _message_state(client, thread_b) == before_b


def test_unknown_message_id_is_not_found(client: openai.OpenAI) -> None:
    thread_id, _ = thread_with_messages(client, 1)

    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.messages.retrieve("msg_doesnotexist000000", thread_id=thread_id)

    assert "msg_doesnotexist000000" in sdk_error(caught.value, 404)["message"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"role": "user", "content": "hi"', "could not parse the JSON body"),
        (b"role=user", "could not parse the JSON body"),
        (b"", "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
    ids=["truncated", "form", "empty", "array", "null"],
)
def test_malformed_json_message_is_refused(
    client: openai.OpenAI, server: ServerProcess, content: bytes, expected: str
) -> None:
    thread_id, _ = thread_with_messages(client, 1)
    before = _message_state(client, thread_id)

    response = post_raw(
        server,
        f"/threads/{thread_id}/messages",
        content=content,
        headers={"content-type": "application/json"},
    )

    error = http_error(response, 400)
    assert error["param"] is None
    assert expected in error["message"]
    assert _message_state(client, thread_id) == before


def test_unknown_message_field_is_refused(client: openai.OpenAI, server: ServerProcess) -> None:
    thread_id, _ = thread_with_messages(client, 1)
    before = _message_state(client, thread_id)

    response = post_raw(
        server,
        f"/threads/{thread_id}/messages",
        json={"role": "user", "content": "hi", "file_ids": ["file-1"]},
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(
            thread_id, role="user", content="hi", extra_body={"name": "bob"}
        )

    assert http_error(response, 400)["param"] == "file_ids"
    assert sdk_error(caught.value, 400)["param"] == "name"
    assert _message_state(client, thread_id) == before


@pytest.mark.parametrize(
    "body",
    [
        {"content": "rewrite history"},
        {"role": "assistant"},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"key": "v" * 513}},
        {"metadata": "not an object"},
    ],
    ids=[
        "content",
        "role",
        "metadata-17-pairs",
        "metadata-key-65",
        "metadata-value-513",
        "metadata-string",
    ],
)
def test_bad_message_modify_changes_nothing(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any]
) -> None:
    thread_id, ids = thread_with_messages(client, 1)
    before = _message_state(client, thread_id)

    response = post_raw(server, f"/threads/{thread_id}/messages/{ids[0]}", json=body)

    http_error(response, 400)
    assert _message_state(client, thread_id) == before


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"order": "sideways"}, "order"),
    ],
    ids=["limit-0", "limit-101", "order-sideways"],
)
def test_bad_message_list_parameters_are_refused(
    client: openai.OpenAI, params: dict[str, Any], param: str
) -> None:
    thread_id, _ = thread_with_messages(client, 1)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.list(thread_id, **params)

    assert sdk_error(caught.value, 400)["param"] == param


# -- errors: threads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"messages": [{"role": "user", "content": "ok"}, {"role": "system", "content": "x"}]},
            "messages[1].role",
        ),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": "x", "metadata": {"k" * 65: "v"}}]},
            "messages[0].metadata",
        ),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"key": "v" * 513}}, "metadata"),
        ({"messages": "hello"}, "messages"),
        ({"colour": "blue"}, "colour"),
        ({"messages": [{"role": "user", "content": "x", "file_ids": []}]}, "messages[0].file_ids"),
    ],
    ids=[
        "message-role-system",
        "message-content-empty",
        "message-metadata-key-65",
        "metadata-17-pairs",
        "metadata-value-513",
        "messages-not-list",
        "unknown-field",
        "unknown-message-field",
    ],
)
def test_bad_thread_create_is_refused(
    server: ServerProcess, body: dict[str, Any], param: str
) -> None:
    response = post_raw(server, "/threads", json=body)

    error = http_error(response, 400)
    assert error["param"] is not None and error["param"].startswith(param)


def test_malformed_json_thread_create_is_refused(server: ServerProcess) -> None:
    response = post_raw(
        server, "/threads", content=b'{"metadata": ', headers={"content-type": "application/json"}
    )

    http_error(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"key": "v" * 513}},
        {"metadata": {"n": 1}},
        {"messages": []},
        {"colour": "blue"},
    ],
    ids=[
        "metadata-17-pairs",
        "metadata-key-65",
        "metadata-value-513",
        "metadata-value-number",
        "messages",
        "unknown-field",
    ],
)
def test_bad_thread_modify_changes_nothing(
    client: openai.OpenAI, server: ServerProcess, body: dict[str, Any]
) -> None:
    thread = client.beta.threads.create(
        metadata={"a": "1"}, messages=[{"role": "user", "content": "hi"}]
    )
    before = _message_state(client, thread.id)

    response = post_raw(server, f"/threads/{thread.id}", json=body)

    http_error(response, 400)
    assert _message_state(client, thread.id) == before


def test_bad_thread_modify_through_the_sdk(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(metadata={"a": "1"})
    before = raw_thread(client, thread.id)

    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.update(thread.id, metadata={"k" * 65: "v"})

    error = sdk_error(caught.value, 400)
    assert error["param"] is not None and error["param"].startswith("metadata")
    assert error["code"] == "string_above_max_length"
    assert raw_thread(client, thread.id) == before


def test_unknown_thread_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as on_retrieve:
        client.beta.threads.retrieve(MISSING_THREAD)
    with pytest.raises(openai.NotFoundError) as on_update:
        client.beta.threads.update(MISSING_THREAD, metadata={"a": "b"})
    with pytest.raises(openai.NotFoundError) as on_delete:
        client.beta.threads.delete(MISSING_THREAD)

    for caught in (on_retrieve, on_update, on_delete):
        assert MISSING_THREAD in sdk_error(caught.value, 404)["message"]


def test_message_type_is_the_sdk_model(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()

    created = client.beta.threads.messages.create(thread.id, role="user", content="typed")

    assert isinstance(created, Message)
    assert created.object == "thread.message"
    assert created.status == "completed"
    assert created.incomplete_details is None and created.incomplete_at is None
