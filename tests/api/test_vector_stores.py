"""Vector stores through the openai SDK: files ingested in the background and polled for,
batches, search with attribute filters and thresholds, and each refusal with nothing stored.

Files are made by the tests in the formats the service parses; the search checks use facts
written into them, so a query finds the file that holds its answer.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import docx
import httpx
import openai
import pytest
from fpdf import FPDF
from support.errors import assert_error_body, sdk_error
from support.live import ServerFactory, openai_client
from support.scripted_model import Hang, ScriptedModelServer
from support.server import ServerProcess
from support.stored import expire_vector_store

VECTOR_STORE_KEYS = {
    "id",
    "object",
    "created_at",
    "name",
    "usage_bytes",
    "file_counts",
    "status",
    "expires_after",
    "expires_at",
    "last_active_at",
    "metadata",
}
VECTOR_STORE_FILE_KEYS = {
    "id",
    "object",
    "usage_bytes",
    "created_at",
    "vector_store_id",
    "status",
    "last_error",
    "chunking_strategy",
    "attributes",
}


def _pdf(lines: list[str]) -> bytes:
    pdf = FPDF()
    for line in lines:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 10, line)
    return bytes(pdf.output())


def _docx(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, data), purpose="assistants").id


def test_files_are_indexed_and_found_by_what_they_say(client: openai.OpenAI) -> None:
    ids = {
        "pdf": _upload(
            client,
            "handbook.pdf",
            _pdf(["The office opens at nine.", "Parking is in garage B, level minus two."]),
        ),
        "docx": _upload(client, "recipes.docx", _docx(["Pancakes need flour, eggs and milk."])),
        "md": _upload(client, "trip.md", b"# Trip\n\nThe ferry to the island leaves at 7:15.\n"),
    }
    store = client.vector_stores.create(name="handbook", file_ids=list(ids.values()))
    assert set(client.vector_stores.with_raw_response.retrieve(store.id).http_response.json()) == (
        VECTOR_STORE_KEYS
    )
    for file_id in ids.values():
        done = client.vector_stores.files.poll(
            file_id, vector_store_id=store.id, poll_interval_ms=50
        )
        assert done.status == "completed", done.last_error
        assert done.usage_bytes > 0
        assert done.chunking_strategy.type == "static"  # type: ignore[union-attr]
    store = client.vector_stores.retrieve(store.id)
    assert store.status == "completed"
    assert store.file_counts.completed == 3
    assert store.file_counts.total == 3
    assert store.usage_bytes > 0
    raw = client.vector_stores.files.with_raw_response.retrieve(
        ids["md"], vector_store_id=store.id
    ).http_response.json()
    assert set(raw) == VECTOR_STORE_FILE_KEYS

    where = client.vector_stores.search(store.id, query="where do I park my car?")
    assert where.data[0].file_id == ids["pdf"]
    assert where.data[0].filename == "handbook.pdf"
    assert "garage B" in where.data[0].content[0].text
    assert 0 < where.data[0].score <= 1
    ferry = client.vector_stores.search(store.id, query="ferry departure time", max_num_results=1)
    assert [hit.file_id for hit in ferry.data] == [ids["md"]]
    assert ferry.search_query == ["ferry departure time"]


def test_upload_and_poll_and_attribute_filters(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="filtered")
    first = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("2023.txt", b"Revenue in 2023 was 10 million euros."),
        poll_interval_ms=50,
    )
    second = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("2024.txt", b"Revenue in 2024 was 14 million euros."),
        poll_interval_ms=50,
    )
    assert first.status == second.status == "completed"
    client.vector_stores.files.update(
        first.id, vector_store_id=store.id, attributes={"year": 2023, "region": "eu"}
    )
    client.vector_stores.files.update(
        second.id, vector_store_id=store.id, attributes={"year": 2024, "region": "eu"}
    )

    recent = client.vector_stores.search(
        store.id,
        query="revenue",
        filters={"type": "gte", "key": "year", "value": 2024},
    )
    assert [hit.file_id for hit in recent.data] == [second.id]
    assert recent.data[0].attributes == {"year": 2024, "region": "eu"}
    both = client.vector_stores.search(
        store.id,
        query="revenue",
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "region", "value": "eu"},
                {"type": "in", "key": "year", "value": [2023, 2024]},
            ],
        },
    )
    assert {hit.file_id for hit in both.data} == {first.id, second.id}
    nothing = client.vector_stores.search(
        store.id, query="revenue", ranking_options={"score_threshold": 1.0}
    )
    assert len(nothing.data) <= 1


def test_batches_index_every_file_and_an_unreadable_one_fails_alone(
    client: openai.OpenAI,
) -> None:
    good = [
        _upload(client, f"note-{i}.txt", f"Note {i} mentions the colour teal.".encode())
        for i in range(3)
    ]
    broken = _upload(client, "broken.json", b'{"not": "closed"')
    store = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[*good, broken], poll_interval_ms=50
    )
    assert batch.status == "completed"
    assert batch.file_counts.completed == 3
    assert batch.file_counts.failed == 1
    failed = client.vector_stores.files.retrieve(broken, vector_store_id=store.id)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == "invalid_file"
    listed = client.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=store.id, filter="failed"
    )
    assert [f.id for f in listed.data] == [broken]
    hits = client.vector_stores.search(store.id, query="teal")
    assert {hit.file_id for hit in hits.data} == set(good)


def test_deleting_a_file_takes_it_out_of_every_store(client: openai.OpenAI) -> None:
    file_id = _upload(client, "secret.txt", b"The launch code word is marmalade.")
    stores = [client.vector_stores.create(name=f"s{i}", file_ids=[file_id]) for i in range(2)]
    for store in stores:
        client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=50)
        assert client.vector_stores.search(store.id, query="marmalade").data
    client.files.delete(file_id)
    for store in stores:
        assert client.vector_stores.search(store.id, query="marmalade").data == []
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.retrieve(file_id, vector_store_id=store.id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
                }
            },
            "chunking_strategy",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy",
        ),
        ({"file_ids": ["file-doesnotexist"]}, "file_ids[0]"),
        ({"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after"),
    ],
)
def test_bad_stores_are_refused_and_nothing_is_stored(
    server: ServerProcess, client: openai.OpenAI, body: dict[str, Any], param: str
) -> None:
    before = [s.id for s in client.vector_stores.list(limit=100)]
    response = httpx.post(f"{server.base_url}/vector_stores", json=body, timeout=30)
    error = assert_error_body(response.json(), 400, response.status_code)
    assert error["param"].startswith(param)
    assert [s.id for s in client.vector_stores.list(limit=100)] == before


def test_a_file_that_cannot_be_searched_is_refused(client: openai.OpenAI) -> None:
    file_id = _upload(client, "program.exe", b"MZ\x90\x00")
    store = client.vector_stores.create(name="exe")
    with pytest.raises(openai.BadRequestError) as refused:
        client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    error = sdk_error(refused.value, 400)
    assert error["param"] == "file_id"
    assert error["code"] == "unsupported_file"
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_a_store_of_another_project_is_not_found(server: ServerProcess) -> None:
    created = httpx.post(
        f"{server.url}/api/projects/alpha/vector_stores?api-version=v1",
        json={"name": "alpha's"},
        timeout=30,
    ).json()
    for method, path, body in (
        ("GET", f"/vector_stores/{created['id']}", None),
        ("POST", f"/vector_stores/{created['id']}/search", {"query": "x"}),
        ("DELETE", f"/vector_stores/{created['id']}", None),
    ):
        response = httpx.request(method, f"{server.base_url}{path}", json=body, timeout=30)
        assert_error_body(response.json(), 404, response.status_code)
    again = httpx.get(
        f"{server.url}/api/projects/alpha/vector_stores/{created['id']}?api-version=v1",
        timeout=30,
    )
    assert again.json()["name"] == "alpha's"


def test_rewrite_query_is_refused_rather_than_ignored(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="rewrite")
    with pytest.raises(openai.BadRequestError) as refused:
        client.vector_stores.search(store.id, query="x", rewrite_query=True)
    assert sdk_error(refused.value, 400)["param"] == "rewrite_query"


def test_a_json_file_is_searchable_by_its_values(client: openai.OpenAI) -> None:
    data = json.dumps({"servers": [{"name": "zephyr", "port": 8443}]}).encode()
    store = client.vector_stores.create(name="json")
    done = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("config.json", data), poll_interval_ms=50
    )
    assert done.status == "completed"
    hits = client.vector_stores.search(store.id, query="zephyr port")
    assert "8443" in hits.data[0].content[0].text


def _poll_failed(client: openai.OpenAI, store_id: str, name: str, data: bytes) -> Any:
    return client.vector_stores.files.upload_and_poll(
        vector_store_id=store_id, file=(name, data), poll_interval_ms=50
    )


def _zip_bomb_docx() -> bytes:
    """A .docx whose one entry inflates to 210 MB of zeros: past what a document may hold."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as entry:
            block = b"\0" * (1 << 20)
            for _ in range(210):
                entry.write(block)
    return out.getvalue()


