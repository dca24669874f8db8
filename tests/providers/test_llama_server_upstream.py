"""A real OpenAI-compatible upstream: llama-cpp-python's own server (`llama_cpp.server`, the
package's `server` extras) on the bundled SmolLM2 GGUF, with `threadline serve` pointed at
it and driven through the real `openai` SDK.

The scripted model server speaks the format as OpenAI does; this one speaks it as a widely
used server does (ids and names repeated in every tool-call delta, no usage in the stream,
500 to an assistant message whose content is null), which is what users point Threadline
at. Greedy decoding and a small completion cap keep the answers short and the same each
time; one llama server serves the module and is always stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from support.live import TEST_SERVER_ENV, openai_client
from support.server import ServerProcess, free_port, stop_gracefully

from threadline.providers.local_llama import bundled_model_path

MODEL = "smollm2"
INSTRUCTIONS = "You are a helpful assistant. Answer in one sentence."
QUESTION = "What is the capital of France?"
MAX_TOKENS = 64
N_CTX = 2048
_START_SECONDS = 60.0
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Lisbon", "Rome"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The llama server's base URL. It handles one request at a time; with
    `interrupt_requests` off, a request arriving meanwhile waits instead of cutting the
    answer in progress short."""
    log_path = tmp_path_factory.mktemp("llama-server") / "llama-server.log"
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(bundled_model_path()),
        "--model_alias",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(N_CTX),
        "--interrupt_requests",
        "False",
        "--verbose",
        "False",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        _wait_until_serving(process, base_url, log_path.read_text)
        yield base_url
    finally:
        stop_gracefully(process)


def _wait_until_serving(
    process: subprocess.Popen[bytes], base_url: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama server exited: {log()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("llama server did not start")


@pytest.fixture(scope="module")
def service(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("llama-upstream")
    env = {
        **TEST_SERVER_ENV,
        "THREADLINE_OPENAI_BASE_URL": llama_server,
        "THREADLINE_PROVIDER_CONTEXT_WINDOW": str(N_CTX),
    }
    database = f"sqlite:///{folder / 'threadline.db'}"
    with ServerProcess(database, env, folder / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def client(service: ServerProcess) -> openai.OpenAI:
    return openai_client(service)


def _assistant_and_thread(client: openai.OpenAI, **assistant: object) -> tuple[str, str]:
    created = client.beta.assistants.create(
        model=MODEL,
        instructions=INSTRUCTIONS,
        temperature=0,
        **assistant,  # type: ignore[arg-type]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    return created.id, thread.id


def _reply_text(client: openai.OpenAI, thread_id: str, run_id: str) -> str:
    [reply] = client.beta.threads.messages.list(thread_id, run_id=run_id).data
    assert reply.role == "assistant" and reply.content[0].type == "text"
    return reply.content[0].text.value


def test_quick_start(client: openai.OpenAI) -> None:
    assistant_id, thread_id = _assistant_and_thread(client)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        max_completion_tokens=MAX_TOKENS,
        poll_interval_ms=50,
    )

    assert run.status == "completed", run.last_error
    assert "Paris" in _reply_text(client, thread_id, run.id)


def test_a_streamed_run(client: openai.OpenAI) -> None:
    assistant_id, thread_id = _assistant_and_thread(client)

    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=MAX_TOKENS
    ) as stream:
        deltas = [event for event in stream if event.event == "thread.message.delta"]
        run = stream.get_final_run()

    assert run.status == "completed", run.last_error
    streamed = "".join(
        part.text.value or ""
        for event in deltas
        for part in event.data.delta.content or []
        if part.type == "text" and part.text is not None
    )
    assert len(deltas) > 1 and streamed.strip()
    assert streamed == _reply_text(client, thread_id, run.id)


def test_a_forced_function_round_trip(client: openai.OpenAI, llama_server: str) -> None:
    """The server repeats the call's id and name in every delta, and once refused the call's
    turn sent back with `content: null`: the call must come out named exactly, and the turn
    after the outputs must be taken. The run's `tool_choice` still names the function on
    that turn, so the model may call it again rather than answer; either is a good end."""
    assistant_id, thread_id = _assistant_and_thread(client, tools=[WEATHER])
    forced = {"type": "function", "function": {"name": "get_weather"}}

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        tool_choice=forced,  # type: ignore[arg-type]
        max_completion_tokens=MAX_TOKENS,
        poll_interval_ms=50,
    )

    assert run.status == "requires_action", run.last_error
    assert run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Lisbon", "Rome")

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "22 degrees and sunny"}],
        poll_interval_ms=50,
    )

    assert done.status in ("completed", "requires_action"), done.last_error
    if done.status == "requires_action":
        assert done.required_action is not None
        again = done.required_action.submit_tool_outputs.tool_calls
        assert [c.function.name for c in again] == ["get_weather"] and again[0].id != call.id
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id, order="asc")
    first = steps.data[0]
    assert first.type == "tool_calls" and first.status == "completed"


def _servers_prompt_count(llama_server: str) -> int:
    """What the llama server itself counts for the run's prompt (it reports usage when not
    streaming)."""
    answer = httpx.post(
        f"{llama_server}/chat/completions",
        json={
            "model": MODEL,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": QUESTION},
            ],
            "max_tokens": 1,
            "temperature": 0,
        },
        timeout=60,
    )
    answer.raise_for_status()
    count: int = answer.json()["usage"]["prompt_tokens"]
    return count


def test_the_prompt_estimate_holds_when_the_server_sends_no_usage(
    client: openai.OpenAI, llama_server: str
) -> None:
    assistant_id, thread_id = _assistant_and_thread(client)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        max_completion_tokens=MAX_TOKENS,
        poll_interval_ms=50,
    )

    assert run.status == "completed" and run.usage is not None
    counted = _servers_prompt_count(llama_server)
    assert counted <= run.usage.prompt_tokens <= 2 * counted


def test_completion_tokens_are_counted_when_the_server_sends_no_usage(
    client: openai.OpenAI,
) -> None:
    assistant_id, thread_id = _assistant_and_thread(client)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        max_completion_tokens=MAX_TOKENS,
        poll_interval_ms=50,
    )

    assert run.status == "completed" and run.usage is not None
    assert run.usage.completion_tokens > 0
