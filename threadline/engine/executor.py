"""The run loop: one model call per turn, recorded as run steps, until the run settles.

A turn reads the run's context, streams the model's answer into the run's message or
tool-call step as it comes (`TurnRecorder`), then settles that work together with the run's
new status in one transaction. When a worker dies mid-turn, whoever takes the run over first
withdraws what the dead worker had begun, then does the turn again under the same ids (see
`Withdrawn`), so that a client that was following the run ends with one message, the stored
one.

What a failed run tells its user is written for them: a model call that failed says so in
the provider's words (and is logged with the run's id); anything else is the service's own
fault, reported as such, with the exception itself only in the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from threadline.domain import limits
from threadline.domain.clock import now
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import Metadata, Obj, Run, RunStep, ToolCall, ToolCalls
from threadline.domain.records import Usage as UsageRecord
from threadline.domain.run_states import RunStatus
from threadline.engine.context import Context, budgets, build_context
from threadline.engine.recorder import TurnRecorder, Withdrawn
from threadline.engine.superseded import Superseded
from threadline.engine.tool_round import Closing, ToolRound, ToolRounds
from threadline.providers.base import (
    ChatRequest,
    FinishReason,
    ModelProvider,
    ProviderError,
    Usage,
)
from threadline.service.items import call_items, service_call_items
from threadline.service.objects import run_step, text_part
from threadline.service.run_status import Event, change_status, emit
from threadline.store.base import Store, StoreTx
from threadline.store.blobs import BlobStore
from threadline.tools.base import CallContext
from threadline.tools.code_interpreter.tool import FUNCTION as CODE_INTERPRETER_FUNCTION
from threadline.tools.code_interpreter.tool import (
    SANDBOX_LINK,
    file_paths,
    images_of,
    written_files,
)
from threadline.tools.file_search.tool import FUNCTION as FILE_SEARCH_FUNCTION
from threadline.tools.file_search.tool import citations
from threadline.tools.toolset import ToolKinds, Toolset

log = logging.getLogger(__name__)

# Farther than any chain of connected agents may reach (`tools/connected_agent.py`).
MAX_CHAIN = 64
# The `last_error.message` of a run that failed on a fault of the service's own; what went
# wrong is logged under the run's id, never shown (exception text can carry paths, SQL, data).
INTERNAL_ERROR = (
    "The run failed because of an error inside the service. The service's log has the"
    " details, under the run's id."
)


@dataclass
class RunScope:
    """What one carrying of a run keeps from turn to turn: its tools (an MCP server's list,
    read once), where its tools' calls come from, how many turns it has taken, and the
    write that closes the last round, made by the next turn (`tool_round.Closing`)."""

    toolset: Toolset
    context: CallContext | None = None
    turns: int = 0
    closing: Closing | None = None


def _max_tool_calls(run: Run) -> int | None:
    response = run.get("response")
    return response.get("max_tool_calls") if response else None


def _service_calls_left(run: Run, steps: list[RunStep], toolset: Toolset) -> int | None:
    """How many more calls of the service's own tools a response may make
    (`max_tool_calls`, counting those made so far); None when it has no cap."""
    cap = _max_tool_calls(run)
    if cap is None:
        return None
    made = 0
    for step in steps:
        details = step["step_details"]
        if details["type"] == "tool_calls":
            made += sum(
                call.get("output") is not None and not toolset.is_client_side(call)
                for call in details["tool_calls"]
            )
    return max(cap - made, 0)


def _refuse_truncation(run: Run, context: Context, budget: int) -> None:
    """A response made with `truncation: "disabled"` fails rather than leave out part of its
    conversation."""
    response = run.get("response")
    if response and response.get("truncation") == "disabled" and context.truncated:
        raise RunRefused(
            "invalid_prompt",
            f"The input exceeds the {budget} tokens the prompt may use, and truncation is "
            "disabled: shorten the input or set truncation to 'auto'.",
        )


class RunRefused(Exception):
    """The run cannot go on, for a reason its user is told (`code`, `message`)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class TurnResult:
    """`step_metadata`: what the turn's step says of its prompt (`engine/images.py`)."""

    recorder: TurnRecorder
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    step_metadata: Metadata | None = None


