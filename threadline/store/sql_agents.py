"""The queries of Foundry's new agents and their versions (`domain/agent_versions.py`).

An agent's row is locked by each change to its versions, so a version's number is taken and
its agent's `latest` set under one lock; where two first versions of a new name race (no row
to lock yet), the unique (project, agent, version) key refuses the second.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from threadline.domain.agent_versions import Agent, AgentVersion
from threadline.domain.errors import Conflict
from threadline.domain.records import Obj, Page, PageRequest
from threadline.store.compiled import Query
from threadline.store.drivers import DuplicateKey
from threadline.store.schema import agent_versions, agents
from threadline.store.sql_common import SqlTxBase, _p, _Paging

_AGENT_PROJECT = _p("p_project", agents.c.project)
_AGENT_ID = _p("p_id", agents.c.id)
_VERSION_PROJECT = _p("p_project", agent_versions.c.project)
_VERSION_AGENT = _p("p_agent", agent_versions.c.agent)
_VERSION_NUMBER = _p("p_version", agent_versions.c.version)

_AGENT = sa.select(agents.c.body).where(
    agents.c.project == _AGENT_PROJECT, agents.c.id == _AGENT_ID
)
_GET_AGENT = Query(_AGENT)
_LOCK_AGENT = Query(_AGENT.with_for_update())
_OF_AGENT = (agent_versions.c.project == _VERSION_PROJECT, agent_versions.c.agent == _VERSION_AGENT)
_DELETE_AGENT = [
    Query(agent_versions.delete().where(*_OF_AGENT)),
    Query(agents.delete().where(agents.c.project == _AGENT_PROJECT, agents.c.id == _AGENT_ID)),
]
_ONE_VERSION = (*_OF_AGENT, agent_versions.c.version == _VERSION_NUMBER)
_GET_VERSION = Query(sa.select(agent_versions.c.body).where(*_ONE_VERSION))
_DELETE_VERSION = Query(agent_versions.delete().where(*_ONE_VERSION))
_NEWEST_VERSION = Query(
    sa.select(agent_versions.c.body)
    .where(*_OF_AGENT)
    .order_by(agent_versions.c.version.desc())
    .limit(1)
)

_AGENT_PAGES = _Paging(agents, "project")
_VERSION_PAGES = _Paging(agent_versions, "project", "agent")


class AgentQueries(SqlTxBase):
    async def get_agent(self, project: str, name: str) -> Agent | None:
        return cast("Agent | None", await self._one_body(_GET_AGENT, p_project=project, p_id=name))

    async def lock_agent(self, project: str, name: str) -> Agent | None:
        return cast("Agent | None", await self._one_body(_LOCK_AGENT, p_project=project, p_id=name))

    async def page_agents(self, project: str, page: PageRequest) -> Page[Agent]:
        return cast("Page[Agent]", await self._page(_AGENT_PAGES, page, project=project))

    async def insert_agent_version(
        self, project: str, version: AgentVersion, agent: Agent | None = None
    ) -> None:
        number = int(version["version"])
        row = {
            "id": version["id"],
            "project": project,
            "agent": version["name"],
            "version": number,
            "body": version,
        }
        try:
            await self._insert_rows(agent_versions, [row])
            if agent is not None:
                await self._insert_rows(
                    agents, [{"id": agent["id"], "project": project, "body": agent}]
                )
        except DuplicateKey as exc:
            raise Conflict(
                f"Agent '{version['name']}' took version {number} in another request at the"
                " same time; try again.",
                param="agent_name",
            ) from exc

    async def update_agent(self, project: str, name: str, changes: Obj) -> None:
        await self._update_body(agents, changes, {"project": project, "id": name})

    async def delete_agent(self, project: str, name: str) -> None:
        params = {"p_project": project, "p_id": name, "p_agent": name}
        for query in _DELETE_AGENT:
            await self.db.execute(query, params)

    async def get_agent_version(self, project: str, name: str, number: int) -> AgentVersion | None:
        found = await self._one_body(
            _GET_VERSION, p_project=project, p_agent=name, p_version=number
        )
        return cast("AgentVersion | None", found)

    async def delete_agent_version(self, project: str, name: str, number: int) -> bool:
        params = {"p_project": project, "p_agent": name, "p_version": number}
        return bool(await self.db.execute(_DELETE_VERSION, params))

    async def newest_agent_version(self, project: str, name: str) -> AgentVersion | None:
        found = await self._one_body(_NEWEST_VERSION, p_project=project, p_agent=name)
        return cast("AgentVersion | None", found)

    async def page_agent_versions(
        self, project: str, name: str, page: PageRequest
    ) -> Page[AgentVersion]:
        found = await self._page(_VERSION_PAGES, page, project=project, agent=name)
        return cast("Page[AgentVersion]", found)
