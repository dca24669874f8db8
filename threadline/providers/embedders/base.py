"""The one interface every embedder implements, and the error an upstream's failure becomes.

Vectors come back unit-length, so that every store and every search can score by a plain
dot product whichever embedder made them; and each embedder names its `model`, which is
stored beside every vector, so that vectors made by another model (the setting changed) are
recognised as such rather than compared with vectors they share no space with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeGuard, runtime_checkable

import numpy as np
import numpy.typing as npt

from threadline.providers.embedders.minilm_pieces import Pieces

EmbeddingKind = Literal["document", "query"]
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """`model` identifies the vectors' space: two embedders with the same `model` give
    comparable vectors. `dimensions` is the length of every vector; an upstream's is learnt
    from its first answer and is 0 until then."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        """One float32 row per text, in order, each of L2 norm 1 (so cosine similarity is
        the dot product); shape (len(texts), dimensions). `kind` says whether the texts are
        stored passages or a search's query: models trained with a different prefix for
        each (E5, BGE) need to know, symmetric ones ignore it."""
        ...


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that can also embed the chunks of one document together, reading each
    part of the document once however much the chunks overlap, rather than each chunk's
    text on its own. Only a model run in process can: an upstream's `/embeddings` takes texts
    and gives one vector per text."""

    async def embed_spans(
        self, text: str, spans: Sequence[tuple[int, int]], *, pieces: Pieces | None = None
    ) -> Vectors:
        """One float32 row of L2 norm 1 per `(start, end)` character span of `text`, in
        order, in the same space as `embed`'s vectors of the spans' texts (near them, not
        equal: a span's words are read in windows it may share with the spans beside it).
        Raises ValueError for a span outside `text`.

        `pieces` are `text`'s word pieces by the bundled model's tokenizer, when the caller
        has them already (the chunker cut the text at them): an embedder that reads those
        pieces uses them rather than tokenizing the document again, one that reads others
        ignores them. Pieces made of another text are a ValueError."""
        ...


def supports_spans(embedder: Embedder) -> TypeGuard[SpanEmbedder]:
    """Whether `embedder` has `embed_spans`, which ingestion prefers when it does."""
    return isinstance(embedder, SpanEmbedder)


class EmbeddingError(Exception):
    """Texts could not be embedded: `message` is shown to the user (a file's
    `last_error`, a failed search) and says nothing of the upstream's insides; `detail` is
    the whole story, for the service's log only."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or message
