"""Threads: conversations that persist until deleted, with their messages, runs and steps."""

from __future__ import annotations

from threadline.domain.clock import now
from threadline.domain.errors import NotFound
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import DEFAULT_LIMITS, Limits, check_metadata
from threadline.domain.records import Obj, Page, PageRequest, Thread
from threadline.service.file_refs import (
    attach_files,
    check_message_refs,
    resolve_tool_resources,
)
from threadline.service.messages import check_messages, new_messages
from threadline.service.requests import ThreadCreate, ThreadUpdate
from threadline.service.unsupported import check_tool_resources
from threadline.store.base import Store, StoreTx


def check_thread(request: ThreadCreate, limits: Limits, param: str = "") -> None:
    """A new thread's messages are refused whole before any is stored: past the thread's
    message limit, the thread could never take another."""
    prefix = f"{param}." if param else ""
    check_metadata(request.metadata, param=f"{prefix}metadata")
    check_tool_resources(request.tool_resources, f"{prefix}tool_resources")
    check_messages(request.messages, limits, f"{prefix}messages")


async def insert_thread(
    tx: StoreTx,
    project: str,
    request: ThreadCreate,
    param: str = "",
    *,
    kind: IdKind = IdKind.THREAD,
) -> Thread:
    """Store a thread with its first messages, in the caller's transaction: the files and
    stores they name checked, the stores they ask for made."""
    prefix = f"{param}." if param else ""
    resources = (
        request.tool_resources.model_dump(exclude_none=True) if request.tool_resources else {}
    )
    messages = request.messages or []
    await check_message_refs(tx, project, messages, f"{prefix}messages")
    thread: Thread = {
        "id": new_id(kind),
        "created_at": now(),
        "metadata": request.metadata or {},
        "tool_resources": await resolve_tool_resources(
            tx, project, resources, f"{prefix}tool_resources"
        ),
    }
    await tx.insert_thread(project, thread, new_messages(thread["id"], messages))
    return await attach_files(tx, project, thread, messages)


class ThreadService:
    def __init__(self, store: Store, limits: Limits = DEFAULT_LIMITS):
        self.store = store
        self.limits = limits

    async def create(self, project: str, request: ThreadCreate) -> Thread:
        check_thread(request, self.limits)
        async with self.store.transaction() as tx:
            return await insert_thread(tx, project, request)

    async def get(self, project: str, thread_id: str) -> Thread:
        async with self.store.transaction() as tx:
            thread = await tx.get_thread(project, thread_id)
        if thread is None:
            raise NotFound("thread", thread_id)
        return thread

    async def update(self, project: str, thread_id: str, request: ThreadUpdate) -> Thread:
        check_metadata(request.metadata)
        check_tool_resources(request.tool_resources)
        changes: Obj = {}
        if "metadata" in request.model_fields_set:
            changes["metadata"] = request.metadata or {}
        if "tool_resources" in request.model_fields_set:
            changes["tool_resources"] = (
                request.tool_resources.model_dump(exclude_none=True)
                if request.tool_resources
                else {}
            )
        async with self.store.transaction() as tx:
            if await tx.get_thread(project, thread_id) is None:
                raise NotFound("thread", thread_id)
            if "tool_resources" in changes:
                changes["tool_resources"] = await resolve_tool_resources(
                    tx, project, changes["tool_resources"]
                )
            if changes:
                thread = await tx.update_thread(project, thread_id, changes)
            else:
                thread = await tx.get_thread(project, thread_id)
            if thread is None:
                raise NotFound("thread", thread_id)
        return thread

    async def list(self, project: str, page: PageRequest) -> Page[Thread]:
        async with self.store.transaction() as tx:
            return await tx.page_threads(project, page)

    async def delete(self, project: str, thread_id: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete_thread(project, thread_id):
                raise NotFound("thread", thread_id)
