"""The `threadline` command: `serve` runs the API with its embedded worker, `worker` carries
runs in a process of its own, `keys` manages API keys, `agents migrate` makes a classic agent
a Foundry agent's version, `reembed` brings file_search's vectors to the configured embedding
model."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import uvicorn

from threadline.config import Settings

log = logging.getLogger("threadline")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threadline")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (with an embedded worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", default=None, help="overrides THREADLINE_DATABASE_URL")
    serve.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate")
    serve.add_argument("--ssl-keyfile", default=None, help="the certificate's private key")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="ask no request for a key, even where keys are set or stored (loud at start)",
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the API only; `threadline worker` processes carry the runs (PostgreSQL)",
    )
    worker = commands.add_parser("worker", help="carry runs in this process (PostgreSQL)")
    worker.add_argument("--database-url", default=None, help="overrides THREADLINE_DATABASE_URL")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="overrides THREADLINE_WORKER_CONCURRENCY"
    )
    worker.add_argument("--log-level", default="info")
    reembed = commands.add_parser(
        "reembed",
        help="embed again the file_search chunks another embedding model made",
    )
    reembed.add_argument("--database-url", default=None, help="overrides THREADLINE_DATABASE_URL")
    _key_commands(commands)
    _agent_commands(commands)
    return parser


def _key_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="make, list and revoke API keys (kept hashed)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; its secret is shown once")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--project", action="append", help="a project the key reaches (repeat for more)"
    )
    scope.add_argument("--all-projects", action="store_true", help="an admin key")
    create.add_argument("--name", default=None, help="a label shown by `keys list`")
    actions.add_parser("list", help="every key, revoked ones too; never a secret")
    revoke = actions.add_parser("revoke", help="stop a key from working")
    revoke.add_argument("key_id")
    for action in (create, actions.choices["list"], revoke):
        action.add_argument(
            "--database-url", default=None, help="overrides THREADLINE_DATABASE_URL"
        )


def _agent_commands(commands: Any) -> None:
    agents = commands.add_parser("agents", help="Foundry agents: migrate a classic agent")
    actions = agents.add_subparsers(dest="action", required=True)
    migrate = actions.add_parser(
        "migrate", help="make an assistant the next version of a Foundry agent"
    )
    migrate.add_argument("assistant_id")
    migrate.add_argument("--project", default="default", help="the assistant's project")
    migrate.add_argument("--name", default=None, help="the agent's name (the assistant's own)")
    migrate.add_argument("--database-url", default=None, help="overrides THREADLINE_DATABASE_URL")


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it is installed (everywhere but Windows), as uvicorn runs `serve`: its
    event loop and httptools' parser took 0.4 ms off each run's overhead (4.8 -> 4.4 ms)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def _reembed(settings: Settings) -> None:
    from threadline.engine.reembed import reembed
    from threadline.providers.embedders.select import embedder_for
    from threadline.store.sql_store import SqlStore

    store = SqlStore(settings.database_url, settings.database_pool_size)
    await store.open()
    try:
        embedder = embedder_for(settings)
        count = await reembed(store, embedder, lambda done: print(f"re-embedded {done} chunks"))
        print(f"done: {count} chunks now embedded by {embedder.model}")
    finally:
        await store.close()


def _one_blas_thread() -> None:
    """numpy's BLAS (a file_search product of a store's vectors) on one thread, before numpy
    loads it: the service runs many small products beside its event loop and the database,
    and BLAS threads spinning on every core slowed a search more than they sped its product
    up. An operator's own setting stays."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> None:
    _one_blas_thread()
    args = _parser().parse_args(argv)
    level = getattr(args, "log_level", "warning")
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = Settings.from_env().with_database(args.database_url)
    if args.command == "keys":
        from threadline.key_commands import run_key_command

        _run(run_key_command(settings, args))
        return
    if args.command == "agents":
        from threadline.agent_commands import run_agent_command

        _run(run_agent_command(settings, args))
        return
    if args.command == "reembed":
        _run(_reembed(settings))
        return
    if args.command == "worker":
        from threadline.engine.worker_process import run_worker

        if args.concurrency is not None:
            settings = replace(settings, worker_concurrency=args.concurrency)
        _run(run_worker(settings))
        return
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise SystemExit("--ssl-certfile and --ssl-keyfile go together")
    if args.no_worker and not settings.database_url.startswith("postgres"):
        raise SystemExit("--no-worker needs PostgreSQL: on SQLite only serve's worker can run")
    if args.no_auth:
        settings = replace(settings, auth=False)
    from threadline.api.app import create_app
    from threadline.api.http_protocol import configured_protocol

    uvicorn.run(
        create_app(settings, with_worker=not args.no_worker),
        host=args.host,
        port=args.port,
        # httptools (uvicorn's own choice when installed) with a cap on request heads and a
        # deadline for reading each request, neither of which uvicorn has.
        http=configured_protocol(
            settings.max_header_bytes,
            settings.max_header_count,
            settings.request_read_timeout_seconds,
        ),
        log_level=args.log_level,
        access_log=False,
        # Longer than clients keep an idle connection (httpx, under the openai SDK: 5 s;
        # aiohttp: 15 s): at uvicorn's own 5 s, a client reusing a connection the server
        # was closing at that moment lost its request.
        timeout_keep_alive=75,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        # In-flight requests get as long to finish on SIGTERM as runs do; idle keep-alive
        # connections of clients that never close do not hold a shutdown longer (over TLS,
        # closing one waits for the client's reply, which an idle client never sends).
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
    )


if __name__ == "__main__":
    main()