class RunExecutor:
    def __init__(
        self,
        store: Store,
        provider: ModelProvider,
        owner: str,
        expiry_seconds: int,
        delta_interval: float = 0.0,
        max_messages_per_thread: int | None = None,
        tools: ToolKinds | None = None,
        tool_rounds: ToolRounds = ToolRounds(),
        blobs: BlobStore | None = None,
    ):
        """`owner` names the worker: every write it makes to a run is conditional on still
        holding the run's lease, so a worker that lost it (stalled past its lease, and the
        run taken over) cannot write over the worker now carrying the run.
        `max_messages_per_thread`: the thread limit a run's reply must stay within; by
        default the one the API enforces on what clients add (`domain.limits`).
        `blobs`: where the files that messages show as images are read from; without it,
        such images are described as text."""
        self.store = store
        self.blobs = blobs
        self.provider = provider
        self.owner = owner
        self.expiry_seconds = expiry_seconds
        self.delta_interval = delta_interval
        self.max_messages_per_thread = (
            limits.MAX_MESSAGES_PER_THREAD
            if max_messages_per_thread is None
            else max_messages_per_thread
        )
        self.tool_kinds = tools or ToolKinds()
        self.tool_rounds = tool_rounds
        self.tool_round = ToolRound(
            store, owner, tool_rounds.time_limit_seconds, tool_rounds.max_output_chars
        )

    async def execute(self, run: Run) -> None:
        """Carry a started run until it settles or waits for tool outputs: turn after turn
        while the model calls tools the service runs itself."""
        try:
            # Built once for the run here: an MCP server's tools are listed once.
            toolset = await Toolset.of(run["tools"], self.tool_kinds, run["tool_resources"])
            await self._record_activities(run, toolset)
            scope = RunScope(toolset)
            while await self._turn(run, scope):
                pass
        except Superseded:
            await self.finish_cancel(run["id"])
        except ProviderError as exc:
            log.warning(
                "run %s: the model call failed (%s): %s [%s]",
                run["id"],
                exc.code,
                exc.message,
                exc.detail,
            )
            await self.fail(run["id"], exc.code, exc.message)
        except RunRefused as exc:
            log.info("run %s failed (%s): %s", run["id"], exc.code, exc.message)
            await self.fail(run["id"], exc.code, exc.message)
        except Exception:
            log.exception("run %s failed on an internal error", run["id"])
            await self.fail(run["id"], "server_error", INTERNAL_ERROR)

    async def _record_activities(self, run: Run, toolset: Toolset) -> None:
        """A step of what loading the run's tools did (the MCP servers' lists of tools),
        once per run: a worker taking the run over finds it there and adds none."""
        activities = toolset.activities()
        if not activities:
            return
        async with self.store.transaction(durable=False) as tx:
            if not await tx.holds_lease(run["id"], self.owner):
                raise Superseded()
            steps = await tx.steps_of_run(run["id"])
            if any(step["type"] == "activities" for step in steps):
                return
            step = run_step(run, {"type": "activities", "activities": activities})
            step["status"], step["completed_at"] = "completed", now()
            await tx.insert_step(step)
            await emit(
                tx, run, ("thread.run.step.created", step), ("thread.run.step.completed", step)
            )

    async def _turn(self, run: Run, scope: RunScope) -> bool:
        """One model call and what it asked for; True when the run goes on with another
        (the service ran the tools the model called)."""
        toolset = scope.toolset
        try:
            await self.provider.prepare(run["model"])
            async with self.store.transaction(durable=False) as tx:
                if scope.closing is not None:  # the last round's outcome, first of all
                    await scope.closing(tx)
                if scope.turns:  # a run cancelled since the last turn goes no further
                    current = await tx.get_run_by_id(run["id"])
                    if current is None or current["status"] != RunStatus.IN_PROGRESS.value:
                        raise Superseded()
                scope.turns += 1
                steps, withdrawn = await _withdraw_abandoned_attempt(
                    tx, run, await tx.steps_of_run(run["id"])
                )
                open_round = _open_round(steps)
                rounds = sum(1 for step in steps if step["type"] == "tool_calls")
                used = _usage_of(steps)
                limit_hit = "max_tool_rounds" if rounds >= self.tool_rounds.max_rounds else None
                if open_round is None and limit_hit is None:
                    await self._require_room(tx, run)
                    limit_hit = self._limit_reached(run, used)
                if open_round is None and limit_hit is None:
                    budget, max_tokens = budgets(self.provider, run, used)
                    context = await build_context(tx, self.provider, run, steps, budget)
                    _refuse_truncation(run, context, budget)
                    if not context.fits:
                        limit_hit = "max_prompt_tokens"
            scope.closing = None
        except Exception:
            # The turn stops here (cancelled, refused, failed) and its transaction did not
            # commit: the last round's outcome is written alone before the run is settled.
            await self._close_round_alone(run, scope)
            raise
        if open_round is not None:  # a round a worker that stopped had under way
            return await self._finish_round(run, open_round, scope)
        if limit_hit is not None:
            await self._settle(run, RunStatus.INCOMPLETE, used, incomplete=limit_hit)
            return False
        # A forced choice (`required`, a named function) holds for the run's first model
        # call only: once its tools have answered, forcing again would call them forever.
        tools_answered = any(step["type"] == "tool_calls" for step in steps)
        if context.images is not None:  # read now that the transaction has ended
            await context.images.fill(self.blobs)
        result = await self._call_model(
            run,
            context.messages,
            max_tokens,
            withdrawn,
            toolset,
            free_choice=tools_answered,
            service_tools=_service_calls_left(run, steps, toolset) != 0,
        )
        if context.images is not None:
            result.step_metadata = context.images.step_metadata()
        calls = [toolset.typed(call) for call in result.recorder.final_calls()]
        usage = result.usage or Usage(
            context.prompt_tokens, self._completion_tokens(run, result.recorder.text, calls)
        )
        if any(not toolset.is_client_side(call) for call in calls):
            step = await self._record_tool_calls(run, result, calls, usage, service_round=True)
            return await self._finish_round(run, step, scope)
        if calls:
            await self._record_tool_calls(run, result, calls, usage)
        else:
            # Cut short by any limit (the run's, the provider's default, the model's own):
            # a reply that stopped mid-way, or a call dropped unfinished, must not pass
            # for a finished answer.
            capped = result.finish_reason == "length"
            await self._record_message(run, result, usage, used + usage, capped)
        return False

    async def _require_room(self, tx: StoreTx, run: Run) -> None:
        """Refuse a turn whose reply would take the thread past its message limit, before the
        model is asked for it. While a run is active nothing else adds to its thread but the
        run, whose turn adds one message, or the items of one round of tool calls (their
        calls and outputs, which count as the thread's records too): a thread may pass its
        limit by one round's items, never by a reply."""
        limit = self.max_messages_per_thread
        if await tx.count_messages(run["thread_id"]) >= limit:
            raise RunRefused(
                "server_error",
                f"The thread has reached its limit of {limit:,} messages; the run's reply was"
                " not added.",
            )

    def _completion_tokens(self, run: Run, text: str, calls: list[ToolCall]) -> int:
        """The answer's tokens when the upstream does not say: counted with the model's
        tokenizer where the provider has one, estimated otherwise; never 0 for an answer with
        anything in it, so that `max_completion_tokens` shrinks with every turn."""
        written = [text]
        for call in calls:
            written += [call["name"], call["arguments"]]
        answer = "".join(written)
        if not answer:
            return 0
        return max(1, self.provider.count_tokens(run["model"], answer))

    def _limit_reached(self, run: Run, used: Usage) -> str | None:
        if run["max_completion_tokens"] and used.completion_tokens >= run["max_completion_tokens"]:
            return "max_completion_tokens"
        if run["max_prompt_tokens"] and used.prompt_tokens >= run["max_prompt_tokens"]:
            return "max_prompt_tokens"
        return None

    async def _call_model(
        self,
        run: Run,
        messages: list[dict[str, Any]],
        max_tokens: int | None,
        withdrawn: Withdrawn | None,
        toolset: Toolset,
        *,
        free_choice: bool = False,
        service_tools: bool = True,
    ) -> TurnResult:
        """`service_tools`: whether the service's own tools are offered (not once a
        response's `max_tool_calls` have been made)."""
        tools = toolset.chat_tools()
        if not service_tools:
            tools = [tool for tool in tools if tool["function"]["name"] in toolset.functions]
        choice = _chat_tool_choice(run["tool_choice"], tools)
        if free_choice and choice not in (None, "none"):
            choice = "auto"
        request = ChatRequest(
            model=run["model"],
            messages=messages,
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=run["parallel_tool_calls"],
            temperature=run["temperature"],
            top_p=run["top_p"],
            max_tokens=max_tokens,
            response_format=_chat_response_format(run["response_format"]),
            reasoning_effort=run["reasoning_effort"],
        )
        result = TurnResult(
            TurnRecorder(
                self.store,
                run,
                self.owner,
                self.delta_interval,
                withdrawn,
                kind_of=toolset.kind_of,
                input_field_of=toolset.input_field_of,
            )
        )
        # Closed here, not whenever the garbage collector finds it: a turn that stops early
        # (cancelled, failed) frees the model's connection or the embedded model at once.
        chunks = self.provider.stream(request)
        try:
            async for chunk in chunks:
                await result.recorder.add_text(chunk.text)
                if chunk.tool_calls:
                    await result.recorder.add_tool_calls(chunk.tool_calls)
                result.finish_reason = chunk.finish_reason or result.finish_reason
                result.usage = chunk.usage or result.usage
            await result.recorder.settle()
        finally:
            result.recorder.discard()
            await chunks.aclose()
        return result

    async def _record_tool_calls(
        self,
        run: Run,
        result: TurnResult,
        calls: list[ToolCall],
        usage: Usage,
        *,
        service_round: bool = False,
    ) -> RunStep:
        """Write the calls into the turn's step and close the turn's message, if any. A
        round of calls the client runs then waits for their outputs (`requires_action`);
        a `service_round` is written durably, and carried on by `_finish_round`."""
        recorder = result.recorder
        step = recorder.tool_step
        assert step is not None
        for call in calls:
            call["arguments"] = _valid_json_or_empty(call["arguments"])
        details: ToolCalls = {"type": "tool_calls", "tool_calls": calls}
        step_changes: Obj = {"step_details": details, "usage": _usage_dict(usage)}
        if result.step_metadata:
            step_changes["metadata"] = result.step_metadata
        pending: list[ToolCall] = [
            {"id": c["id"], "type": c["type"], "name": c["name"], "arguments": c["arguments"]}
            for c in calls
        ]
        async with self.store.transaction(durable=service_round) as tx:
            await recorder.require_lease(tx)
            completed: list[Event] = []
            if recorder.message is not None or recorder.owes_withdrawn_message:
                # A withdrawn message closed empty keeps an empty text part: followers have
                # seen deltas at its index, and the openai SDK's helpers read that index.
                keep_part = recorder.owes_withdrawn_message
                completed = await self._complete_message(
                    tx, run, recorder, None, capped=False, keep_empty_part=keep_part
                )
            written = await tx.update_step(run["id"], step["id"], step_changes)
            if written is None:
                raise Superseded()
            if service_round:
                await emit(tx, run, *completed)
                return written
            if run.get("surface") == "responses":
                await self._end_response_with_calls(tx, run, written, completed)
                return written
            moved = await change_status(
                tx,
                run,
                RunStatus.REQUIRES_ACTION,
                lease_owner=self.owner,
                preceded_by=completed,
                pending_tool_calls=pending,
                expires_at=now() + self.expiry_seconds,
            )
            if moved is None:
                raise Superseded()
            await tx.insert_messages(
                run["thread_id"], call_items(run["thread_id"], run["id"], pending)
            )
        return written

    async def _end_response_with_calls(
        self, tx: StoreTx, run: Run, step: RunStep, completed: list[Event]
    ) -> None:
        """A response does not wait for its client's function outputs: it ends `completed`
        with the calls as its last output, and the client answers them in a new response
        (`previous_response_id` or the conversation). The calls join the thread as items, so
        that the conversation shows them and the next prompt reads them before their
        outputs; so do the round's calls of the service's own tools, made before them."""
        closed = await tx.update_step(
            run["id"], step["id"], {"status": "completed", "completed_at": now()}
        )
        if closed is None:
            raise Superseded()
        calls = cast(ToolCalls, step["step_details"])["tool_calls"]
        thread_id = run["thread_id"]
        done = service_call_items(thread_id, run["id"], calls)
        await tx.insert_messages(thread_id, [*done, *call_items(thread_id, run["id"], calls)])
        usage = _usage_of(await tx.steps_of_run(run["id"]))
        ended = [*completed, ("thread.run.step.completed", closed)]
        if not await self._finish(tx, run, RunStatus.COMPLETED, usage, None, ended):
            raise Superseded()

    async def _end_response_for_approval(
        self, run: Run, step: RunStep, to_approve: list[ToolCall]
    ) -> None:
        """A response does not wait for approvals either: it ends `completed`, each call
        that needs one marked with the id of its approval request, and the next response
        approves or refuses them (`mcp_approval_response`), and makes the approved calls."""
        waiting = {call["id"] for call in to_approve}
        calls = [
            cast(ToolCall, {**call, "approval_request_id": new_id(IdKind.APPROVAL_REQUEST)})
            if call["id"] in waiting
            else call
            for call in cast(ToolCalls, step["step_details"])["tool_calls"]
        ]
        details: ToolCalls = {"type": "tool_calls", "tool_calls": calls}
        async with self.store.transaction(durable=False) as tx:
            if not await tx.holds_lease(run["id"], self.owner):
                raise Superseded()
            closed = await tx.update_step(
                run["id"],
                step["id"],
                {"step_details": details, "status": "completed", "completed_at": now()},
            )
            if closed is None:
                raise Superseded()
            usage = _usage_of(await tx.steps_of_run(run["id"]))
            ended = [("thread.run.step.completed", closed)]
            if not await self._finish(tx, run, RunStatus.COMPLETED, usage, None, ended):
                raise Superseded()

    async def _finish_round(self, run: Run, step: RunStep, scope: RunScope) -> bool:
        """Run the round's service-side calls, then close the round: True when the model
        is called again with their outcomes; False when the run now waits for its client:
        to approve calls that need approval (before any call runs), or for the outputs of
        the round's function calls."""
        toolset = scope.toolset
        calls = cast(ToolCalls, step["step_details"])["tool_calls"]
        to_approve = [call for call in calls if toolset.needs_approval(call)]
        if to_approve and run.get("surface") == "responses":
            await self._end_response_for_approval(run, step, to_approve)
            return False
        if to_approve:
            await self._wait_for_client(run, [_pending(call) for call in to_approve])
            return False
        if scope.context is None:
            scope.context = await self._call_context(run)
        for_client = [call for call in calls if toolset.is_client_side(call)]
        allowed = None
        if _max_tool_calls(run) is not None:
            async with self.store.transaction(durable=False) as tx:
                allowed = _service_calls_left(run, await tx.steps_of_run(run["id"]), toolset)
        _, scope.closing = await self.tool_round.run(
            run, step, toolset, scope.context, close_step=not for_client, allowed=allowed
        )
        if for_client and run.get("surface") == "responses":
            # As a round of function calls alone: the response ends with the client's calls,
            # after the service's own, whose outcomes the round has written.
            async with self.store.transaction(durable=False) as tx:
                written = await tx.get_step(run["id"], step["id"])
                if written is None:
                    raise Superseded()
                await self._end_response_with_calls(tx, run, written, [])
            return False
        if for_client:
            await self._wait_for_client(run, [_pending(call) for call in for_client])
            return False
        return True  # the next turn closes the round as it begins

    async def _close_round_alone(self, run: Run, scope: RunScope) -> None:
        """Write the last round's outcome in a transaction of its own: the turn that was to
        write it with its own first transaction stopped before that committed."""
        closing, scope.closing = scope.closing, None
        if closing is not None:
            async with self.store.transaction(durable=False) as tx:
                await closing(tx)

    async def _call_context(self, run: Run) -> CallContext:
        """Where the run's tool calls come from: read from the store only for a run that
        does not say (stored before runs named their project) or a connected agent's."""
        project = run.get("project")
        include = tuple(run.get("include") or ())
        if project is not None and run.get("parent_run_id") is None:
            return CallContext(project, run["id"], run["thread_id"], include=include)
        async with self.store.transaction(durable=False) as tx:
            project = project or await tx.project_of_run(run["id"])
            depth = await _depth(tx, run)
        if project is None:
            raise Superseded()  # deleted with its thread
        return CallContext(project, run["id"], run["thread_id"], depth=depth, include=include)

    async def _wait_for_client(self, run: Run, pending: list[ToolCall]) -> None:
        """The run waits for its client's function outputs. The calls join the thread as
        items, as a response's do, so that its conversation shows them and later prompts
        read them (this run's own prompt reads its calls from its steps, not from them)."""
        async with self.store.transaction(durable=False) as tx:
            moved = await change_status(
                tx,
                run,
                RunStatus.REQUIRES_ACTION,
                lease_owner=self.owner,
                pending_tool_calls=pending,
                expires_at=now() + self.expiry_seconds,
            )
            if moved is None:
                raise Superseded()
            await tx.insert_messages(
                run["thread_id"], call_items(run["thread_id"], run["id"], pending)
            )

    async def _record_message(
        self, run: Run, result: TurnResult, usage: Usage, run_usage: Usage, capped: bool
    ) -> None:
        """`usage` is this turn's, `run_usage` the run's in all, this turn's included."""
        async with self.store.transaction(durable=False) as tx:
            await result.recorder.require_lease(tx)
            completed = await self._complete_message(
                tx, run, result.recorder, usage, capped, step_metadata=result.step_metadata
            )
            target = RunStatus.INCOMPLETE if capped else RunStatus.COMPLETED
            incomplete = "max_completion_tokens" if capped else None
            if not await self._finish(tx, run, target, run_usage, incomplete, completed):
                raise Superseded()

    async def _complete_message(
        self,
        tx: StoreTx,
        run: Run,
        recorder: TurnRecorder,
        usage: Usage | None,
        capped: bool,
        *,
        keep_empty_part: bool = False,
        step_metadata: Metadata | None = None,
    ) -> list[Event]:
        """Give the streamed message its full text and final status, and close its step;
        the events that say so, for the caller to append with the run's own."""
        events = recorder.closing_events()
        text = recorder.text
        part = text_part(text)
        annotations, images = await _what_the_answer_shows(tx, run, text)
        if annotations:
            part["annotations"] = annotations
            # Streamed as the hosted service streams them: a delta of the text part that
            # adds its annotations, before the message completes.
            delta = {
                "id": recorder.message["id"] if recorder.message else "",
                "content": [
                    {
                        "index": 0,
                        "type": "text",
                        "text": "",
                        "annotations": [
                            {**annotation, "index": i} for i, annotation in enumerate(annotations)
                        ],
                    }
                ],
            }
            events.append(("thread.message.delta", delta))
        content: list[Obj] = [dict(part)] if text or keep_empty_part else []
        if images:
            # The figures the run's code drew, after the text (whose index 0 has streamed).
            pieces = [{"type": "image_file", "file_id": file_id} for file_id in images]
            delta_parts = [{"index": len(content) + i, **p} for i, p in enumerate(pieces)]
            message_id = recorder.message["id"] if recorder.message else ""
            events.append(("thread.message.delta", {"id": message_id, "content": delta_parts}))
            content += pieces
        message_changes: Obj = {"content": content}
        if capped:
            message_changes.update(
                status="incomplete",
                incomplete_at=now(),
                incomplete_details={"reason": "max_tokens"},
            )
        else:
            message_changes.update(status="completed", completed_at=now())
        step_changes: Obj = {"status": "completed", "completed_at": now()}
        if usage is not None:
            step_changes["usage"] = _usage_dict(usage)
        if step_metadata:
            step_changes["metadata"] = step_metadata
        message, step = await recorder.complete_message(tx, message_changes, step_changes)
        return [
            *events,
            (f"thread.message.{message['status']}", message),
            ("thread.run.step.completed", step),
        ]

    async def _settle(
        self, run: Run, target: RunStatus, run_usage: Usage, incomplete: str | None = None
    ) -> None:
        async with self.store.transaction(durable=False) as tx:
            await self._finish(tx, run, target, run_usage, incomplete)

    async def _finish(
        self,
        tx: StoreTx,
        run: Run,
        target: RunStatus,
        run_usage: Usage,
        incomplete: str | None,
        preceded_by: Sequence[Event] = (),
    ) -> bool:
        fields: dict[str, Any] = {"usage": _usage_dict(run_usage)}
        if incomplete is not None:
            fields["incomplete_details"] = {"reason": incomplete}
        moved = await change_status(
            tx, run, target, lease_owner=self.owner, preceded_by=preceded_by, **fields
        )
        return moved is not None

    async def fail(self, run_id: str, code: str, message: str) -> None:
        async with self.store.transaction(durable=False) as tx:
            run = await tx.get_run_by_id(run_id)
            if run is None or run["status"] != RunStatus.IN_PROGRESS.value:
                return
            steps = await tx.steps_of_run(run_id)
            await change_status(
                tx,
                run,
                RunStatus.FAILED,
                lease_owner=self.owner,
                last_error={"code": code, "message": message},
                usage=_usage_dict(_usage_of(steps)),
            )

    async def finish_cancel(self, run_id: str) -> None:
        """Complete a cancel the API asked for while the run was being worked on."""
        async with self.store.transaction(durable=False) as tx:
            run = await tx.get_run_by_id(run_id)
            if run is None or run["status"] != RunStatus.CANCELLING.value:
                return
            await change_status(tx, run, RunStatus.CANCELLED, lease_owner=self.owner)


