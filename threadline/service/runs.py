"""Runs: one invocation of an assistant on a thread, and what users may do to it while it goes."""

from __future__ import annotations

from typing import NamedTuple, cast

from threadline.domain.clock import now
from threadline.domain.errors import Conflict, InvalidRequest, NotFound
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_metadata,
    check_string,
    check_tools,
)
from threadline.domain.records import (
    Assistant,
    Obj,
    Page,
    PageRequest,
    Run,
    RunStep,
    Thread,
    Tool,
    ToolCalls,
)
from threadline.domain.run_states import RunStatus, cancel_target
from threadline.service.file_refs import (
    attach_files,
    check_message_refs,
    resolve_tool_resources,
)
from threadline.service.items import output_items, service_call_items
from threadline.service.messages import (
    append_messages,
    check_messages,
    new_messages,
    require_thread,
)
from threadline.service.models import EVERY_NAME, ModelCatalog
from threadline.service.objects import response_format_record, tool_choice_record, tool_record
from threadline.service.requests import (
    BuiltinToolChoice,
    FunctionChoice,
    MetadataUpdate,
    RunCreate,
    RunOptions,
    ThreadAndRunCreate,
    ThreadCreate,
    ToolApproval,
    ToolOutputsSubmit,
    ToolResources,
)
from threadline.service.run_events import EventBatches, follow_run
from threadline.service.run_status import change_status, emit
from threadline.service.threads import check_thread, insert_thread
from threadline.service.tool_checks import ToolChecks, check_connected_agents
from threadline.service.unsupported import (
    check_include,
    check_tool_resources,
    refuse_unsupported_tool_choice,
    refuse_unsupported_tools,
    unavailable,
)
from threadline.store.base import Store, StoreTx


class ResumedRun(NamedTuple):
    """A run taken up again, and where its event log continues from."""

    run: Run
    after_seq: int


