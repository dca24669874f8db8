"""Shared fixtures: a scripted model server, live Threadline servers on each database, and
the real clients.

Every test that uses a server runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from support.live import BACKENDS, TEST_SERVER_ENV, Databases, ServerFactory, openai_client
from support.scripted_model import ScriptedModelServer
from support.server import ServerProcess


@pytest.fixture(scope="session", params=BACKENDS)
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    databases = Databases(request.param, tmp_path_factory.mktemp(request.param))
    yield databases
    databases.postgres.drop_all()


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as model:
        yield model


@pytest.fixture(scope="session")
def server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("server")
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url}
    with ServerProcess(databases.new(), env, folder / "server.log") as process:
        yield process


@pytest.fixture
def start_server(
    databases: Databases, tmp_path: Path, scripted_model: ScriptedModelServer
) -> Iterator[ServerFactory]:
    """Start a server of the test's own, with extra settings; stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(upstream: bool = True, database_url: str | None = None, **env: str) -> ServerProcess:
        settings = {**TEST_SERVER_ENV, **env}
        if upstream:
            settings["THREADLINE_OPENAI_BASE_URL"] = scripted_model.base_url
        log = tmp_path / f"server{len(started)}.log"
        process = ServerProcess(database_url or databases.new(), settings, log)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def client(server: ServerProcess) -> openai.OpenAI:
    return openai_client(server)


@pytest.fixture
def model_name(scripted_model: ScriptedModelServer) -> str:
    return scripted_model.unique_name()
