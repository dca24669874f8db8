"""The images of a run's messages, as its model is to get them.

To a model that sees images (`ModelProvider.sees_images`) an `image_url` part goes as it is,
and an `image_file` part as a data URL of its file's bytes (`data:image/png;base64,...`):
the upstream cannot fetch a file of ours, and a data URL is what every OpenAI-compatible
server takes. `detail` is passed through either way. Any file of the project may be named
(uploaded for `vision` or `assistants`, or written by a tool): what decides is its bytes.

An image a model cannot be shown becomes a text note where it was, so that the model knows
something was there and the run goes on, rather than failing or being answered as if the
image had been seen: "[An image (photo.png) was attached here; this model cannot see
images.]" for a model that cannot see images, and likewise for a file that is not a PNG,
JPEG, GIF or WEBP image, one larger than `MAX_IMAGE_BYTES` (what the hosted service takes),
one no longer stored, and an image in an assistant's message (Chat Completions takes images
in user messages only, and an upstream refuses the whole request for one elsewhere).

The media type is read from the file's first bytes (the signatures the four formats'
specifications give), not from its name or purpose, which say nothing sure. A library
(Pillow, puremagic) would be a dependency for a comparison of a few bytes; decoding the
image is the model's work.

Bytes are read after the transaction that built the prompt has ended (`PromptImages.fill`):
a file may be 20 MB, or sit in an object store, and a transaction open across the read would
hold its connection (on SQLite, the one writer) that long.

The step says so: each model turn whose prompt had an image described as text gives its
step (the `message_creation` step, or the `tool_calls` step when the model called tools)
the metadata `{"images": "described as text: <why>"}`, where <why> is each reason met, in
the order met, joined by "; " (e.g. "described as text: the model cannot see images").
A turn whose images all reached the model adds no metadata.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from threadline.domain.records import FileRecord, Message, Metadata
from threadline.store.blobs import BlobMissing, BlobStore

# The largest image the hosted service takes; a larger file becomes a note.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# An image's tokens in a prompt, for the context's budget: the most OpenAI's models count
# for one image at that detail (85 at `low`; 85 plus 170 a tile, up to six tiles, above).
LOW_DETAIL_TOKENS = 85
IMAGE_TOKENS = 1105
# The longest `image_url` shown in a note; longer ones are cut, with an ellipsis.
_NOTE_URL_CHARS = 100
_METADATA_CHARS = 512
METADATA_KEY = "images"

Part = dict[str, Any]


@dataclass(frozen=True)
class Reason:
    """Why an image became a note: in the note's words, and in the step's."""

    note: str
    step: str


CANNOT_SEE = Reason("this model cannot see images", "the model cannot see images")
NOT_AN_IMAGE = Reason(
    "its file is not a PNG, JPEG, GIF or WEBP image, so it is not shown",
    "a file is not a PNG, JPEG, GIF or WEBP image",
)
TOO_LARGE = Reason(
    f"it is larger than the {MAX_IMAGE_BYTES // (1024 * 1024)} MB an image may be, so it is"
    " not shown",
    f"an image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
)
GONE = Reason(
    "its file is no longer stored, so it is not shown", "an image's file is no longer stored"
)
NOT_FROM_USER = Reason(
    "the model is shown images in a user's messages only",
    "an image was in an assistant's message, where the model is shown none",
)


def media_type(data: bytes) -> str | None:
    """The image type `data` starts as, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url(data: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def note(name: str | None, reason: Reason) -> Part:
    what = f"An image ({name})" if name else "An image"
    return {"type": "text", "text": f"[{what} was attached here; {reason.note}.]"}


def image_tokens(part: Part) -> int:
    """What an `image_url` part of a chat message is counted in the prompt's budget."""
    return LOW_DETAIL_TOKENS if part["image_url"].get("detail") == "low" else IMAGE_TOKENS


def has_images(message: Message) -> bool:
    content = message["content"]
    if len(content) == 1 and content[0]["type"] == "text":
        return False  # nearly every message: one piece of text
    return any(part["type"] != "text" for part in content)


def image_file_ids(message: Message) -> list[str]:
    return [part["file_id"] for part in message["content"] if part["type"] == "image_file"]


@dataclass
class _Waiting:
    """An `image_url` part whose URL is its file's bytes, still to be read."""

    part: Part
    file: FileRecord


@dataclass
class ImageContent:
    """A message's content as the model gets it, with what it still waits for."""

    content: str | list[Part]
    waiting: list[_Waiting] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)


