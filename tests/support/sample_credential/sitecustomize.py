"""Put first on a sample's PYTHONPATH: `azure.identity`'s `DefaultAzureCredential` (sync and
`aio`) made a credential whose token is the key in `THREADLINE_SAMPLE_KEY`.

The service's bearer token is its API key: this is the one change a team makes to run the
client's samples against it (there is no Entra sign-in to reach here), made without editing
them."""

from __future__ import annotations

import os
import time
from typing import Any

import azure.identity
import azure.identity.aio
from azure.core.credentials import AccessToken, AccessTokenInfo


def _token() -> tuple[str, int]:
    return os.environ["THREADLINE_SAMPLE_KEY"], int(time.time()) + 3600


class DefaultAzureCredential:
    def __init__(self, **_: Any) -> None:
        pass

    def get_token(self, *_: Any, **__: Any) -> AccessToken:
        return AccessToken(*_token())

    def get_token_info(self, *_: Any, **__: Any) -> AccessTokenInfo:
        return AccessTokenInfo(*_token())

    def close(self) -> None:
        pass

    def __enter__(self) -> DefaultAzureCredential:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class AsyncDefaultAzureCredential:
    def __init__(self, **_: Any) -> None:
        pass

    async def get_token(self, *_: Any, **__: Any) -> AccessToken:
        return AccessToken(*_token())

    async def get_token_info(self, *_: Any, **__: Any) -> AccessTokenInfo:
        return AccessTokenInfo(*_token())

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncDefaultAzureCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass


azure.identity.DefaultAzureCredential = DefaultAzureCredential  # type: ignore[misc]
azure.identity.aio.DefaultAzureCredential = AsyncDefaultAzureCredential  # type: ignore[misc]
