"""The Azure AI Agents client, unchanged, against a TLS server with API keys and projects."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    AgentEventHandler,
    CodeInterpreterTool,
    FilePurpose,
    FileSearchTool,
    FunctionTool,
    MessageAttachment,
    MessageDeltaChunk,
    MessageRole,
    OpenApiAnonymousAuthDetails,
    OpenApiConnectionAuthDetails,
    OpenApiConnectionSecurityScheme,
    OpenApiTool,
    RunStepOpenAPIToolCall,
    RunStepToolCallDetails,
    ThreadRun,
    ToolSet,
    VectorStoreDataSource,
    VectorStoreDataSourceAssetType,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from support.azure_agents import API_KEY, agents_client
from support.keys import create_key
from support.live import CODE_OFF_REASON, TEST_SERVER_ENV, Databases
from support.pet_api import SECRET, PetApi, get_operation, pet_spec
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess


def _ca(server: ServerProcess) -> str:
    assert isinstance(server.verify, str)
    return server.verify


@pytest.fixture
def client(tls_server: ServerProcess) -> Iterator[AgentsClient]:
    with agents_client(tls_server, "alpha") as agents:
        yield agents


def _text(client: AgentsClient, thread_id: str) -> str:
    message = client.messages.get_last_message_text_by_role(
        thread_id=thread_id, role=MessageRole.AGENT
    )
    assert message is not None
    return str(message.text.value)


def test_agent_lifecycle(client: AgentsClient, model_name: str) -> None:
    agent = client.create_agent(
        model=model_name, name="helper", instructions="Be kind.", metadata={"team": "x"}
    )
    fetched = client.get_agent(agent.id)
    updated = client.update_agent(agent.id, instructions="Be brief.")

    assert fetched.id == agent.id and fetched.name == "helper" and fetched.model == model_name
    assert updated.instructions == "Be brief." and updated.metadata == {"team": "x"}
    assert agent.id in [a.id for a in client.list_agents()]
    assert client.delete_agent(agent.id) is None
    with pytest.raises(ResourceNotFoundError):
        client.get_agent(agent.id)


def test_metadata_set_while_the_agent_answers_survives_the_run(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The worker finishing the run writes only its own fields: what the client set on the
    run, its message and its thread while the model was held mid-answer stays."""
    hold = threading.Event()
    scripted_model.script(model_name, Reply("one two three", hold=hold))
    agent = client.create_agent(model=model_name, name="held")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="count")
    try:
        run = client.runs.create(thread_id=thread.id, agent_id=agent.id)
        deadline = time.monotonic() + 60
        while not (written := list(client.messages.list(thread_id=thread.id, run_id=run.id))):
            assert time.monotonic() < deadline, "the run's message never appeared"
            time.sleep(0.02)
        client.runs.update(thread_id=thread.id, run_id=run.id, metadata={"ticket": "42"})
        client.messages.update(
            thread_id=thread.id, message_id=written[0].id, metadata={"reviewed": "no"}
        )
        client.threads.update(thread.id, metadata={"topic": "counting"})
    finally:
        hold.set()
    while (done := client.runs.get(thread_id=thread.id, run_id=run.id)).status != "completed":
        assert done.status in ("queued", "in_progress"), done.last_error
        time.sleep(0.02)

    assert done.metadata == {"ticket": "42"}
    message = client.messages.get(thread_id=thread.id, message_id=written[0].id)
    assert message.metadata == {"reviewed": "no"} and message.status == "completed"
    assert client.threads.get(thread.id).metadata == {"topic": "counting"}


def test_create_and_process_reads_the_reply(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    scripted_model.script(model_name, Reply("Hello from the agent."))
    agent = client.create_agent(model=model_name, name="a", instructions="Greet.")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="hi")

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )

    assert run.status == "completed"
    assert _text(client, thread.id) == "Hello from the agent."
    assert scripted_model.requests(model_name)[0]["messages"][0] == {
        "role": "system",
        "content": "Greet.",
    }


