"""What the API tests share beyond the suite's own fixtures: a server on HTTPS of each Azure
test module's own (`azure-ai-agents` sends its bearer token only over TLS), and the one
server with the code interpreter switched off, where both clients meet its refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.azure_agents import tls_server as azure_tls_server
from support.live import CODE_INTERPRETER_OFF, Databases
from support.scripted_model import ScriptedModelServer
from support.server import ServerProcess


@pytest.fixture(scope="module")
def tls_server(
    request: pytest.FixtureRequest,
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp(f"tls-{request.module.__name__.rsplit('.', 1)[-1]}")
    with azure_tls_server(databases, folder, scripted_model.base_url) as process:
        yield process


@pytest.fixture(scope="session")
def code_off_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    """`THREADLINE_CODE_INTERPRETER=off`: the tool, its files and its attachments refused.
    One for the session, on HTTPS with the Azure tests' key (`API_KEY`), so the openai and
    the Azure tests of the refusal share it."""
    folder = tmp_path_factory.mktemp("code-off")
    settings = CODE_INTERPRETER_OFF
    with azure_tls_server(databases, folder, scripted_model.base_url, settings) as process:
        yield process