async def _withdraw_abandoned_attempt(
    tx: StoreTx, run: Run, steps: list[RunStep]
) -> tuple[list[RunStep], Withdrawn | None]:
    """Remove what a worker that died mid-turn had begun (its open steps, its partial message
    and their events), so the turn done again leaves one message and one set of events.
    Returns the steps kept and the ids of what was withdrawn, for the turn done again to
    take (`Withdrawn`)."""
    kept: list[RunStep] = []
    step_ids: list[str] = []
    message_id: str | None = None
    for step in steps:
        if step["status"] != "in_progress" or _open_round([step]) is not None:
            kept.append(step)  # ended, or a round whose calls were written whole
            continue
        withdrawn = [step["id"]]
        step_ids.append(step["id"])
        details = step["step_details"]
        if details["type"] == "message_creation":
            message_id = details["message_id"]
            await tx.delete_message(run["thread_id"], message_id)
            withdrawn.append(message_id)
        await tx.delete_step(step["id"])
        await tx.withdraw_events(run["id"], withdrawn)
    if not step_ids:
        return kept, None
    return kept, Withdrawn(step_ids, message_id)


def _usage_of(steps: list[RunStep]) -> Usage:
    prompt = completion = 0
    for step in steps:
        if (usage := step["usage"]) is not None:
            prompt += usage["prompt_tokens"]
            completion += usage["completion_tokens"]
    return Usage(prompt, completion)


