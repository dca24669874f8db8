"""A real MCP server for the tests: the `mcp` package's own server (`MCPServer`, what 1.x
called FastMCP) over streamable HTTP, served by uvicorn on a free loopback port in a thread.

Its tools: `add` (a plain answer), `echo_header` (a request header, to prove the headers
reach the server), `fail` (an error result), `slow` (no answer for 30 s, past any
short time limit), `picture` (a result with a part that is not text) and
`shout` (a second text tool, for `allowed_tools` filters).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ImageContent, TextContent

from support.threaded_server import ThreadedServer

# What `echo_header` answers when the header it reads was not sent.
NO_HEADER = "(no such header)"
# The bytes of the image `picture` answers with.
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(56)
TOOL_NAMES = ["add", "echo_header", "fail", "slow", "picture", "shout"]


def build_server() -> MCPServer:
    # WARNING: the server configures logging, and at INFO it logs every request.
    server = MCPServer("threadline-test", log_level="WARNING")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="The value of one request header, as the server received it.")
    def echo_header(ctx: Context, name: str = "x-secret") -> str:
        headers = ctx.headers or {}
        return headers.get(name.lower(), NO_HEADER)

    @server.tool(description="Always fails.")
    def fail() -> str:
        raise ToolError("the tool failed on purpose")

    @server.tool(description="Answers only after the caller has hung up (at most 30 s).")
    async def slow() -> str:
        # A caller past its time limit hangs up without ending the session: this goes on
        # until the server stops (its graceful shutdown cuts it short) or 30 s have passed.
        await asyncio.sleep(30)
        return "too late"

    @server.tool(description="A caption and a small picture.", structured_output=False)
    def picture() -> list[TextContent | ImageContent]:
        image = Image(data=PICTURE, format="png").to_image_content()
        return [TextContent(text="a picture:"), image]

    @server.tool(description="The text in capitals.")
    def shout(text: str) -> str:
        return text.upper()

    return server


class McpServer:
    """The test MCP server, served by uvicorn in a thread; `url` is its MCP endpoint."""

    def __init__(self) -> None:
        self.url = ""
        self.base_url = ""
        self._served: ThreadedServer | None = None

    def __enter__(self) -> Self:
        # The app's lifespan runs its session manager: it must be on.
        app = build_server().streamable_http_app()
        self._served = ThreadedServer(app, "mcp", lifespan="on").__enter__()
        self.base_url = self._served.base_url
        self.url = f"{self.base_url}/mcp"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._served is not None
        self._served.__exit__(exc_type, exc, traceback)
