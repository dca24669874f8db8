"""An upstream's OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure OpenAI, Ollama,
vLLM, llama.cpp server, ...).

The call is made over aiohttp, as the chat provider makes its own, and keeps that
provider's rules, whose helpers it uses: up to `max_retries` more tries on 408, 409, 429,
5xx, connection errors and timeouts, waiting what the upstream asks (`retry-after-ms`,
`Retry-After`) or backing off with jitter, and a short user-facing sentence for what is
left, the whole story going to the log.

An answer is checked before its vectors are used: one vector per text, each a non-empty
list of finite numbers, all of one length, none of them zero; anything else is an
`EmbeddingError`, since a vector stored wrong would silently spoil every later search.
Vectors are scaled to unit length here, whatever the upstream sends. Texts go in batches,
one request at a time: upstreams cap the inputs of one request (2048 at OpenAI), and a
file's many batches sent at once would mostly meet a rate limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import numpy as np
from yarl import URL

from threadline.providers.base import ProviderError
from threadline.providers.embedders.base import EmbeddingError, EmbeddingKind, Vectors
from threadline.providers.openai_compat import (
    _connection_error,
    _error_message,
    _excerpt,
    _log_failure,
    _proxy_for,
    _retry_delay,
    _should_retry,
    _status_error,
    _summary,
)

BATCH_SIZE = 64


class UpstreamEmbedder:
    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None,
        *,
        max_retries: int = 4,
        timeout: float = 120.0,
        batch_size: int = BATCH_SIZE,
        embeddings_url: str | None = None,
        key_header: str | None = None,
    ):
        """`model` is sent as the request's `model` and names the vectors' space.
        `embeddings_url` is the whole URL of the call where it is not
        `{base_url}/embeddings`, and `key_header` the header that carries the key as it
        is, where it is not sent as `Authorization: Bearer` (Azure OpenAI: see
        `azure_openai_embedder`). `timeout` bounds connecting and each wait for bytes."""
        self._model = model
        self._url = embeddings_url or base_url.rstrip("/") + "/embeddings"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            if key_header:
                self._headers[key_header] = api_key
            else:
                self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_retries = max_retries
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._batch_size = batch_size
        self._proxy, self._proxy_auth = _proxy_for(self._url)
        self._dimensions = 0
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        """0 until the upstream's first answer has told."""
        return self._dimensions

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        """OpenAI's embedding models take queries and passages alike, so `kind` is not
        sent (the API has no field for it)."""
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        parts = [
            await self._embed_batch(list(texts[start : start + self._batch_size]))
            for start in range(0, len(texts), self._batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = self._session_loop = None

    async def _embed_batch(self, texts: list[str]) -> Vectors:
        body = json.dumps(
            {"model": self._model, "input": texts, "encoding_format": "float"}
        ).encode()
        try:
            payload = await self._post(body)
        except ProviderError as exc:
            raise EmbeddingError(self._failed(exc.message), exc.detail) from exc
        try:
            return self._vectors(payload, len(texts))
        except _Malformed as exc:
            _log_failure(self._model, 0, f"embeddings answer: {exc}", None)
            raise EmbeddingError(self._failed(exc.shown), str(exc)) from exc

    async def _post(self, body: bytes) -> bytes:
        """The body of the upstream's answer once it has accepted the request; an answer
        cut off, or one that is not JSON at all (a proxy's page), is tried again like a
        failed connection."""
        attempt = 0
        while True:
            may_retry = attempt < self._max_retries
            failure: ProviderError
            headers: Mapping[str, str] = {}
            try:
                async with self._client_session().post(
                    self._url,
                    data=body,
                    headers=self._headers,
                    timeout=self._timeout,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                ) as response:
                    payload = await response.read()
                    if response.status < 300 and response.content_type == "application/json":
                        return payload
                    headers = response.headers
                    if response.status < 300:
                        failure = ProviderError(
                            "server_error",
                            f"The model server answered with {response.content_type} "
                            "instead of JSON",
                            f"HTTP {response.status}: {_excerpt(payload)}",
                        )
                        retry = may_retry
                    else:
                        failure = _status_error(response.status, payload)
                        retry = may_retry and _should_retry(response.status, response.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = _connection_error(exc)
                retry = may_retry
            delay = _retry_delay(attempt, headers) if retry else None
            _log_failure(self._model, attempt, failure.detail, delay)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)
            attempt += 1

    def _vectors(self, payload: bytes, count: int) -> Vectors:
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise _Malformed("not JSON", payload) from exc
        if isinstance(answer, dict) and "error" in answer:
            message = _error_message(answer)
            reason = _summary(message) if message else ""
            shown = "The model server reported an error"
            raise _Malformed("an error", payload, f"{shown}: {reason}" if reason else shown)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise _Malformed("no data list", payload)
        if len(data) != count:
            raise _Malformed(f"{len(data)} vectors for {count} texts", payload)
        items: list[dict[str, Any]] = [item for item in data if isinstance(item, dict)]
        if len(items) != count:
            raise _Malformed("an entry of data that is not an object", payload)
        if all(isinstance(item.get("index"), int) for item in items):
            items.sort(key=lambda item: int(item["index"]))
            if [item["index"] for item in items] != list(range(count)):
                raise _Malformed("indexes that are not 0 to n-1", payload)
        rows: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        for item in items:
            try:
                row = np.asarray(item.get("embedding"), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise _Malformed("an embedding that is not a list of numbers", payload) from exc
            if row.ndim != 1 or row.size == 0 or not np.isfinite(row).all():
                raise _Malformed("an embedding that is not a list of numbers", payload)
            rows.append(row)
        width = self._dimensions or rows[0].size
        if any(row.size != width for row in rows):
            sizes = sorted({row.size for row in rows} | {width})
            raise _Malformed(f"embeddings of different lengths {sizes}", payload)
        vectors = np.stack(rows)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not norms.all():
            raise _Malformed("an embedding of all zeros", payload)
        self._dimensions = width
        unit: Vectors = (vectors / norms).astype(np.float32)
        return unit

    def _failed(self, reason: str) -> str:
        return f"Embedding with {self._model!r} failed: {reason}"

    def _client_session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop it belongs to; a call from another
        loop (the first one closed) gets a new one."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._session_loop = loop
        return self._session


def azure_openai_embedder(
    model: str,
    endpoint: str,
    deployment: str,
    api_version: str,
    api_key: str | None,
    *,
    max_retries: int = 4,
    timeout: float = 120.0,
) -> UpstreamEmbedder:
    """An Azure OpenAI embedding deployment: the same format at
    `{endpoint}/openai/deployments/{deployment}/embeddings?api-version=...`, with the key in
    an `api-key` header. The deployment, not the body's `model`, picks the model."""
    url = URL(endpoint.rstrip("/")) / "openai" / "deployments" / deployment / "embeddings"
    return UpstreamEmbedder(
        model,
        endpoint,
        api_key,
        max_retries=max_retries,
        timeout=timeout,
        embeddings_url=str(url.with_query({"api-version": api_version})),
        key_header="api-key",
    )


class _Malformed(Exception):
    """An accepted call whose answer holds no usable vectors."""

    def __init__(self, what: str, payload: bytes, shown: str | None = None):
        super().__init__(f"{what}: {_excerpt(payload)}")
        self.shown = shown or "The model server's answer held no usable embeddings"
