"""Images in messages reach the model: an `image_file` as a data URL of its bytes, an
`image_url` as it is, `detail` passed through; a model that cannot see images (one a models
file marks `vision = false`, the bundled local model) gets a text note in place of each, and
the run's step says so. Through the `openai` SDK and the `azure-ai-agents` 1.1.0 image-file
sample, on the scripted model, which records what it received."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import openai
import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    FilePurpose,
    ListSortOrder,
    MessageImageFileParam,
    MessageInputImageFileBlock,
    MessageInputTextBlock,
)
from support.azure_agents import agents_client
from support.live import TEST_SERVER_ENV, Databases, openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess

from threadline.domain.records import FileRecord, Message
from threadline.engine.images import MAX_IMAGE_BYTES, PromptImages, image_content

CAT_URL = "https://images.example/cat.png"
CANNOT_SEE = {"images": "described as text: the model cannot see images"}


def _png() -> bytes:
    """A valid 1x1 red PNG: signature, IHDR, one IDAT row (filter byte, RGB), IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# The other types a file is recognised as, by their first bytes.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"
    b"\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


def _data_url(data: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def _upload(client: openai.OpenAI, name: str, data: bytes, purpose: str = "vision") -> str:
    return client.files.create(file=(name, data), purpose=purpose).id  # type: ignore[arg-type]


def _run(client: openai.OpenAI, model: str, content: list[dict[str, Any]], **options: Any) -> Any:
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": content}])  # type: ignore[typeddict-item]
    return client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50, **options
    )


def _step_metadata(client: openai.OpenAI, run: Any) -> list[object]:
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=run.thread_id)
    return [step.metadata for step in steps.data]


def _user_content(scripted_model: ScriptedModelServer, model: str) -> Any:
    (request,) = scripted_model.requests(model)
    (user,) = [m for m in request["messages"] if m["role"] == "user"]
    return user["content"]


def test_an_image_file_reaches_the_model_as_a_data_url_with_its_detail(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    png = _png()
    file_id = _upload(client, "photo.png", png)
    scripted_model.script(model_name, Reply("A red dot."))

    run = _run(
        client,
        model_name,
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_file", "image_file": {"file_id": file_id, "detail": "high"}},
        ],
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": _data_url(png, "image/png"), "detail": "high"}},
    ]
    assert _step_metadata(client, run) == [{}]


