"""Re-embedding: the chunks that another embedding model made, embedded again with the one
configured now (`threadline reembed`).

Every vector is stored beside the model that made it, and a search compares only vectors of
the configured model: after `THREADLINE_EMBEDDING_MODEL` changes, chunks of the old model
are still found by full text but not by meaning until this has run. It works in batches, each
committed, so it can be stopped and run again; the stores it touched then reload their
vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from threadline.providers.embedders.base import Embedder
from threadline.store.base import Store

log = logging.getLogger(__name__)

BATCH = 128


async def stale_stores(store: Store, embedder: Embedder) -> list[str]:
    """The vector stores holding chunks of another model than the configured one."""
    async with store.transaction(durable=False) as tx:
        return await tx.stores_with_other_embeddings(embedder.model)


async def reembed(
    store: Store, embedder: Embedder, progress: Callable[[int], None] | None = None
) -> int:
    """Embed again every chunk of another model; how many were."""
    stores = await stale_stores(store, embedder)
    done = 0
    after = 0
    while True:
        async with store.transaction(durable=False) as tx:
            batch = await tx.chunks_with_other_embeddings(embedder.model, after, BATCH)
        if not batch:
            break
        vectors = await embedder.embed([text for _, text in batch])
        async with store.transaction() as tx:
            for (seq, _), vector in zip(batch, vectors, strict=True):
                await tx.set_embedding(seq, np.asarray(vector, "<f4").tobytes(), embedder.model)
        after = batch[-1][0]
        done += len(batch)
        if progress is not None:
            progress(done)
    if stores:
        async with store.transaction() as tx:
            await tx.bump_index_generation(stores)
    return done