def _usage_dict(usage: Usage) -> UsageRecord:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _pending(call: ToolCall) -> ToolCall:
    """A call as the run shows it while waiting for its client: what was called, by whom
    (an MCP call's server), not its outcome."""
    shown = ("id", "type", "name", "arguments", "server_label")
    return cast(ToolCall, {k: v for k, v in call.items() if k in shown})


async def _depth(tx: StoreTx, run: Run) -> int:
    """How many connected-agent calls started the chain of runs that led to this one."""
    depth = 0
    parent = run.get("parent_run_id")
    while parent is not None and depth < MAX_CHAIN:
        depth += 1
        above = await tx.get_run_by_id(parent)
        parent = above.get("parent_run_id") if above is not None else None
    return depth


def _open_round(steps: list[RunStep]) -> RunStep | None:
    """A round of tool calls written whole but not closed: its service-side calls were
    under way when the worker carrying the run stopped."""
    for step in steps:
        details = step["step_details"]
        if (
            step["status"] == "in_progress"
            and details["type"] == "tool_calls"
            and details["tool_calls"]
        ):
            return step
    return None


_BUILTIN_FUNCTIONS = {
    "file_search": FILE_SEARCH_FUNCTION,
    "code_interpreter": CODE_INTERPRETER_FUNCTION,
}


