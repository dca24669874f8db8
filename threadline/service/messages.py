"""Messages: what users and assistants said in a thread, in order."""

from __future__ import annotations

from threadline.domain.errors import Conflict, InvalidRequest, NotFound
from threadline.domain.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_array,
    check_message_content,
    check_metadata,
)
from threadline.domain.records import Message, Page, PageRequest, Thread
from threadline.domain.run_states import RunStatus, is_active
from threadline.service.file_refs import attach_files, check_message_refs
from threadline.service.objects import user_message
from threadline.service.requests import MessageCreate, MetadataUpdate
from threadline.service.unsupported import check_message_files
from threadline.store.base import Store, StoreTx


def check_message(request: MessageCreate, limits: Limits, param: str = "") -> None:
    prefix = f"{param}." if param else ""
    check_message_content(request.content, limits, f"{prefix}content")
    check_metadata(request.metadata, param=f"{prefix}metadata")
    check_message_files(request, prefix)


def check_messages(requests: list[MessageCreate] | None, limits: Limits, param: str) -> None:
    """Messages a request adds at once: no more than a thread can hold, each within limits."""
    check_array(requests, limits.messages_per_thread, param)
    for index, message in enumerate(requests or []):
        check_message(message, limits, param=f"{param}[{index}]")


def new_messages(thread_id: str, requests: list[MessageCreate]) -> list[Message]:
    return [user_message(thread_id, request) for request in requests]


async def require_thread(tx: StoreTx, project: str, thread_id: str, *, lock: bool) -> Thread:
    thread = await (tx.lock_thread if lock else tx.get_thread)(project, thread_id)
    if thread is None:
        raise NotFound("thread", thread_id)
    return thread


async def refuse_while_running(tx: StoreTx, thread_id: str) -> None:
    """Nothing is added to a thread while a run writes to it."""
    active = await tx.active_run(thread_id)
    if active is not None:
        raise Conflict(
            f"Can't add messages to {thread_id} while a run {active['id']} is active.",
            param="thread_id",
        )


async def append_messages(
    tx: StoreTx,
    thread_id: str,
    messages: list[Message],
    limits: Limits = DEFAULT_LIMITS,
    param: str = "thread_id",
) -> None:
    """Append to a locked thread, refusing what would take it past the size limit."""
    if not messages:
        return
    held = await tx.count_messages(thread_id)
    if held + len(messages) > limits.messages_per_thread:
        raise InvalidRequest(
            f"Thread {thread_id} holds {held} messages; adding {len(messages)} would take it "
            f"past its limit of {limits.messages_per_thread} messages.",
            param=param,
            code="thread_message_limit_exceeded",
        )
    await tx.insert_messages(thread_id, messages)


def _message_only(message: Message | None) -> Message | None:
    """A message of the thread; None for its other items, which the Assistants API does not
    show (a function call given through the Responses API, say)."""
    return None if message is None or "item" in message else message


class MessageService:
    def __init__(self, store: Store, limits: Limits = DEFAULT_LIMITS):
        self.store = store
        self.limits = limits

    async def create(self, project: str, thread_id: str, request: MessageCreate) -> Message:
        check_message(request, self.limits)
        async with self.store.transaction() as tx:
            thread = await require_thread(tx, project, thread_id, lock=True)
            await refuse_while_running(tx, thread_id)
            await check_message_refs(tx, project, [request], "")
            [message] = new_messages(thread_id, [request])
            await append_messages(tx, thread_id, [message], self.limits)
            await attach_files(tx, project, thread, [request])
        return message

    async def get(self, project: str, thread_id: str, message_id: str) -> Message:
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=False)
            message = _message_only(await tx.get_message(thread_id, message_id))
        if message is None:
            raise NotFound("message", message_id)
        return message

    async def update(
        self, project: str, thread_id: str, message_id: str, request: MetadataUpdate
    ) -> Message:
        check_metadata(request.metadata)
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=False)
            found = _message_only(await tx.get_message(thread_id, message_id))
            if found is not None and "metadata" in request.model_fields_set:
                # The metadata alone: a run still writing this message writes its text only.
                found = await tx.update_message(
                    thread_id, message_id, {"metadata": request.metadata or {}}
                )
        if found is None:
            raise NotFound("message", message_id)
        return found

    async def delete(self, project: str, thread_id: str, message_id: str) -> None:
        async with self.store.transaction() as tx:
            # Locked: a run starting meanwhile could begin writing its message otherwise.
            await require_thread(tx, project, thread_id, lock=True)
            message = _message_only(await tx.get_message(thread_id, message_id))
            if message is None:
                raise NotFound("message", message_id)
            await refuse_if_being_written(tx, thread_id, message)
            await tx.delete_message(thread_id, message_id)

    async def list(
        self, project: str, thread_id: str, page: PageRequest, run_id: str | None
    ) -> Page[Message]:
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=False)
            return await tx.page_messages(thread_id, page, run_id=run_id)


async def refuse_if_being_written(tx: StoreTx, thread_id: str, message: Message) -> None:
    """A run's own message goes only once the run has ended: the worker writing it would
    find it gone, and the run would stall until its lease lapsed and the model was asked
    again."""
    run_id = message.get("run_id")
    if not run_id:
        return
    run = await tx.get_run(thread_id, run_id)
    if run is not None and is_active(RunStatus(run["status"])):
        raise Conflict(
            f"Message {message['id']} belongs to run {run_id}, which is still "
            f"{run['status']}; delete it once the run has ended.",
            param="message_id",
        )
