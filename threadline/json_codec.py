"""JSON text for stored bodies, responses and streamed events, written and read by orjson.

Every object the service keeps is a JSON body, decoded on each read and encoded on each
write and each answer: with the standard library that was the largest single cost of
building a run's context from a big thread (1,804 message bodies decoded per run).
orjson does the same work two to four times faster, with one difference that matters:
it reads an integer beyond 64 bits as a float. It never writes one (it refuses), so such a
value is written by `json.dumps` instead, whose `": "` separator marks the text; text
that holds it, text that is not an object (every body and event is one) and any text
orjson declines are read by `json.loads`, exactly as before. A string that happens to
hold `": "` only sends its text the slower way. NaN and infinities, which JSON has no
spelling for, are written as `null`. `loads` is for text as written here, as SQLite keeps
it; PostgreSQL gives JSONB's own text back, read by `json.loads`. SQLite's own JSON
functions would write minified text, without the mark: the store never lets them write a
body (`store.sql.SqlTx._update_body`).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# `json.dumps`' key separator, which orjson's compact output never has outside a string.
_STANDARD_LIBRARY_MARK = '": '


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # Integers beyond 64 bits, keys that are not strings, lone surrogates: written as
        # the standard library writes them (and marked by its separators, see above).
        return json.dumps(value)


def loads(text: str) -> Any:
    if not text.startswith("{") or _STANDARD_LIBRARY_MARK in text:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # `NaN` or a lone surrogate written by an earlier version: as the standard library
        # reads them.
        return json.loads(text)
