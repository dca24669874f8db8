"""The files and vector stores a request names: checked against the caller's project, and
made where the request asks for them, in the transaction that stores the request.

- `tool_resources.file_search.vector_store_ids` must name stores of the project, not
  expired; `tool_resources.file_search.vector_stores` makes the store it describes (from
  its `file_ids`, chunking and metadata) and keeps its id instead.
- `tool_resources.code_interpreter.file_ids` must name files of the project.
- A message's `image_file` parts and attachments must name files of the project; an
  attachment for `file_search` goes into the thread's own store, made the first time with
  the expiry the hosted service gives such stores; one for `code_interpreter` joins the
  thread's code interpreter files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj, Thread
from threadline.service.requests import MessageCreate
from threadline.service.vector_store_requests import InlineVectorStore, chunking_record
from threadline.service.vector_stores import (
    THREAD_STORE_EXPIRY,
    add_files,
    create_store,
    usable_stores,
)
from threadline.store.base import StoreTx


async def resolve_tool_resources(
    tx: StoreTx, project: str, resources: Obj, param: str = "tool_resources"
) -> Obj:
    """`resources` as stored: the code interpreter's files and the stores checked, inline
    stores made and named by id."""
    code_files = list((resources.get("code_interpreter") or {}).get("file_ids") or [])
    if code_files:
        found = {file["id"] for file in await tx.get_files(project, code_files)}
        for index, file_id in enumerate(code_files):
            if file_id not in found:
                raise InvalidRequest(
                    f"No file found with id '{file_id}'.",
                    param=f"{param}.code_interpreter.file_ids[{index}]",
                )
    search = resources.get("file_search")
    if not search:
        return resources
    ids = list(search.get("vector_store_ids") or [])
    where = f"{param}.file_search"
    await usable_stores(tx, project, ids, f"{where}.vector_store_ids")
    for index, raw in enumerate(search.get("vector_stores") or []):
        inline = _inline(raw, f"{where}.vector_stores[{index}]")
        store = await create_store(
            tx,
            project,
            name=None,
            file_ids=inline.file_ids or [],
            expires_after=None,
            chunking=chunking_record(inline.chunking_strategy),
            metadata=inline.metadata or {},
            param=f"{where}.vector_stores[{index}].file_ids",
        )
        ids.append(store["id"])
    return {**resources, "file_search": {"vector_store_ids": ids}}


def _inline(raw: Any, param: str) -> InlineVectorStore:
    try:
        return InlineVectorStore.model_validate(raw)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidRequest(
            f"Invalid '{param}{'.' + where if where else ''}': {error['msg']}.",
            param=f"{param}.{where}" if where else param,
        ) from invalid


async def check_message_refs(
    tx: StoreTx,
    project: str,
    requests: Sequence[MessageCreate],
    param: str,
) -> None:
    """Every file a message names exists in the project."""
    named: list[tuple[str, str]] = []
    for index, request in enumerate(requests):
        prefix = f"{param}[{index}]." if param else ""
        if not isinstance(request.content, str):
            for position, part in enumerate(request.content):
                if part.type == "image_file":
                    where = f"{prefix}content[{position}].image_file.file_id"
                    named.append((part.image_file.file_id, where))
        for position, attachment in enumerate(request.attachments or []):
            if attachment.file_id is not None:
                named.append((attachment.file_id, f"{prefix}attachments[{position}].file_id"))
    if not named:
        return
    found = {f["id"] for f in await tx.get_files(project, [file_id for file_id, _ in named])}
    for file_id, where in named:
        if file_id not in found:
            raise InvalidRequest(f"No file found with id '{file_id}'.", param=where)


async def attach_files(
    tx: StoreTx, project: str, thread: Thread, requests: Sequence[MessageCreate]
) -> Thread:
    """Give the thread the files its new messages attach: for the code interpreter, among
    its files; for file_search, in its own store. The thread as it then is."""
    thread = await _attach_for_code(tx, project, thread, requests)
    return await _attach_for_search(tx, project, thread, requests)


async def _attach_for_code(
    tx: StoreTx, project: str, thread: Thread, requests: Sequence[MessageCreate]
) -> Thread:
    """Files attached for the code interpreter join the thread's `code_interpreter`
    files, as the hosted service keeps them: each run's sandbox then has them."""
    attached = [
        attachment.file_id
        for request in requests
        for attachment in request.attachments or []
        if attachment.file_id is not None
        and any(tool.type == "code_interpreter" for tool in attachment.tools)
    ]
    resources = thread["tool_resources"]
    existing = list((resources.get("code_interpreter") or {}).get("file_ids") or [])
    added = [file_id for file_id in dict.fromkeys(attached) if file_id not in existing]
    if not added:
        return thread
    code = {**(resources.get("code_interpreter") or {}), "file_ids": existing + added}
    changes = {"tool_resources": {**resources, "code_interpreter": code}}
    updated = await tx.update_thread(project, thread["id"], changes)
    return updated if updated is not None else thread


async def _attach_for_search(
    tx: StoreTx, project: str, thread: Thread, requests: Sequence[MessageCreate]
) -> Thread:
    """Put the files attached for file_search into the thread's own store (made now if the
    thread has none); the thread as it then is."""
    file_ids = [
        attachment.file_id
        for request in requests
        for attachment in request.attachments or []
        if attachment.file_id is not None
        and any(tool.type == "file_search" for tool in attachment.tools)
    ]
    if not file_ids:
        return thread
    resources = thread["tool_resources"]
    existing = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
    chunking = chunking_record(None)
    if existing:
        await add_files(tx, project, existing[0], file_ids, chunking, param="attachments")
        return thread
    store = await create_store(
        tx,
        project,
        name=None,
        file_ids=file_ids,
        expires_after=dict(THREAD_STORE_EXPIRY),
        chunking=chunking,
        metadata={},
        param="attachments",
    )
    changes = {"tool_resources": {**resources, "file_search": {"vector_store_ids": [store["id"]]}}}
    updated = await tx.update_thread(project, thread["id"], changes)
    return updated if updated is not None else thread