def test_auto_function_calls_run_python_functions(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Tell the weather in a city.

        :param city: The city.
        """
        calls.append(city)
        return f"sunny in {city}"

    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Lisbon"})]),
        Reply("It is sunny in Lisbon."),
    )
    toolset = ToolSet()
    toolset.add(FunctionTool({get_weather}))
    client.enable_auto_function_calls(toolset)
    agent = client.create_agent(model=model_name, name="weather", toolset=toolset)

    run = client.create_thread_and_process_run(
        agent_id=agent.id,
        thread={"messages": [{"role": "user", "content": "Weather in Lisbon?"}]},
        polling_interval=0.05,
    )

    assert run.status == "completed"
    assert calls == ["Lisbon"]
    assert _text(client, run.thread_id) == "It is sunny in Lisbon."
    tool_message = scripted_model.requests(model_name)[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "sunny in Lisbon" in tool_message["content"]


def test_create_and_process_with_a_toolset_of_functions(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The client sends the toolset's `tool_resources` (`{}` for functions) with the run."""
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Tell the weather in a city.

        :param city: The city.
        """
        calls.append(city)
        return f"cold in {city}"

    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply("It is cold in Oslo."),
    )
    toolset = ToolSet()
    toolset.add(FunctionTool({get_weather}))
    client.enable_auto_function_calls(toolset)
    agent = client.create_agent(model=model_name, name="toolless")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="Weather in Oslo?")

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, toolset=toolset, polling_interval=0.05
    )

    assert run.status == "completed"
    assert calls == ["Oslo"]
    assert _text(client, thread.id) == "It is cold in Oslo."
    assert run.tool_resources == {}
    [tool] = scripted_model.requests(model_name)[0]["tools"]
    assert tool["function"]["name"] == "get_weather"


def test_what_cannot_run_yet_is_refused_through_the_azure_client(client: AgentsClient) -> None:
    thread = client.threads.create()
    attachment = MessageAttachment(
        data_source=VectorStoreDataSource(
            asset_identifier="https://example.com/manual.pdf",
            asset_type=VectorStoreDataSourceAssetType.URI_ASSET,
        ),
        tools=FileSearchTool().definitions,  # type: ignore[arg-type]
    )

    with pytest.raises(HttpResponseError) as on_message:
        client.messages.create(
            thread_id=thread.id, role="user", content="read it", attachments=[attachment]
        )

    message_error = _error_of(on_message.value)
    assert on_message.value.status_code == 400
    assert message_error["param"] == "attachments[0].data_source"
    assert message_error["message"] == "attachments with data_source are not supported yet."
    assert list(client.messages.list(thread_id=thread.id)) == []


def _error_of(refused: HttpResponseError) -> dict[str, Any]:
    assert refused.response is not None
    error: dict[str, Any] = json.loads(refused.response.text())["error"]
    return error


def _upload(client: AgentsClient, folder: Path, name: str) -> str:
    path = folder / name
    path.write_text("x,y\n1,2\n")
    return str(client.files.upload_and_poll(file_path=str(path), purpose=FilePurpose.AGENTS).id)


def test_the_code_interpreter_and_its_files_through_the_azure_client(
    client: AgentsClient, model_name: str, tmp_path: Path
) -> None:
    """The agent's, the run's and the thread's `tool_resources` name the files given them;
    a file attached to a message for the tool joins its thread's."""
    given, run_file, attached = (_upload(client, tmp_path, f"{n}.csv") for n in "abc")
    code = CodeInterpreterTool(file_ids=[given])
    agent = client.create_agent(
        model=model_name, tools=code.definitions, tool_resources=code.resources
    )
    thread = client.threads.create()
    client.messages.create(
        thread_id=thread.id,
        role="user",
        content="plot it",
        attachments=[
            MessageAttachment(
                file_id=attached,
                tools=CodeInterpreterTool().definitions,
            )
        ],
    )
    toolset = ToolSet()
    toolset.add(CodeInterpreterTool(file_ids=[run_file]))

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, toolset=toolset, polling_interval=0.05
    )

    assert run.status == "completed"
    assert [tool.type for tool in client.get_agent(agent.id).tools] == ["code_interpreter"]
    for resources, file_id in (
        (client.get_agent(agent.id).tool_resources, given),
        (run.tool_resources, run_file),
        (client.threads.get(thread.id).tool_resources, attached),
    ):
        assert resources is not None and resources.code_interpreter is not None
        assert resources.code_interpreter.file_ids == [file_id]