class RunService:
    def __init__(
        self,
        store: Store,
        expiry_seconds: int,
        keepalive_seconds: float = 15.0,
        limits: Limits = DEFAULT_LIMITS,
        tool_checks: ToolChecks | None = None,
        models: ModelCatalog = EVERY_NAME,
    ):
        self.store = store
        self.expiry_seconds = expiry_seconds
        self.keepalive_seconds = keepalive_seconds
        self.limits = limits
        self.tool_checks = tool_checks or ToolChecks()
        self.models = models

    async def create(
        self, project: str, thread_id: str, request: RunCreate, include: list[str] | None = None
    ) -> Run:
        """`include` is the `include[]` of the query string, where the SDKs send it."""
        _check_options(request, self.limits, self.tool_checks)
        check_tool_resources(request.tool_resources)
        await self._check_servers(request)
        included = check_include(include, "include[]") + check_include(request.include, "include")
        check_string(
            request.additional_instructions,
            self.limits.instructions_chars,
            "additional_instructions",
        )
        check_messages(request.additional_messages, self.limits, "additional_messages")
        async with self.store.transaction() as tx:
            thread = await require_thread(tx, project, thread_id, lock=True)
            assistant = await _require_assistant(tx, project, request.assistant_id)
            await _check_run_tools(tx, project, request)
            # A thread with an active run is refused by `insert_run`, and the messages
            # appended here go with the rolled-back transaction.
            added = request.additional_messages or []
            await check_message_refs(tx, project, added, "additional_messages")
            extra = new_messages(thread_id, added)
            await append_messages(tx, thread_id, extra, self.limits, "additional_messages")
            await attach_files(tx, project, thread, added)
            run = self.new_run(
                project, thread_id, assistant, request, request.additional_instructions
            )
            run["tool_resources"] = await resolve_tool_resources(tx, project, run["tool_resources"])
            if included:
                run["include"] = list(dict.fromkeys(included))
            await self.queue(tx, project, run)
        return run

    async def create_thread_and_run(
        self, project: str, request: ThreadAndRunCreate, parent_run_id: str | None = None
    ) -> Run:
        """`parent_run_id`: the run whose connected-agent call asks for this one."""
        _check_options(request, self.limits, self.tool_checks)
        check_tool_resources(request.tool_resources)
        await self._check_servers(request)
        thread_request = request.thread or ThreadCreate()
        check_thread(thread_request, self.limits, param="thread")
        async with self.store.transaction() as tx:
            assistant = await _require_assistant(tx, project, request.assistant_id)
            await _check_run_tools(tx, project, request)
            run = self.new_run(project, "", assistant, request, None)
            # The stores the run's resources ask for are made once, here; a thread that
            # brings no resources of its own takes the run's.
            run["tool_resources"] = await resolve_tool_resources(tx, project, run["tool_resources"])
            if request.tool_resources is not None and thread_request.tool_resources is None:
                thread_request = thread_request.model_copy(
                    update={"tool_resources": ToolResources.model_validate(run["tool_resources"])}
                )
            thread = await insert_thread(tx, project, thread_request, "thread")
            run["thread_id"] = thread["id"]
            if parent_run_id is not None:
                run["parent_run_id"] = parent_run_id
            await self.queue(tx, project, run, created_thread=thread)
        return run

    async def get(self, project: str, thread_id: str, run_id: str) -> Run:
        async with self.store.transaction() as tx:
            return await _require_run(tx, project, thread_id, run_id)

    async def list(self, project: str, thread_id: str, page: PageRequest) -> Page[Run]:
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=False)
            return await tx.page_runs(thread_id, page)

    async def update(
        self, project: str, thread_id: str, run_id: str, request: MetadataUpdate
    ) -> Run:
        check_metadata(request.metadata)
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=True)
            run = await _require_run(tx, project, thread_id, run_id)
            if "metadata" not in request.model_fields_set:
                return run
            # The metadata alone: a worker carrying the run writes only its own fields.
            updated = await tx.update_run(run_id, {"metadata": request.metadata or {}})
        if updated is None:
            raise NotFound("run", run_id)
        return updated

    async def cancel(self, project: str, thread_id: str, run_id: str) -> Run:
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=True)
            run = await _require_run(tx, project, thread_id, run_id)
            target = cancel_target(RunStatus(run["status"]))
            updated = await change_status(tx, run, target)
            if updated is None:
                raise Conflict(f"Run {run_id} changed while it was being cancelled; try again.")
        return updated

    async def submit_tool_outputs(
        self, project: str, thread_id: str, run_id: str, request: ToolOutputsSubmit
    ) -> ResumedRun:
        for index, output in enumerate(request.tool_outputs):
            # Each output goes into every later prompt of the thread, as a message's text.
            check_string(output.output, self.limits.message_chars, f"tool_outputs[{index}].output")
        async with self.store.transaction() as tx:
            await require_thread(tx, project, thread_id, lock=True)
            await tx.hold_run(run_id)  # before its step: the sweeper takes the run first too
            run = await _require_run(tx, project, thread_id, run_id)
            if run["status"] != RunStatus.REQUIRES_ACTION.value:
                raise InvalidRequest(
                    f'Runs in status "{run["status"]}" do not accept tool outputs.',
                    param="run_id",
                )
            if _waits_for_approval(run):
                return await self._approve(tx, run, request)
            if request.tool_approvals:
                raise InvalidRequest(
                    f"Run {run_id} waits for tool outputs, not approvals.",
                    param="tool_approvals",
                )
            outputs = _outputs_by_call(run, request)
            step, details = await _pending_tool_step(tx, run)
            for call in details["tool_calls"]:
                if call["type"] == "function" and call["id"] in outputs:
                    call["output"] = outputs[call["id"]]
            completed = await tx.update_step(
                run_id,
                step["id"],
                {
                    "step_details": details,
                    "status": "completed",
                    "completed_at": now(),
                },
            )
            assert completed is not None  # the thread is locked, the run waits for outputs
            answered = [call for call in details["tool_calls"] if call["id"] in outputs]
            done = [  # the round's own calls ran before the client answered its functions
                *service_call_items(thread_id, run_id, details["tool_calls"]),
                *output_items(thread_id, run_id, answered),
            ]
            await tx.insert_messages(thread_id, done)
            first_seq = await emit(tx, run, ("thread.run.step.completed", completed))
            updated = await change_status(tx, run, RunStatus.QUEUED)
            if updated is None:
                raise Conflict(f"Run {run_id} changed while outputs were submitted; try again.")
        return ResumedRun(updated, first_seq - 1)

    async def check_options(self, request: RunOptions) -> None:
        """What `create` checks of a run's options before it touches the store."""
        _check_options(request, self.limits, self.tool_checks)
        await self._check_servers(request)

    async def _check_servers(self, request: RunOptions) -> None:
        if request.tools is not None:
            tools = [tool_record(tool) for tool in request.tools]
            resources = request.tool_resources
            await self.tool_checks.check_servers(
                tools, resources.model_dump(exclude_none=True) if resources else {}
            )

    async def _approve(self, tx: StoreTx, run: Run, request: ToolOutputsSubmit) -> ResumedRun:
        """Record the client's decision on each call that waits for approval; the run goes
        back to the queue, and its worker makes the approved calls (with the headers sent
        for each) and tells the model of the refused ones."""
        if request.tool_outputs:
            raise InvalidRequest(
                f"Run {run['id']} waits for tool approvals, not outputs.", param="tool_outputs"
            )
        decisions = _approvals_by_call(run, request)
        step, details = await _pending_tool_step(tx, run)
        for call in details["tool_calls"]:
            decision = decisions.get(call["id"])
            if decision is None:
                continue
            record = cast(Obj, call)
            record["approved"] = decision.approve
            if decision.headers:
                record["approval_headers"] = decision.headers
        written = await tx.update_step(run["id"], step["id"], {"step_details": details})
        assert written is not None  # the thread is locked, the run waits for approvals
        before = await tx.last_event_seq(run["id"])
        updated = await change_status(tx, run, RunStatus.QUEUED)
        if updated is None:
            raise Conflict(f"Run {run['id']} changed while approvals were submitted; try again.")
        return ResumedRun(updated, before)

    async def follow(
        self, project: str, thread_id: str, run_id: str, after_seq: int = 0
    ) -> EventBatches:
        """The run's events after `after_seq`, in batches as committed, until it settles."""
        async with self.store.transaction() as tx:
            await _require_run(tx, project, thread_id, run_id)
        return self.follow_own(run_id, after_seq)

    def follow_own(self, run_id: str, after_seq: int = 0) -> EventBatches:
        """`follow` for a run this request has just created or resumed, so known to exist."""
        return follow_run(self.store, run_id, after_seq, self.keepalive_seconds)

    async def get_step(self, project: str, thread_id: str, run_id: str, step_id: str) -> RunStep:
        async with self.store.transaction() as tx:
            await _require_run(tx, project, thread_id, run_id)
            step = await tx.get_step(run_id, step_id)
        if step is None:
            raise NotFound("run step", step_id)
        return step

    async def list_steps(
        self, project: str, thread_id: str, run_id: str, page: PageRequest
    ) -> Page[RunStep]:
        async with self.store.transaction() as tx:
            await _require_run(tx, project, thread_id, run_id)
            return await tx.page_steps(run_id, page)

    def new_run(
        self,
        project: str,
        thread_id: str,
        assistant: Assistant,
        request: RunOptions,
        additional_instructions: str | None,
        kind: IdKind = IdKind.RUN,
    ) -> Run:
        """`kind`: `RESPONSE` for a run the Responses API makes (`service/responses.py`),
        from an assistant record of its request's own."""
        created = now()
        instructions = (
            request.instructions
            if request.instructions is not None
            else assistant.get("instructions") or ""
        )
        if additional_instructions:
            instructions = f"{instructions}\n\n{additional_instructions}".strip()
        tools = (
            [self.tool_checks.completed(tool_record(tool)) for tool in request.tools]
            if request.tools is not None
            else assistant["tools"]
        )
        if request.tools is None:
            _refuse_stored_tools(assistant)
        effort = request.reasoning_effort if isinstance(request, RunCreate) else None
        resources = request.tool_resources
        model = request.model or assistant["model"]
        self.models.require_served(model)
        return {
            "id": new_id(kind),
            "project": project,
            "created_at": created,
            "assistant_id": assistant["id"],
            "thread_id": thread_id,
            "status": RunStatus.QUEUED.value,
            "started_at": None,
            "expires_at": created + self.expiry_seconds,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "pending_tool_calls": None,
            "last_error": None,
            "model": model,
            "instructions": instructions,
            "tools": tools,
            "metadata": request.metadata or {},
            "usage": None,
            "temperature": _pick(request.temperature, assistant["temperature"]),
            "top_p": _pick(request.top_p, assistant["top_p"]),
            "max_prompt_tokens": request.max_prompt_tokens,
            "max_completion_tokens": request.max_completion_tokens,
            "truncation_strategy": (
                request.truncation_strategy.model_dump()
                if request.truncation_strategy
                else {"type": "auto", "last_messages": None}
            ),
            "incomplete_details": None,
            "response_format": _response_format(request, assistant),
            "tool_choice": _tool_choice(request, tools),
            "parallel_tool_calls": request.parallel_tool_calls,
            # The assistant's when the run sets none, as for temperature and top_p.
            "reasoning_effort": effort or assistant["reasoning_effort"],
            # Azure's run carries the resources it was created with.
            # Or the agent's, which a run's tools use when the run brings none (an MCP
            # server's headers and approval rule, say).
            "tool_resources": (
                resources.model_dump(exclude_none=True)
                if resources
                else assistant["tool_resources"]
            ),
        }

    async def queue(
        self, tx: StoreTx, project: str, run: Run, created_thread: Thread | None = None
    ) -> None:
        await tx.insert_run(project, run)
        announced = [("thread.created", created_thread)] if created_thread is not None else []
        await emit(tx, run, *announced, ("thread.run.created", run), ("thread.run.queued", run))


