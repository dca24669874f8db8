"""The MCP tool against a real MCP server on loopback (the `mcp` package's own, over
streamable HTTP): what the model is offered, what the calls send and answer, errors as
outcomes, the time limit, a server that cannot be reached, approvals, and the refusals of
`allowed_tools` at create time."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.mcp_server import NO_HEADER, PICTURE, TOOL_NAMES, McpServer

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure
from threadline.tools.connections import Connection, Connections
from threadline.tools.mcp import CALL_HEADERS, McpLimits, McpTool, check_allowed_tools

pytestmark = pytest.mark.timeout(60)

CONTEXT = CallContext(project="default", run_id="run_1", thread_id="thread_1")


@pytest.fixture(scope="module")
def server() -> Iterator[McpServer]:
    with McpServer() as server:
        yield server


def definition(url: str, allowed: list[str] | None = None) -> Obj:
    tool: Obj = {"type": "mcp", "server_label": "test", "server_url": url}
    if allowed is not None:
        tool["allowed_tools"] = allowed
    return tool


def loaded(
    url: str,
    allowed: list[str] | None = None,
    resource: Obj | None = None,
    limits: McpLimits | None = None,
) -> McpTool:
    tool = McpTool(definition(url, allowed), resource, limits)
    asyncio.run(tool.load())
    return tool


def call(tool: McpTool, name: str, arguments: Any, context: CallContext = CONTEXT) -> Outcome:
    offer = next(offer for offer in tool.offers() if offer.name == name)
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return asyncio.run(tool.call(offer, text, context))


def failure(tool: McpTool, name: str, arguments: Any) -> str:
    with pytest.raises(ToolFailure) as raised:
        call(tool, name, arguments)
    return str(raised.value)


def closed_url() -> str:
    """The URL of a loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"


# --- listing ----------------------------------------------------------------------------------


def test_each_tool_of_the_server_is_offered_with_its_schema(server: McpServer) -> None:
    tool = loaded(server.url)
    offers = {offer.name: offer for offer in tool.offers()}
    assert tool.type == "mcp"
    assert sorted(offers) == sorted(TOOL_NAMES)
    add = offers["add"]
    assert add.description == "Add two integers."
    assert add.parameters["type"] == "object"
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert add.chat_tool()["function"]["name"] == "add"
    # An MCP tool's name is the function's: the step records it as the call's name.
    listed = tool.listed_tools()
    assert sorted(listed) == sorted(TOOL_NAMES)
    assert listed["add"] == {"description": add.description, "parameters": add.parameters}


def test_allowed_tools_filter_what_is_offered(server: McpServer) -> None:
    tool = loaded(server.url, ["add", "shout"])
    assert sorted(offer.name for offer in tool.offers()) == ["add", "shout"]
    assert sorted(tool.listed_tools()) == ["add", "shout"]
    # An empty list is no filter (the SDK leaves it out; a client may send it).
    assert len(loaded(server.url, []).offers()) == len(TOOL_NAMES)
    # A name the server no longer has is simply not offered at run time.
    assert [offer.name for offer in loaded(server.url, ["add", "gone"]).offers()] == ["add"]


def test_the_list_is_read_once_per_tool() -> None:
    with McpServer() as server:
        tool = loaded(server.url, ["add"])
    # The server is gone: the list kept at load still answers, and loading again is a no-op.
    asyncio.run(tool.load())
    assert [offer.name for offer in tool.offers()] == ["add"]
    # ... while a call needs the server.
    assert "could not be used" in failure(tool, "add", {"a": 1, "b": 2})


def test_a_tool_not_loaded_offers_nothing_but_says_so(server: McpServer) -> None:
    tool = McpTool(definition(server.url), None)
    with pytest.raises(RuntimeError, match="not loaded"):
        tool.offers()


# --- calls ------------------------------------------------------------------------------------


def test_a_call_answers_with_the_text_of_its_result(server: McpServer) -> None:
    tool = loaded(server.url)
    outcome = call(tool, "add", {"a": 2, "b": 40})
    assert outcome == Outcome(output="42", details={"server_label": "test"}, failed=False)
    assert call(tool, "shout", {"text": "quiet"}).output == "QUIET"


