"""The README's Azure examples, classic and new agents, run as written against a TLS server
with the README's key on the bundled local model (only the address and the certificate
authority's file changed)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.azure_agents import tls_server
from support.live import Databases
from support.server import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
ADDRESS = "https://127.0.0.1:8000"
AUTHORITY = "certs/client.pem"


def _snippet(heading: str) -> str:
    section = README.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)
    return str(snippet)


def _run(snippet: str, server: ServerProcess) -> list[str]:
    assert ADDRESS in snippet and AUTHORITY in snippet
    code = snippet.replace(ADDRESS, server.url).replace(AUTHORITY, str(server.verify))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {"__name__": "readme"})
    return printed.getvalue().splitlines()


@pytest.fixture
def readme_server(databases: Databases, tmp_path: Path) -> Iterator[ServerProcess]:
    settings = {"THREADLINE_OPENAI_BASE_URL": "", "THREADLINE_API_KEYS": "my-secret-key"}
    with tls_server(databases, tmp_path, "", settings) as server:
        yield server


def test_the_readme_s_classic_and_new_agent_examples_run_as_written(
    readme_server: ServerProcess,
) -> None:
    assert _run(_snippet("Azure AI Agents client"), readme_server) == []
    lines = _run(_snippet("Foundry's new agents"), readme_server)
    assert len(lines) == 2
    for line in lines:
        name, version, reply = line.split(" ", 2)
        assert (name, version) == ("greeter", "1") and reply.strip()
