"""Builds the model's prompt for a run from the newest messages that fit.

Only the window the run needs is read, newest first, a batch at a time, so a run on a
100,000-message thread costs what a run on a short one does.

A message with image parts costs a query for its files' records, in the same transaction,
and the prompt's images wait for their bytes until after it (`engine/images.py`); a prompt
of text only asks nothing more than it did without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadline.domain.records import FileRecord, Message, Obj, Run, RunStep
from threadline.engine.images import (
    ImageContent,
    PromptImages,
    has_images,
    image_content,
    image_file_ids,
    image_tokens,
)
from threadline.providers.base import ModelProvider, Usage
from threadline.store.base import StoreTx

ChatMessage = dict[str, Any]
# Messages read per query. Larger reads keep more decoded bodies alive at once, and the
# garbage collector's passes over them cost more than the queries saved (2,048 at a time
# took 30 % more instructions than 64 on a big thread).
BATCH = 64
PER_MESSAGE_OVERHEAD = 4
DEFAULT_COMPLETION_RESERVE = 1024


@dataclass
class Context:
    """`images`: the prompt's images, when it has any; their bytes are still to be read
    (`PromptImages.fill`), once the transaction that built the prompt has ended."""

    messages: list[ChatMessage]
    prompt_tokens: int
    fits: bool
    images: PromptImages | None = None
    # Some of the thread's older messages did not fit the budget and were left out.
    truncated: bool = False


@dataclass
class _ImageFiles:
    """The records of the files a message's `image_file` parts name; the run's project is
    looked up once, for the first message that names any."""

    tx: StoreTx
    run: Run
    project: str | None = None

    async def of(self, message: Message) -> dict[str, FileRecord]:
        ids = image_file_ids(message)
        if not ids:
            return {}
        if self.project is None:
            self.project = self.run.get("project") or await self.tx.project_of_run(self.run["id"])
            if self.project is None:
                return {}  # deleted with its thread
        return {file["id"]: file for file in await self.tx.get_files(self.project, ids)}


def _text_of(message: Message) -> str:
    return "\n".join(part["text"] for part in message["content"] if part["type"] == "text")


def chat_message(message: Message) -> ChatMessage | None:
    """A message as the model gets it; None for one with image parts, whose content
    depends on the model and the files (`images.image_content`). Items: `item_as_chat`."""
    content = message["content"]
    if len(content) == 1 and content[0]["type"] == "text":
        # Nearly every message is one piece of text; the general way cost it four times as much.
        return {"role": message["role"], "content": content[0]["text"]}
    if has_images(message):
        return None
    return {"role": message["role"], "content": _text_of(message)}


def item_as_chat(item: Obj) -> list[ChatMessage]:
    """A function call of the thread, or its output, as the chat format carries them (calls
    made one after the other are joined into one assistant message by `_paired`); a call of
    the service's own tools, as the model made it and read its outcome: both."""
    if "call" in item:
        call = item["call"]
        calling = _calling(call["id"], call["name"], call["arguments"])
        answer: ChatMessage = {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": call.get("output") or "",
        }
        if item["type"] == "openapi_call":  # its answer is an item of its own
            return [calling]
        if item["type"] == "openapi_call_output":
            return [answer]
        return [calling, answer]
    if item["type"] == "function_call":
        return [_calling(item["call_id"], item["name"], item["arguments"])]
    return [{"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}]


def _calling(call_id: str, name: str, arguments: str) -> ChatMessage:
    return {
        "role": "assistant",
        "content": "",  # not null: see `_steps_as_chat`
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


def _paired(window: list[ChatMessage]) -> list[ChatMessage]:
    """The thread's function calls and outputs as upstreams accept them: calls made one after
    the other in one assistant message, each output after its call's message, and no call
    without an output or output without a call (the window may have cut a pair in two, and
    a conversation's items may be given in any order)."""
    joined: list[ChatMessage] = []
    for chat in window:
        previous = joined[-1] if joined else None
        if (
            "tool_calls" in chat
            and previous is not None
            and "tool_calls" in previous
            and not previous["content"]
        ):
            previous["tool_calls"] = [*previous["tool_calls"], *chat["tool_calls"]]
        else:
            joined.append(dict(chat))
    paired: list[ChatMessage] = []
    at = 0
    while at < len(joined):
        chat = joined[at]
        at += 1
        if chat["role"] == "tool":
            continue  # an output whose call is not just before it
        if "tool_calls" not in chat:
            paired.append(chat)
            continue
        outputs: list[ChatMessage] = []
        while at < len(joined) and joined[at]["role"] == "tool":
            outputs.append(joined[at])
            at += 1
        made = {c["id"] for c in chat["tool_calls"]}
        answers: dict[str, ChatMessage] = {}
        for output in outputs:
            if output["tool_call_id"] in made:
                answers.setdefault(output["tool_call_id"], output)
        chat["tool_calls"] = [c for c in chat["tool_calls"] if c["id"] in answers]
        if chat["tool_calls"]:
            paired.append(chat)
            paired.extend(answers[c["id"]] for c in chat["tool_calls"])
    return paired


def _steps_as_chat(steps: list[RunStep], run_messages: dict[str, Message]) -> list[ChatMessage]:
    """What this run has done so far: its messages, its tool calls and their outputs."""
    chat: list[ChatMessage] = []
    for step in steps:
        details = step["step_details"]
        if details["type"] == "message_creation":
            message = run_messages.get(details["message_id"])
            text = _text_of(message) if message is not None else ""
            if text:  # an empty one (a withdrawn attempt's, closed empty) says nothing
                chat.append({"role": "assistant", "content": text})
            continue
        if details["type"] != "tool_calls":
            continue  # the service's own activities: nothing the model said or was told
        # Every call was a function call to the model, whatever tool carried it out.
        calls = details["tool_calls"]
        if not calls:
            continue
        # `content` is an empty string, not null: OpenAI, vLLM and Azure take either beside
        # `tool_calls`, but llama-cpp-python's server answers 500 to null (its chat template
        # adds the content to a string) and Ollama refuses it ("invalid message content type").
        chat.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ],
            }
        )
        chat.extend(
            {"role": "tool", "tool_call_id": c["id"], "content": c.get("output") or ""}
            for c in calls
        )
    return chat


