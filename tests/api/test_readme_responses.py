"""The README's Responses quick start and its "continue an Assistants thread" example, run as
written against a live server on the bundled local model (only the address changed)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from support.live import ServerFactory
from support.server import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
ADDRESS = "http://127.0.0.1:8000/v1"


def _snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Responses and Conversations", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(snippet: str, server: ServerProcess) -> list[str]:
    assert ADDRESS in snippet
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet.replace(ADDRESS, server.base_url), {"__name__": "readme"})
    return printed.getvalue().splitlines()


def test_the_readme_s_responses_examples_run_as_written(start_server: ServerFactory) -> None:
    local_server = start_server(upstream=False)
    quick_start, continued = _snippets()

    first, second = _run(quick_start, local_server)
    assert first.strip() and second.strip()

    lines = _run(continued, local_server)
    reply, *read_back = lines
    assert reply.strip()
    assistants_view, items_view = read_back[: len(read_back) // 2], read_back[len(read_back) // 2 :]
    assert [line.split()[0] for line in assistants_view] == ["user", "user", "assistant"]
    assert assistants_view[:2] == ["user My name is Ada.", "user What is my name?"]
    assert [line.split()[0] for line in items_view] == ["user", "user", "assistant"]
    assert items_view == assistants_view