def _check_options(request: RunOptions, limits: Limits, tool_checks: ToolChecks) -> None:
    check_metadata(request.metadata)
    check_string(request.instructions, limits.instructions_chars, "instructions")
    if request.tools is not None:
        tools = [tool_record(tool) for tool in request.tools]
        check_tools(tools, limits=limits)
        refuse_unsupported_tools(request.tools)
        tool_checks.check(tools)
    refuse_unsupported_tool_choice(request.tool_choice)


def _refuse_stored_tools(assistant: Assistant) -> None:
    """An assistant stored before built-in tools were refused may still carry one."""
    for tool in assistant["tools"]:
        if (reason := unavailable(tool["type"])) is not None:
            raise InvalidRequest(
                f"Assistant {assistant['id']} has the {tool['type']} tool, which is not "
                f"available on this server ({reason}): give the run its own 'tools', or "
                "modify the assistant.",
                param="assistant_id",
                code="unsupported_value",
            )


def _pick(value: float | None, fallback: float | None) -> float | None:
    return value if value is not None else fallback


def _response_format(request: RunOptions, assistant: Assistant) -> str | Obj:
    return response_format_record(request.response_format) or assistant["response_format"]


def _tool_choice(request: RunOptions, tools: list[Tool]) -> str | Obj:
    choice = request.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice == "required" and not tools:
            raise InvalidRequest(
                "tool_choice 'required' needs at least one tool.", param="tool_choice"
            )
        return choice
    # A built-in tool the service cannot run was refused before
    # (`refuse_unsupported_tool_choice`); one it can must be among the run's tools.
    if isinstance(choice, BuiltinToolChoice) and not any(t["type"] == choice.type for t in tools):
        raise InvalidRequest(
            f"tool_choice names the {choice.type} tool, which is not among the run's tools.",
            param="tool_choice",
        )
    if isinstance(choice, FunctionChoice):
        names = {t["name"] for t in tools if t["type"] == "function"}
        if choice.function.name not in names:
            raise InvalidRequest(
                f"tool_choice names function '{choice.function.name}', which is not among "
                "the run's tools.",
                param="tool_choice",
            )
    return tool_choice_record(choice)