def test_a_code_interpreter_file_that_does_not_exist_is_refused_through_the_azure_client(
    client: AgentsClient, model_name: str
) -> None:
    before = [a.id for a in client.list_agents(limit=100)]
    code = CodeInterpreterTool(file_ids=["assistant-gone"])

    with pytest.raises(HttpResponseError) as caught:
        client.create_agent(model=model_name, tools=code.definitions, tool_resources=code.resources)

    error = _error_of(caught.value)
    assert caught.value.status_code == 400
    assert error["param"] == "tool_resources.code_interpreter.file_ids[0]"
    assert error["message"] == "No file found with id 'assistant-gone'."
    assert [a.id for a in client.list_agents(limit=100)] == before


def test_with_the_code_interpreter_off_the_azure_client_is_refused_it(
    code_off_server: ServerProcess, model_name: str, tmp_path: Path
) -> None:
    """The agent's tool and a message's attachment for it, each refused saying why."""
    with agents_client(code_off_server, "alpha") as client:
        before = [a.id for a in client.list_agents(limit=100)]
        thread = client.threads.create()
        attachment = MessageAttachment(
            file_id=_upload(client, tmp_path, "data.csv"),
            tools=CodeInterpreterTool().definitions,
        )

        with pytest.raises(HttpResponseError) as on_agent:
            client.create_agent(model=model_name, tools=CodeInterpreterTool().definitions)
        with pytest.raises(HttpResponseError) as on_message:
            client.messages.create(
                thread_id=thread.id, role="user", content="plot it", attachments=[attachment]
            )

        agent_error, message_error = _error_of(on_agent.value), _error_of(on_message.value)
        assert on_agent.value.status_code == on_message.value.status_code == 400
        assert agent_error["param"] == "tools[0]"
        assert message_error["param"] == "attachments[0].tools[0]"
        for error in (agent_error, message_error):
            assert error["code"] == "unsupported_value"
            assert error["message"] == (
                f"The code_interpreter tool is not available on this server: {CODE_OFF_REASON}."
            )
        assert [a.id for a in client.list_agents(limit=100)] == before
        assert list(client.messages.list(thread_id=thread.id)) == []
        assert client.threads.get(thread.id).tool_resources == {}


def test_streaming_with_an_agent_event_handler(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    # Pauses longer than the test servers' keep-alive interval: keep-alives come between events.
    scripted_model.script(model_name, Reply("Streaming works fine", pause=0.5))
    agent = client.create_agent(model=model_name, name="streamer")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="go")

    class Handler(AgentEventHandler[None]):
        def __init__(self) -> None:
            super().__init__()
            self.deltas: list[str] = []
            self.run_statuses: list[str] = []
            self.done = False

        def on_message_delta(self, delta: MessageDeltaChunk) -> None:
            self.deltas.append(delta.text)

        def on_thread_run(self, run: ThreadRun) -> None:
            self.run_statuses.append(run.status)

        def on_done(self) -> None:
            self.done = True

    handler = Handler()
    with client.runs.stream(
        thread_id=thread.id, agent_id=agent.id, event_handler=handler
    ) as stream:
        stream.until_done()

    assert "".join(handler.deltas) == "Streaming works fine"
    assert handler.run_statuses[0] == "queued" and handler.run_statuses[-1] == "completed"
    assert handler.done
    assert _text(client, thread.id) == "Streaming works fine"


