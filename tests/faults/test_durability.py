"""Every write the server acknowledged is there after the server is killed and restarted."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from support.live import ServerFactory, openai_client
from support.waiting import wait_until


def test_acknowledged_writes_survive_sigkill_mid_burst(start_server: ServerFactory) -> None:
    server = start_server()
    client = openai_client(server)
    thread = client.beta.threads.create()
    acknowledged: list[str] = []
    lock = threading.Lock()
    url = f"{server.base_url}/threads/{thread.id}/messages"
    http = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=8))

    def write(index: int) -> None:
        try:
            response = http.post(url, json={"role": "user", "content": f"m{index}"})
        except httpx.HTTPError:
            return  # the server died under this request: it was never acknowledged
        if response.status_code == 200:
            with lock:
                acknowledged.append(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(write, i) for i in range(2000)]
        wait_until(lambda: len(acknowledged), lambda n: n >= 200, "200 acknowledged writes")
        server.kill()
        for future in pending:
            if not future.cancel():
                future.result()
    http.close()

    server.start()
    stored = {m.id for m in client.beta.threads.messages.list(thread.id, limit=100)}
    after = None
    while True:
        page = client.beta.threads.messages.list(thread.id, limit=100, after=after, order="asc")
        stored.update(m.id for m in page.data)
        if not page.has_more:
            break
        after = page.data[-1].id
    assert len(acknowledged) >= 200
    assert set(acknowledged) <= stored