def _chat_tool_choice(choice: str | Obj, tools: list[Obj]) -> Any:
    if not tools:
        return None
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            return {"type": "function", "function": {"name": choice["name"]}}
        if choice.get("type") == "mcp":  # a Responses choice of one tool of an MCP server
            return {"type": "function", "function": {"name": choice["name"]}}
        offered = _BUILTIN_FUNCTIONS.get(str(choice.get("type")))
        if offered is not None:  # a built-in tool: the function it offers the model
            return {"type": "function", "function": {"name": offered}}
        return "auto"
    return choice


def _chat_response_format(response_format: str | Obj) -> Obj | None:
    """A response format as Chat Completions takes it: a JSON schema nested."""
    if not isinstance(response_format, dict) or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_schema":
        schema = {k: v for k, v in response_format.items() if k != "type"}
        return {"type": "json_schema", "json_schema": schema}
    return response_format


def _valid_json_or_empty(arguments: str) -> str:
    """Arguments are passed on as the model wrote them when they parse, else as `{}`
    so a client's `json.loads` never breaks on a truncated call."""
    try:
        json.loads(arguments)
    except ValueError:
        return "{}" if not arguments.strip() else json.dumps({"_raw": arguments})
    return arguments


async def _what_the_answer_shows(tx: StoreTx, run: Run, text: str) -> tuple[list[Obj], list[str]]:
    """The answer's annotations (citations of what its run's file_search calls found, links
    to files its code wrote) and the figures its code drew. Only a run with those tools
    reads its steps for them."""
    kinds = {tool["type"] for tool in run["tools"]}
    cites = "【" in text and "file_search" in kinds
    coded = "code_interpreter" in kinds
    if not cites and not coded:
        return [], []
    calls = [
        call
        for step in await tx.steps_of_run(run["id"])
        if step["step_details"]["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    ]
    annotations = citations(text, calls) if cites else []
    if not coded:
        return annotations, []
    if SANDBOX_LINK in text:
        written = written_files(calls)
        project = run.get("project") or await tx.project_of_run(run["id"])
        thread = await tx.get_thread(project, run["thread_id"]) if project else None
        known: Obj = dict(thread.get("code_sandbox") or {}) if thread is not None else {}
        annotations += file_paths(text, {**dict(known.get("files") or {}), **written})
        annotations.sort(key=lambda annotation: int(annotation["start_index"]))
    return annotations, images_of(calls)
