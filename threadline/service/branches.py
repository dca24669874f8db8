"""A response continued from one that is not its thread's latest: a branch.

A thread holds one line of history, so a branch gets a thread of its own: copies of the
earlier thread's messages and items up to the last of what the continued response was given
and said (its input, its reply, the calls it ended with), under new ids, with the earlier
thread's tool resources. What was said after it on the earlier thread is not in the branch,
and the earlier thread is left as it is. Copying costs one read and one write per copied
message, once, when the branch is made; every turn of the branch after that costs what a turn
on any thread does.
"""

from __future__ import annotations

from threadline.domain.errors import InvalidRequest
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import Limits
from threadline.domain.records import Message, PageRequest, Run, Thread, item_kind
from threadline.service.items import item_ids_of_call
from threadline.service.messages import append_messages
from threadline.service.requests import ThreadCreate
from threadline.service.threads import insert_thread
from threadline.store.base import StoreTx

_PAGE = 100


async def _said_by(tx: StoreTx, run: Run) -> set[str]:
    """The ids of the continued response's own messages and items still in its thread."""
    ids = set(run["response"]["input_message_ids"])
    for step in await tx.steps_of_run(run["id"]):
        details = step["step_details"]
        if details["type"] == "message_creation":
            ids.add(details["message_id"])
        elif details["type"] == "tool_calls":
            ids.update(i for call in details["tool_calls"] for i in item_ids_of_call(call))
    kept = set()
    for message_id in ids:
        if await tx.get_message(run["thread_id"], message_id) is not None:
            kept.add(message_id)
    return kept


def _copy(message: Message, thread_id: str) -> Message:
    kind = item_kind(message)
    # A call of the service's own tools is a call too.
    prefix = {None: IdKind.MESSAGE, "function_call_output": IdKind.FUNCTION_OUTPUT}.get(
        kind, IdKind.FUNCTION_CALL
    )
    return {**message, "id": new_id(prefix), "thread_id": thread_id}


async def branch_thread(
    tx: StoreTx, project: str, source: Thread, previous: Run, limits: Limits
) -> Thread:
    """A new thread holding the history `previous` continued, up to what it said."""
    if previous["response"]["conversation"] is not None:
        raise InvalidRequest(
            f"Response {previous['id']} is in conversation "
            f"{previous['response']['conversation']}, which holds one line of history and has"
            " gone on since: continue the conversation, or from its latest response.",
            param="previous_response_id",
        )
    left = await _said_by(tx, previous)
    if not left:
        raise InvalidRequest(
            f"Response {previous['id']} has been continued already, and nothing it was given "
            "or said is left in its thread to branch from.",
            param="previous_response_id",
        )
    thread = await insert_thread(tx, project, ThreadCreate())
    shared = {"tool_resources": source["tool_resources"]}
    if "code_sandbox" in source:
        shared["code_sandbox"] = source["code_sandbox"]
    branched = await tx.update_thread(project, thread["id"], shared)
    copies: list[Message] = []
    after: str | None = None
    while left:
        page = await tx.page_messages(
            source["id"], PageRequest(limit=_PAGE, order="asc", after=after), items=True
        )
        for message in page.data:
            copies.append(_copy(message, thread["id"]))
            left.discard(message["id"])
            if not left:
                break
        if not page.has_more or not page.data:
            break
        after = page.data[-1]["id"]
    await append_messages(tx, thread["id"], copies, limits, param="previous_response_id")
    return branched or thread
