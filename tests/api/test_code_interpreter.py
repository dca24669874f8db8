"""The code_interpreter tool through the openai SDK and the scripted model, which writes the
code: it runs in the thread's sandbox, the model reads what it printed, the run's step shows
the code and its outputs, variables live on between calls of a thread and not across
threads, files go in and come out as Files, figures reach the answer as images.
"""

from __future__ import annotations

from typing import Any

import openai
from support.live import openai_client
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall


def _tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def _run(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Any:
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    return run


def _assistant(client: openai.OpenAI, model_name: str, **fields: Any) -> Any:
    return client.beta.assistants.create(
        model=model_name,
        instructions="You are a personal math tutor. Write and run code to answer questions.",
        tools=[{"type": "code_interpreter"}],
        **fields,
    )


def test_the_math_tutor_runs_code_and_the_step_shows_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    code = "import math\nx = math.sqrt(3 * 7 + 4)\nprint('root', x)\nx * 2"
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": code})]),
        Reply("The square root is 5."),
    )
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "I need to solve sqrt(3x+4) for x = 7."}]
    )
    run = _run(client, thread.id, assistant.id)

    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "root 5.0" in read and "10.0" in read
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    assert call.code_interpreter.input == code
    [logs] = call.code_interpreter.outputs
    assert logs.type == "logs" and logs.logs == "root 5.0\n10.0\n"


def test_variables_live_on_in_a_thread_and_not_in_another(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    assistant = _assistant(client, model_name)
    first = client.beta.threads.create(messages=[{"role": "user", "content": "Remember 41."}])
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": "kept = 41\nimport statistics"})]),
        Reply("Kept."),
        CallTools([ToolCall("code_interpreter", {"code": "statistics.mean([kept, kept + 2])"})]),
        Reply("42."),
    )
    _run(client, first.id, assistant.id)
    client.beta.threads.messages.create(thread_id=first.id, role="user", content="And now?")
    _run(client, first.id, assistant.id)
    requests = scripted_model.requests(model_name)
    assert _tool_messages(requests[3])[-1] == "42"

    other = client.beta.threads.create(messages=[{"role": "user", "content": "What is kept?"}])
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": "kept"})]),
        Reply("Nothing here."),
    )
    _run(client, other.id, assistant.id)
    [read] = _tool_messages(scripted_model.requests(model_name)[5])
    assert "NameError: name 'kept' is not defined" in read


def test_a_csv_goes_in_and_a_chart_and_a_csv_come_out(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    data = client.files.create(
        file=("sales.csv", b"month,units\njan,3\nfeb,5\nmar,8\n"), purpose="assistants"
    )
    code = (
        "import pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\n"
        "df['double'] = df.units * 2\n"
        "df.to_csv('/mnt/data/doubled.csv', index=False)\n"
        "plt.plot(df.month, df.units)\n"
        "int(df.units.sum())"
    )
    answer = "Total 16. Download [the table](sandbox:/mnt/data/doubled.csv)."
    scripted_model.script(
        model_name, CallTools([ToolCall("code_interpreter", {"code": code})]), Reply(answer)
    )
    assistant = _assistant(
        client, model_name, tool_resources={"code_interpreter": {"file_ids": [data.id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sum the units."}])
    run = _run(client, thread.id, assistant.id)

    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "16" in read and "sandbox:/mnt/data/doubled.csv" in read
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    outputs = steps.data[0].step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert [output.type for output in outputs] == ["logs", "image"]
    image_id = outputs[1].image.file_id  # type: ignore[union-attr]

    [message] = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    text, image = message.content
    assert image.type == "image_file" and image.image_file.file_id == image_id  # type: ignore[union-attr]
    png = client.files.content(image_id).read()
    assert png.startswith(b"\x89PNG")
    assert client.files.retrieve(image_id).purpose == "assistants_output"
    [link] = text.text.annotations  # type: ignore[union-attr]
    assert link.type == "file_path"
    assert link.text == "sandbox:/mnt/data/doubled.csv"
    assert answer[link.start_index : link.end_index] == link.text
    table = client.files.content(link.file_path.file_id).read()  # type: ignore[union-attr]
    assert table.decode().splitlines() == ["month,units,double", "jan,3,6", "feb,5,10", "mar,8,16"]


def test_an_attached_file_is_in_the_sandbox_and_the_stream_shows_the_code(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    data = client.files.create(file=("notes.txt", b"alpha\nbeta\n"), purpose="assistants")
    code = "print(open('/mnt/data/notes.txt').read().split())"
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": code})]),
        Reply("Two words."),
    )
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "What is in my notes?",
                "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    inputs: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.run.step.delta":
                for call in event.data.delta.step_details.tool_calls or []:  # type: ignore[union-attr]
                    if call.type == "code_interpreter" and call.code_interpreter.input:  # type: ignore[union-attr]
                        inputs.append(call.code_interpreter.input)  # type: ignore[union-attr]
        steps = stream.get_final_run_steps()
    assert "".join(inputs) == code
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.code_interpreter.outputs[0].logs == "['alpha', 'beta']\n"  # type: ignore[union-attr]
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "/mnt/data/notes.txt" in read and "['alpha', 'beta']" in read


def test_a_sandbox_that_made_way_for_another_starts_again_with_its_files(
    start_server: Any, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    server = start_server(THREADLINE_CODE_MAX_SANDBOXES="1")
    client = openai_client(server)
    assistant = _assistant(client, model_name)
    first = client.beta.threads.create(messages=[{"role": "user", "content": "Start."}])
    second = client.beta.threads.create(messages=[{"role": "user", "content": "Other."}])
    scripted_model.script(
        model_name,
        CallTools(
            [ToolCall("code_interpreter", {"code": "x = 1\nopen('kept.txt', 'w').write('yes')"})]
        ),
        Reply("Done."),
        CallTools([ToolCall("code_interpreter", {"code": "y = 2"})]),
        Reply("Done."),
        CallTools([ToolCall("code_interpreter", {"code": "print(open('kept.txt').read())\nx"})]),
        Reply("Done."),
    )
    _run(client, first.id, assistant.id)
    _run(client, second.id, assistant.id)  # takes the only place: the first's is closed
    client.beta.threads.messages.create(thread_id=first.id, role="user", content="Again.")
    _run(client, first.id, assistant.id)
    # The thread's earlier call is read first: it is an item of the thread now.
    earlier, read = _tool_messages(scripted_model.requests(model_name)[5])
    assert "the sandbox was restarted" not in earlier
    assert "the sandbox was restarted" in read
    assert "yes" in read
    assert "NameError: name 'x' is not defined" in read


def test_an_error_in_the_code_is_the_model_s_to_read(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": "1/0"})]),
        Reply("Oops."),
    )
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Divide."}])
    run = _run(client, thread.id, assistant.id)
    [read] = _tool_messages(scripted_model.requests(model_name)[1])
    assert "ZeroDivisionError: division by zero" in read
    assert "kernel.py" not in read
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    [logs] = steps.data[-1].step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert "ZeroDivisionError" in logs.logs  # type: ignore[union-attr]


def test_tool_choice_code_interpreter_makes_the_model_call_it(
    client: openai.OpenAI, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("code_interpreter", {"code": "6 * 7"})]),
        Reply("42."),
    )
    assistant = _assistant(client, model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "6 times 7?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "code_interpreter"},
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    first, second = scripted_model.requests(model_name)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "code_interpreter"}}
    assert _tool_messages(second) == ["42"]
    # Once the tool has answered, the model chooses freely.
    assert second.get("tool_choice") in (None, "auto")