def test_text_beyond_ascii_streams_and_reads_back_whole(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    reply = 'Olá, café — "naïve" 日本語 🧵 ünïcödé'
    scripted_model.script(model_name, Reply(reply))
    agent = client.create_agent(model=model_name, name="Agente ñandú")
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="¿Qué tal? 你好")

    deltas: list[str] = []
    with client.runs.stream(thread_id=thread.id, agent_id=agent.id) as stream:
        for _, data, _ in stream:
            if isinstance(data, MessageDeltaChunk):
                deltas.append(data.text)

    assert "".join(deltas) == reply
    assert _text(client, thread.id) == reply
    assert client.get_agent(agent.id).name == "Agente ñandú"
    asked = scripted_model.requests(model_name)[0]["messages"][-1]
    assert asked == {"role": "user", "content": "¿Qué tal? 你好"}


def test_projects_are_isolated_both_ways(tls_server: ServerProcess, model_name: str) -> None:
    alpha, beta = agents_client(tls_server, "alpha"), agents_client(tls_server, "beta")
    agent = alpha.create_agent(model=model_name, name="private")
    thread = alpha.threads.create()
    message = alpha.messages.create(thread_id=thread.id, role="user", content="secret")

    with pytest.raises(ResourceNotFoundError):
        beta.get_agent(agent.id)
    with pytest.raises(ResourceNotFoundError):
        beta.threads.get(thread.id)
    with pytest.raises(ResourceNotFoundError):
        beta.messages.get(thread_id=thread.id, message_id=message.id)
    with pytest.raises(ResourceNotFoundError):
        beta.delete_agent(agent.id)
    assert agent.id not in [a.id for a in beta.list_agents()]

    beta_agent = beta.create_agent(model=model_name, name="other")
    assert beta_agent.id not in [a.id for a in alpha.list_agents()]
    assert alpha.get_agent(agent.id).name == "private"

    default = openai.OpenAI(
        base_url=tls_server.base_url,
        api_key=API_KEY,
        http_client=openai.DefaultHttpxClient(verify=_ca(tls_server)),
    )
    with pytest.raises(openai.NotFoundError):
        default.beta.assistants.retrieve(agent.id)
    mine = default.beta.assistants.create(model=model_name)
    with pytest.raises(ResourceNotFoundError):
        alpha.get_agent(mine.id)


def test_a_key_scoped_to_one_project_finds_nothing_in_another(
    tls_server: ServerProcess, model_name: str
) -> None:
    """A key made by `threadline keys create` while the server runs, beside the
    environment's admin keys."""
    _, gamma_key = create_key(tls_server.database_url, "--project", "gamma")
    alpha = agents_client(tls_server, "alpha")
    agent = alpha.create_agent(model=model_name, name="alpha's own")
    thread = alpha.threads.create()

    gamma = agents_client(tls_server, "gamma", key=gamma_key)
    mine = gamma.create_agent(model=model_name, name="gamma's own")
    assert gamma.get_agent(mine.id).name == "gamma's own"
    trespass = agents_client(tls_server, "alpha", key=gamma_key)
    with pytest.raises(ResourceNotFoundError):
        trespass.get_agent(agent.id)
    with pytest.raises(ResourceNotFoundError):
        trespass.threads.get(thread.id)
    with pytest.raises(ResourceNotFoundError):
        trespass.list_agents().next()
    with pytest.raises(ResourceNotFoundError):
        trespass.create_agent(model=model_name, name="planted")
    assert [a.name for a in alpha.list_agents()].count("planted") == 0


def test_threads_list_pages_the_project_s_threads(tls_server: ServerProcess) -> None:
    """`threads.list()` walks every page through the client's own paging."""
    lister = agents_client(tls_server, "listing")
    made = [lister.threads.create(metadata={"n": str(i)}).id for i in range(5)]
    agents_client(tls_server, "elsewhere").threads.create()

    listed = [t.id for t in lister.threads.list(limit=2)]
    oldest_first = [t.id for t in lister.threads.list(limit=2, order="asc")]

    assert listed == made[::-1]
    assert oldest_first == made


