"""The file_search tool: the model's queries searched in the run's vector stores.

The stores searched are those of the run's tool resources (the assistant's, unless the run
brought its own) and those of the thread (its own store, made from attachments, included),
as the hosted service does. The model reads each result with a source marker
(`【3:0†handbook.pdf】`: the call's number in the run, the result's number, the file's name);
a marker it copies into its answer becomes a `file_citation` annotation (`citations`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from threadline.domain.expiry import is_expired
from threadline.domain.records import Obj, SearchHit, Tool, ToolCall
from threadline.store.base import Store
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure
from threadline.tools.file_search.search import Searcher, SearchRequest

FUNCTION = "file_search"
INCLUDE_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
DEFAULT_MAX_RESULTS = 20
# The hosted service's ranker names; both mean this service's one hybrid ranking.
DEFAULT_RANKER = "default_2024_08_21"
MARKER = re.compile(r"【(\d+):(\d+)†([^】]*)】")

_OFFER = Offer(
    name=FUNCTION,
    description=(
        "Search the user's uploaded files for passages relevant to the question. Give one "
        "or more short search queries. Cite what you use by copying its source marker, "
        "e.g. 【0:1†file.pdf】, right after the sentence it supports."
    ),
    parameters={
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Search queries, each a few keywords or a short question.",
            }
        },
        "required": ["queries"],
    },
)


def _queries(arguments: str) -> list[str]:
    try:
        parsed: Any = json.loads(arguments or "{}")
    except json.JSONDecodeError as bad:
        raise ToolFailure(f"The arguments are not JSON: {bad.msg}.") from bad
    found = parsed.get("queries", parsed.get("query")) if isinstance(parsed, dict) else parsed
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list) or not all(isinstance(q, str) for q in found) or not found:
        raise ToolFailure('Give "queries": a list of search strings.')
    return [q for q in found if q.strip()][:10]


def _store_ids(resources: Obj) -> list[str]:
    section = resources.get("file_search") or {}
    return list(section.get("vector_store_ids") or [])


class FileSearchTool:
    type = "file_search"

    def __init__(self, tool: Tool, resources: Obj, store: Store, searcher: Searcher):
        options = tool.get("file_search") or {}
        ranking = options.get("ranking_options") or {}
        self.max_results = int(options.get("max_num_results") or DEFAULT_MAX_RESULTS)
        self.ranking_options: Obj = {
            "ranker": ranking.get("ranker") or DEFAULT_RANKER,
            "score_threshold": float(ranking.get("score_threshold") or 0.0),
        }
        # Which files may be searched, by their attributes (a Responses tool's `filters`).
        self.filters: dict[str, Any] | None = options.get("filters")
        self.run_stores = _store_ids(resources)
        self.store = store
        self.searcher = searcher

    async def load(self) -> None:
        return None

    def offers(self) -> list[Offer]:
        return [_OFFER]

    def needs_approval(self, name: str) -> bool:
        return False

    def activity(self) -> Obj | None:
        return None

    async def _stores(self, context: CallContext) -> list[str]:
        """The run's and the thread's stores that still exist and have not expired."""
        async with self.store.transaction(durable=False) as tx:
            thread = await tx.get_thread(context.project, context.thread_id)
            thread_stores = _store_ids(thread["tool_resources"] if thread else {})
            ids = list(dict.fromkeys(self.run_stores + thread_stores))
            found = await tx.get_vector_stores(context.project, ids)
        live = {store["id"] for store in found if not is_expired(store)}
        if found and not live:
            raise ToolFailure(
                "The attached vector stores have expired; there is nothing to search."
            )
        return [store_id for store_id in ids if store_id in live]

    async def _number(self, context: CallContext) -> int:
        """The call's number in its run's source markers: how many file_search calls its
        run's steps hold before it (steps are durable before their calls run, so a call
        taken over by another worker gets the same number)."""
        call_id = context.recorded.get("id")
        async with self.store.transaction(durable=False) as tx:
            steps = await tx.steps_of_run(context.run_id)
        number = 0
        for step in steps:
            details: Obj = dict(step["step_details"])
            for call in details.get("tool_calls", []):
                if call.get("id") == call_id:
                    return number
                if call.get("name") == FUNCTION:
                    number += 1
        return number

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        queries = _queries(arguments)
        store_ids = await self._stores(context)
        if not store_ids:
            raise ToolFailure("There are no files to search: no vector store is attached.")
        hits = await self.searcher.search(
            context.project,
            store_ids,
            SearchRequest(
                queries=queries,
                max_results=self.max_results,
                score_threshold=self.ranking_options["score_threshold"],
                filters=self.filters,
            ),
        )
        number = await self._number(context)
        details: Obj = {
            "ranking_options": self.ranking_options,
            "results": [_result(hit) for hit in hits],
            "citation_number": number,
            "show_content": INCLUDE_CONTENT in context.include,
        }
        return Outcome(output=_for_model(number, hits), details=details)


def _result(hit: SearchHit) -> Obj:
    return {
        "file_id": hit["file_id"],
        "file_name": hit["filename"],
        "score": hit["score"],
        "content": [{"type": "text", "text": hit["text"]}],
    }


def _for_model(number: int, hits: Sequence[SearchHit]) -> str:
    if not hits:
        return "No results: nothing in the files matches these queries."
    parts = [
        f"【{number}:{index}†{hit['filename']}】\n{hit['text']}" for index, hit in enumerate(hits)
    ]
    return "\n\n".join(parts)


def citations(text: str, calls: Sequence[ToolCall]) -> list[Obj]:
    """The `file_citation` annotations of an answer: each source marker it copied from a
    file_search result of its run, where that marker names a result that exists."""
    sources: dict[tuple[int, int], str] = {}
    for call in calls:
        record: Obj = dict(call)
        if record.get("type") != "file_search" or "citation_number" not in record:
            continue
        for index, result in enumerate(record.get("results") or []):
            sources[(int(record["citation_number"]), index)] = result["file_id"]
    annotations: list[Obj] = []
    for match in MARKER.finditer(text):
        file_id = sources.get((int(match.group(1)), int(match.group(2))))
        if file_id is None:
            continue
        annotations.append(
            {
                "type": "file_citation",
                "text": match.group(0),
                "start_index": match.start(),
                "end_index": match.end(),
                "file_id": file_id,
            }
        )
    return annotations
