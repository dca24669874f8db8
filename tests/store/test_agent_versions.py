"""Store conformance for Foundry's new agents and their versions, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from test_conformance import OTHER_PROJECT, PROJECT, Runner, within

from threadline.domain.agent_versions import Agent, AgentVersion, version_id
from threadline.domain.errors import Conflict
from threadline.domain.records import PageRequest
from threadline.store.sql_store import SqlStore, SqlTx


def version(name: str, number: int, model: str = "m") -> AgentVersion:
    return {
        "id": version_id(name, number),
        "name": name,
        "version": str(number),
        "created_at": 1,
        "description": None,
        "metadata": {},
        "definition": {"kind": "prompt", "model": model},
    }


def agent(first: AgentVersion) -> Agent:
    return {
        "id": first["name"],
        "name": first["name"],
        "created_at": 1,
        "last_version": int(first["version"]),
        "latest": first,
    }


def add(store: SqlStore, run: Runner, name: str, number: int, project: str = PROJECT) -> None:
    made = version(name, number)

    async def op(tx: SqlTx) -> None:
        existing = await tx.lock_agent(project, name)
        if existing is None:
            await tx.insert_agent_version(project, made, agent(made))
        else:
            await tx.insert_agent_version(project, made)
            await tx.update_agent(project, name, {"last_version": number, "latest": made})

    run(within(store, op))


def test_versions_insert_get_and_the_agent_keeps_its_latest(store: SqlStore, run: Runner) -> None:
    add(store, run, "helper", 1)
    add(store, run, "helper", 2)

    got: Any = run(within(store, lambda tx: tx.get_agent(PROJECT, "helper")))
    second = run(within(store, lambda tx: tx.get_agent_version(PROJECT, "helper", 2)))
    newest = run(within(store, lambda tx: tx.newest_agent_version(PROJECT, "helper")))

    assert got["last_version"] == 2 and got["latest"] == version("helper", 2)
    assert second == version("helper", 2) and newest == second
    assert run(within(store, lambda tx: tx.get_agent_version(PROJECT, "helper", 3))) is None


def test_a_taken_number_conflicts_and_stores_nothing(store: SqlStore, run: Runner) -> None:
    add(store, run, "helper", 1)
    with pytest.raises(Conflict):
        run(within(store, lambda tx: tx.insert_agent_version(PROJECT, version("helper", 1, "x"))))
    kept = run(within(store, lambda tx: tx.get_agent_version(PROJECT, "helper", 1)))
    assert kept is not None and kept["definition"]["model"] == "m"


def test_a_first_version_of_a_name_taken_at_once_conflicts(store: SqlStore, run: Runner) -> None:
    """Two first versions of a new name: no agent row to lock, so the key refuses the
    second, and its agent row with it."""
    add(store, run, "helper", 1)
    again = version("helper", 1, "x")
    with pytest.raises(Conflict):
        run(within(store, lambda tx: tx.insert_agent_version(PROJECT, again, agent(again))))
    got = run(within(store, lambda tx: tx.get_agent(PROJECT, "helper")))
    assert got is not None and got["latest"]["definition"]["model"] == "m"


def test_agents_and_versions_are_scoped_to_their_project(store: SqlStore, run: Runner) -> None:
    add(store, run, "helper", 1)
    add(store, run, "helper", 1, project=OTHER_PROJECT)
    add(store, run, "helper", 2, project=OTHER_PROJECT)

    mine = run(within(store, lambda tx: tx.page_agent_versions(PROJECT, "helper", PageRequest())))
    assert [v["version"] for v in mine.data] == ["1"]
    run(within(store, lambda tx: tx.delete_agent(OTHER_PROJECT, "helper")))
    assert run(within(store, lambda tx: tx.get_agent(OTHER_PROJECT, "helper"))) is None
    assert run(within(store, lambda tx: tx.get_agent(PROJECT, "helper"))) is not None
    assert run(within(store, lambda tx: tx.get_agent_version(PROJECT, "helper", 1))) is not None
    gone = run(within(store, lambda tx: tx.get_agent_version(OTHER_PROJECT, "helper", 2)))
    assert gone is None


def test_pages_of_agents_and_versions_have_exact_cursors(store: SqlStore, run: Runner) -> None:
    for name in ("a1", "a2", "a3"):
        add(store, run, name, 1)
    for number in (2, 3, 4):
        add(store, run, "a1", number)

    first = run(within(store, lambda tx: tx.page_agents(PROJECT, PageRequest(limit=2))))
    rest = run(within(store, lambda tx: tx.page_agents(PROJECT, PageRequest(limit=2, after="a2"))))
    assert [a["id"] for a in first.data] == ["a3", "a2"] and first.has_more
    assert [a["id"] for a in rest.data] == ["a1"] and not rest.has_more
    page = PageRequest(limit=2, order="asc", after=version_id("a1", 2))
    versions = run(within(store, lambda tx: tx.page_agent_versions(PROJECT, "a1", page)))
    assert [v["version"] for v in versions.data] == ["3", "4"] and not versions.has_more


def test_deleting_a_version_leaves_the_others(store: SqlStore, run: Runner) -> None:
    add(store, run, "helper", 1)
    add(store, run, "helper", 2)

    assert run(within(store, lambda tx: tx.delete_agent_version(PROJECT, "helper", 2)))
    assert not run(within(store, lambda tx: tx.delete_agent_version(PROJECT, "helper", 2)))
    newest = run(within(store, lambda tx: tx.newest_agent_version(PROJECT, "helper")))
    assert newest is not None and newest["version"] == "1"
