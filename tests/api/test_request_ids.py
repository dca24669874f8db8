"""Every answer carries `x-request-id`, as the hosted API's do; the SDKs show it."""

from __future__ import annotations

import httpx
import openai
import pytest
from support.server import ServerProcess


def test_every_answer_carries_a_request_id(server: ServerProcess, client: openai.OpenAI) -> None:
    made = client.beta.threads.with_raw_response.create()
    refused = httpx.get(f"{server.base_url}/threads/thread_missing")

    first = made.headers["x-request-id"]
    assert first.startswith("req_") and made.parse().id.startswith("thread_")
    assert refused.status_code == 404 and refused.headers["x-request-id"].startswith("req_")
    assert refused.headers["x-request-id"] != first
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_missing")
    assert missing.value.request_id is not None and missing.value.request_id.startswith("req_")


def test_a_request_id_the_client_sent_comes_back(server: ServerProcess) -> None:
    sent = httpx.get(f"{server.base_url}/assistants", headers={"x-request-id": "client-42.a"})
    forged = httpx.get(f"{server.base_url}/assistants", headers={"x-request-id": "x" * 129})

    assert sent.headers["x-request-id"] == "client-42.a"
    assert forged.headers["x-request-id"].startswith("req_")
