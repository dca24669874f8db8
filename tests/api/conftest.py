"""What the API tests of the Azure client share: a server on HTTPS of each test module's own
(`azure-ai-agents` sends its bearer token only over TLS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.azure_agents import tls_server as azure_tls_server
from support.live import Databases
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
