"""Text no store keeps (NUL, half a surrogate pair) and cursors beyond the event log's range:
one answer on both backends, a 400 or 404 naming what is wrong, nothing stored, and the
connection still serving."""

from __future__ import annotations

import httpx
import openai
import pytest
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess

MAX_SEQ = 2**63 - 1


def _post(http: httpx.Client, path: str, raw_json: str) -> httpx.Response:
    """Raw bytes: the SDKs cannot send half a surrogate pair at all."""
    return http.post(path, content=raw_json.encode(), headers={"content-type": "application/json"})


@pytest.fixture
def http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/threads", '{"metadata": {"k": "a\\u0000b"}}', "metadata.k"),
        ("/threads", '{"metadata": {"k\\u0000": "v"}}', "metadata"),
        ("/assistants", '{"model": "m", "name": "\\u0000"}', "name"),
        ("/assistants", '{"model": "m", "instructions": "x\\uD800y"}', "instructions"),
        (
            "/threads",
            '{"messages": [{"role": "user", "content": "\\udfff"}]}',
            "messages[0].content",
        ),
    ],
)
def test_text_no_store_keeps_is_refused_naming_the_field(
    http: httpx.Client, client: openai.OpenAI, path: str, body: str, param: str
) -> None:
    assistants_before = [a.id for a in client.beta.assistants.list(limit=100).data]

    refused = _post(http, path, body)

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert "NUL" in refused.json()["error"]["message"]
    assert [a.id for a in client.beta.assistants.list(limit=100).data] == assistants_before
    assert http.get("/assistants").status_code == 200  # the same connection still serves


def test_text_refused_on_a_message_leaves_the_thread_as_it_was(
    http: httpx.Client, client: openai.OpenAI
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "kept"}])

    refused = _post(
        http, f"/threads/{thread.id}/messages", '{"role": "user", "content": "\\u0000"}'
    )

    assert refused.status_code == 400 and refused.json()["error"]["param"] == "content"
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id).data]  # type: ignore[union-attr]
    assert texts == ["kept"]


def test_a_surrogate_pair_is_text_like_any_other(http: httpx.Client, client: openai.OpenAI) -> None:
    made = _post(http, "/threads", '{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}')

    assert made.status_code == 200
    message = client.beta.threads.messages.list(made.json()["id"]).data[0]
    assert message.content[0].text.value == "\U0001f600"  # type: ignore[union-attr]


def test_a_nul_in_a_path_id_is_404_and_in_a_cursor_400(
    http: httpx.Client, client: openai.OpenAI
) -> None:
    thread = client.beta.threads.create()

    assert http.get("/threads/thread%00x").status_code == 404
    assert http.post("/threads/%00", json={"metadata": {}}).status_code == 404
    listed = http.get(f"/threads/{thread.id}/messages", params={"after": "msg\x00"})
    assert listed.status_code == 400 and listed.json()["error"]["param"] == "after"
    assert http.get(f"/threads/{thread.id}").status_code == 200


def test_an_event_cursor_beyond_the_log_s_range_is_400_before_the_stream_starts(
    http: httpx.Client,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    scripted_model.script(model_name, Reply("done"))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    events = f"/threads/{thread.id}/runs/{run.id}/events"

    for answer in (
        http.get(events, params={"after": str(MAX_SEQ + 1)}),
        http.get(events, headers={"Last-Event-ID": "9" * 30}),
        http.get(events, headers={"Last-Event-ID": "²".encode("latin-1")}),
    ):
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json"
    at_the_edge = http.get(events, params={"after": str(MAX_SEQ)})
    assert at_the_edge.status_code == 200
    assert at_the_edge.text.strip().endswith("data: [DONE]")


def test_a_surrogate_sent_as_raw_bytes_is_refused_like_an_escaped_one(
    http: httpx.Client, client: openai.OpenAI
) -> None:
    """JSON's parser takes the UTF-8 bytes of half a surrogate pair as they are."""
    thread = client.beta.threads.create()
    body = b'{"role": "user", "content": "a\xed\xa0\x80b"}'

    refused = http.post(
        f"/threads/{thread.id}/messages", content=body, headers={"content-type": "application/json"}
    )

    assert refused.status_code == 400 and refused.json()["error"]["param"] == "content"
    assert client.beta.threads.messages.list(thread.id).data == []


@pytest.mark.parametrize(
    "body",
    [
        '{"metadata": {}, "tool_resources": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["nested-too-deeply"],
)
def test_a_body_json_cannot_carry_is_a_400(
    http: httpx.Client, client: openai.OpenAI, body: str
) -> None:
    assistants_before = [a.id for a in client.beta.assistants.list(limit=100).data]

    refused = _post(http, "/assistants", body)

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert [a.id for a in client.beta.assistants.list(limit=100).data] == assistants_before


def test_a_model_answer_with_text_no_store_keeps_is_kept_with_replacements(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """A client's NUL is refused; a model's cannot be, so it is replaced: the run completes
    on both backends with the rest of the answer intact."""
    scripted_model.script(model_name, Reply("a\x00b \ud800c"))
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.content[0].text.value == "a\ufffdb \ufffdc"  # type: ignore[union-attr]
