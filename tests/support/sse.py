"""Reads server-sent events as a client does, for tests that check the raw stream."""

from __future__ import annotations

from collections.abc import Iterable


def parse_sse(lines: Iterable[str]) -> list[tuple[int, str, str]]:
    """(id, event, data) of each event that carries an id, in order, up to `done`."""
    events: list[tuple[int, str, str]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if fields.get("event") == "done":
            break
        if "id" in fields:
            events.append((int(fields["id"]), fields["event"], fields["data"]))
        fields = {}
    return events
