"""What the `azure-ai-agents` tests share: a TLS server that takes API keys, and the client
as users build it against a project's endpoint, with a fixed key as its credential."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme
from azure.ai.agents import AgentsClient
from azure.core.credentials import AccessToken, AccessTokenInfo

from support.live import TEST_SERVER_ENV, Databases
from support.server import ServerProcess

API_KEY = "test-key-one"


class StaticCredential:
    """What a user passes when their gateway takes a fixed key instead of Entra ID tokens."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


@contextmanager
def tls_server(
    databases: Databases, folder: Path, model_url: str, settings: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A server on HTTPS with a certificate of a test authority (`verify` names its file),
    taking `API_KEY` among others, on the scripted model at `model_url`, with `settings`
    over the suite's usual ones."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(folder / "ca.pem")
    certificate.private_key_and_cert_chain_pem.write_to_path(folder / "cert.pem")
    certificate.private_key_pem.write_to_path(folder / "key.pem")
    env = {
        **TEST_SERVER_ENV,
        "THREADLINE_OPENAI_BASE_URL": model_url,
        "THREADLINE_API_KEYS": f"other-key,{API_KEY}",
        **(settings or {}),
    }
    with ServerProcess(
        databases.new(),
        env,
        folder / "server.log",
        tls=(folder / "cert.pem", folder / "key.pem"),
        ca_file=folder / "ca.pem",
    ) as process:
        yield process


def agents_client(server: ServerProcess, project: str, key: str = API_KEY) -> AgentsClient:
    return AgentsClient(
        endpoint=f"{server.url}/api/projects/{project}",
        credential=StaticCredential(key),  # type: ignore[arg-type]
        connection_verify=server.verify,
    )
