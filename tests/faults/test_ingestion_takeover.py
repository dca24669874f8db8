"""A worker killed while it ingests a file into a vector store.

The file's chunks are embedded by an upstream (the scripted model server's `/embeddings`),
which holds the first request until the worker that sent it is gone. The test kills that
worker once its request has arrived; the job's lease lapses, another worker takes the job
over and indexes the file: once, with no chunk stored twice, and the file ends `completed`.
"""

from __future__ import annotations

import time

from support.cluster import Cluster
from support.live import openai_client
from support.scripted_model import Hang, ScriptedModelServer

TEXT = b"The lighthouse keeper winds the clock at dusk and logs the passing ships."


def _wait_for(condition: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_file_whose_worker_died_is_indexed_once_by_another(
    cluster: Cluster, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    # Held far longer than the test: only the worker's death ends the first request.
    scripted_model.script(model_name, Hang(600))
    cluster.env["THREADLINE_EMBEDDING_MODEL"] = model_name
    server = cluster.api()
    first = cluster.worker()
    client = openai_client(server)

    store = client.vector_stores.create(name="lighthouse")
    file_id = client.files.create(file=("keeper.txt", TEXT), purpose="assistants").id
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    _wait_for(lambda: len(scripted_model.requests(model_name)) >= 1, "the first embedding call")
    assert client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status == (
        "in_progress"
    )

    first.kill()
    cluster.worker()
    done = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=50)

    assert done.status == "completed", done.last_error
    # The worker that took over asked for the embeddings again (the dead one's were lost).
    assert len(scripted_model.requests(model_name)) >= 2
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.completed, counts.total) == (1, 1)
    hits = client.vector_stores.search(store.id, query="lighthouse keeper", max_num_results=10)
    # One chunk, stored once.
    assert [hit.file_id for hit in hits.data] == [file_id]
    assert hits.data[0].content[0].text == TEXT.decode()