def test_parts_that_are_not_text_are_described(server: McpServer) -> None:
    outcome = call(loaded(server.url), "picture", {})
    assert outcome.output == f"a picture:\n[image: image/png, {len(PICTURE)} bytes]"
    assert not outcome.failed


def test_an_error_result_is_a_failed_outcome_the_model_reads(server: McpServer) -> None:
    tool = loaded(server.url)
    outcome = call(tool, "fail", {})
    assert outcome.failed
    assert "the tool failed on purpose" in outcome.output
    assert outcome.details == {"server_label": "test", "tool_error": True}
    # Arguments the server's schema refuses: its error result, too.
    wrong = call(tool, "add", {"a": "many"})
    assert wrong.failed and "add" in wrong.output


def test_arguments_that_are_not_a_json_object_are_refused(server: McpServer) -> None:
    tool = loaded(server.url)
    assert "not valid JSON" in failure(tool, "add", '{"a": 1,')
    assert "must be a JSON object, not list" in failure(tool, "add", "[1, 2]")
    # No arguments at all: an empty object.
    assert call(tool, "echo_header", "").output == NO_HEADER


def test_a_tool_that_is_not_allowed_cannot_be_called(server: McpServer) -> None:
    tool = loaded(server.url, ["add"])
    offer = Offer(name="shout")
    with pytest.raises(ToolFailure, match="no tool named 'shout'"):
        asyncio.run(tool.call(offer, '{"text": "x"}', CONTEXT))


def test_a_call_past_its_time_limit_is_a_failure(server: McpServer) -> None:
    tool = loaded(server.url, ["slow"], limits=McpLimits(timeout_seconds=0.5))
    started = time.monotonic()
    message = failure(tool, "slow", {})
    took = time.monotonic() - started
    assert message == f"The MCP server at {server.url} did not answer within 0.5 seconds."
    assert took < 5, took


def test_a_long_result_is_cut(server: McpServer) -> None:
    tool = loaded(server.url, ["shout"], limits=McpLimits(max_output_chars=10))
    output = call(tool, "shout", {"text": "a" * 50}).output
    assert output == "A" * 10 + "\n[cut: the result was longer than 10 characters]"


# --- a server that cannot be reached ----------------------------------------------------------


def test_a_server_that_cannot_be_reached_fails_the_load() -> None:
    url = closed_url()
    tool = McpTool(definition(url), None)
    with pytest.raises(ToolFailure) as raised:
        asyncio.run(tool.load())
    assert str(raised.value).startswith(f"The MCP server at {url} could not be used: ")
    assert "ConnectError" in str(raised.value)
    # Not loaded: a later load may try again.
    with pytest.raises(RuntimeError):
        tool.offers()


def test_a_url_that_is_not_an_mcp_endpoint_fails_the_load(server: McpServer) -> None:
    with pytest.raises(ToolFailure, match="could not be used"):
        loaded(server.base_url + "/elsewhere")
    with pytest.raises(ToolFailure, match="not http"):
        loaded("file:///etc/passwd")


# --- headers ----------------------------------------------------------------------------------


def test_the_resource_headers_reach_the_server(server: McpServer) -> None:
    resource = {"server_label": "test", "headers": {"X-Secret": "abc-123"}}
    tool = loaded(server.url, resource=resource)
    assert call(tool, "echo_header", {}).output == "abc-123"
    assert call(tool, "echo_header", {"name": "x-other"}).output == NO_HEADER
    # A call's own headers (an approval's) are added, and win.
    context = CallContext(
        project="default",
        run_id="run_1",
        thread_id="thread_1",
        recorded={CALL_HEADERS: {"X-Secret": "from-approval", "X-Other": "too"}},
    )
    assert call(tool, "echo_header", {}, context).output == "from-approval"
    assert call(tool, "echo_header", {"name": "x-other"}, context).output == "too"
    # Without a resource: no headers.
    assert call(loaded(server.url), "echo_header", {}).output == NO_HEADER


