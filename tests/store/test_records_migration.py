"""0005 rewrites the stored bodies from the Assistants-v2 wire JSON to the format-neutral
form, and back again, on every backend.

A database is migrated to 0004 and given rows in the wire shape the service wrote (on
SQLite as its text: `json_codec`'s, with the standard library's for an integer beyond 64
bits); after the upgrade every body is checked whole against its neutral form, and after
the downgrade against the row it was.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command

from threadline import json_codec
from threadline.store.engine import create_postgres_engine, create_sqlite_engine
from threadline.store.migrate import alembic_config
from threadline.store.schema import Json

T = TypeVar("T")
Obj = dict[str, Any]
# (table, its other columns, the body: `body`, or for run_events `data`)
Row = tuple[str, Obj, Obj]

TABLES = ("assistants", "threads", "messages", "runs", "run_steps", "run_events")
T0 = 1_700_000_000
# Not a power of two: as a float it would not compare equal.
BIG = 2**70 + 1


class Database:
    """A database of the test's own, reached as the migrations reach it: on SQLite through
    `create_sqlite_engine`, on PostgreSQL through the store's async engine."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite = url.startswith("sqlite")

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` in one transaction, committed."""
        if self.sqlite:
            engine = create_sqlite_engine(self.url)
            try:
                with engine.begin() as connection:
                    return work(connection)
            finally:
                engine.dispose()

        async def on_postgres() -> T:
            engine = create_postgres_engine(self.url, pool_size=1)
            try:
                async with engine.begin() as connection:
                    return await connection.run_sync(work)
            finally:
                await engine.dispose()

        return asyncio.run(on_postgres())

    def upgrade(self, revision: str) -> None:
        self.run(lambda connection: command.upgrade(alembic_config(connection), revision))

    def downgrade(self, revision: str) -> None:
        self.run(lambda connection: command.downgrade(alembic_config(connection), revision))

    def insert(self, rows: list[Row], dumps: Callable[[Any], str] = json_codec.dumps) -> None:
        """On SQLite the bodies are written as `dumps` writes them."""

        def insert(connection: sa.Connection) -> None:
            for table, columns, body in rows:
                column = _json_column(table)
                stored: Any = dumps(body) if self.sqlite else body
                target = sa.table(
                    table,
                    *(sa.column(name) for name in columns),
                    sa.column(column, sa.Text() if self.sqlite else Json),
                )
                connection.execute(sa.insert(target).values({**columns, column: stored}))

        self.run(insert)

    def stored(self) -> dict[str, list[Any]]:
        """Each table's bodies in `seq` order, as stored: on SQLite the text, on PostgreSQL
        the JSONB's value."""

        def read(connection: sa.Connection) -> dict[str, list[Any]]:
            found: dict[str, list[Any]] = {}
            for table in TABLES:
                column = _json_column(table)
                source = sa.table(
                    table,
                    sa.column("seq"),
                    sa.column(column, sa.Text() if self.sqlite else Json),
                )
                query = sa.select(source.c[column]).order_by(source.c.seq)
                found[table] = list(connection.execute(query).scalars())
            return found

        return self.run(read)

    def row_versions(self) -> dict[str, list[str]]:
        """What changes when a row is written: on SQLite the body's text (see `_indented`),
        on PostgreSQL the row version's transaction (`xmin`)."""

        def read(connection: sa.Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for table in TABLES:
                version = _json_column(table) if self.sqlite else "CAST(xmin AS TEXT)"
                query = (
                    sa.select(sa.literal_column(version, sa.Text()))
                    .select_from(sa.table(table))
                    .order_by(sa.literal_column("seq"))
                )
                found[table] = list(connection.execute(query).scalars())
            return found

        return self.run(read)

    def bodies(self) -> dict[str, list[Any]]:
        """Each table's bodies as the store reads them (on SQLite by `json_codec.loads`)."""
        stored = self.stored()
        if not self.sqlite:
            return stored
        return {
            table: [json_codec.loads(text) for text in texts] for table, texts in stored.items()
        }


# Text `json_codec` never writes (and reads, by its `": "` mark): a row still holding it
# was not written again.
def _indented(value: Any) -> str:
    return json.dumps(value, indent=1)


def _json_column(table: str) -> str:
    return "data" if table == "run_events" else "body"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'threadline.db'}")
    else:
        yield Database(request.getfixturevalue("new_postgres_url"))


# -- the rows, as the service wrote them and in the neutral form ---------------------------

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
FORECAST_SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}}
OSLO = '{"city": "Oslo"}'

WIRE_ASSISTANT = {
    "id": "asst_1",
    "object": "assistant",
    "created_at": T0,
    "name": "Forecaster",
    "description": None,
    "model": "gpt-4o",
    "instructions": "Answer in JSON.",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_PARAMETERS,
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now"}},
        {"type": "code_interpreter"},
    ],
    "tool_resources": {},
    "metadata": {"team": "weather"},
    "temperature": 0.5,
    "top_p": 1.0,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "forecast",
            "description": "A forecast.",
            "schema": FORECAST_SCHEMA,
            "strict": True,
        },
    },
}
NEUTRAL_ASSISTANT = {
    "id": "asst_1",
    "created_at": T0,
    "name": "Forecaster",
    "description": None,
    "model": "gpt-4o",
    "instructions": "Answer in JSON.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER_PARAMETERS,
            "strict": True,
        },
        {"type": "function", "name": "now"},
        {"type": "code_interpreter"},
    ],
    "tool_resources": {},
    "metadata": {"team": "weather"},
    "temperature": 0.5,
    "top_p": 1.0,
    "response_format": {
        "type": "json_schema",
        "name": "forecast",
        "description": "A forecast.",
        "schema": FORECAST_SCHEMA,
        "strict": True,
    },
}

# Metadata holds strings only: the integer beyond 64 bits is in a tool's parameters.
WIRE_BIG_ASSISTANT = {
    "id": "asst_2",
    "object": "assistant",
    "created_at": T0 + 1,
    "name": None,
    "description": None,
    "model": "gpt-4o-mini",
    "instructions": None,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "count",
                "parameters": {"type": "integer", "maximum": BIG},
            },
        }
    ],
    "tool_resources": {},
    "metadata": {},
    "temperature": None,
    "top_p": None,
    "response_format": {"type": "json_object"},
}
NEUTRAL_BIG_ASSISTANT = {
    "id": "asst_2",
    "created_at": T0 + 1,
    "name": None,
    "description": None,
    "model": "gpt-4o-mini",
    "instructions": None,
    "tools": [
        {"type": "function", "name": "count", "parameters": {"type": "integer", "maximum": BIG}}
    ],
    "tool_resources": {},
    "metadata": {},
    "temperature": None,
    "top_p": None,
    "response_format": {"type": "json_object"},
}

WIRE_THREAD = {
    "id": "thread_1",
    "object": "thread",
    "created_at": T0 + 2,
    "metadata": {"topic": "weather"},
    "tool_resources": {},
}
NEUTRAL_THREAD = {
    "id": "thread_1",
    "created_at": T0 + 2,
    "metadata": {"topic": "weather"},
    "tool_resources": {},
}

WIRE_USER_MESSAGE = {
    "id": "msg_1",
    "object": "thread.message",
    "created_at": T0 + 3,
    "thread_id": "thread_1",
    "role": "user",
    "content": [
        {"type": "text", "text": {"value": "What is the weather here?", "annotations": []}},
        {"type": "image_file", "image_file": {"file_id": "file_1", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/street.png"}},
    ],
    "assistant_id": None,
    "run_id": None,
    "attachments": [],
    "metadata": {},
    "status": "completed",
    "incomplete_details": None,
    "completed_at": T0 + 3,
    "incomplete_at": None,
}
NEUTRAL_USER_MESSAGE = {
    "id": "msg_1",
    "created_at": T0 + 3,
    "thread_id": "thread_1",
    "role": "user",
    "content": [
        {"type": "text", "text": "What is the weather here?", "annotations": []},
        {"type": "image_file", "file_id": "file_1", "detail": "low"},
        {"type": "image_url", "url": "https://example.com/street.png"},
    ],
    "assistant_id": None,
    "run_id": None,
    "attachments": [],
    "metadata": {},
    "status": "completed",
    "incomplete_details": None,
    "completed_at": T0 + 3,
    "incomplete_at": None,
}

WIRE_REPLY = {
    "id": "msg_2",
    "object": "thread.message",
    "created_at": T0 + 5,
    "thread_id": "thread_1",
    "role": "assistant",
    "content": [],
    "assistant_id": "asst_1",
    "run_id": "run_1",
    "attachments": [],
    "metadata": {},
    "status": "in_progress",
    "incomplete_details": None,
    "completed_at": None,
    "incomplete_at": None,
}
NEUTRAL_REPLY = {
    "id": "msg_2",
    "created_at": T0 + 5,
    "thread_id": "thread_1",
    "role": "assistant",
    "content": [],
    "assistant_id": "asst_1",
    "run_id": "run_1",
    "attachments": [],
    "metadata": {},
    "status": "in_progress",
    "incomplete_details": None,
    "completed_at": None,
    "incomplete_at": None,
}

WIRE_RUN = {
    "id": "run_1",
    "object": "thread.run",
    "created_at": T0 + 4,
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "requires_action",
    "required_action": {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": OSLO},
                }
            ]
        },
    },
    "last_error": None,
    "expires_at": T0 + 604,
    "started_at": T0 + 4,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": None,
    "incomplete_details": None,
    "model": "gpt-4o",
    "instructions": "Answer in JSON.",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_PARAMETERS,
                "strict": True,
            },
        }
    ],
    "metadata": {},
    "usage": None,
    "temperature": 0.5,
    "top_p": 1.0,
    "max_prompt_tokens": None,
    "max_completion_tokens": None,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "forecast", "schema": FORECAST_SCHEMA, "strict": True},
    },
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": True,
}
NEUTRAL_RUN = {
    "id": "run_1",
    "created_at": T0 + 4,
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "requires_action",
    "pending_tool_calls": [
        {"id": "call_1", "type": "function", "name": "get_weather", "arguments": OSLO}
    ],
    "last_error": None,
    "expires_at": T0 + 604,
    "started_at": T0 + 4,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": None,
    "incomplete_details": None,
    "model": "gpt-4o",
    "instructions": "Answer in JSON.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER_PARAMETERS,
            "strict": True,
        }
    ],
    "metadata": {},
    "usage": None,
    "temperature": 0.5,
    "top_p": 1.0,
    "max_prompt_tokens": None,
    "max_completion_tokens": None,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "response_format": {
        "type": "json_schema",
        "name": "forecast",
        "schema": FORECAST_SCHEMA,
        "strict": True,
    },
    "tool_choice": {"type": "function", "name": "get_weather"},
    "parallel_tool_calls": True,
}
# The same run as `thread.run.created` showed it.
WIRE_QUEUED_RUN = {
    **WIRE_RUN,
    "status": "queued",
    "required_action": None,
    "started_at": None,
    "response_format": "auto",
    "tool_choice": "required",
}
NEUTRAL_QUEUED_RUN = {
    **NEUTRAL_RUN,
    "status": "queued",
    "pending_tool_calls": None,
    "started_at": None,
    "response_format": "auto",
    "tool_choice": "required",
}

USAGE = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
WIRE_MESSAGE_STEP = {
    "id": "step_1",
    "object": "thread.run.step",
    "created_at": T0 + 5,
    "run_id": "run_1",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "type": "message_creation",
    "status": "completed",
    "cancelled_at": None,
    "completed_at": T0 + 6,
    "expired_at": None,
    "failed_at": None,
    "last_error": None,
    "step_details": {"type": "message_creation", "message_creation": {"message_id": "msg_2"}},
    "usage": USAGE,
    "metadata": {},
}
NEUTRAL_MESSAGE_STEP = {
    "id": "step_1",
    "created_at": T0 + 5,
    "run_id": "run_1",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "type": "message_creation",
    "status": "completed",
    "cancelled_at": None,
    "completed_at": T0 + 6,
    "expired_at": None,
    "failed_at": None,
    "last_error": None,
    "step_details": {"type": "message_creation", "message_id": "msg_2"},
    "usage": USAGE,
    "metadata": {},
}

WIRE_TOOL_STEP = {
    "id": "step_2",
    "object": "thread.run.step",
    "created_at": T0 + 7,
    "run_id": "run_1",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "type": "tool_calls",
    "status": "completed",
    "cancelled_at": None,
    "completed_at": T0 + 8,
    "expired_at": None,
    "failed_at": None,
    "last_error": None,
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": OSLO, "output": None},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "now", "arguments": "{}", "output": "12:00"},
            },
        ],
    },
    "usage": USAGE,
    "metadata": {},
}
NEUTRAL_TOOL_STEP = {
    "id": "step_2",
    "created_at": T0 + 7,
    "run_id": "run_1",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "type": "tool_calls",
    "status": "completed",
    "cancelled_at": None,
    "completed_at": T0 + 8,
    "expired_at": None,
    "failed_at": None,
    "last_error": None,
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "name": "get_weather",
                "arguments": OSLO,
                "output": None,
            },
            {
                "id": "call_2",
                "type": "function",
                "name": "now",
                "arguments": "{}",
                "output": "12:00",
            },
        ],
    },
    "usage": USAGE,
    "metadata": {},
}

WIRE_MESSAGE_DELTA = {
    "id": "msg_2",
    "object": "thread.message.delta",
    "delta": {
        "content": [{"index": 0, "type": "text", "text": {"value": "Checking", "annotations": []}}]
    },
}
NEUTRAL_MESSAGE_DELTA = {
    "id": "msg_2",
    "content": [{"index": 0, "type": "text", "text": "Checking"}],
}

WIRE_STEP_DELTA = {
    "id": "step_2",
    "object": "thread.run.step.delta",
    "delta": {
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "index": 0,
                    "type": "function",
                    "id": "call_1",
                    "function": {"arguments": "", "name": "get_weather"},
                },
                {"index": 0, "type": "function", "function": {"arguments": OSLO}},
            ],
        }
    },
}
NEUTRAL_STEP_DELTA = {
    "id": "step_2",
    "tool_calls": [
        {"index": 0, "type": "function", "id": "call_1", "arguments": "", "name": "get_weather"},
        {"index": 0, "type": "function", "arguments": OSLO},
    ],
}

ERROR = {"code": "server_error", "message": "The model failed."}

THREAD_1 = {"thread_id": "thread_1"}
RUN_1 = {"run_id": "run_1", "thread_id": "thread_1"}


def _event(seconds: int, event: str, object_id: str | None) -> Obj:
    return {**RUN_1, "event": event, "object_id": object_id, "created_at": T0 + seconds + 0.5}


def _rows(neutral: bool) -> list[Row]:
    """Every table's rows, in the wire shape or the neutral one."""

    def pick(wire: Obj, flat: Obj) -> Obj:
        return flat if neutral else wire

    return [
        ("assistants", {"id": "asst_1", "project": "p"}, pick(WIRE_ASSISTANT, NEUTRAL_ASSISTANT)),
        (
            "assistants",
            {"id": "asst_2", "project": "p"},
            pick(WIRE_BIG_ASSISTANT, NEUTRAL_BIG_ASSISTANT),
        ),
        ("threads", {"id": "thread_1", "project": "p"}, pick(WIRE_THREAD, NEUTRAL_THREAD)),
        (
            "messages",
            {"id": "msg_1", **THREAD_1, "run_id": None},
            pick(WIRE_USER_MESSAGE, NEUTRAL_USER_MESSAGE),
        ),
        (
            "runs",
            {"id": "run_1", **THREAD_1, "project": "p", "status": "requires_action"},
            pick(WIRE_RUN, NEUTRAL_RUN),
        ),
        ("run_steps", {"id": "step_1", **RUN_1}, pick(WIRE_MESSAGE_STEP, NEUTRAL_MESSAGE_STEP)),
        ("run_steps", {"id": "step_2", **RUN_1}, pick(WIRE_TOOL_STEP, NEUTRAL_TOOL_STEP)),
        ("run_events", _event(2, "thread.created", "thread_1"), pick(WIRE_THREAD, NEUTRAL_THREAD)),
        (
            "run_events",
            _event(4, "thread.run.created", "run_1"),
            pick(WIRE_QUEUED_RUN, NEUTRAL_QUEUED_RUN),
        ),
        (
            "run_events",
            _event(5, "thread.message.created", "msg_2"),
            pick(WIRE_REPLY, NEUTRAL_REPLY),
        ),
        (
            "run_events",
            _event(5, "thread.message.delta", "msg_2"),
            pick(WIRE_MESSAGE_DELTA, NEUTRAL_MESSAGE_DELTA),
        ),
        (
            "run_events",
            _event(7, "thread.run.step.created", "step_2"),
            pick(WIRE_TOOL_STEP, NEUTRAL_TOOL_STEP),
        ),
        (
            "run_events",
            _event(7, "thread.run.step.delta", "step_2"),
            pick(WIRE_STEP_DELTA, NEUTRAL_STEP_DELTA),
        ),
        (
            "run_events",
            _event(8, "thread.run.requires_action", "run_1"),
            pick(WIRE_RUN, NEUTRAL_RUN),
        ),
        ("run_events", _event(9, "error", None), ERROR),
    ]


def _by_table(rows: list[Row]) -> dict[str, list[Any]]:
    return {table: [body for name, _, body in rows if name == table] for table in TABLES}


WIRE = _by_table(_rows(neutral=False))
NEUTRAL = _by_table(_rows(neutral=True))


def _assert_written_as_the_store_writes(database: Database) -> None:
    """On SQLite, each body's text is what `json_codec.dumps` writes for it: orjson's, or
    the standard library's where orjson refuses (the integer beyond 64 bits)."""
    if not database.sqlite:
        return
    for texts in database.stored().values():
        for text in texts:
            assert text == json_codec.dumps(json.loads(text))


# -- the tests -----------------------------------------------------------------------------


def test_wire_bodies_become_neutral_and_the_downgrade_brings_them_back(
    database: Database,
) -> None:
    database.upgrade("0004")
    database.insert(_rows(neutral=False))
    assert database.bodies() == WIRE

    database.upgrade("0005")
    assert database.bodies() == NEUTRAL
    _assert_written_as_the_store_writes(database)

    database.downgrade("0004")
    assert database.bodies() == WIRE
    _assert_written_as_the_store_writes(database)


def test_an_integer_beyond_64_bits_stays_an_integer(database: Database) -> None:
    database.upgrade("0004")
    database.insert(_rows(neutral=False))
    database.upgrade("0005")

    tool = database.bodies()["assistants"][1]["tools"][0]
    maximum = tool["parameters"]["maximum"]
    assert type(maximum) is int
    assert maximum == BIG
    if database.sqlite:
        # Written by the standard library, whose separators send `json_codec.loads` to it.
        assert '"maximum": 1180591620717411303425' in database.stored()["assistants"][1]


def test_an_upgrade_leaves_bodies_already_neutral_as_they_are(database: Database) -> None:
    database.upgrade("0004")
    database.insert(_rows(neutral=True), dumps=_indented)
    before = database.row_versions()
    database.upgrade("0005")
    assert database.row_versions() == before
    assert database.bodies() == NEUTRAL


def test_a_downgrade_leaves_wire_bodies_as_they_are(database: Database) -> None:
    database.upgrade("0005")
    database.insert(_rows(neutral=False), dumps=_indented)
    before = database.row_versions()
    database.downgrade("0004")
    assert database.row_versions() == before
    assert database.bodies() == WIRE


def test_tables_larger_than_a_batch_are_rewritten_whole(database: Database) -> None:
    database.upgrade("0004")
    count = 1234
    threads: list[Row] = [
        ("threads", {"id": f"thread_{n}", "project": "p"}, {**WIRE_THREAD, "id": f"thread_{n}"})
        for n in range(count)
    ]
    database.insert(threads)

    database.upgrade("0005")
    assert database.bodies()["threads"] == [
        {**NEUTRAL_THREAD, "id": f"thread_{n}"} for n in range(count)
    ]
    database.downgrade("0004")
    assert database.bodies()["threads"] == [
        {**WIRE_THREAD, "id": f"thread_{n}"} for n in range(count)
    ]
