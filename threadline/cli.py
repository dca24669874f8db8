"""The `threadline` command: `serve` runs the API with its embedded worker."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
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
    return parser


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it is installed (everywhere but Windows), as uvicorn runs `serve`: its
    event loop and httptools' parser took 0.4 ms off each run's overhead (4.8 -> 4.4 ms)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = Settings.from_env().with_database(args.database_url)
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
    if not settings.api_keys and not is_loopback(args.host):
        log.warning(
            "!!! THREADLINE_API_KEYS is not set and the server listens on %s: ANYONE who can "
            "reach this address can read and write every thread. Set THREADLINE_API_KEYS. !!!",
            args.host,
        )
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
        # In-flight requests get this long to finish on SIGTERM; idle keep-alive
        # connections of clients that never close do not hold a shutdown longer.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
