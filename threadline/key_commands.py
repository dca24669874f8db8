"""`threadline keys create | list | revoke`: API keys managed on the database every API
process reads, so no server needs a restart for them."""

from __future__ import annotations

import argparse
import datetime
import sys

from threadline.config import Settings
from threadline.domain.errors import ThreadlineError
from threadline.domain.keys import ApiKey
from threadline.service.keys import KeyService
from threadline.store.sql_store import SqlStore


async def run_key_command(settings: Settings, args: argparse.Namespace) -> None:
    store = SqlStore(settings.database_url, pool_size=1)
    await store.open()
    try:
        keys = KeyService(store)
        if args.action == "create":
            projects = None if args.all_projects else args.project
            try:
                key, secret = await keys.create(projects, args.name)
            except ThreadlineError as exc:
                raise SystemExit(exc.message) from exc
            print(f"Created {key.id} for {_scope(key)}. Its secret, shown only this once:")
            print(secret)
        elif args.action == "list":
            for key in await keys.list():
                print(_row(key))
        elif not await keys.revoke(args.key_id):
            print(f"No key in force has the id {args.key_id}.", file=sys.stderr)
            raise SystemExit(1)
        else:
            print(
                f"Revoked {args.key_id}: servers refuse it within "
                f"THREADLINE_KEY_REFRESH_SECONDS ({settings.key_refresh_seconds:g} s)."
            )
            if not settings.api_keys and not await keys.any_in_force():
                print(
                    "No key is in force now: every request is refused until a key is made "
                    "(`threadline keys create`).",
                    file=sys.stderr,
                )
    finally:
        await store.close()


def _scope(key: ApiKey) -> str:
    if key.projects is None:
        return "every project"
    return "project" + ("s " if len(key.projects) > 1 else " ") + ", ".join(key.projects)


def _when(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(key: ApiKey) -> str:
    state = "in force" if key.revoked_at is None else f"revoked {_when(key.revoked_at)}"
    name = f" {key.name!r}" if key.name else ""
    return f"{key.id}  {key.hint}…{name}  {_scope(key)}  made {_when(key.created_at)}  {state}"
