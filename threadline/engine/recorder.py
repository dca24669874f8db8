"""Records a model turn while it streams.

The message (or tool-call step) appears with the model's first chunk and every chunk is
appended to the run's event log as a delta, so a client streaming the run and a client
polling it read the same history, written once, by the worker.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.ids import IdKind, new_id
from threadline.providers.base import ToolCallDelta
from threadline.service.objects import assistant_message, run_step, text_content
from threadline.service.run_status import emit
from threadline.store.base import Obj, Store, StoreTx


class TurnRecorder:
    def __init__(self, store: Store, run: Obj):
        self.store = store
        self.run = run
        self.text = ""
        self.message: Obj | None = None
        self.message_step: Obj | None = None
        self.tool_step: Obj | None = None
        self.calls: dict[int, Obj] = {}

    async def add_text(self, piece: str) -> None:
        if not piece:
            return
        self.text += piece
        async with self.store.transaction(durable=False) as tx:
            if self.message is None:
                await self.open_message(tx)
            assert self.message is not None
            delta = {
                "id": self.message["id"],
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, **text_content(piece)}]},
            }
            await emit(tx, self.run, ("thread.message.delta", delta))

    async def open_message(self, tx: StoreTx) -> None:
        """Create the run's message, empty and `in_progress`, with its step."""
        self.message = assistant_message(self.run, "", status="in_progress")
        self.message_step = run_step(
            self.run,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": self.message["id"]}},
        )
        await tx.insert_messages(self.run["thread_id"], [self.message])
        await tx.insert_step(self.message_step)
        await emit(
            tx,
            self.run,
            ("thread.run.step.created", self.message_step),
            ("thread.run.step.in_progress", self.message_step),
            ("thread.message.created", self.message),
            ("thread.message.in_progress", self.message),
        )

    async def add_tool_calls(self, deltas: tuple[ToolCallDelta, ...]) -> None:
        pieces: list[Obj] = []
        for delta in deltas:
            call = self.calls.get(delta.index)
            piece: dict[str, Any] = {"index": delta.index, "type": "function"}
            if call is None:
                call = {"id": delta.id or new_id(IdKind.TOOL_CALL), "name": "", "arguments": ""}
                self.calls[delta.index] = call
                piece["id"] = call["id"]
            call["name"] += delta.name or ""
            call["arguments"] += delta.arguments
            function: Obj = {"arguments": delta.arguments}
            if delta.name:
                function["name"] = delta.name
            piece["function"] = function
            pieces.append(piece)
        async with self.store.transaction(durable=False) as tx:
            if self.tool_step is None:
                self.tool_step = run_step(
                    self.run, "tool_calls", {"type": "tool_calls", "tool_calls": []}
                )
                await tx.insert_step(self.tool_step)
                await emit(
                    tx,
                    self.run,
                    ("thread.run.step.created", self.tool_step),
                    ("thread.run.step.in_progress", self.tool_step),
                )
            delta_event = {
                "id": self.tool_step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": pieces}},
            }
            await emit(tx, self.run, ("thread.run.step.delta", delta_event))

    def final_calls(self) -> list[Obj]:
        return [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"], "output": None},
            }
            for _, call in sorted(self.calls.items())
        ]
