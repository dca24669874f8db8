"""Shared fixtures: a scripted model server, a live Threadline server, and the real clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from support.scripted_model import ScriptedModelServer
from support.server import ServerProcess

# Fast polling and sweeping keep the suite quick; behaviour is the same at any setting.
TEST_SERVER_ENV = {
    "THREADLINE_PROVIDER_MAX_RETRIES": "2",
    "THREADLINE_POLL_AFTER_MS": "20",
    "THREADLINE_SWEEP_INTERVAL_SECONDS": "0.2",
}

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as model:
        yield model


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'threadline.db'}"


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("server")
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url}
    with ServerProcess(sqlite_url(folder), env, folder / "server.log") as process:
        yield process


@pytest.fixture
def start_server(tmp_path: Path, scripted_model: ScriptedModelServer) -> Iterator[ServerFactory]:
    """Start a server of the test's own, with extra settings; stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(upstream: bool = True, **env: str) -> ServerProcess:
        settings = {**TEST_SERVER_ENV, **env}
        if upstream:
            settings["THREADLINE_OPENAI_BASE_URL"] = scripted_model.base_url
        folder = tmp_path / f"server{len(started)}"
        folder.mkdir()
        process = ServerProcess(sqlite_url(folder), settings, folder / "server.log")
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


def openai_client(process: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=process.base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def client(server: ServerProcess) -> openai.OpenAI:
    return openai_client(server)


@pytest.fixture
def model_name(scripted_model: ScriptedModelServer) -> str:
    return scripted_model.unique_name()