def test_a_connection_s_secret_wins_over_every_given_header(server: McpServer) -> None:
    """A bearer connection over a resource's and an approval's `authorization` (in any case):
    the server reads the connection's token alone, and its echo of it is redacted."""
    token = Connection("github", "bearer", None, "tok-0042")
    connections = Connections({"github": token})
    resource = {
        "server_label": "test",
        "headers": {"authorization": "Bearer given"},
        "project_connection_id": "github",
    }
    tool = McpTool(definition(server.url), resource, connections=connections)
    asyncio.run(tool.load())
    context = CallContext(
        project="default",
        run_id="run_1",
        thread_id="thread_1",
        recorded={CALL_HEADERS: {"AUTHORIZATION": "Bearer approved"}},
    )
    assert call(tool, "echo_header", {"name": "authorization"}, context).output == (
        "Bearer [secret]"
    )
    missing = McpTool(definition(server.url), {**resource, "project_connection_id": "nope"})
    with pytest.raises(ToolFailure, match="'nope'"):
        asyncio.run(missing.load())


def test_headers_that_cannot_be_sent_are_a_failure(server: McpServer) -> None:
    resource = {"server_label": "test", "headers": {"X-Secret": 42}}
    with pytest.raises(ToolFailure, match="object of strings"):
        loaded(server.url, resource=resource)
    resource = {"server_label": "test", "headers": {"X-Secret": "a\r\nX-Evil: 1"}}
    with pytest.raises(ToolFailure, match="malformed"):
        loaded(server.url, resource=resource)


# --- approvals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        # No resource, or none said: every call is approved first.
        (None, {"add": True, "shout": True}),
        ({"server_label": "test", "headers": {}}, {"add": True, "shout": True}),
        ({"server_label": "test", "require_approval": "always"}, {"add": True, "shout": True}),
        ({"server_label": "test", "require_approval": "never"}, {"add": False, "shout": False}),
        (
            {"server_label": "test", "require_approval": {"never": {"tool_names": ["add"]}}},
            {"add": False, "shout": True, "fail": True},
        ),
        (
            {
                "server_label": "test",
                "require_approval": {
                    "never": {"tool_names": ["add", "shout"]},
                    "always": {"tool_names": ["fail", "shout"]},
                },
            },
            # In neither list: approved first; in both: approved first.
            {"add": False, "fail": True, "echo_header": True, "shout": True},
        ),
        (
            {"server_label": "test", "require_approval": {"always": {"tool_names": ["fail"]}}},
            {"add": True, "fail": True},
        ),
        # A shape nobody defined: the safe side.
        ({"server_label": "test", "require_approval": "sometimes"}, {"add": True}),
    ],
)
def test_needs_approval_follows_require_approval(
    resource: Obj | None, expected: dict[str, bool]
) -> None:
    tool = McpTool(definition("http://127.0.0.1:9/mcp"), resource)
    assert {name: tool.needs_approval(name) for name in expected} == expected


# --- refusals at create time ------------------------------------------------------------------


def refusal(tool: Obj, headers: dict[str, str] | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        asyncio.run(check_allowed_tools(tool, headers, "tools[2]"))
    assert raised.value.status_code == 400
    return raised.value


def test_allowed_tools_the_server_has_are_accepted(server: McpServer) -> None:
    asyncio.run(check_allowed_tools(definition(server.url, ["add", "fail"]), None, "tools[0]"))
    asyncio.run(check_allowed_tools(definition(server.url), {"X-Secret": "s"}, "tools[0]"))


def test_an_allowed_tool_the_server_lacks_is_refused_by_its_index(server: McpServer) -> None:
    error = refusal(definition(server.url, ["add", "nope"]))
    assert error.param == "tools[2].allowed_tools[1]"
    assert "'nope'" in error.message and "add" in error.message
    error = refusal({**definition(server.url), "allowed_tools": "add"})
    assert error.param == "tools[2].allowed_tools"


def test_a_server_that_cannot_be_reached_is_refused_by_its_url(server: McpServer) -> None:
    error = refusal(definition(closed_url(), ["add"]))
    assert error.param == "tools[2].server_url"
    assert "could not be used" in error.message
    for url in ["ftp://127.0.0.1/mcp", "file:///etc/passwd", "127.0.0.1:80/mcp", 42, None]:
        error = refusal({"type": "mcp", "server_label": "x", "server_url": url})
        assert error.param == "tools[2].server_url", url
        assert "http(s)" in error.message
