"""A change of embedding model: vectors of the old model are not compared with the new
one's (the chunks are then found by their words only), the server says so at start, and
`threadline reembed` brings them over."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
from support.live import Databases, ServerFactory, openai_client
from support.scripted_model import ScriptedModelServer

TEXT = b"Felines spend most of the afternoon dozing in warm patches of sunlight."
# No word in common with the text (nor a stem): only a vector can find it.
QUERY = "cat naps"


def _search(client: openai.OpenAI, store_id: str) -> list[str]:
    return [hit.file_id for hit in client.vector_stores.search(store_id, query=QUERY).data]


def test_reembed_brings_the_old_model_s_vectors_to_the_configured_one(
    start_server: ServerFactory, databases: Databases, scripted_model: ScriptedModelServer
) -> None:
    url = databases.new()
    upstream_model = scripted_model.unique_name()
    first = start_server(database_url=url, THREADLINE_EMBEDDING_MODEL=upstream_model)
    client = openai_client(first)
    store = client.vector_stores.create(name="cats")
    done = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("cats.txt", TEXT), poll_interval_ms=50
    )
    assert done.status == "completed"
    first.stop()

    before = start_server(database_url=url)  # the bundled model now
    assert _search(openai_client(before), store.id) == []
    before.stop()
    assert "threadline reembed" in before.log_path.read_text()

    env = {k: v for k, v in os.environ.items() if k != "THREADLINE_EMBEDDING_MODEL"}
    result = subprocess.run(
        [sys.executable, "-m", "threadline.cli", "reembed", "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "done: 1 chunks now embedded by" in result.stdout

    after = start_server(database_url=url)
    assert _search(openai_client(after), store.id) == [done.id]
