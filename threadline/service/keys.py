"""API keys: made, listed and revoked by the `threadline keys` command, checked on every
request by `KeyRing`.

Keys live in the database, so every API process sees the same ones and a key made or
revoked takes effect without a restart. The keys of `THREADLINE_API_KEYS` are admin keys
that live in the environment alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest
from threadline.domain.keys import (
    ADMIN,
    HINT_CHARS,
    ApiKey,
    Grant,
    digest,
    new_key_id,
    new_secret,
)
from threadline.domain.projects import is_project_name
from threadline.store.base import Store


class KeyService:
    def __init__(self, store: Store):
        self.store = store

    async def create(self, projects: Iterable[str] | None, name: str | None) -> tuple[ApiKey, str]:
        """A new key for `projects` (None: every project); the secret is returned here once
        and kept nowhere."""
        scoped = None if projects is None else tuple(dict.fromkeys(projects))
        if scoped is not None and not scoped:
            raise InvalidRequest("A key needs at least one project, or every project.")
        for project in scoped or ():
            if not is_project_name(project):
                raise InvalidRequest(f"Invalid project name {project!r}.", param="project")
        secret = new_secret()
        key = ApiKey(
            id=new_key_id(),
            name=name,
            projects=scoped,
            digest=digest(secret),
            hint=secret[:HINT_CHARS],
            created_at=now(),
        )
        async with self.store.transaction() as tx:
            await tx.insert_api_key(key)
        return key, secret

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        async with self.store.transaction() as tx:
            return await tx.api_keys(include_revoked=include_revoked)

    async def revoke(self, key_id: str) -> bool:
        async with self.store.transaction() as tx:
            return await tx.revoke_api_key(key_id, now())

    async def any_in_force(self) -> bool:
        async with self.store.transaction() as tx:
            return bool(await tx.api_keys())


class KeyRing:
    """The keys in force, as this process last read them from the store.

    Read whole and kept for `refresh_seconds`: a request costs a dictionary lookup, not a
    query. A key this process has not seen makes it read again at once (at most every
    `miss_seconds`, so a flood of wrong keys cannot turn into a flood of queries): a key just
    made works on its first request. A revoked key stops working within `refresh_seconds`.
    """

    def __init__(
        self,
        store: Store,
        env_keys: Iterable[str] = (),
        *,
        refresh_seconds: float = 1.0,
        miss_seconds: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self._env = {digest(key): ADMIN for key in env_keys}
        self._stored: dict[str, Grant] = {}
        # Whether any key was ever made, revoked ones included: once one was, requests need
        # a key for good. Revoking the last (a leaked one, say) closes the server to all;
        # serving without keys is `--no-auth`, never the side effect of a revocation.
        self._keys_made = False
        self._read_at: float | None = None
        self._refresh_seconds = refresh_seconds
        self._miss_seconds = miss_seconds
        self._clock = clock
        self._reading = asyncio.Lock()

    async def required(self) -> bool:
        """Whether requests need a key: one is set in the environment or stored."""
        if self._env:
            return True
        await self._read_if_older_than(self._refresh_seconds)
        return self._keys_made

    async def grant(self, secret: bytes) -> Grant | None:
        """What the key `secret` may reach; None for no key in force."""
        key_digest = digest(secret)
        found = self._env.get(key_digest)
        if found is not None:
            return found
        await self._read_if_older_than(self._refresh_seconds)
        found = self._stored.get(key_digest)
        if found is None:
            await self._read_if_older_than(self._miss_seconds)
            found = self._stored.get(key_digest)
        return found

    async def _read_if_older_than(self, seconds: float) -> None:
        if self._fresh(seconds):
            return
        async with self._reading:
            if self._fresh(seconds):
                return  # another request read them while this one waited
            started = self._clock()
            async with self.store.transaction(durable=False) as tx:
                keys = await tx.api_keys(include_revoked=True)
            self._stored = {key.digest: key.grant for key in keys if key.revoked_at is None}
            self._keys_made = bool(keys)
            self._read_at = started

    def _fresh(self, seconds: float) -> bool:
        return self._read_at is not None and self._clock() - self._read_at < seconds
