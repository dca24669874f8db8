"""`threadline agents migrate ASSISTANT_ID`: a classic agent (an Assistants API assistant)
made the first version (or the next) of a Foundry agent, checked as a version made through
the API is. The assistant stays: code of either kind runs on the project's same threads, so
a team moves one agent at a time."""

from __future__ import annotations

import argparse
import json

from threadline.api.models import model_catalog
from threadline.config import Settings
from threadline.domain.errors import ThreadlineError
from threadline.engine.tools import connections_of
from threadline.providers.registry import model_routes
from threadline.service.agent_versions import AgentVersionService, migrate_assistant
from threadline.service.responses import ResponseService
from threadline.service.runs import RunService
from threadline.service.tool_checks import ToolChecks
from threadline.store.sql_store import SqlStore


async def run_agent_command(settings: Settings, args: argparse.Namespace) -> None:
    store = SqlStore(settings.database_url, pool_size=1)
    await store.open()
    try:
        limits = settings.limits()
        runs = RunService(
            store,
            settings.run_expiry_seconds,
            settings.stream_keepalive_seconds,
            limits,
            ToolChecks(connections_of(settings)),
            model_catalog(settings, model_routes(settings)),
        )
        service = AgentVersionService(store, ResponseService(store, runs, limits))
        try:
            made = await migrate_assistant(service, args.project, args.assistant_id, args.name)
        except ThreadlineError as exc:
            raise SystemExit(exc.message) from exc
        print(
            f"Migrated {args.assistant_id} to agent '{made['name']}' version {made['version']}"
            f" in project {args.project}:"
        )
        print(json.dumps(made["definition"], indent=2))
    finally:
        await store.close()
