"""API keys: who may call the service, and on which projects.

A key is a random secret handed to its holder once; the service keeps only its SHA-256
digest. The secrets are long and random, so a fast digest is enough: a slow password hash
guards guessable secrets, and would cost every request its time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tl-"
# How much of a key `keys list` shows, so its holder can tell which key is which.
HINT_CHARS = 8


@dataclass(frozen=True)
class Grant:
    """What a key may reach: every project (`projects is None`, an admin key) or those named."""

    projects: frozenset[str] | None

    def allows(self, project: str) -> bool:
        return self.projects is None or project in self.projects


ADMIN = Grant(None)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str | None
    # None: every project, as an admin key.
    projects: tuple[str, ...] | None
    digest: str
    hint: str
    created_at: int
    revoked_at: int | None = None

    @property
    def grant(self) -> Grant:
        return ADMIN if self.projects is None else Grant(frozenset(self.projects))


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def digest(secret: str | bytes) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()