async def _check_run_tools(tx: StoreTx, project: str, request: RunOptions) -> None:
    if request.tools is not None:
        await check_connected_agents(tx, project, [tool_record(t) for t in request.tools])


async def _require_assistant(tx: StoreTx, project: str, assistant_id: str) -> Assistant:
    assistant = await tx.get_assistant(project, assistant_id)
    if assistant is None:
        raise InvalidRequest(f"No assistant found with id '{assistant_id}'.", param="assistant_id")
    return assistant


async def _require_run(tx: StoreTx, project: str, thread_id: str, run_id: str) -> Run:
    await require_thread(tx, project, thread_id, lock=False)
    run = await tx.get_run(thread_id, run_id)
    if run is None:
        raise NotFound("run", run_id)
    return run


def _waits_for_approval(run: Run) -> bool:
    pending = run["pending_tool_calls"] or []
    return bool(pending) and all(call["type"] == "mcp" for call in pending)


def _approvals_by_call(run: Run, request: ToolOutputsSubmit) -> dict[str, ToolApproval]:
    pending = [call["id"] for call in run["pending_tool_calls"] or []]
    decisions: dict[str, ToolApproval] = {}
    for index, approval in enumerate(request.tool_approvals or []):
        param = f"tool_approvals[{index}].tool_call_id"
        if approval.tool_call_id not in pending:
            raise InvalidRequest(
                f"No call waiting for approval has id '{approval.tool_call_id}' in run"
                f" {run['id']}.",
                param=param,
            )
        if approval.tool_call_id in decisions:
            raise InvalidRequest(
                f"Call '{approval.tool_call_id}' was approved or refused twice.", param=param
            )
        decisions[approval.tool_call_id] = approval
    missing = [call_id for call_id in pending if call_id not in decisions]
    if missing:
        raise InvalidRequest(
            f"Expected a decision on calls {pending}; missing {missing}.", param="tool_approvals"
        )
    return decisions


