"""Foundry's new agents with the `azure-ai-projects` 2.x client, unchanged, over TLS with an
API key as its credential: agent versions, and responses that run them through the OpenAI
client the project client hands out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from azure.ai.projects import AIProjectClient
from azure.ai.projects.models import (
    AgentEndpointConfig,
    CodeInterpreterTool,
    FixedRatioVersionSelectionRule,
    FunctionTool,
    MCPTool,
    OpenApiAnonymousAuthDetails,
    OpenApiFunctionDefinition,
    OpenApiTool,
    PromptAgentDefinition,
    ProtocolConfiguration,
    ResponsesProtocolConfiguration,
    VersionSelector,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from support.azure_agents import API_KEY, StaticCredential, agents_client
from support.azure_agents import tls_server as azure_tls_server
from support.live import Databases
from support.mcp_server import McpServer
from support.pet_api import PetApi, pet_spec
from support.scripted_model import CallTools, Reply, ScriptedModelServer, ToolCall
from support.server import ServerProcess

WEATHER = FunctionTool(
    name="get_weather",
    description="The weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    strict=True,
)


def projects_client(server: ServerProcess, project: str) -> AIProjectClient:
    return AIProjectClient(
        endpoint=f"{server.url}/api/projects/{project}",
        credential=StaticCredential(API_KEY),  # type: ignore[arg-type]
        connection_verify=server.verify,
    )


def openai_of(project: AIProjectClient, server: ServerProcess) -> openai.OpenAI:
    """As users get it; the test authority's certificate is the one thing added."""
    return project.get_openai_client(http_client=openai.DefaultHttpxClient(verify=server.verify))


@pytest.fixture
def project(tls_server: ServerProcess) -> Iterator[AIProjectClient]:
    with projects_client(tls_server, "alpha") as client:
        yield client


@pytest.fixture
def oai(project: AIProjectClient, tls_server: ServerProcess) -> openai.OpenAI:
    return openai_of(project, tls_server)


def _agent_name(model_name: str) -> str:
    return f"helper-{model_name[-12:]}"


def _version(client: AIProjectClient, name: str, model: str, **settings: Any) -> Any:
    """A new version of agent `name`: a prompt definition of `model` and `settings`."""
    definition = PromptAgentDefinition(model=model, **settings)
    return client.agents.create_version(agent_name=name, definition=definition)


def _reference(name: str, version: str | None = None) -> dict[str, Any]:
    reference = {"type": "agent_reference", "name": name}
    if version is not None:
        reference["version"] = version
    return {"agent_reference": reference}


def _raw(
    server: ServerProcess,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/api/projects/alpha/{path}",
        params={"api-version": "v1"},
        headers={"Authorization": f"Bearer {API_KEY}", **(headers or {})},
        verify=server.verify,
        **kwargs,
    )