def budgets(provider: ModelProvider, run: Run, used: Usage) -> tuple[int, int | None]:
    """Tokens the prompt may take, and the completion cap to send the model, once the run has
    used `used`."""
    window = provider.context_window(run["model"])
    max_tokens: int | None = None
    if run["max_completion_tokens"]:
        max_tokens = run["max_completion_tokens"] - used.completion_tokens
    reserve = max_tokens or min(DEFAULT_COMPLETION_RESERVE, window // 4)
    budget = window - reserve
    if run["max_prompt_tokens"]:
        budget = min(budget, run["max_prompt_tokens"] - used.prompt_tokens)
    return budget, max_tokens


def _tokens(provider: ModelProvider, model: str, message: ChatMessage) -> int:
    content = message.get("content")
    if isinstance(content, str) and "tool_calls" not in message:
        return provider.count_tokens(model, content) + PER_MESSAGE_OVERHEAD
    text = content if isinstance(content, str) else ""
    images = 0
    if isinstance(content, list):
        text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        images = sum(image_tokens(p) for p in content if p.get("type") == "image_url")
    for call in message.get("tool_calls") or []:
        text += call["function"]["name"] + call["function"]["arguments"]
    return provider.count_tokens(model, text) + images + PER_MESSAGE_OVERHEAD


async def build_context(
    tx: StoreTx, provider: ModelProvider, run: Run, steps: list[RunStep], budget: int
) -> Context:
    """System prompt, then the newest thread messages that fit `budget`, then this run's work.

    `truncation_strategy.last_messages` caps how many thread messages are read at all (a
    tool call's item counts as the messages it is sent as: its call and its output).
    """
    model = run["model"]
    head = [{"role": "system", "content": run["instructions"]}] if run["instructions"] else []
    run_message_ids = {
        s["step_details"]["message_id"]
        for s in steps
        if s["step_details"]["type"] == "message_creation"
    }
    run_messages: dict[str, Message] = {}
    for message_id in run_message_ids:
        message = await tx.get_message(run["thread_id"], message_id)
        if message is not None:
            run_messages[message_id] = message
    tail = _steps_as_chat(steps, run_messages)
    used = sum(_tokens(provider, model, m) for m in head + tail)

    strategy = run["truncation_strategy"] or {"type": "auto"}
    cap = strategy.get("last_messages") if strategy.get("type") == "last_messages" else None
    window: list[ChatMessage] = []
    before_seq: int | None = None
    full = False
    items = False  # whether the window holds items other than messages
    images: PromptImages | None = None
    image_files = _ImageFiles(tx, run)
    while not full and (cap is None or len(window) < cap):
        want = BATCH if cap is None else min(BATCH, cap - len(window))
        batch = await tx.newest_messages(run["thread_id"], want, before_seq)
        for seq, message in batch:
            before_seq = seq
            if message["run_id"] == run["id"]:
                continue
            content: ImageContent | None = None
            if "item" in message:
                items = True
                chats = item_as_chat(message["item"])
            else:
                chat = chat_message(message)
                if chat is None:
                    if images is None:
                        images = PromptImages(provider.sees_images(model))
                    files = await image_files.of(message)
                    content = image_content(message, images.sees, files)
                    chat = {"role": message["role"], "content": content.content}
                chats = [chat]
            cost = sum(_tokens(provider, model, chat) for chat in chats)
            if used + cost > budget:
                full = True
                break
            used += cost
            window.extend(reversed(chats))  # the window is read newest first
            if content is not None and images is not None:
                images.keep(content)
            if cap is not None and len(window) >= cap:
                break
        if len(batch) < want:
            break
    window.reverse()
    if items:
        window = _paired(window)
    fits = used <= budget and (bool(window) or bool(tail) or before_seq is None)
    return Context(head + window + tail, used, fits, images, truncated=full)