def test_unknown_api_version_names_the_supported_ones(tls_server: ServerProcess) -> None:
    response = httpx.get(
        f"{tls_server.url}/api/projects/alpha/assistants?api-version=2024-01-01",
        headers={"Authorization": f"Bearer {API_KEY}"},
        verify=_ca(tls_server),
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert "v1" in error["message"] and error["param"] == "api-version"


def test_a_missing_or_wrong_key_is_401(tls_server: ServerProcess) -> None:
    url = f"{tls_server.url}/v1/assistants"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_KEY}"}):
        response = httpx.get(url, headers=headers, verify=_ca(tls_server))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"

    wrong = agents_client(tls_server, "alpha", key="wrong")
    with pytest.raises(HttpResponseError) as refused:
        wrong.list_agents().next()
    assert refused.value.status_code == 401


def test_the_openai_sdk_works_with_a_key(
    tls_server: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    http = openai.DefaultHttpxClient(verify=_ca(tls_server))
    client = openai.OpenAI(base_url=tls_server.base_url, api_key=API_KEY, http_client=http)
    scripted_model.script(model_name, Reply("keyed"))
    assistant = client.beta.assistants.create(model=model_name)

    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )

    assert run.status == "completed"
    wrong = openai.OpenAI(base_url=tls_server.base_url, api_key="nope", http_client=http)
    with pytest.raises(openai.AuthenticationError):
        wrong.beta.assistants.list()


def test_the_key_file_is_not_needed_for_health(tls_server: ServerProcess) -> None:
    assert httpx.get(f"{tls_server.url}/health", verify=_ca(tls_server)).status_code == 200


# --- OpenAPI tools, as azure-ai-agents' own OpenAPI sample uses them --------------------------


@pytest.fixture(scope="module")
def pets() -> Iterator[PetApi]:
    with PetApi() as api:
        yield api


def _sample_tool_calls(client: AgentsClient, thread_id: str, run_id: str) -> list[Any]:
    """(step status, call id, call type, the call's function) of each step's calls, read as
    the `azure-ai-agents` OpenAPI sample reads them: the step as a mapping, the call's
    function through `call.get("function")`."""
    found: list[Any] = []
    for step in client.run_steps.list(thread_id=thread_id, run_id=run_id):
        step_details = step.get("step_details", {})
        tool_calls = step_details.get("tool_calls", [])
        for call in tool_calls:
            function_details = call.get("function", {})
            found.append((step["status"], call.get("id"), call.get("type"), function_details))
    return found


def _sample_replies(client: AgentsClient, thread_id: str) -> list[tuple[str, str]]:
    """(role, text) of each message with text, newest first, as the sample prints them."""
    return [
        (msg.role, msg.text_messages[-1].text.value)
        for msg in client.messages.list(thread_id=thread_id)
        if msg.text_messages
    ]


def test_the_openapi_sample_flow_calls_the_operation_in_the_run(
    client: AgentsClient, scripted_model: ScriptedModelServer, model_name: str, pets: PetApi
) -> None:
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_pets_getPet", {"petId": "42"})]),
        Reply("Pet 42 is in the shop."),
    )
    auth = OpenApiAnonymousAuthDetails()
    openapi = OpenApiTool(
        name="get_pets", spec=pet_spec(pets.base_url), description="Retrieve pets", auth=auth
    )
    agent = client.create_agent(
        model=model_name,
        name="my-agent",
        instructions="You are a helpful agent",
        tools=openapi.definitions,
    )
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="Is pet 42 there?")
    before = len(pets.seen)

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )

    assert run.status == "completed", run.last_error
    [(status, call_id, call_type, function)] = _sample_tool_calls(client, thread.id, run.id)
    assert status == "completed"
    assert call_id.startswith("call_") and call_type == "openapi"
    assert function.get("name") == "get_pets_getPet"
    assert function.get("output").startswith("HTTP 200")
    # The client's typed models know the call too.
    typed = next(iter(client.run_steps.list(thread_id=thread.id, run_id=run.id, order="asc")))
    assert isinstance(typed.step_details, RunStepToolCallDetails)
    assert isinstance(typed.step_details.tool_calls[0], RunStepOpenAPIToolCall)
    assert [seen["path"] for seen in pets.seen[before:]] == ["/pets/42"]
    assert _sample_replies(client, thread.id) == [
        ("assistant", "Pet 42 is in the shop."),
        ("user", "Is pet 42 there?"),
    ]
    tool_message = scripted_model.requests(model_name)[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == function.get("output")
    client.delete_agent(agent.id)


PET_CONNECTION = "pets_key"
PET_KEY_ENV = "PET_SHOP_KEY"


@pytest.fixture(scope="module")
def connected_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
    tls_server: ServerProcess,
) -> Iterator[ServerProcess]:
    """A server (on `tls_server`'s certificate) whose connections file names the pet shop's
    key, the secret itself in the environment."""
    folder = tmp_path_factory.mktemp("connected")
    connections = folder / "connections.toml"
    connections.write_text(
        f'[connections.{PET_CONNECTION}]\nkind = "header"\nname = "X-API-Key"\n'
        f'secret_env = "{PET_KEY_ENV}"\n'
    )
    env = {
        **TEST_SERVER_ENV,
        "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url,
        "THREADLINE_API_KEYS": API_KEY,
        "THREADLINE_CONNECTIONS_FILE": str(connections),
        PET_KEY_ENV: SECRET,
    }
    assert tls_server.tls is not None
    with ServerProcess(
        databases.new(),
        env,
        folder / "server.log",
        tls=tls_server.tls,
        ca_file=Path(_ca(tls_server)),
    ) as process:
        yield process