def _refused(server: ServerProcess, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The error a version made of `definition` gets, which must be a 400 that leaves no
    agent `name` behind."""
    body = _raw(server, "POST", f"agents/{name}/versions", json={"definition": definition})
    assert body.status_code == 400, body.text
    assert _raw(server, "GET", f"agents/{name}").status_code == 404
    error: dict[str, Any] = body.json()["error"]
    return error


def test_versions_are_made_listed_read_and_deleted(
    project: AIProjectClient, model_name: str
) -> None:
    name = _agent_name(model_name)
    first = project.agents.create_version(
        agent_name=name,
        definition=PromptAgentDefinition(model=model_name, instructions="Be kind."),
        metadata={"team": "x"},
        description="the first",
    )
    second = project.agents.create_version(
        agent_name=name,
        definition=PromptAgentDefinition(
            model=model_name, instructions="Be brief.", tools=[WEATHER], temperature=0.5
        ),
    )

    assert (first.name, first.version, second.version) == (name, "1", "2")
    assert first.metadata == {"team": "x"} and first.description == "the first"
    assert first.definition.kind == "prompt" and first.definition["model"] == model_name
    got = project.agents.get(name)
    assert got.name == name and got.versions.latest.version == "2"
    assert got.versions.latest.definition["tools"][0]["name"] == "get_weather"
    assert got.versions.latest.definition["temperature"] == 0.5
    assert name in [agent.name for agent in project.agents.list()]
    listed = [v.version for v in project.agents.list_versions(agent_name=name, order="asc")]
    assert listed == ["1", "2"]
    assert project.agents.get_version(agent_name=name, agent_version="1").definition[
        "instructions"
    ] == ("Be kind.")

    deleted = project.agents.delete_version(agent_name=name, agent_version="2")
    assert deleted.deleted and deleted.version == "2"
    assert project.agents.get(name).versions.latest.version == "1"
    third = _version(project, name, model_name)
    assert third.version == "3"  # a number is never given twice
    assert project.agents.delete(name).deleted
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(name)
    with pytest.raises(ResourceNotFoundError):
        project.agents.get_version(agent_name=name, agent_version="1")


def test_the_list_of_agents_is_paged_as_the_client_pages(
    project: AIProjectClient, model_name: str
) -> None:
    names = [f"p{index}-{model_name[-12:]}" for index in range(3)]
    for name in names:
        _version(project, name, model_name)
    listed = [agent.name for agent in project.agents.list(limit=1, order="asc")]
    assert [name for name in listed if name in names] == names


def test_a_response_runs_the_latest_or_the_named_version(
    project: AIProjectClient,
    oai: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    for instructions in ("You are one.", "You are two."):
        project.agents.create_version(
            agent_name=name,
            definition=PromptAgentDefinition(model=model_name, instructions=instructions),
        )
    scripted_model.script(model_name, Reply("Hi from two."), Reply("Hi from one."))
    conversation = oai.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Hello."}]
    )

    latest = oai.responses.create(
        conversation=conversation.id, input="Who are you?", extra_body=_reference(name)
    )
    pinned = oai.responses.create(
        conversation=conversation.id, input="And now?", extra_body=_reference(name, "1")
    )

    assert latest.output_text == "Hi from two." and pinned.output_text == "Hi from one."
    assert latest.model == model_name and latest.instructions == "You are two."
    assert (latest.model_extra or {})["agent_reference"] == {
        "type": "agent_reference",
        "name": name,
        "version": "2",
    }
    assert (pinned.model_extra or {})["agent_reference"]["version"] == "1"
    systems = [
        [m["content"] for m in request["messages"] if m["role"] == "system"]
        for request in scripted_model.requests(model_name)
    ]
    assert systems == [["You are two."], ["You are one."]]
    said = [m["content"] for m in scripted_model.requests(model_name)[1]["messages"]]
    assert said[1:] == ["Hello.", "Who are you?", "Hi from two.", "And now?"]
    items = oai.conversations.items.list(conversation.id, order="asc").data
    assert len(items) == 5


def test_a_streamed_response_of_an_agent(
    project: AIProjectClient,
    oai: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name)
    scripted_model.script(model_name, Reply("one two three"))
    # `responses.stream()` wants a model client-side; `create(stream=True)` is what the
    # agent samples use.
    events = list(oai.responses.create(input="Count.", stream=True, extra_body=_reference(name)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    [done] = [event for event in events if event.type == "response.completed"]
    assert "".join(deltas) == "one two three" == done.response.output_text
    assert (done.response.model_extra or {})["agent_reference"]["version"] == "1"


def test_a_function_tool_round_trip_with_an_agent(
    project: AIProjectClient,
    oai: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name, tools=[WEATHER])
    scripted_model.script(
        model_name, CallTools([ToolCall("get_weather", {"city": "Oslo"})]), Reply("Sunny.")
    )
    conversation = oai.conversations.create()
    first = oai.responses.create(
        conversation=conversation.id, input="Weather in Oslo?", extra_body=_reference(name)
    )
    [call] = first.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}
    second = oai.responses.create(
        conversation=conversation.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        extra_body=_reference(name),
    )
    assert second.output_text == "Sunny."
    [tool] = scripted_model.requests(model_name)[1]["tools"]
    assert tool["function"]["name"] == "get_weather"


def test_a_conversation_of_an_agent_is_a_thread_of_the_classic_api(
    project: AIProjectClient,
    oai: openai.OpenAI,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name)
    scripted_model.script(model_name, Reply("Hello, classic."))
    conversation = oai.conversations.create()
    oai.responses.create(conversation=conversation.id, input="Hi.", extra_body=_reference(name))

    with agents_client(tls_server, "alpha") as classic:
        thread = classic.threads.get(conversation.id)
        said = [
            (m.role, m.content[0].text.value)  # type: ignore[union-attr]
            for m in classic.messages.list(thread_id=thread.id, order="asc")
        ]
    assert said == [("user", "Hi."), ("assistant", "Hello, classic.")]


def test_agents_are_scoped_to_their_project(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name)
    with projects_client(tls_server, "beta") as beta:
        other = openai_of(beta, tls_server)
        with pytest.raises(ResourceNotFoundError):
            beta.agents.get(name)
        assert name not in [agent.name for agent in beta.agents.list()]
        with pytest.raises(openai.NotFoundError):
            other.responses.create(input="Hi.", extra_body=_reference(name))
        # The same name is free in another project.
        assert _version(beta, name, model_name).version == "1"
    assert project.agents.get(name).versions.latest.version == "1"


@pytest.mark.parametrize(
    ("definition", "param"),
    [
        ({"kind": "hosted", "image": "x"}, "definition.kind"),
        ({"kind": "workflow", "workflow": "x"}, "definition.kind"),
        ({"kind": "prompt"}, "definition.model"),
        ({"kind": "prompt", "model": "m", "colour": "red"}, "definition.colour"),
        ({"kind": "prompt", "model": "m", "tools": [{"type": "nope"}]}, "definition.tools[0].type"),
        (
            {"kind": "prompt", "model": "m", "tools": [{"type": "function", "name": "a b"}]},
            "definition.tools[0].name",
        ),
        ({"kind": "prompt", "model": "m", "temperature": 3}, "definition.temperature"),
    ],
)
def test_a_bad_definition_is_refused_and_nothing_is_stored(
    project: AIProjectClient,
    tls_server: ServerProcess,
    model_name: str,
    definition: dict[str, Any],
    param: str,
) -> None:
    name = _agent_name(model_name)
    with pytest.raises(HttpResponseError) as caught:
        project.agents.create_version(name, {"definition": definition})
    assert caught.value.status_code == 400
    error = _refused(tls_server, name, definition)
    assert error["param"] == param, error
    if definition["kind"] != "prompt":
        assert repr(definition["kind"]) in error["message"]


@pytest.mark.parametrize("name", ["-lead", "trail-", "under_score", "a" * 64, "dot.ted"])
def test_a_name_the_client_s_rules_refuse_is_refused(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str, name: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        _version(project, name, model_name)
    assert caught.value.status_code == 400
    assert name not in [agent.name for agent in project.agents.list()]


def test_unknown_agents_and_versions_are_not_found(
    project: AIProjectClient, oai: openai.OpenAI, model_name: str
) -> None:
    name = _agent_name(model_name)
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(name)
    with pytest.raises(ResourceNotFoundError):
        project.agents.delete(name)
    with pytest.raises(ResourceNotFoundError):
        list(project.agents.list_versions(agent_name=name))
    _version(project, name, model_name)
    for version in ("2", "0", "latest"):
        with pytest.raises(ResourceNotFoundError):
            project.agents.get_version(agent_name=name, agent_version=version)
        with pytest.raises(ResourceNotFoundError):
            project.agents.delete_version(agent_name=name, agent_version=version)
    with pytest.raises(openai.NotFoundError) as caught:
        oai.responses.create(input="Hi.", extra_body=_reference(name, "2"))
    assert caught.value.body["param"] == "agent_reference.version"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(input="Hi.", extra_body=_reference("nobody-here"))


@pytest.mark.parametrize(
    "given",
    [{"model": "other"}, {"instructions": "x"}, {"tools": [{"type": "function", "name": "f"}]}],
)
def test_a_request_may_not_set_what_the_agent_sets(
    project: AIProjectClient, oai: openai.OpenAI, model_name: str, given: dict[str, Any]
) -> None:
    name = _agent_name(model_name)
    project.agents.create_version(
        agent_name=name,
        definition=PromptAgentDefinition(
            model=model_name, instructions="Be brief.", tools=[WEATHER]
        ),
    )
    conversation = oai.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(
            conversation=conversation.id,
            input="Hi.",
            extra_body={**_reference(name), **given},
        )
    assert caught.value.body["param"] == next(iter(given))  # type: ignore[index]
    assert oai.conversations.items.list(conversation.id).data == []


def test_a_request_sets_what_the_agent_leaves_unset(
    project: AIProjectClient,
    oai: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """The samples send a `tool_choice` with their agent's name: a version without one
    takes the request's."""
    name = _agent_name(model_name)
    _version(project, name, model_name, tools=[WEATHER])
    scripted_model.script(model_name, Reply("Fine."))
    response = oai.responses.create(
        input="Weather?", tool_choice="none", extra_body=_reference(name)
    )
    assert response.status == "completed" and response.tool_choice == "none"
    [request] = scripted_model.requests(model_name)
    assert request["tool_choice"] == "none"


def _migrate(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THREADLINE_DATABASE_URL": server.database_url}
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli", "agents", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_classic_agent_migrates_to_a_version_of_a_new_one(
    project: AIProjectClient,
    oai: openai.OpenAI,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    weather = WEATHER.as_dict()
    with agents_client(tls_server, "alpha") as classic:
        assistant = classic.create_agent(
            model=model_name,
            name="classic",
            instructions="Be classic.",
            temperature=0.25,
            tools=[
                {"type": "function", "function": {k: v for k, v in weather.items() if k != "type"}}
            ],
        )
        migrated = _migrate(tls_server, assistant.id, "--project", "alpha", "--name", name)
        assert migrated.returncode == 0, migrated.stderr
        assert classic.get_agent(assistant.id).instructions == "Be classic."  # it stays

    version = project.agents.get_version(agent_name=name, agent_version="1")
    assert version.definition["model"] == model_name
    assert version.definition["instructions"] == "Be classic."
    assert version.definition["temperature"] == 0.25
    assert version.definition["tools"][0]["name"] == "get_weather"
    scripted_model.script(model_name, Reply("Migrated."))
    answer = oai.responses.create(input="Hi.", extra_body=_reference(name))
    assert answer.output_text == "Migrated." and answer.instructions == "Be classic."
    # Once more: the next version; and an unknown assistant or another project's is refused.
    assert _migrate(tls_server, assistant.id, "--project", "alpha", "--name", name).returncode == 0
    assert project.agents.get(name).versions.latest.version == "2"
    for args in ((assistant.id, "--name", name), ("asst_nope", "--project", "alpha")):
        refused = _migrate(tls_server, *args)
        assert refused.returncode != 0 and "No assistant found" in refused.stderr


def test_a_classic_agent_with_a_tool_versions_do_not_run_is_not_migrated(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str
) -> None:
    name = _agent_name(model_name)
    with agents_client(tls_server, "alpha") as classic:
        helper = classic.create_agent(model=model_name, name="helper")
        assistant = classic.create_agent(
            model=model_name,
            name=name,
            tools=[
                {
                    "type": "connected_agent",
                    "connected_agent": {"id": helper.id, "name": "helper", "description": "x"},
                }
            ],
        )
    refused = _migrate(tls_server, assistant.id, "--project", "alpha")
    assert refused.returncode != 0 and "'connected_agent' tool" in refused.stderr
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(name)


def test_a_classic_agent_s_openapi_tool_migrates_as_it_is(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str
) -> None:
    name = _agent_name(model_name)
    openapi = {
        "name": "pets",
        "spec": pet_spec("http://127.0.0.1:9"),
        "auth": {"type": "anonymous"},
    }
    with agents_client(tls_server, "alpha") as classic:
        assistant = classic.create_agent(
            model=model_name, name=name, tools=[{"type": "openapi", "openapi": openapi}]
        )
    assert _migrate(tls_server, assistant.id, "--project", "alpha").returncode == 0
    [tool] = project.agents.get(name).versions.latest.definition["tools"]
    assert tool["type"] == "openapi" and tool["openapi"]["name"] == "pets"


def _route_to(version: str, share: int = 100) -> AgentEndpointConfig:
    return AgentEndpointConfig(
        version_selector=VersionSelector(
            version_selection_rules=[
                FixedRatioVersionSelectionRule(agent_version=version, traffic_percentage=share)
            ]
        ),
        protocol_configuration=ProtocolConfiguration(responses=ResponsesProtocolConfiguration()),
    )


def endpoint_of(project: AIProjectClient, server: ServerProcess, name: str) -> openai.OpenAI:
    """The OpenAI client of an agent's endpoint, as the samples get it."""
    return project.get_openai_client(
        agent_name=name, http_client=openai.DefaultHttpxClient(verify=server.verify)
    )


def test_an_agent_s_endpoint_answers_with_the_version_it_routes_to(
    project: AIProjectClient,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """The flow of the samples' `create_version_with_endpoint`: make a version, route the
    endpoint to it, talk to it with no model, put the endpoint back."""
    name = _agent_name(model_name)
    for instructions in ("You are one.", "You are two."):
        project.agents.create_version(
            agent_name=name,
            definition=PromptAgentDefinition(model=model_name, instructions=instructions),
        )
    assert project.agents.get(agent_name=name).agent_endpoint is None
    details = project.agents.update_details(agent_name=name, agent_endpoint=_route_to("1"))
    assert details.agent_endpoint is not None
    rules = details.agent_endpoint.version_selector.version_selection_rules  # type: ignore[union-attr]
    assert [(rule.agent_version, rule.traffic_percentage) for rule in rules] == [("1", 100)]
    kept = project.agents.get(agent_name=name).agent_endpoint
    assert kept is not None and kept.as_dict() == details.agent_endpoint.as_dict()

    scripted_model.script(model_name, Reply("One here."), Reply("Still one."), Reply("Two."))
    with endpoint_of(project, tls_server, name) as agent:
        conversation = agent.conversations.create(
            items=[{"type": "message", "role": "user", "content": "Who are you?"}]
        )
        first = agent.responses.create(conversation=conversation.id)
        agent.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": "Sure?"}]
        )
        second = agent.responses.create(conversation=conversation.id)
        # A merge patch: `null` removes the endpoint, and the latest version answers.
        project.agents.update_details(agent_name=name, body={"agent_endpoint": None})
        assert project.agents.get(agent_name=name).agent_endpoint is None
        third = agent.responses.create(input="And now?")

    assert (first.output_text, second.output_text, third.output_text) == (
        "One here.",
        "Still one.",
        "Two.",
    )
    versions = [(r.model_extra or {})["agent_reference"]["version"] for r in (first, third)]
    assert versions == ["1", "2"] and first.instructions == "You are one."
    said = [m["content"] for m in scripted_model.requests(model_name)[1]["messages"]]
    assert said == ["You are one.", "Who are you?", "One here.", "Sure?"]
    # The endpoint's conversation is the project's.
    oai = openai_of(project, tls_server)
    assert len(oai.conversations.items.list(conversation.id).data) == 4


def test_a_function_tool_round_trip_through_an_agent_s_endpoint(
    project: AIProjectClient,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """As the function tool sample does it: the outputs go with `previous_response_id`."""
    name = _agent_name(model_name)
    version = _version(project, name, model_name, tools=[WEATHER])
    project.agents.update_details(agent_name=name, agent_endpoint=_route_to(version.version))
    scripted_model.script(
        model_name,
        CallTools([ToolCall("get_weather", {"city": "Oslo"})]),
        Reply("Sunny."),
        Reply("Still sunny."),
    )
    with endpoint_of(project, tls_server, name) as agent:
        first = agent.responses.create(input="Weather in Oslo?")
        [call] = first.output
        assert call.type == "function_call"
        second = agent.responses.create(
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            previous_response_id=first.id,
        )
        streamed = list(agent.responses.create(input="Once more.", stream=True))
    assert second.output_text == "Sunny."
    [done] = [event for event in streamed if event.type == "response.completed"]
    assert done.response.output_text == "Still sunny."
    assert (done.response.model_extra or {})["agent_reference"]["name"] == name


def test_an_endpoint_splits_requests_among_versions_by_their_shares(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str
) -> None:
    name = _agent_name(model_name)
    for _ in range(2):
        _version(project, name, model_name)
    shares = [
        FixedRatioVersionSelectionRule(agent_version="1", traffic_percentage=0),
        FixedRatioVersionSelectionRule(agent_version="2", traffic_percentage=100),
    ]
    config = AgentEndpointConfig(version_selector=VersionSelector(version_selection_rules=shares))
    project.agents.update_details(agent_name=name, agent_endpoint=config)
    with endpoint_of(project, tls_server, name) as agent:
        counted = agent.responses.input_tokens.count(input="How many?")
    assert counted.input_tokens > 0
    # Which of several versions a draw picks is `domain/agent_versions.chosen_version`'s, tested
    # with the draws given (`tests/test_version_shares.py`).


def test_an_endpoint_routes_only_to_versions_that_exist(
    project: AIProjectClient,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    """A rule may not name a deleted version; deleting a version the endpoint routes to
    removes its selector, and the latest version answers."""
    name = _agent_name(model_name)
    for instructions in ("One.", "Two.", "Three."):
        project.agents.create_version(
            agent_name=name,
            definition=PromptAgentDefinition(model=model_name, instructions=instructions),
        )
    project.agents.delete_version(agent_name=name, agent_version="2")
    with pytest.raises(HttpResponseError) as caught:
        project.agents.update_details(agent_name=name, agent_endpoint=_route_to("2"))
    assert caught.value.status_code == 400
    assert project.agents.get(agent_name=name).agent_endpoint is None
    project.agents.update_details(agent_name=name, agent_endpoint=_route_to("1"))
    project.agents.delete_version(agent_name=name, agent_version="1", force=True)
    kept = project.agents.get(agent_name=name).agent_endpoint
    assert kept is not None and kept.version_selector is None
    assert kept.protocol_configuration is not None  # the rest of the endpoint stays
    scripted_model.script(model_name, Reply("Three here."))
    with endpoint_of(project, tls_server, name) as agent:
        answer = agent.responses.create(input="Who?")
    assert answer.instructions == "Three." and answer.output_text == "Three here."


def test_input_tokens_are_counted_for_an_agent_s_version(
    project: AIProjectClient, oai: openai.OpenAI, model_name: str
) -> None:
    name = _agent_name(model_name)
    project.agents.create_version(name, {"definition": _with_inputs(model_name)})
    inputs = {"structured_inputs": {"language": "Danish"}}
    counted = oai.responses.input_tokens.count(
        input="Hi.", extra_body={**_reference(name), **inputs}
    )
    assert counted.input_tokens > 0
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.input_tokens.count(input="Hi.", extra_body=_reference(name))
    assert caught.value.body["param"] == "structured_inputs.language"  # type: ignore[index]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        (
            {"version_selector": {"version_selection_rules": []}},
            "agent_endpoint.version_selector.version_selection_rules",
        ),
        (
            {
                "version_selector": {
                    "version_selection_rules": [
                        {"type": "FixedRatio", "agent_version": "1", "traffic_percentage": 90}
                    ]
                }
            },
            "agent_endpoint.version_selector.version_selection_rules",
        ),
        (
            {
                "version_selector": {
                    "version_selection_rules": [
                        {"type": "FixedRatio", "agent_version": "7", "traffic_percentage": 100}
                    ]
                }
            },
            "agent_endpoint.version_selector.version_selection_rules[0].agent_version",
        ),
        (
            {
                "version_selector": {
                    "version_selection_rules": [
                        {"type": "Random", "agent_version": "1", "traffic_percentage": 100}
                    ]
                }
            },
            "agent_endpoint.version_selector.version_selection_rules[0].type",
        ),
        ({"protocol_configuration": {"a2a": {}}}, "agent_endpoint.protocol_configuration.a2a"),
        ({"authorization_schemes": [{"type": "Entra"}]}, "agent_endpoint.authorization_schemes"),
        ({"colour": "red"}, "agent_endpoint.colour"),
    ],
)
def test_a_bad_endpoint_is_refused_and_the_kept_one_stays(
    project: AIProjectClient,
    tls_server: ServerProcess,
    model_name: str,
    patch: dict[str, Any],
    param: str,
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name)
    before = project.agents.update_details(agent_name=name, agent_endpoint=_route_to("1"))
    with pytest.raises(HttpResponseError) as caught:
        project.agents.update_details(agent_name=name, body={"agent_endpoint": patch})
    assert caught.value.status_code == 400
    after = project.agents.get(agent_name=name).agent_endpoint
    assert after is not None and before.agent_endpoint is not None
    assert after.as_dict() == before.agent_endpoint.as_dict()
    refused = _raw(
        tls_server,
        "PATCH",
        f"agents/{name}",
        content=json.dumps({"agent_endpoint": patch}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text


def test_what_an_agent_s_endpoint_does_not_serve_is_refused(
    project: AIProjectClient,
    tls_server: ServerProcess,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    _version(project, name, model_name)
    with pytest.raises(HttpResponseError) as caught:
        project.agents.update_details(agent_name=name, body={"agent_card": {"version": "1"}})
    assert caught.value.status_code == 400
    with (
        endpoint_of(project, tls_server, "nobody-here") as nobody,
        pytest.raises(openai.NotFoundError),
    ):
        nobody.responses.create(input="Hi.")
    with endpoint_of(project, tls_server, name) as agent:
        with pytest.raises(openai.NotFoundError):
            agent.get("/assistants", cast_to=object)
        with pytest.raises(openai.BadRequestError) as other:
            agent.responses.create(input="Hi.", extra_body=_reference("someone-else"))
        assert other.value.body["param"] == "agent_reference.name"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as model:
            agent.responses.create(input="Hi.", model="other")
        assert model.value.body["param"] == "model"  # type: ignore[index]
        # An endpoint that serves no responses protocol refuses responses.
        project.agents.update_details(
            agent_name=name, body={"agent_endpoint": {"protocol_configuration": {}}}
        )
        conversation = agent.conversations.create()
        with pytest.raises(openai.BadRequestError):
            agent.responses.create(conversation=conversation.id, input="Hi.")
        assert agent.conversations.items.list(conversation.id).data == []


def _with_inputs(model_name: str) -> dict[str, Any]:
    return {
        "kind": "prompt",
        "model": model_name,
        "instructions": "Answer in {{language}} for {{customer}}; limit {{limit}}.",
        "structured_inputs": {
            "language": {"schema": {"type": "string"}, "required": True},
            "customer": {"schema": {"type": "string"}, "default_value": "everyone"},
            "limit": {"schema": {"type": "integer", "minimum": 1}},
        },
    }


def test_structured_inputs_fill_the_version_s_placeholders(
    project: AIProjectClient,
    oai: openai.OpenAI,
    scripted_model: ScriptedModelServer,
    model_name: str,
) -> None:
    name = _agent_name(model_name)
    made = project.agents.create_version(name, {"definition": _with_inputs(model_name)})
    assert made.definition["structured_inputs"]["language"]["schema"] == {"type": "string"}
    scripted_model.script(model_name, Reply("Hej."), Reply("Hallo."))
    first = oai.responses.create(
        input="Hi.",
        extra_body={**_reference(name), "structured_inputs": {"language": "Danish", "limit": 3}},
    )
    second = oai.responses.create(
        input="Hi.",
        extra_body={
            **_reference(name),
            "structured_inputs": {"language": "German", "customer": "Ada"},
        },
    )
    assert (first.output_text, second.output_text) == ("Hej.", "Hallo.")
    systems = [request["messages"][0]["content"] for request in scripted_model.requests(model_name)]
    assert systems == [
        "Answer in Danish for everyone; limit 3.",
        # An input neither given nor defaulted leaves its placeholder as written.
        "Answer in German for Ada; limit {{limit}}.",
    ]


@pytest.mark.parametrize(
    ("inputs", "param"),
    [
        ({}, "structured_inputs.language"),
        ({"language": 5}, "structured_inputs.language"),
        ({"language": "Danish", "limit": 0}, "structured_inputs.limit"),
        ({"language": "Danish", "colour": "red"}, "structured_inputs.colour"),
    ],
)
def test_structured_inputs_that_do_not_fit_are_refused(
    project: AIProjectClient,
    oai: openai.OpenAI,
    model_name: str,
    inputs: dict[str, Any],
    param: str,
) -> None:
    name = _agent_name(model_name)
    project.agents.create_version(name, {"definition": _with_inputs(model_name)})
    conversation = oai.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(
            conversation=conversation.id,
            input="Hi.",
            extra_body={**_reference(name), "structured_inputs": inputs},
        )
    assert caught.value.body["param"] == param  # type: ignore[index]
    assert oai.conversations.items.list(conversation.id).data == []


def test_structured_inputs_need_an_agent_and_a_sound_schema(
    project: AIProjectClient, oai: openai.OpenAI, tls_server: ServerProcess, model_name: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(
            model=model_name, input="Hi.", extra_body={"structured_inputs": {"a": "b"}}
        )
    assert caught.value.body["param"] == "structured_inputs"  # type: ignore[index]
    name = _agent_name(model_name)
    for declared, param in (
        ({"schema": {"type": "nonsense"}}, "definition.structured_inputs.x.schema"),
        (
            {"schema": {"type": "string"}, "default_value": 5},
            "definition.structured_inputs.x.default_value",
        ),
        ({"colour": "red"}, "definition.structured_inputs.x.colour"),
    ):
        definition = {"kind": "prompt", "model": model_name, "structured_inputs": {"x": declared}}
        assert _refused(tls_server, name, definition)["param"] == param


def test_a_code_interpreter_without_a_container_gets_one_made_for_it(
    project: AIProjectClient, model_name: str
) -> None:
    """`CodeInterpreterTool()`, as the samples give it: the hosted service makes the
    container, where a Responses request must say `{"type": "auto"}`."""
    name = _agent_name(model_name)
    made = project.agents.create_version(
        agent_name=name,
        definition=PromptAgentDefinition(model=model_name, tools=[CodeInterpreterTool()]),
    )
    assert made.definition["tools"] == [{"type": "code_interpreter", "container": {"type": "auto"}}]


@pytest.fixture(scope="module")
def pets() -> Iterator[PetApi]:
    with PetApi() as api:
        yield api


def test_an_agent_s_openapi_tool_calls_the_operation(
    project: AIProjectClient,
    tls_server: ServerProcess,
    scripted_model: ScriptedModelServer,
    model_name: str,
    pets: PetApi,
) -> None:
    """The OpenAPI sample's agent, on an API the test serves: the response shows the call and
    its answer as `openapi_call` and `openapi_call_output` items, streamed and stored, and
    its conversation keeps both."""
    name = _agent_name(model_name)
    tool = OpenApiTool(
        openapi=OpenApiFunctionDefinition(
            name="get_pets",
            spec=pet_spec(pets.base_url),
            description="Retrieve pets.",
            auth=OpenApiAnonymousAuthDetails(),
        )
    )
    version = _version(project, name, model_name, tools=[tool])
    project.agents.update_details(agent_name=name, agent_endpoint=_route_to(version.version))
    scripted_model.script(
        model_name,
        CallTools(
            [
                ToolCall("get_pets_getPet", {"petId": "42"}),
                ToolCall("get_pets_getPet", {"petId": "7"}),
            ]
        ),
        Reply("Pet 42 is in."),
        Reply("Still in."),
    )
    before = len(pets.seen)
    with endpoint_of(project, tls_server, name) as agent:
        conversation = agent.conversations.create()
        events = list(
            agent.responses.create(conversation=conversation.id, input="Pet 42?", stream=True)
        )
        [done] = [event for event in events if event.type == "response.completed"]
        stored = agent.responses.retrieve(done.response.id)
        items = agent.conversations.items.list(conversation.id, order="asc").data
        agent.responses.create(conversation=conversation.id, input="Sure?")

    output = [item.to_dict() for item in stored.output]
    assert [item["type"] for item in output] == [
        "openapi_call",
        "openapi_call_output",
        "openapi_call",
        "openapi_call_output",
        "message",
    ]
    call, answer = output[0], output[1]
    assert call["name"] == "get_pets_getPet" and json.loads(call["arguments"]) == {"petId": "42"}
    assert answer["call_id"] == call["call_id"] and answer["output"].startswith("HTTP 200")
    assert output[3]["call_id"] == output[2]["call_id"] != call["call_id"]
    assert [item.to_dict() for item in done.response.output] == output
    # Streamed at the places the stored response has them, whichever call ended first.
    streamed = [e for e in events if e.type == "response.output_item.done"]
    assert sorted(e.output_index for e in streamed) == list(range(5))
    assert all(output[e.output_index] == e.item.to_dict() for e in streamed)
    assert sorted(seen["path"] for seen in pets.seen[before:]) == ["/pets/42", "/pets/7"]
    assert [item.type for item in items] == [
        "message",
        "openapi_call",
        "openapi_call_output",
        "openapi_call",
        "openapi_call_output",
        "message",
    ]
    # The next response reads the calls and their answers where they were.
    sent = scripted_model.requests(model_name)[2]["messages"]
    roles = ["user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
    assert [m["role"] for m in sent] == roles
    assert sent[2]["content"] == answer["output"]


def test_a_bad_openapi_tool_is_refused_by_name(
    project: AIProjectClient, tls_server: ServerProcess, model_name: str
) -> None:
    name = _agent_name(model_name)
    definition = {
        "kind": "prompt",
        "model": model_name,
        "tools": [{"type": "openapi", "openapi": {"name": "x", "spec": {"openapi": "nope"}}}],
    }
    error = _refused(tls_server, name, definition)
    assert error["param"].startswith("definition.tools[0].openapi"), error


GITHUB_CONNECTION = "github"
GITHUB_TOKEN_ENV = "GITHUB_PAT_FOR_TESTS"
GITHUB_TOKEN = "ghp-test-0042-secret"


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with McpServer() as server:
        yield server


@pytest.fixture(scope="module")
def connected(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    """A server whose connections file names a bearer token, the token itself in the
    environment, as an operator configures the MCP sample's project connection."""
    folder = tmp_path_factory.mktemp("mcp-connected")
    connections = folder / "connections.toml"
    connections.write_text(
        f'[connections.{GITHUB_CONNECTION}]\nkind = "bearer"\nsecret_env = "{GITHUB_TOKEN_ENV}"\n'
    )
    settings = {
        "THREADLINE_CONNECTIONS_FILE": str(connections),
        GITHUB_TOKEN_ENV: GITHUB_TOKEN,
    }
    with azure_tls_server(databases, folder, scripted_model.base_url, settings) as server:
        yield server


def test_an_mcp_tool_on_a_project_connection_sends_its_secret_to_the_server_alone(
    connected: ServerProcess, scripted_model: ScriptedModelServer, model_name: str, mcp: McpServer
) -> None:
    """The MCP-with-project-connection sample's tool: the server gets the connection's token,
    while the definition, the response and the model see only its name."""
    name = _agent_name(model_name)
    resource = f"/subscriptions/0000/resourceGroups/rg/providers/x/connections/{GITHUB_CONNECTION}"
    tool = MCPTool(
        server_label="tools",
        server_url=mcp.url,
        require_approval="never",
        project_connection_id=resource,
    )
    scripted_model.script(
        model_name,
        CallTools([ToolCall("echo_header", {"name": "authorization"})]),
        Reply("Signed in."),
    )
    with projects_client(connected, "alpha") as project:
        made = _version(project, name, model_name, tools=[tool])
        oai = openai_of(project, connected)
        answer = oai.responses.create(input="Who am I?", extra_body=_reference(name))

    assert made.definition["tools"][0]["project_connection_id"] == resource
    [_, call, _] = answer.output
    assert call.type == "mcp_call"
    # The server read the token; it is redacted wherever it would have been kept or shown.
    assert call.output == "Bearer [secret]"  # type: ignore[union-attr]
    [told] = [m["content"] for m in scripted_model.requests(model_name)[1]["messages"][-1:]]
    assert GITHUB_TOKEN not in json.dumps(scripted_model.requests(model_name))
    assert "[secret]" in told
    assert GITHUB_TOKEN not in answer.to_json()


@pytest.mark.parametrize("connection", ["nowhere", ""])
def test_an_mcp_tool_naming_a_connection_the_service_lacks_is_refused(
    connected: ServerProcess, model_name: str, mcp: McpServer, connection: str
) -> None:
    name = _agent_name(model_name)
    tool = {
        "type": "mcp",
        "server_label": "tools",
        "server_url": mcp.url,
        "project_connection_id": connection,
    }
    definition = {"kind": "prompt", "model": model_name, "tools": [tool]}
    error = _refused(connected, name, definition)
    assert error["param"] == "definition.tools[0].project_connection_id"
    assert connection in error["message"]
