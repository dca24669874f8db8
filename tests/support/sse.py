"""Reads server-sent events as a client does, for tests that check the raw stream."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from support.server import ServerProcess

# A run's event: its number in the log, its name, its data.
Event = tuple[int, str, dict[str, Any]]


def events_of(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(id, event, data) of each event that carries an id, in order, up to `done`, each as
    soon as its lines have been read."""
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if fields.get("event") == "done":
            return
        if "id" in fields:
            yield int(fields["id"]), fields["event"], fields["data"]
        fields = {}


def parse_sse(lines: Iterable[str]) -> list[tuple[int, str, str]]:
    """(id, event, data) of each event that carries an id, in order, up to `done`."""
    return list(events_of(lines))


def follow_run(api: ServerProcess, thread_id: str, run_id: str) -> Iterator[Event]:
    """The run's events from the start of its log, each as soon as the server sends it, up
    to `done`."""
    url = f"{api.base_url}/threads/{thread_id}/runs/{run_id}/events"
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200, response.read()
        for seq, name, data in events_of(response.iter_lines()):
            yield seq, name, json.loads(data)
