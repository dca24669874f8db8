"""The inputs of the vector store use cases, in the OpenAI wire shape (strict and closed, as
`requests.py`'s are)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from threadline.service.requests import Closed, Integer, Metadata

# As the hosted service: `auto` chunks by 800 tokens with 400 of overlap.
AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MAX_ATTRIBUTES = 16


class StaticChunking(Closed):
    max_chunk_size_tokens: Annotated[Integer, Field(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[Integer, Field(ge=0)]

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class StaticStrategy(Closed):
    type: Literal["static"]
    static: StaticChunking


class AutoStrategy(Closed):
    type: Literal["auto"]


ChunkingStrategy = Annotated[AutoStrategy | StaticStrategy, Field(discriminator="type")]


class ExpiresAfter(Closed):
    anchor: Literal["last_active_at"]
    days: Annotated[Integer, Field(ge=1, le=365)]


AttributeValue = Annotated[str, Field(max_length=512)] | float | bool
Attributes = Annotated[
    dict[Annotated[str, Field(max_length=64)], AttributeValue], Field(max_length=MAX_ATTRIBUTES)
]


class VectorStoreCreate(Closed):
    name: str | None = None
    file_ids: Annotated[list[str], Field(max_length=500)] | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None


class VectorStoreUpdate(Closed):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class VectorStoreFileCreate(Closed):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class VectorStoreFileUpdate(Closed):
    attributes: Attributes | None


class BatchFile(Closed):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class FileBatchCreate(Closed):
    file_ids: Annotated[list[str], Field(max_length=2000)] | None = None
    files: Annotated[list[BatchFile], Field(max_length=2000)] | None = None
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


ComparisonType = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]


class ComparisonFilter(Closed):
    type: ComparisonType
    key: str
    value: str | float | bool | list[str | float | bool]


class CompoundFilter(Closed):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter]


Filter = ComparisonFilter | CompoundFilter


class SearchRankingOptions(Closed):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None


class VectorStoreSearch(Closed):
    query: str | Annotated[list[str], Field(min_length=1, max_length=10)]
    filters: Filter | None = None
    max_num_results: Annotated[Integer, Field(ge=1, le=50)] = 10
    ranking_options: SearchRankingOptions | None = None
    rewrite_query: bool = False


def chunking_record(strategy: AutoStrategy | StaticStrategy | None) -> dict[str, Any]:
    """As the hosted service reports it on a file: always the static sizes it used."""
    if isinstance(strategy, StaticStrategy):
        return {"type": "static", "static": strategy.static.model_dump()}
    return {
        "type": "static",
        "static": {
            "max_chunk_size_tokens": AUTO_MAX_TOKENS,
            "chunk_overlap_tokens": AUTO_OVERLAP_TOKENS,
        },
    }


class InlineVectorStore(Closed):
    """A store made with the thread or assistant that names it
    (`tool_resources.file_search.vector_stores`)."""

    file_ids: Annotated[list[str], Field(max_length=10000)] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None