def test_an_openapi_tool_on_a_connection_sends_its_secret_to_the_api_alone(
    connected_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
    pets: PetApi,
) -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "Secure pets", "version": "1"},
        "servers": [{"url": pets.base_url}],
        "paths": {"/secure/header": get_operation("viaHeader")},
    }
    scripted_model.script(
        model_name, CallTools([ToolCall("secure_viaHeader", {})]), Reply("The key worked.")
    )
    resource = f"/subscriptions/0000/resourceGroups/rg/providers/x/connections/{PET_CONNECTION}"
    auth = OpenApiConnectionAuthDetails(
        security_scheme=OpenApiConnectionSecurityScheme(connection_id=resource)
    )
    openapi = OpenApiTool(name="secure", spec=spec, description="The keyed shop", auth=auth)
    client = agents_client(connected_server, "alpha")
    agent = client.create_agent(
        model=model_name, name="keyed", instructions="Use the shop.", tools=openapi.definitions
    )
    thread = client.threads.create()
    client.messages.create(thread_id=thread.id, role="user", content="Try the key")
    before = len(pets.seen)

    run = client.runs.create_and_process(
        thread_id=thread.id, agent_id=agent.id, polling_interval=0.05
    )

    assert run.status == "completed", run.last_error
    [sent] = pets.seen[before:]
    assert sent["path"] == "/secure/header" and sent["headers"]["x-api-key"] == SECRET
    [(_, _, call_type, function)] = _sample_tool_calls(client, thread.id, run.id)
    assert call_type == "openapi" and function.get("name") == "secure_viaHeader"
    output = function.get("output")
    # The API echoed the key back: it is replaced before the model or the step holds it.
    assert output.startswith("HTTP 200") and "[secret]" in output and SECRET not in output
    assert SECRET not in json.dumps(scripted_model.requests(model_name))
    assert SECRET not in json.dumps(client.get_agent(agent.id).as_dict())
    assert _sample_replies(client, thread.id)[0] == ("assistant", "The key worked.")


def test_an_openapi_tool_on_an_unknown_connection_is_refused(
    connected_server: ServerProcess, model_name: str, pets: PetApi
) -> None:
    auth = OpenApiConnectionAuthDetails(
        security_scheme=OpenApiConnectionSecurityScheme(connection_id=".../connections/nope")
    )
    openapi = OpenApiTool(name="p", spec=pet_spec(pets.base_url), description="x", auth=auth)
    client = agents_client(connected_server, "alpha")

    with pytest.raises(HttpResponseError) as refused:
        client.create_agent(model=model_name, tools=openapi.definitions)

    assert refused.value.status_code == 400
    error = refused.value.response.json()["error"]
    assert error["param"] == "tools[0].openapi.auth.security_scheme.connection_id"
