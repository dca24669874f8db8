"""The code_interpreter tool: Python the model writes, run in its thread's sandbox.

The model is offered one function, `code_interpreter`, whose argument is the code. The call's
record shows it as the hosted service does: its `input` (streamed while the model writes it,
`input_stream.py`) and its `outputs`: the `logs` (what the code printed, its last
expression's value, its traceback) and an `image` for each figure it drew.

Files: the run's and the thread's `code_interpreter` files (message attachments for the tool
among them) are put into `/mnt/data` under their names when a sandbox starts, and a file
given later is put in before the next call. Every file a call writes there becomes a File
(`assistants_output`); the thread keeps which file holds each path (`code_sandbox`), so a
sandbox started anew (reaped when idle, or on another worker) gets its files back. Its
variables do not follow it: the model is told when it starts afresh.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from typing import Any

from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.records import Obj, ToolCall
from threadline.service.files import FileService
from threadline.store.base import Store
from threadline.store.blobs import BlobMissing
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure
from threadline.tools.code_interpreter.pool import SandboxPool
from threadline.tools.code_interpreter.sandbox import (
    Execution,
    Sandbox,
    SandboxStopped,
    SandboxUnavailable,
)

FUNCTION = "code_interpreter"
SCRATCH = "/mnt/data"
# Where the hosted service's answers point at a file the code wrote.
SANDBOX_LINK = "sandbox:" + SCRATCH + "/"
# The thread's field of which File holds each path of its sandbox, and how many sandboxes it
# has had (never rendered).
THREAD_FIELD = "code_sandbox"

_OFFER = Offer(
    name=FUNCTION,
    description=(
        "Run Python code in a stateful sandbox (like a Jupyter notebook: variables, imports "
        "and files persist between calls in this conversation). The user's files are in "
        f"{SCRATCH}; save files you make there too, and link them in your answer as "
        f"{SANDBOX_LINK}<name>. numpy, pandas and matplotlib are installed; matplotlib "
        "figures are shown to the user. There is no network. The output of print() and the "
        "value of the last expression are returned."
    ),
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
    },
    input_field="code",
)


def code_of(arguments: str) -> str:
    try:
        parsed: Any = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        # Some models send the code bare rather than as JSON.
        if arguments.strip():
            return arguments
        raise ToolFailure('Give "code": the Python code to run.') from None
    code = parsed.get("code", parsed.get("input")) if isinstance(parsed, dict) else parsed
    if not isinstance(code, str) or not code.strip():
        raise ToolFailure('Give "code": the Python code to run, as a string.')
    return code


def _file_ids(resources: Obj) -> list[str]:
    return list((resources.get("code_interpreter") or {}).get("file_ids") or [])


class CodeInterpreterTool:
    type = "code_interpreter"

    def __init__(self, resources: Obj, store: Store, files: FileService, pool: SandboxPool):
        self.run_files = _file_ids(resources)
        self.store = store
        self.files = files
        self.pool = pool

    async def load(self) -> None:
        return None

    def offers(self) -> list[Offer]:
        return [_OFFER]

    def needs_approval(self, name: str) -> bool:
        return False

    def activity(self) -> Obj | None:
        return None

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        code = code_of(arguments)
        try:
            # Held from the thread's state read to its write: a second call of the thread
            # (parallel calls of one round) waits, and then reads what this one wrote.
            async with self.pool.lease((context.project, context.thread_id)) as lease:
                return await self._call(code, context, lease.sandbox, lease.fresh)
        except SandboxUnavailable as failed:
            raise ToolFailure(f"The code interpreter could not start a sandbox: {failed}") from None

    async def _call(
        self, code: str, context: CallContext, sandbox: Sandbox, fresh: bool
    ) -> Outcome:
        async with self.store.transaction(durable=False) as tx:
            thread = await tx.get_thread(context.project, context.thread_id)
        if thread is None:
            raise ToolFailure("The thread is gone.")
        state: Obj = dict(thread.get("code_sandbox") or {})
        before = {**state, "files": dict(state.get("files") or {})}
        paths: dict[str, str] = dict(state.get("files") or {})
        wanted = list(dict.fromkeys(self.run_files + _file_ids(thread["tool_resources"])))
        notes: list[str] = []
        try:
            if fresh:
                starts = int(state.get("starts", 0))
                notes += await self._restore(context, sandbox, paths, starts)
                state["starts"] = starts + 1
            notes += await self._put_inputs(context.project, sandbox, wanted, paths)
            done = await sandbox.run(code)
        except SandboxStopped as stopped:
            state["files"] = paths
            if state != before:
                await self._save(context, state)
            return Outcome(
                output="\n".join([*notes, f"Error: {stopped}."]),
                details={"input": code, "outputs": [{"type": "logs", "logs": str(stopped)}]},
                failed=True,
            )
        outputs, written = await self._keep(context.project, done, paths)
        state["files"] = paths
        if state != before:
            await self._save(context, state)
        return Outcome(
            output=_for_model(notes, done, written),
            details={"input": code, "outputs": outputs, "files": written},
            failed=done.error is not None,
        )

    async def _restore(
        self, context: CallContext, sandbox: Sandbox, paths: dict[str, str], starts: int
    ) -> list[str]:
        """A new sandbox gets the files earlier sandboxes of the thread wrote."""
        for path, file_id in list(paths.items()):
            try:
                _, data = await self.files.read(context.project, file_id)
            except (NotFound, BlobMissing):
                del paths[path]  # the file was deleted since: its path is gone too
                continue
            await sandbox.put(path, data)
        sandbox.placed.update(paths.values())
        if starts == 0:
            return []
        return [
            "Note: the sandbox was restarted, so variables, imports and state from earlier "
            f"calls are gone; the files in {SCRATCH} were put back."
        ]

    async def _put_inputs(
        self, project: str, sandbox: Sandbox, wanted: Sequence[str], paths: dict[str, str]
    ) -> list[str]:
        """The run's and thread's files not yet in this sandbox, under their names."""
        placed = sandbox.placed
        missing = [file_id for file_id in wanted if file_id not in placed]
        if not missing:
            return []
        names = []
        async with self.store.transaction(durable=False) as tx:
            records = {f["id"]: f for f in await tx.get_files(project, missing)}
        for file_id in missing:
            record = records.get(file_id)
            placed.add(file_id)
            if record is None:
                continue
            name = _free_name(record["filename"], file_id, paths)
            _, data = await self.files.read(project, file_id)
            await sandbox.put(name, data)
            paths[name] = file_id
            names.append(f"{SCRATCH}/{name}")
        return [f"Files available: {', '.join(names)}."] if names else []

    async def _keep(
        self, project: str, done: Execution, paths: dict[str, str]
    ) -> tuple[list[Obj], dict[str, str]]:
        """The call's outputs as its record shows them, and the Files made of what it wrote
        (path to file id)."""
        outputs: list[Obj] = []
        logs = done.output + (("\n" if done.output else "") + done.error if done.error else "")
        if logs:
            outputs.append({"type": "logs", "logs": logs})
        for index, image in enumerate(done.images):
            record = await self.files.create_from_bytes(
                project, f"figure-{index + 1}.png", "assistants_output", image
            )
            outputs.append({"type": "image", "image": {"file_id": record["id"]}})
        written: dict[str, str] = {}
        for file in done.files:
            name = posixpath.basename(file.path)
            try:
                record = await self.files.create_from_bytes(
                    project, name, "assistants_output", file.data
                )
            except InvalidRequest:  # a name no File may have (control characters)
                done.skipped.append(file.path)
                continue
            paths[file.path] = written[file.path] = record["id"]
        for path in done.removed:
            paths.pop(path, None)
        return outputs, written

    async def _save(self, context: CallContext, state: Obj) -> None:
        async with self.store.transaction(durable=False) as tx:
            await tx.update_thread(context.project, context.thread_id, {THREAD_FIELD: state})


def _free_name(filename: str, file_id: str, paths: dict[str, str]) -> str:
    """The file's own name, unless another file has it: then with its id."""
    name = posixpath.basename(filename) or file_id
    if name in paths and paths[name] != file_id:
        stem, dot, suffix = name.rpartition(".")
        name = f"{stem}-{file_id}.{suffix}" if dot and stem else f"{name}-{file_id}"
    return name


