"""The OpenAPI tool against a real HTTP API on loopback: what the model is offered, what the
calls send and answer, the limits of a call, connection secrets, and every refusal at create
time."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.pet_api import SECRET, PetApi, get_operation, pet_spec

from threadline.domain.errors import InvalidRequest
from threadline.tools.base import CallContext, Outcome, ToolFailure
from threadline.tools.connections import Connections
from threadline.tools.openapi import (
    OpenApiLimits,
    OpenApiTool,
    openapi_functions,
    validate_openapi_definition,
)

pytestmark = pytest.mark.timeout(60)

CONTEXT = CallContext(project="default", run_id="run_1", thread_id="thread_1")


@pytest.fixture(scope="module")
def api() -> Iterator[PetApi]:
    with PetApi() as api:
        yield api


@pytest.fixture(scope="module")
def other_api() -> Iterator[PetApi]:
    """Another origin, for redirects that leave the first."""
    with PetApi() as api:
        yield api


def secure_spec(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Secure", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {
            "/secure/header": get_operation("viaHeader"),
            "/secure/query": get_operation("viaQuery"),
            "/secure/bearer": get_operation("viaBearer"),
            "/away": get_operation("away"),
        },
    }


def definition(spec: dict[str, Any], auth: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "openapi",
        "openapi": {
            "name": "pets",
            "description": "The pet store",
            "spec": spec,
            "auth": auth or {"type": "anonymous"},
            "default_params": [],
        },
    }


def connection_auth(name: str) -> dict[str, Any]:
    resource = f"/subscriptions/0000/resourceGroups/rg/providers/x/connections/{name}"
    return {"type": "connection", "security_scheme": {"connection_id": resource}}


def connections() -> Connections:
    return Connections.from_dict(
        {
            "by_header": {"kind": "header", "name": "X-API-Key", "secret_env": "PET_KEY"},
            "by_query": {"kind": "query", "name": "api_key", "secret_env": "PET_KEY"},
            "by_bearer": {"kind": "bearer", "secret_env": "PET_KEY"},
        },
        {"PET_KEY": SECRET},
    )


def call(tool: OpenApiTool, name: str, arguments: Any) -> Outcome:
    offer = next(offer for offer in tool.offers() if offer.name == name)
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return asyncio.run(tool.call(offer, text, CONTEXT))


def failure(tool: OpenApiTool, name: str, arguments: Any) -> str:
    with pytest.raises(ToolFailure) as raised:
        call(tool, name, arguments)
    return str(raised.value)


# --- offers -----------------------------------------------------------------------------------


def test_each_operation_with_an_id_is_offered_with_its_parameters(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    offers = {offer.name: offer for offer in tool.offers()}
    assert tool.type == "openapi"
    assert sorted(offers) == sorted(
        f"pets_{name}" for name in ["getPet", "addPet", "missing", "big", "hops", "slow", "image"]
    )
    get_pet = offers["pets_getPet"]
    assert get_pet.description == "Get one pet\n\nBy its id."
    assert get_pet.parameters == {
        "type": "object",
        "properties": {
            "X-Trace": {"type": "string", "description": "a trace id"},
            "petId": {"type": "string", "description": "the pet's id"},
            "verbose": {"type": "boolean"},
        },
        "required": ["petId"],
    }
    add_pet = offers["pets_addPet"].parameters
    assert add_pet["required"] == ["body"]
    body = add_pet["properties"]["body"]
    # Refs resolved; the cycle Pet -> Family -> Pet stops at an empty schema.
    assert body["properties"]["name"] == {"type": "string"}
    assert body["properties"]["family"]["properties"]["members"]["items"] == {}
    assert offers["pets_addPet"].chat_tool()["function"]["name"] == "pets_addPet"


def test_the_functions_field_lists_what_the_model_is_offered(api: PetApi) -> None:
    stored = definition(pet_spec(api.base_url))
    functions = openapi_functions(stored)
    tool = OpenApiTool(stored, Connections())
    assert functions == [
        {"name": offer.name, "description": offer.description, "parameters": offer.parameters}
        for offer in tool.offers()
    ]


def test_names_are_made_safe_for_a_function_and_cut_at_64() -> None:
    spec = pet_spec("http://127.0.0.1:9")
    spec["paths"]["/missing"]["get"]["operationId"] = "find pets.by/status" + "x" * 80
    stored = definition(spec)
    stored["openapi"]["name"] = "pet store"
    names = [function["name"] for function in openapi_functions(stored)]
    long = next(name for name in names if "find" in name)
    assert long.startswith("pet_store_find_pets_by_status")
    assert len(long) == 64
    assert "pet_store_getPet" in names


def test_default_params_are_filled_from_the_spec_not_by_the_model(api: PetApi) -> None:
    spec = pet_spec(api.base_url)
    verbose = spec["paths"]["/pets/{petId}"]["get"]["parameters"][1]
    verbose["schema"]["default"] = True
    stored = definition(spec)
    stored["openapi"]["default_params"] = ["verbose"]
    tool = OpenApiTool(stored, Connections())
    offer = next(offer for offer in tool.offers() if offer.name == "pets_getPet")
    assert "verbose" not in offer.parameters["properties"]
    outcome = call(tool, "pets_getPet", {"petId": "7"})
    assert json.loads(outcome.output.split("\n", 1)[1])["verbose"] == "true"


# --- calls ------------------------------------------------------------------------------------


def test_a_get_sends_its_path_query_and_header_parameters(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    outcome = call(tool, "pets_getPet", {"petId": "a b?&", "verbose": True, "X-Trace": "t-1"})
    status, body = outcome.output.split("\n", 1)
    assert status == "HTTP 200"
    assert json.loads(body) == {"id": "a b?&", "verbose": "true", "trace": "t-1"}
    assert not outcome.failed
    assert api.seen[-1]["raw_path"] == "/pets/a%20b%3F%26"
    assert outcome.details == {
        "name": "pets_getPet",
        "operation_id": "getPet",
        "method": "GET",
        "url": f"{api.base_url}/pets/a%20b%3F%26",
        "status": 200,
        "cut": False,
    }


def test_a_post_sends_its_json_body(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    outcome = call(tool, "pets_addPet", {"body": {"name": "Rex", "family": {"members": []}}})
    assert outcome.output == 'HTTP 201\n{"created":{"name":"Rex","family":{"members":[]}}}'
    assert not outcome.failed


def test_an_error_status_is_an_answer_the_model_reads(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    outcome = call(tool, "pets_missing", "")
    assert outcome.output == 'HTTP 404\n{"error":"no such pet"}'
    assert outcome.failed
    assert outcome.details["status"] == 404


def test_a_large_answer_is_cut_at_the_cap_with_a_note(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    outcome = call(tool, "pets_big", {})
    status, rest = outcome.output.split("\n", 1)
    assert status == "HTTP 200"
    body, note = rest.rsplit("\n", 1)
    assert body == "x" * (1024 * 1024)
    assert note == f"[cut: the response was larger than {1024 * 1024} bytes]"
    assert outcome.details["cut"] is True
    assert not outcome.failed


def test_the_cap_is_a_setting(api: PetApi) -> None:
    limits = OpenApiLimits(max_response_bytes=10)
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections(), limits)
    assert call(tool, "pets_big", {}).output == (
        "HTTP 200\nxxxxxxxxxx\n[cut: the response was larger than 10 bytes]"
    )


def test_a_binary_answer_is_described_not_shown(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    assert call(tool, "pets_image", {}).output == "HTTP 200\n[108 bytes of image/png]"


def test_redirects_are_followed_up_to_the_limit(api: PetApi) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    outcome = call(tool, "pets_hops", {"left": 5})
    assert outcome.output == 'HTTP 200\n{"arrived":true}'
    assert outcome.details["url"] == f"{api.base_url}/hops/0"
    message = failure(tool, "pets_hops", {"left": 10})
    assert message == (
        f"GET {api.base_url}/hops/10 was redirected more than 5 times; "
        "the redirects were not followed further."
    )
    # The sixth redirect was not followed.
    assert [seen["path"] for seen in api.seen[-6:]] == [f"/hops/{n}" for n in range(10, 4, -1)]


def test_a_call_past_its_time_limit_fails_with_a_clear_message(api: PetApi) -> None:
    limits = OpenApiLimits(timeout_seconds=0.3)
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections(), limits)
    started = time.monotonic()
    message = failure(tool, "pets_slow", {})
    assert message == f"GET {api.base_url}/slow got no whole answer within 0.3 seconds."
    assert time.monotonic() - started < 5


def test_an_unreachable_api_fails_with_a_clear_message() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tool = OpenApiTool(definition(pet_spec(f"http://127.0.0.1:{port}")), Connections())
    message = failure(tool, "pets_missing", {})
    assert message.startswith(f"GET http://127.0.0.1:{port}/missing failed: ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "The arguments of pets_getPet are not valid JSON"),
        ("[1, 2]", "The arguments of pets_getPet must be a JSON object, not list."),
        ('{"petId": "1", "colour": "red"}', "pets_getPet has no argument 'colour'; it takes: "),
        ('{"verbose": true}', "pets_getPet needs the argument 'petId'."),
    ],
)
def test_bad_arguments_are_a_failure_the_model_reads(
    api: PetApi, arguments: str, message: str
) -> None:
    tool = OpenApiTool(definition(pet_spec(api.base_url)), Connections())
    before = len(api.seen)
    assert failure(tool, "pets_getPet", arguments).startswith(message)
    assert len(api.seen) == before


# --- connections ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "operation", "where"),
    [
        ("by_header", "viaHeader", "header"),
        ("by_query", "viaQuery", "query"),
        ("by_bearer", "viaBearer", "bearer"),
    ],
)
def test_a_connection_secret_reaches_the_api_but_never_the_outcome(
    api: PetApi, connection: str, operation: str, where: str
) -> None:
    stored = definition(secure_spec(api.base_url), connection_auth(connection))
    validate_openapi_definition(stored, "tools[0]", connections())
    tool = OpenApiTool(stored, connections())
    outcome = call(tool, f"pets_{operation}", {})
    assert outcome.output.startswith("HTTP 200\n")
    assert not outcome.failed
    seen = api.seen[-1]
    if where == "header":
        assert seen["headers"]["x-api-key"] == SECRET
    elif where == "query":
        assert seen["query"]["api_key"] == SECRET
    else:
        assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
    # The API echoed the secret back (header and query cases): scrubbed before the model.
    assert SECRET not in outcome.output
    assert SECRET not in json.dumps(outcome.details)
    assert SECRET not in repr(tool.offers())
    if where != "bearer":
        assert "[secret]" in outcome.output


def test_without_its_connection_the_api_refuses(api: PetApi) -> None:
    tool = OpenApiTool(definition(secure_spec(api.base_url)), connections())
    outcome = call(tool, "pets_viaHeader", {})
    assert outcome.output == 'HTTP 401\n{"error":"no key"}'
    assert outcome.failed


def test_a_header_secret_does_not_follow_a_redirect_to_another_origin(
    api: PetApi, other_api: PetApi
) -> None:
    api.away_to = f"{other_api.base_url}/secure/header"
    tool = OpenApiTool(
        definition(secure_spec(api.base_url), connection_auth("by_header")), connections()
    )
    outcome = call(tool, "pets_away", {})
    assert api.seen[-1]["headers"]["x-api-key"] == SECRET
    assert "x-api-key" not in other_api.seen[-1]["headers"]
    assert outcome.output == 'HTTP 401\n{"error":"no key"}'


def test_a_connection_removed_since_the_agent_was_made_is_a_failure() -> None:
    stored = definition(secure_spec("http://127.0.0.1:9"), connection_auth("gone"))
    tool = OpenApiTool(stored, connections())
    message = failure(tool, "pets_viaHeader", {})
    assert "/connections/gone" in message
    assert "is not configured on the service" in message


def test_a_connection_is_found_by_name_or_resource_id() -> None:
    configured = connections()
    by_name = configured.find("by_query")
    assert by_name is not None
    assert configured.find("/subscriptions/1/x/connections/by_query") is by_name
    assert configured.find("/subscriptions/1/x/connections/nope") is None
    assert SECRET not in repr(by_name)


def test_connections_are_read_from_the_file_the_environment_names(tmp_path: Path) -> None:
    path = tmp_path / "connections.toml"
    path.write_text(
        '[connections.weather]\nkind = "header"\nname = "X-Key"\nsecret_env = "WEATHER_KEY"\n'
        '[connections.maps]\nkind = "bearer"\nsecret_env = "MAPS_KEY"\n'
    )
    env = {"THREADLINE_CONNECTIONS_FILE": str(path), "WEATHER_KEY": "w", "MAPS_KEY": "m"}
    loaded = Connections.from_env(env)
    assert loaded.names() == ["maps", "weather"]
    weather = loaded.find("weather")
    assert weather is not None and weather.header_name() == "X-Key"
    assert len(Connections.from_env({})) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[connections.w]\nkind = "header"\nname = "X"\nsecret_env = "UNSET_KEY"\n',
            "connection 'w': the environment variable UNSET_KEY is not set or empty",
        ),
        (
            '[connections.w]\nkind = "cookie"\nname = "X"\nsecret_env = "KEY"\n',
            "connection 'w': kind must be one of header, query, bearer, got 'cookie'",
        ),
        (
            '[connections.w]\nkind = "query"\nsecret_env = "KEY"\n',
            "connection 'w': kind 'query' needs the query parameter's name in 'name'",
        ),
        ("[connections.w\n", "is not valid TOML"),
    ],
)
def test_a_connection_that_cannot_work_stops_the_start(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "connections.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as raised:
        Connections.from_env({"THREADLINE_CONNECTIONS_FILE": str(path), "KEY": SECRET})
    assert message in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_missing_connections_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(SystemExit) as raised:
        Connections.from_env({"THREADLINE_CONNECTIONS_FILE": str(path)})
    assert str(path) in str(raised.value)


# --- validation -------------------------------------------------------------------------------


def test_a_good_definition_is_accepted(api: PetApi) -> None:
    validate_openapi_definition(definition(pet_spec(api.base_url)), "tools[0]", Connections())


def _refused(stored: dict[str, Any], configured: Connections | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        validate_openapi_definition(stored, "tools[1]", configured or Connections())
    assert raised.value.status_code == 400
    return raised.value


def _broken(change: Any) -> dict[str, Any]:
    stored = definition(pet_spec("http://127.0.0.1:9"))
    change(stored["openapi"])
    return stored


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        (lambda body: body.update(spec="openapi: 3.0.0"), "spec", "a JSON object"),
        (
            lambda body: body.update(spec={"swagger": "2.0", "info": {}, "paths": {}}),
            "spec",
            "not an OpenAPI 3 document",
        ),
        (lambda body: body["spec"].pop("info"), "spec", "'info' is a required property"),
        (
            lambda body: body["spec"]["paths"]["/missing"]["get"].update(
                parameters=[{"name": "q", "in": "query"}]
            ),
            "spec",
            "not a valid OpenAPI 3 document",
        ),
        (
            lambda body: body["spec"]["components"]["schemas"].update(
                Remote={"$ref": "http://127.0.0.1:9/schema.json"}
            ),
            "spec",
            "is not local",
        ),
        (
            lambda body: body["spec"]["paths"]["/pets"]["post"].update(
                requestBody={"$ref": "#/components/requestBodies/Nope"}
            ),
            "spec",
            "Nope",
        ),
        (lambda body: body["spec"].pop("servers"), "spec.servers", "no absolute http(s) server"),
        (
            lambda body: body["spec"].update(servers=[{"url": "/api/v1"}]),
            "spec.servers",
            "'/api/v1'",
        ),
        (
            lambda body: body["spec"].update(
                paths={"/a": {"get": {"responses": {"200": {"description": "x"}}}}}
            ),
            "spec",
            "no operation has an operationId",
        ),
        (
            lambda body: body.update(auth={"type": "managed_identity"}),
            "auth.type",
            "not supported by a self-hosted service; use connection auth",
        ),
        (lambda body: body.update(auth={"type": "oauth"}), "auth.type", "got 'oauth'"),
        (lambda body: body.pop("auth"), "auth", "Missing required parameter"),
        (
            lambda body: body.update(auth=connection_auth("nope")),
            "auth.security_scheme.connection_id",
            "no connection '/subscriptions/0000/resourceGroups/rg/providers/x/connections/nope'",
        ),
        (
            lambda body: body.update(auth={"type": "connection"}),
            "auth.security_scheme.connection_id",
            "Missing required parameter",
        ),
        (lambda body: body.update(default_params="verbose"), "default_params", "list"),
        (lambda body: body.update(default_params=[1]), "default_params", "list"),
        (lambda body: body.pop("name"), "name", "Missing required parameter"),
        (lambda body: body.pop("spec"), "spec", "OpenAPI 3 document"),
    ],
)
def test_a_definition_that_cannot_work_is_refused_naming_the_param(
    change: Any, param: str, words: str
) -> None:
    error = _refused(_broken(change), connections())
    assert error.param == f"tools[1].openapi.{param}"
    assert words in error.message, error.message


def test_a_spec_that_expands_without_end_is_refused() -> None:
    stored = definition(pet_spec("http://127.0.0.1:9"))
    schemas = stored["openapi"]["spec"]["components"]["schemas"]
    # Each level holds the next twice: 2**30 leaves once expanded.
    for level in range(30):
        ref = {"$ref": f"#/components/schemas/L{level + 1}"}
        schemas[f"L{level}"] = {"type": "object", "properties": {"a": ref, "b": copy.copy(ref)}}
    schemas["L30"] = {"type": "string"}
    stored["openapi"]["spec"]["paths"]["/pets"]["post"]["requestBody"] = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/L0"}}}
    }
    error = _refused(stored)
    assert error.param == "tools[1].openapi.spec"
    assert "expand to more than" in error.message


def test_a_definition_without_its_openapi_object_is_refused() -> None:
    error = _refused({"type": "openapi"})
    assert error.param == "tools[1].openapi"