def test_jpeg_gif_and_webp_files_are_sent_with_their_own_media_types(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    # Two named for what they are not: the bytes decide, not the name or the purpose.
    uploads = [
        (_upload(client, "no-extension", JPEG, "assistants"), JPEG, "image/jpeg"),
        (_upload(client, "picture.png", GIF, "assistants"), GIF, "image/gif"),
        (_upload(client, "c.webp", WEBP), WEBP, "image/webp"),
    ]

    run = _run(
        client,
        model_name,
        [{"type": "image_file", "image_file": {"file_id": file_id}} for file_id, _, _ in uploads],
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == [
        {"type": "image_url", "image_url": {"url": _data_url(data, media), "detail": "auto"}}
        for _, data, media in uploads
    ]


def test_an_image_url_passes_through_with_its_detail(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    inline = _data_url(GIF, "image/gif")

    run = _run(
        client,
        model_name,
        [
            {"type": "image_url", "image_url": {"url": CAT_URL, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": inline}},
            {"type": "text", "text": "Which is bigger?"},
        ],
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == [
        {"type": "image_url", "image_url": {"url": CAT_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": inline, "detail": "auto"}},
        {"type": "text", "text": "Which is bigger?"},
    ]


def test_a_file_that_is_no_image_becomes_a_note_and_the_step_says_so(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    file_id = _upload(client, "notes.txt", b"Just some words, no picture.", "assistants")

    run = _run(
        client,
        model_name,
        [
            {"type": "text", "text": "Look:"},
            {"type": "image_file", "image_file": {"file_id": file_id, "detail": "low"}},
        ],
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == [
        {"type": "text", "text": "Look:"},
        {
            "type": "text",
            "text": "[An image (notes.txt) was attached here; its file is not a PNG, JPEG,"
            " GIF or WEBP image, so it is not shown.]",
        },
    ]
    assert _step_metadata(client, run) == [
        {"images": "described as text: a file is not a PNG, JPEG, GIF or WEBP image"}
    ]


def test_an_image_file_deleted_since_becomes_a_note(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    file_id = _upload(client, "gone.png", _png())
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_file", "image_file": {"file_id": file_id}}],
            }
        ]
    )
    client.files.delete(file_id)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == (
        f"[An image ({file_id}) was attached here; its file is no longer stored, so it is not"
        " shown.]"
    )
    assert _step_metadata(client, run) == [
        {"images": "described as text: an image's file is no longer stored"}
    ]


def test_an_image_in_an_assistant_message_is_described_as_text(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Here is the cat."},
                    {"type": "image_url", "image_url": {"url": CAT_URL}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": CAT_URL}}],
            },
        ]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )

    # Chat Completions takes images in user messages only.
    assert run.status == "completed", run.last_error
    (request,) = scripted_model.requests(model_name)
    assert request["messages"] == [
        {
            "role": "assistant",
            "content": "Here is the cat.\n"
            f"[An image ({CAT_URL}) was attached here; the model is shown images in a user's"
            " messages only.]",
        },
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": CAT_URL, "detail": "auto"}}],
        },
    ]
    assert _step_metadata(client, run) == [
        {
            "images": "described as text: an image was in an assistant's message, where the"
            " model is shown none"
        }
    ]


def test_a_file_larger_than_an_image_may_be_is_described_without_being_read() -> None:
    """The record's size decides, before any byte is read (no blob store here to read)."""
    big = FileRecord(
        id="file-big",
        created_at=0,
        bytes=MAX_IMAGE_BYTES + 1,
        filename="huge.png",
        purpose="vision",
        status="processed",
        status_details=None,
        expires_at=None,
        blob_key="proj/file-big",
    )
    message = cast(
        Message, {"role": "user", "content": [{"type": "image_file", "file_id": big["id"]}]}
    )

    content = image_content(message, True, {big["id"]: big})
    images = PromptImages(True)
    images.keep(content)

    assert content.content == (
        "[An image (huge.png) was attached here; it is larger than the 20 MB an image may be,"
        " so it is not shown.]"
    )
    assert not content.waiting
    assert images.step_metadata() == {"images": "described as text: an image is larger than 20 MB"}


@pytest.fixture(scope="module")
def blind_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    """`blind-*` on the scripted model, marked as seeing no images; `tiny` the bundled model."""
    folder = tmp_path_factory.mktemp("images")
    models = folder / "models.toml"
    models.write_text(
        f"""
[[models]]
name = "blind-*"
provider = "openai"
base_url = "{scripted_model.base_url}"
vision = false

[[models]]
name = "tiny"
provider = "local"
"""
    )
    env = {
        **TEST_SERVER_ENV,
        "THREADLINE_OPENAI_BASE_URL": "",
        "THREADLINE_MODELS_FILE": str(models),
    }
    with ServerProcess(databases.new(), env, folder / "server.log") as server:
        yield server


def test_a_model_marked_as_not_seeing_images_gets_notes_instead(
    blind_server: ServerProcess, scripted_model: ScriptedModelServer
) -> None:
    client = openai_client(blind_server)
    model = ScriptedModelServer.unique_name("blind")
    file_id = _upload(client, "photo.png", _png())
    scripted_model.script(model, Reply("I was told of two images."))

    run = _run(
        client,
        model,
        [
            {"type": "text", "text": "Compare these."},
            {"type": "image_file", "image_file": {"file_id": file_id, "detail": "high"}},
            {"type": "image_url", "image_url": {"url": CAT_URL}},
        ],
    )

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model) == (
        "Compare these.\n"
        "[An image (photo.png) was attached here; this model cannot see images.]\n"
        f"[An image ({CAT_URL}) was attached here; this model cannot see images.]"
    )
    assert _step_metadata(client, run) == [CANNOT_SEE]


def test_the_bundled_model_is_told_of_the_images_it_cannot_see(
    blind_server: ServerProcess,
) -> None:
    client = openai_client(blind_server)
    file_id = _upload(client, "photo.png", _png())

    run = _run(
        client,
        "tiny",
        [
            {"type": "text", "text": "What is in the picture?"},
            {"type": "image_file", "image_file": {"file_id": file_id}},
            {"type": "image_url", "image_url": {"url": _data_url(GIF, "image/gif")}},
        ],
        max_completion_tokens=4,
        temperature=0,
    )

    # A real answer, cut at four tokens unless the model ends sooner.
    assert run.status in ("completed", "incomplete"), run.last_error
    assert run.usage is not None and run.usage.completion_tokens > 0
    assert _step_metadata(client, run) == [CANNOT_SEE]


@pytest.fixture
def agents(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "images") as client:
        yield client


def test_the_image_file_sample_sends_the_image_to_the_model(
    agents: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, tmp_path: Path
) -> None:
    png = _png()
    image_path = tmp_path / "image_file.png"
    image_path.write_bytes(png)
    scripted_model.script(model_name, Reply("A single red pixel."))

    image_file = agents.files.upload_and_poll(file_path=str(image_path), purpose=FilePurpose.AGENTS)
    agent = agents.create_agent(
        model=model_name, name="my-agent", instructions="You are helpful agent"
    )
    thread = agents.threads.create()
    file_param = MessageImageFileParam(file_id=image_file.id, detail="high")
    content_blocks = [
        MessageInputTextBlock(text="Hello, what is in the image ?"),
        MessageInputImageFileBlock(image_file=file_param),
    ]
    agents.messages.create(thread_id=thread.id, role="user", content=content_blocks)
    run = agents.runs.create_and_process(thread_id=thread.id, agent_id=agent.id)

    assert run.status == "completed", run.last_error
    assert _user_content(scripted_model, model_name) == [
        {"type": "text", "text": "Hello, what is in the image ?"},
        {"type": "image_url", "image_url": {"url": _data_url(png, "image/png"), "detail": "high"}},
    ]
    messages = agents.messages.list(thread_id=thread.id, order=ListSortOrder.ASCENDING)
    replies = [m.text_messages[-1].text.value for m in messages if m.role == "assistant"]
    assert replies == ["A single red pixel."]
