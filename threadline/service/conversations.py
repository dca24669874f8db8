"""Conversations: the Responses API's threads. A conversation is a thread, stored once: its
message items are the thread's messages, so an Assistants client and a Conversations client
read and write the same history. A conversation made here has a `conv_` id; a thread's id
names the same record as a conversation, and a conversation's id as a thread.

Items are messages, function calls and their outputs (`service/items.py`). An item of
another type (a reasoning item, ...) and a message role a thread cannot hold (`system`,
`developer`) are refused with a 400 that names them, never stored as something else.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.ids import IdKind
from threadline.domain.limits import DEFAULT_LIMITS, Limits, check_metadata
from threadline.domain.records import Message, Metadata, Page, PageRequest, Thread
from threadline.service.file_refs import attach_files, check_message_refs
from threadline.service.items import ITEM_TYPES, GivenItems, read_item
from threadline.service.messages import (
    append_messages,
    check_messages,
    refuse_if_being_written,
    refuse_while_running,
    require_thread,
)
from threadline.service.requests import Closed, MessageCreate, ThreadCreate
from threadline.service.threads import ThreadService, insert_thread
from threadline.service.unsupported import not_yet
from threadline.store.base import Store

# At most this many items are added in one request, as the hosted service allows.
MAX_ITEMS_PER_REQUEST = 20
_ROLES = ("user", "assistant")
_NOT_YET_ROLES = ("system", "developer")


class ConversationCreate(Closed):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_ITEMS_PER_REQUEST)
    metadata: Metadata | None = None


class ConversationUpdate(Closed):
    metadata: Metadata


class ItemsCreate(Closed):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


def _text(part: dict[str, Any], param: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"Missing required parameter: '{param}.text'.", param=f"{param}.text")
    return text


def _part(part: Any, param: str) -> dict[str, Any]:
    """A Responses content part as the Assistants part it is stored as."""
    if not isinstance(part, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _text(part, param)}
    if kind == "input_image":
        detail = part.get("detail") or "auto"
        if isinstance(part.get("file_id"), str):
            return {
                "type": "image_file",
                "image_file": {"file_id": part["file_id"], "detail": detail},
            }
        if isinstance(part.get("image_url"), str):
            return {"type": "image_url", "image_url": {"url": part["image_url"], "detail": detail}}
        raise InvalidRequest(
            f"'{param}' needs an 'image_url' or a 'file_id'.", param=f"{param}.image_url"
        )
    if kind in ("input_file", "input_audio", "refusal"):
        raise not_yet(f"A content part of type '{kind}'", f"{param}.type", "conversations")
    raise InvalidRequest(
        f"Invalid '{param}.type': '{kind}' is not a content part type.", param=f"{param}.type"
    )


def message_of(item: Any, param: str) -> MessageCreate:
    """A message item (`{"type": "message", "role", "content"}`, the type optional, the
    content a string or parts) as the thread message it is stored as."""
    if not isinstance(item, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param)
    kind = item.get("type", "message")
    if kind != "message":
        raise not_yet(f"An item of type '{kind}'", f"{param}.type", "conversations")
    role = item.get("role")
    if role in _NOT_YET_ROLES:
        raise not_yet(f"A message with the role '{role}'", f"{param}.role", "conversations")
    if role not in _ROLES:
        raise InvalidRequest(
            f"Invalid '{param}.role': '{role}' is not one of user, assistant.",
            param=f"{param}.role",
        )
    unknown = set(item) - {"type", "role", "content", "id", "status"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}")
    content = item.get("content")
    if not isinstance(content, str):
        if not isinstance(content, list) or not content:
            raise InvalidRequest(
                f"Invalid '{param}.content': a string or a non-empty list of parts.",
                param=f"{param}.content",
            )
        content = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    try:
        return MessageCreate.model_validate({"role": role, "content": content})
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidRequest(
            f"Invalid '{param}.{where}': {error['msg']}.", param=f"{param}.{where}"
        ) from invalid


def items_of(items: list[Any] | None, limits: Limits, param: str = "items") -> GivenItems:
    """Messages, function calls and their outputs, in order."""
    given = GivenItems()
    for index, item in enumerate(items or []):
        where = f"{param}[{index}]"
        if isinstance(item, dict) and item.get("type") in ITEM_TYPES:
            given.entries.append(read_item(item, where, limits))
        else:
            given.entries.append(message_of(item, where))
    return given


class ConversationService:
    def __init__(self, store: Store, limits: Limits = DEFAULT_LIMITS):
        self.store = store
        self.limits = limits
        self.threads = ThreadService(store, limits)

    async def create(self, project: str, request: ConversationCreate) -> Thread:
        given = items_of(request.items, self.limits)
        check_messages(given.messages, self.limits, "items")
        check_metadata(request.metadata)
        async with self.store.transaction() as tx:
            await check_message_refs(tx, project, given.messages, "items")
            thread = await insert_thread(
                tx, project, ThreadCreate(metadata=request.metadata), kind=IdKind.CONVERSATION
            )
            records = given.records(thread["id"])
            await append_messages(tx, thread["id"], records, self.limits, param="items")
            return await attach_files(tx, project, thread, given.messages)

    async def get(self, project: str, conversation_id: str) -> Thread:
        async with self.store.transaction(durable=False) as tx:
            thread = await tx.get_thread(project, conversation_id)
        if thread is None:
            raise NotFound("conversation", conversation_id)
        return thread

    async def update(
        self, project: str, conversation_id: str, request: ConversationUpdate
    ) -> Thread:
        check_metadata(request.metadata)
        async with self.store.transaction() as tx:
            thread = await tx.update_thread(
                project, conversation_id, {"metadata": request.metadata}
            )
        if thread is None:
            raise NotFound("conversation", conversation_id)
        return thread

    async def delete(self, project: str, conversation_id: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete_thread(project, conversation_id):
                raise NotFound("conversation", conversation_id)

    async def add_items(
        self, project: str, conversation_id: str, request: ItemsCreate
    ) -> list[Message]:
        """The items, stored at once, in order; none if any is refused."""
        given = items_of(request.items, self.limits)
        check_messages(given.messages, self.limits, "items")
        async with self.store.transaction() as tx:
            thread = await tx.lock_thread(project, conversation_id)
            if thread is None:
                raise NotFound("conversation", conversation_id)
            await refuse_while_running(tx, conversation_id)
            await check_message_refs(tx, project, given.messages, "items")
            records = given.records(conversation_id)
            await append_messages(tx, conversation_id, records, self.limits, param="items")
            await attach_files(tx, project, thread, given.messages)
        return records

    async def list_items(
        self, project: str, conversation_id: str, page: PageRequest
    ) -> Page[Message]:
        async with self.store.transaction(durable=False) as tx:
            await self._require(tx, project, conversation_id)
            return await tx.page_messages(conversation_id, page, items=True)

    async def get_item(self, project: str, conversation_id: str, item_id: str) -> Message:
        async with self.store.transaction(durable=False) as tx:
            await self._require(tx, project, conversation_id)
            message = await tx.get_message(conversation_id, item_id)
        if message is None:
            raise NotFound("item", item_id)
        return message

    async def delete_item(self, project: str, conversation_id: str, item_id: str) -> Thread:
        """The conversation as it is once the item is gone (what the hosted service answers)."""
        async with self.store.transaction() as tx:
            thread = await tx.lock_thread(project, conversation_id)
            if thread is None:
                raise NotFound("conversation", conversation_id)
            item = await tx.get_message(conversation_id, item_id)
            if item is None:
                raise NotFound("item", item_id)
            if "item" not in item:
                await refuse_if_being_written(tx, conversation_id, item)
            await tx.delete_message(conversation_id, item_id)
        return thread

    async def _require(self, tx: Any, project: str, conversation_id: str) -> Thread:
        try:
            return await require_thread(tx, project, conversation_id, lock=False)
        except NotFound:
            raise NotFound("conversation", conversation_id) from None