def _for_model(notes: list[str], done: Execution, written: dict[str, str]) -> str:
    parts = list(notes)
    if done.output:
        parts.append(done.output.rstrip("\n"))
    if done.error:
        parts.append(done.error)
    if done.images:
        parts.append(f"[{len(done.images)} figure(s) shown to the user]")
    if written:
        listed = ", ".join(f"{SANDBOX_LINK}{path}" for path in written)
        parts.append(f"Files written: {listed}")
    if done.skipped:
        parts.append(f"Not kept (not plain files): {', '.join(done.skipped)}")
    if not parts:
        parts.append("(no output)")
    return "\n".join(parts)


def written_files(calls: Sequence[ToolCall]) -> dict[str, str]:
    """Path to file id of what a run's code_interpreter calls wrote, the latest last."""
    found: dict[str, str] = {}
    for call in calls:
        record: Obj = dict(call)
        if record.get("type") == "code_interpreter":
            found.update(record.get("files") or {})
    return found


def images_of(calls: Sequence[ToolCall]) -> list[str]:
    """The file ids of the figures a run's code_interpreter calls drew, in order."""
    found: list[str] = []
    for call in calls:
        record: Obj = dict(call)
        if record.get("type") != "code_interpreter":
            continue
        for output in record.get("outputs") or []:
            if output.get("type") == "image":
                found.append(output["image"]["file_id"])
    return found


def file_paths(text: str, written: dict[str, str]) -> list[Obj]:
    """The `file_path` annotations of an answer: each `sandbox:/mnt/data/...` link to a file
    the run's code wrote."""
    annotations: list[Obj] = []
    start = text.find(SANDBOX_LINK)
    while start != -1:
        end = start + len(SANDBOX_LINK)
        while end < len(text) and text[end] not in " \t\n)]>\"'`":
            end += 1
        path = text[start + len(SANDBOX_LINK) : end].rstrip(".,;:!?")
        end = start + len(SANDBOX_LINK) + len(path)
        file_id = written.get(path)
        if file_id is not None:
            annotations.append(
                {
                    "type": "file_path",
                    "text": text[start:end],
                    "start_index": start,
                    "end_index": end,
                    "file_id": file_id,
                }
            )
        start = text.find(SANDBOX_LINK, end)
    return annotations
