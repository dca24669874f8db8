"""What tests share about live servers: their settings, databases and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import openai

from support.postgres import PostgresDatabases
from support.server import ServerProcess

# Fast polling and sweeping keep the suite quick; behaviour is the same at any setting.
TEST_SERVER_ENV = {
    "THREADLINE_PROVIDER_MAX_RETRIES": "2",
    "THREADLINE_POLL_AFTER_MS": "20",
    "THREADLINE_SWEEP_INTERVAL_SECONDS": "0.2",
    "THREADLINE_SHUTDOWN_GRACE_SECONDS": "1",
    # A delta per streamed chunk, so tests can check the reassembly piece by piece; deltas
    # written together are tested on servers of their own (test_streaming.py).
    "THREADLINE_DELTA_INTERVAL_MS": "0",
    # Quiet streams carry keep-alives within a test's model pauses, so every SDK's parser
    # meets them between events.
    "THREADLINE_STREAM_KEEPALIVE_SECONDS": "0.2",
}
BACKENDS = ["sqlite", "postgresql"]

# A server with the code interpreter switched off (`code_off_server`), and what its refusal
# of the tool then says after "... is not available on this server: ".
CODE_INTERPRETER_OFF = {"THREADLINE_CODE_INTERPRETER": "off"}
CODE_OFF_REASON = "it is switched off (THREADLINE_CODE_INTERPRETER=off)"

ServerFactory = Callable[..., ServerProcess]


class Databases:
    """Hands out a fresh database of the session's backend for each server."""

    def __init__(self, backend: str, folder: Path):
        self.backend = backend
        self.folder = folder
        self.postgres = PostgresDatabases()
        self.count = 0

    def new(self) -> str:
        self.count += 1
        if self.backend == "postgresql":
            return self.postgres.create()
        return f"sqlite:///{self.folder / f'threadline{self.count}.db'}"


def openai_client(process: ServerProcess, api_key: str = "test-key") -> openai.OpenAI:
    """The openai SDK on `process`; on HTTPS it trusts the server's test authority."""
    http_client = openai.DefaultHttpxClient(verify=process.verify) if process.tls else None
    return openai.OpenAI(
        base_url=process.base_url, api_key=api_key, max_retries=0, http_client=http_client
    )


@contextmanager
def configured_server(
    databases: Databases, folder: Path, model_url: str, settings: dict[str, str]
) -> Iterator[ServerProcess]:
    """A server of a test module's own on the scripted model at `model_url`, with `settings`
    over the suite's usual ones (small limits, a short deadline, ...)."""
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": model_url, **settings}
    with ServerProcess(databases.new(), env, folder / "server.log") as process:
        yield process
