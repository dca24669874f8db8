"""Hostile code through the service, as a model would send it: the scripted model writes it,
the openai SDK drives the runs. Each attempt ends in an error the model reads, the run
completes, the service stays healthy, and other threads' runs go on meanwhile.

The server has small limits of its own, set as an operator would, so each breach comes
quickly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.beta.threads.runs import CodeInterpreterToolCall
from openai.types.beta.threads.runs.code_interpreter_tool_call import CodeInterpreterOutputLogs
from support.live import Databases, configured_server, openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess
from support.waiting import wait_for_run, wait_until

LIMITS = {
    "THREADLINE_CODE_WALL_SECONDS": "5",
    "THREADLINE_CODE_CPU_SECONDS": "1",
    "THREADLINE_CODE_MEMORY_MB": "256",
    "THREADLINE_CODE_MAX_PROCESSES": "16",
    "THREADLINE_CODE_MAX_OUTPUT_BYTES": "4096",
    "THREADLINE_CODE_SCRATCH_MB": "8",
}
RESTARTED = "the sandbox was restarted"


@pytest.fixture(scope="module")
def hostile_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("hostile-code")
    with configured_server(databases, folder, scripted_model.base_url, LIMITS) as process:
        yield process


@pytest.fixture
def client(hostile_server: ServerProcess) -> openai.OpenAI:
    return openai_client(hostile_server)


def _assistant(client: openai.OpenAI, model_name: str) -> Any:
    return client.beta.assistants.create(
        model=model_name,
        instructions="Write and run code to answer questions.",
        tools=[{"type": "code_interpreter"}],
    )


def _code_run(
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
    codes: list[str],
    thread_id: str | None = None,
) -> tuple[str, list[str]]:
    """A completed run whose model runs each code in a round of its own, then answers; the
    thread's id and what the model read of each call."""
    rounds = [CallTools([ToolCall("code_interpreter", {"code": code})]) for code in codes]
    scripted_model.script(model_name, *rounds, Reply("Done."))
    assistant = _assistant(client, model_name)
    if thread_id is None:
        thread_id = client.beta.threads.create(
            messages=[{"role": "user", "content": "Run my code."}]
        ).id
    else:
        client.beta.threads.messages.create(thread_id, role="user", content="Run my code.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    last = scripted_model.requests(model_name)[-1]
    read = [m["content"] for m in last["messages"] if m["role"] == "tool"]
    return thread_id, read[-len(codes) :]


def _healthy(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_code_reaches_neither_the_network_nor_the_services_files_nor_its_secrets(
    hostile_server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    connect = "import socket\nsocket.create_connection(({!r}, {}), timeout=10)"
    probes = {
        connect.format("127.0.0.1", 5432): "ConnectionRefusedError",  # the database's port
        connect.format("127.0.0.1", hostile_server.port): "ConnectionRefusedError",
        connect.format("192.0.2.1", 80): "Network is unreachable",
        f"import os\nos.listdir({str(hostile_server.files_dir)!r})": "FileNotFoundError",
        "open('/proc/1/environ', 'rb').read()": "PermissionError",
        "open('/usr/planted', 'w')": "Read-only file system",
    }
    url = hostile_server.database_url
    if url.startswith("sqlite:///"):
        database = url.removeprefix("sqlite:///")
        assert Path(database).is_file()
        probes[f"open({database!r}, 'rb').read()"] = "FileNotFoundError"
    environ = "import os\ndict(os.environ)"
    shadow = "open('/etc/shadow').read()"

    _, read = _code_run(client, scripted_model, model_name, [*probes, environ, shadow, "1 + 1"])

    *contained, seen_environ, seen_shadow, after = read
    for (code, error), message in zip(probes.items(), contained, strict=True):
        assert error in message, (code, message)
    assert "THREADLINE" not in seen_environ and url not in seen_environ
    assert "PATH" in seen_environ  # the sandbox's own few variables
    assert "PermissionError" in seen_shadow or "FileNotFoundError" in seen_shadow
    assert after == "2" and not [m for m in read if RESTARTED in m]
    _healthy(hostile_server)


def test_code_past_its_limits_is_stopped_and_its_sandbox_goes_on(
    hostile_server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    fork_bomb = (
        "import os\nmarker = 'still here'\nforked = 0\nfor _ in range(160):\n"
        "    if os.fork() == 0:\n        os._exit(0)\n    forked += 1"
    )
    codes = {
        fork_bomb: "BlockingIOError",
        "forked < 16": "True",
        "hoard = bytearray(1 << 30)": "memory limit 256 MB reached",
        "while True:\n    pass": "killed: CPU time limit reached",
        "for _ in range(1 << 20):\n    print('x' * 1023)": "killed: output limit 4 KB reached",
        "import os\nos.symlink('/opt/threadline/kernel.py', 'link')": (
            "Not kept (not plain files): link"
        ),
        "with open('big.bin', 'wb') as out:\n    for _ in range(16):\n"
        "        out.write(bytes(1 << 20))": "Error",
        "import subprocess\nsubprocess.run(['true']).returncode, marker": "(0, 'still here')",
    }

    _, read = _code_run(client, scripted_model, model_name, list(codes))

    for (code, expected), message in zip(codes.items(), read, strict=True):
        assert expected in message, (code, message)
    assert "def main" not in read[5]  # the link was not followed
    big = read[6]
    assert "No space left on device" in big or "File too large" in big
    assert not [m for m in read if RESTARTED in m]
    _healthy(hostile_server)


def test_another_threads_files_are_out_of_sight(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    _, [wrote] = _code_run(
        client,
        scripted_model,
        model_name,
        ["open('/mnt/data/secret.txt', 'w').write('for thread A only')"],
    )
    assert "sandbox:/mnt/data/secret.txt" in wrote

    other = scripted_model.unique_name()
    _, read = _code_run(
        client,
        scripted_model,
        other,
        ["import os\nos.listdir('/mnt/data')", "open('/mnt/data/secret.txt').read()"],
    )

    assert read[0] == "[]"
    assert "FileNotFoundError" in read[1] and "for thread A only" not in read[1]


def test_a_run_held_at_the_wall_time_limit_leaves_other_threads_running(
    hostile_server: ServerProcess,
    client: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """The code sleeps (no CPU time spent): only the wall-time limit stops it. While it is
    held, a run of another thread completes; then the thread's sandbox starts afresh."""
    code = "import time\nwhile True:\n    time.sleep(60)"
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": code})]),
        Reply("It was stopped."),
    )
    hostile_thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
    hostile = client.beta.threads.runs.create(
        thread_id=hostile_thread.id, assistant_id=_assistant(client, model_name).id
    )

    def calls(step_list: Any) -> list[Any]:
        return [
            call
            for step in step_list.data
            if step.type == "tool_calls" and step.status == "in_progress"
            for call in step.step_details.tool_calls
        ]

    wait_until(
        lambda: client.beta.threads.runs.steps.list(thread_id=hostile_thread.id, run_id=hostile.id),
        lambda steps: [c for c in calls(steps) if c.code_interpreter.input == code] != [],
        "the hostile call to be under way",
    )

    answering = scripted_model.unique_name()
    scripted_model.script(answering, Reply("Here at once."))
    meanwhile = client.beta.assistants.create(model=answering)
    other = client.beta.threads.runs.create_and_poll(
        assistant_id=meanwhile.id,
        thread_id=client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}]).id,
        poll_interval_ms=50,
    )
    assert other.status == "completed", other.last_error
    [answer] = client.beta.threads.messages.list(other.thread_id, run_id=other.id).data
    assert answer.content[0].text.value == "Here at once."  # type: ignore[union-attr]

    wait_for_run(client, hostile_thread.id, hostile.id, "completed")
    [stopped] = [
        m["content"]
        for m in scripted_model.requests(model_name)[1]["messages"]
        if m["role"] == "tool"
    ]
    assert "killed: wall time limit 5 s reached" in stopped
    steps = client.beta.threads.runs.steps.list(
        thread_id=hostile_thread.id, run_id=hostile.id, order="asc"
    )
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert isinstance(call, CodeInterpreterToolCall)
    [logs] = call.code_interpreter.outputs
    assert isinstance(logs, CodeInterpreterOutputLogs)
    assert "killed: wall time limit 5 s reached" in logs.logs

    again = scripted_model.unique_name()
    _, [after] = _code_run(client, scripted_model, again, ["1 + 1"], hostile_thread.id)
    assert RESTARTED in after and after.endswith("2")
    _healthy(hostile_server)