def _image_only_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("empty.pdf", b"", "empty"),
        ("truncated.pdf", b"%PDF-1.7\n1 0 obj\n<<", "PDF"),
        ("bad.txt", b"\xff\xfe\xfa not text \x00\x01", "text"),
    ],
    ids=["empty-text", "zero-byte-pdf", "truncated-pdf", "binary-text"],
)
def test_a_file_that_cannot_be_read_fails_alone_with_its_reason(
    client: openai.OpenAI, name: str, data: bytes, message: str
) -> None:
    store = client.vector_stores.create(name="bad input")
    good = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("good.txt", b"Readable words."), poll_interval_ms=50
    )
    failed = _poll_failed(client, store.id, name, data)
    assert good.status == "completed"
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == "invalid_file"
    assert message.lower() in failed.last_error.message.lower()
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.completed, counts.failed) == (1, 1)
    hits = client.vector_stores.search(store.id, query="readable words")
    assert {hit.file_id for hit in hits.data} == {good.id}


def test_a_zip_bomb_in_a_docx_fails_without_being_inflated(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="bomb")
    failed = _poll_failed(client, store.id, "bomb.docx", _zip_bomb_docx())
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.code == "invalid_file"


def test_an_image_only_pdf_is_indexed_as_empty(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="scan")
    done = _poll_failed(client, store.id, "scan.pdf", _image_only_pdf())
    assert done.status == "completed"
    assert client.vector_stores.search(store.id, query="anything at all").data == []


