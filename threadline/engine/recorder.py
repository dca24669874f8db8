"""Records a model turn while it streams.

The message (or tool-call step) appears with the model's first chunk and the chunks are
appended to the run's event log as deltas, so a client streaming the run and a client
polling it read the same history, written once, by the worker.

The first piece of text is written as soon as the event loop is free, with whatever arrived
by then; after it, text is written at most once per `delta_interval` seconds, what arrived
meanwhile as one delta (with no interval, each chunk is written as it comes). A model
streaming a token every few milliseconds would otherwise cost a commit, a wake-up of every
follower and a write to every client per token, on the CPU the model itself needs. A reply
that arrives whole (a fast model, or one that answers after a delay all at once) ends
before the loop is free: then nothing is written before the turn's last transaction, which
writes it all, one commit where there were two.

Nothing done per chunk grows with the reply so far: the text, what waits for the next delta,
and each tool call's name and arguments are kept as lists of pieces and joined when they are
written, so a reply of any length costs CPU in proportion to its length.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import (
    Message,
    MessageDelta,
    Obj,
    Run,
    RunStep,
    StepDelta,
    StepDetails,
    ToolCall,
)
from threadline.domain.text import storable
from threadline.engine.superseded import Superseded
from threadline.providers.base import ToolCallDelta
from threadline.service.objects import assistant_message, run_step
from threadline.service.run_status import Event, emit
from threadline.store.base import Store, StoreTx
from threadline.tools.input_stream import FieldStream


@dataclass
class Withdrawn:
    """The ids of a turn a dead worker had begun, which the next worker withdrew: its steps'
    (in the order they were created) and its message's, if it had begun one.

    The turn done again takes them. A client that was following the run has seen the
    withdrawn message's deltas; the turn done again announces the message anew under the same
    id (`thread.message.created`, empty, which the `openai` SDK's stream helpers take as the
    message's new snapshot, dropping the text they had added to it), streams its deltas, and
    completes it with the stored message. Steps likewise (`thread.run.step.created`). So a
    follower, whether it accumulates deltas itself or keeps the last object per id (as an
    `azure-ai-agents` event handler's user does), ends with one message, the stored one.

    The ids go to what the turn done again makes: its message takes the withdrawn message's
    id, its steps the withdrawn steps' ids in order, whatever their type. If it makes no
    message (the model calls tools this time), the withdrawn message is still announced
    anew and completed empty (`owes_withdrawn_message`), so that a follower's copy of it is
    replaced by the stored one rather than left in progress with text the run never kept.
    """

    step_ids: list[str]
    message_id: str | None = None


class TurnRecorder:
    def __init__(
        self,
        store: Store,
        run: Run,
        owner: str,
        delta_interval: float = 0.0,
        withdrawn: Withdrawn | None = None,
        kind_of: Callable[[str], str] = lambda name: "function",
        input_field_of: Callable[[str], str | None] = lambda name: None,
    ):
        """`withdrawn`: the ids this turn's steps and message take (see `Withdrawn`);
        `kind_of`: the type of the tool a called name belongs to, for its streamed pieces."""
        self.kind_of = kind_of
        # The argument a called name's record streams as its `input` (`Offer.input_field`).
        self.input_field_of = input_field_of
        self.store = store
        self.run = run
        self.owner = owner
        self.delta_interval = delta_interval
        self._step_ids = list(withdrawn.step_ids) if withdrawn is not None else []
        self._message_id = withdrawn.message_id if withdrawn is not None else None
        # The reply's text so far, in pieces (`text` joins them).
        self._pieces: list[str] = []
        self.message: Message | None = None
        self.message_step: RunStep | None = None
        self.tool_step: RunStep | None = None
        self.calls: dict[int, _Call] = {}
        # Whether the message and its step have rows yet: a reply written whole by the
        # turn's last transaction gets them once, in their final state.
        self._message_stored = False
        self._unsent: list[str] = []
        self._sent_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def text(self) -> str:
        """The reply's text so far. Joined when read, and kept joined: read it when the whole
        text is due (the turn's end), not per chunk."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    async def add_text(self, piece: str) -> None:
        if not piece:
            return
        piece = storable(piece)  # a NUL in a model's answer must not fail the run's writes
        self._pieces.append(piece)
        self._unsent.append(piece)
        if self._timer is not None or self._sending is not None:
            return  # a write is already due; this text goes with it
        if self.delta_interval <= 0:
            await self._send_text()  # a delta per chunk, written before the next is read
        else:
            self._schedule()

    async def settle(self) -> None:
        """The model's stream has ended: stop the timer and let a write under way finish;
        the text still unwritten goes with the turn's last transaction (`closing_events`)."""
        self._cancel_timer()
        if self._sending is not None:
            await asyncio.wait([self._sending])
        if self._failure is not None:
            raise self._failure

    def closing_events(self) -> list[Event]:
        """What the turn's last transaction appends before the message completes: the
        message's announcement if nothing announced it yet, and the text not yet written, as
        the last delta. The caller appends them with its own events, in one statement; the
        message's rows are left to `complete_message`, in the same transaction."""
        return self._pending_events()

    async def flush(self) -> None:
        """Write the text still waiting for its interval, now."""
        await self.settle()
        if self._unsent:
            await self._send_text()

    def discard(self) -> None:
        """The turn failed or was cancelled: write nothing more."""
        self._cancel_timer()
        if self._sending is not None:
            self._sending.cancel()

    def _wait(self) -> float:
        """Seconds until the next write is due; none for the first."""
        if self.message is None:
            return 0.0
        return self._sent_at + self.delta_interval - asyncio.get_running_loop().time()

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._wait(), self._send_due_text)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send_due_text(self) -> None:
        self._timer = None
        self._sending = asyncio.create_task(self._send_text())
        self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending = None
        if task.cancelled():
            return
        self._failure = task.exception()
        if self._failure is None and self._unsent:
            self._schedule()  # text that came while the write was under way

    async def _send_text(self) -> None:
        async with self.store.transaction(durable=False) as tx:
            await self.require_lease(tx)
            events = self._pending_events()
            if not self._message_stored:
                await self._insert_message(tx)
            await emit(tx, self.run, *events)

    @property
    def owes_withdrawn_message(self) -> bool:
        """A withdrawn attempt's message that followers saw, which this turn has not
        announced again: the turn must, even with no text of its own (`Withdrawn`)."""
        return self.message is None and self._message_id is not None

    async def require_lease(self, tx: StoreTx) -> None:
        """Hold the run's row to the commit, this worker's lease checked. A transaction that
        also writes the run's message or step takes the run first, as every other writer of
        a run does (the sweeper, the API), so that two of them never wait on each other."""
        if not await tx.holds_lease(self.run["id"], self.owner):
            raise Superseded()

    def _pending_events(self) -> list[Event]:
        events = self._announce()
        if self._unsent:
            assert self.message is not None
            piece = "".join(self._unsent)
            self._unsent.clear()
            self._sent_at = asyncio.get_running_loop().time()
            delta: MessageDelta = {
                "id": self.message["id"],
                "content": [{"index": 0, "type": "text", "text": piece}],
            }
            events.append(("thread.message.delta", delta))
        return events

    def _announce(self) -> list[Event]:
        """The run's message, empty and `in_progress`, with its step, the first time; their
        rows are written with the first delta or by `complete_message`. The events hold
        copies: appended by the turn's last transaction, after the message completed, they
        must still show it as it began, since a client adds the deltas to what
        `thread.message.created` showed."""
        if self.message is not None:
            return []
        self.message = assistant_message(self.run, "", status="in_progress")
        if self._message_id is not None:
            self.message["id"] = self._message_id
        self.message_step = self._new_step(
            {"type": "message_creation", "message_id": self.message["id"]}
        )
        step, message = self.message_step.copy(), self.message.copy()
        return [
            ("thread.run.step.created", step),
            ("thread.run.step.in_progress", step),
            ("thread.message.created", message),
            ("thread.message.in_progress", message),
        ]

    def _new_step(self, details: StepDetails) -> RunStep:
        """A step of this turn, under the next id a withdrawn attempt left, if any."""
        step = run_step(self.run, details)
        if self._step_ids:
            step["id"] = self._step_ids.pop(0)
        return step

    async def _insert_message(self, tx: StoreTx) -> None:
        assert self.message is not None and self.message_step is not None
        await tx.insert_messages(self.run["thread_id"], [self.message])
        await tx.insert_step(self.message_step)
        self._message_stored = True

    async def complete_message(
        self, tx: StoreTx, message_changes: Obj, step_changes: Obj
    ) -> tuple[Message, RunStep]:
        """The message and its step in their final state, as stored. A reply that arrived
        whole has no rows yet and is inserted as it ends; otherwise only these fields are
        written, so what its user set meanwhile (the message's metadata) stays."""
        assert self.message is not None and self.message_step is not None
        if not self._message_stored:
            self.message.update(message_changes)  # type: ignore[typeddict-item]
            self.message_step.update(step_changes)  # type: ignore[typeddict-item]
            await self._insert_message(tx)
            return self.message, self.message_step
        message = await tx.update_message(
            self.run["thread_id"], self.message["id"], message_changes
        )
        step = await tx.update_step(self.run["id"], self.message_step["id"], step_changes)
        if message is None or step is None:
            raise Superseded()  # deleted under a worker that lost the run
        return message, step

    async def add_tool_calls(self, deltas: tuple[ToolCallDelta, ...]) -> None:
        await self.flush()
        pieces: list[Obj] = []
        for delta in deltas:
            call = self.calls.get(delta.index)
            first = call is None
            if call is None:
                call = _Call(delta.id or new_id(IdKind.TOOL_CALL))
                self.calls[delta.index] = call
            name, arguments = storable(delta.name or ""), storable(delta.arguments)
            if name:
                call.name.append(name)
                call.kind = self.kind_of("".join(call.name))
                field_name = self.input_field_of("".join(call.name))
                call.input = FieldStream(field_name) if field_name else None
            piece: Obj = {"index": delta.index, "type": call.kind}
            if first:
                piece["id"] = call.id
            if arguments:
                call.arguments.append(arguments)
            if name:
                piece["name"] = name
            piece["arguments"] = arguments
            if call.input is not None:
                piece["input"] = call.input.feed(arguments)
            pieces.append(piece)
        async with self.store.transaction(durable=False) as tx:
            await self.require_lease(tx)
            if self.tool_step is None:
                self.tool_step = self._new_step({"type": "tool_calls", "tool_calls": []})
                await tx.insert_step(self.tool_step)
                await emit(
                    tx,
                    self.run,
                    ("thread.run.step.created", self.tool_step),
                    ("thread.run.step.in_progress", self.tool_step),
                )
            delta_event: StepDelta = {"id": self.tool_step["id"], "tool_calls": pieces}
            await emit(tx, self.run, ("thread.run.step.delta", delta_event))

    def final_calls(self) -> list[ToolCall]:
        return [
            {
                "id": call.id,
                "type": "function",
                "name": "".join(call.name),
                "arguments": "".join(call.arguments),
                "output": None,
            }
            for _, call in sorted(self.calls.items())
        ]


@dataclass
class _Call:
    """A tool call as it streams: its name and arguments in the pieces they came in."""

    id: str
    name: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    # The type of the tool the name belongs to, as its pieces stream.
    kind: str = "function"
    # Its `input` argument, decoded as it streams (`Offer.input_field`).
    input: FieldStream | None = None