def _outputs_by_call(run: Run, request: ToolOutputsSubmit) -> dict[str, str]:
    pending = [call["id"] for call in run["pending_tool_calls"] or []]
    outputs: dict[str, str] = {}
    for output in request.tool_outputs:
        if output.tool_call_id not in pending:
            raise InvalidRequest(
                f"No tool call found with id '{output.tool_call_id}' in run {run['id']}.",
                param="tool_outputs",
            )
        if output.tool_call_id in outputs:
            raise InvalidRequest(
                f"Tool output for call '{output.tool_call_id}' was given twice.",
                param="tool_outputs",
            )
        outputs[output.tool_call_id] = output.output
    missing = [call_id for call_id in pending if call_id not in outputs]
    if missing:
        raise InvalidRequest(
            f"Expected tool outputs for call_ids {pending}, got {list(outputs)}; missing "
            f"{missing}.",
            param="tool_outputs",
        )
    return outputs


async def _pending_tool_step(tx: StoreTx, run: Run) -> tuple[RunStep, ToolCalls]:
    for step in reversed(await tx.steps_of_run(run["id"])):
        if step["type"] == "tool_calls" and step["status"] == "in_progress":
            return step, cast(ToolCalls, step["step_details"])
    raise Conflict(f"Run {run['id']} has no tool call step waiting for outputs.")