def image_content(message: Message, sees: bool, files: Mapping[str, FileRecord]) -> ImageContent:
    """`message`'s content for a model that `sees` images or not; `files` are the records
    of its `image_file` parts' files (none for a file deleted since)."""
    built = ImageContent([])
    unseen = CANNOT_SEE if not sees else None if message["role"] == "user" else NOT_FROM_USER
    parts: list[Part] = []
    for part in message["content"]:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
            continue
        if part["type"] == "image_url":
            if unseen is None:
                image = {"url": part["url"], "detail": part.get("detail", "auto")}
                parts.append({"type": "image_url", "image_url": image})
            else:
                parts.append(_described(built, _url_name(part["url"]), unseen))
            continue
        file = files.get(part["file_id"])
        name = file["filename"] if file is not None else part["file_id"]
        if unseen is not None:
            parts.append(_described(built, name, unseen))
        elif file is None:
            parts.append(_described(built, name, GONE))
        elif file["bytes"] > MAX_IMAGE_BYTES:
            parts.append(_described(built, name, TOO_LARGE))
        else:
            image = {"url": "", "detail": part.get("detail", "auto")}
            waiting: Part = {"type": "image_url", "image_url": image}
            built.waiting.append(_Waiting(waiting, file))
            parts.append(waiting)
    if all(part["type"] == "text" for part in parts):
        # As a string, as a text-only message always goes: a model that cannot see images
        # may not take a list of parts either (llama.cpp's chat templates need not).
        built.content = "\n".join(part["text"] for part in parts)
    else:
        built.content = parts
    return built


def _described(built: ImageContent, name: str | None, reason: Reason) -> Part:
    built.reasons.append(reason)
    return note(name, reason)


def _url_name(url: str) -> str | None:
    """How a note names an `image_url`: its address, cut short; nothing for a data URL."""
    if url.startswith("data:"):
        return None
    return url if len(url) <= _NOTE_URL_CHARS else url[: _NOTE_URL_CHARS - 1] + "…"


class PromptImages:
    """The images of one prompt, gathered while it is built: the parts that wait for their
    files' bytes (`fill`), and why any image was described as text (`step_metadata`)."""

    def __init__(self, sees: bool):
        self.sees = sees
        self.waiting: list[_Waiting] = []
        self.reasons: list[Reason] = []

    def keep(self, content: ImageContent) -> None:
        """`content` went into the prompt (a message left out of the window waits for
        nothing and describes nothing)."""
        self.waiting.extend(content.waiting)
        self.reasons.extend(content.reasons)

    async def fill(self, blobs: BlobStore | None) -> None:
        """Give each waiting part its file's bytes as a data URL, or make it a note. Each
        file is read once, however many parts name it."""
        keys = list({waiting.file["blob_key"]: None for waiting in self.waiting})
        read = await asyncio.gather(*(_read(blobs, key) for key in keys))
        found = dict(zip(keys, read, strict=True))
        for waiting in self.waiting:
            data = found[waiting.file["blob_key"]]
            media = media_type(data) if data is not None else None
            if data is None:
                reason: Reason | None = GONE
            elif len(data) > MAX_IMAGE_BYTES:
                reason = TOO_LARGE
            elif media is None:
                reason = NOT_AN_IMAGE
            else:
                reason = None
            if reason is None:
                assert data is not None and media is not None
                waiting.part["image_url"]["url"] = data_url(data, media)
                continue
            self.reasons.append(reason)
            waiting.part.clear()
            waiting.part.update(note(waiting.file["filename"], reason))
        self.waiting.clear()

    def step_metadata(self) -> Metadata | None:
        """What the turn's step says of images described as text; None when none was."""
        if not self.reasons:
            return None
        said = list(dict.fromkeys(reason.step for reason in self.reasons))
        return {METADATA_KEY: ("described as text: " + "; ".join(said))[:_METADATA_CHARS]}


async def _read(blobs: BlobStore | None, key: str) -> bytes | None:
    """The blob under `key`; None when there is none (or no blob store to hold it)."""
    if blobs is None:
        return None
    try:
        return await blobs.read(key)
    except BlobMissing:
        return None