def test_an_expired_store_says_so_and_cannot_be_searched_or_used(
    server: ServerProcess, client: openai.OpenAI
) -> None:
    store = client.vector_stores.create(
        name="short-lived", expires_after={"anchor": "last_active_at", "days": 1}
    )
    assert store.last_active_at is not None
    assert store.expires_at == store.last_active_at + 86400
    expire_vector_store(server.database_url, store.id)

    assert client.vector_stores.retrieve(store.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as refused:
        client.vector_stores.search(store.id, query="x")
    assert sdk_error(refused.value, 400)["code"] == "vector_store_expired"
    with pytest.raises(openai.BadRequestError) as on_assistant:
        client.beta.assistants.create(
            model="m",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
    assert sdk_error(on_assistant.value, 400)["code"] == "vector_store_expired"


def test_cancelling_a_batch_stops_the_files_not_yet_indexed(
    start_server: ServerFactory, scripted_model: ScriptedModelServer
) -> None:
    # Embedded by an upstream that holds its first request: the batch stays under way.
    embedding_model = scripted_model.unique_name()
    scripted_model.script(embedding_model, Hang(600))
    server = start_server(THREADLINE_EMBEDDING_MODEL=embedding_model)
    client = openai_client(server)
    ids = [_upload(client, f"held-{i}.txt", f"Held file {i}.".encode()) for i in range(2)]
    store = client.vector_stores.create(name="cancelled")
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    deadline = time.monotonic() + 60
    while not scripted_model.requests(embedding_model):
        assert time.monotonic() < deadline, "ingestion never asked for embeddings"
        time.sleep(0.02)

    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)

    assert cancelled.status == "cancelled"
    assert cancelled.file_counts.cancelled == 2
    listed = client.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=store.id, filter="cancelled"
    )
    assert sorted(f.id for f in listed.data) == sorted(ids)
    assert client.vector_stores.retrieve(store.id).file_counts.in_progress == 0
