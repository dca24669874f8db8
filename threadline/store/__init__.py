"""Persistence: one `Store` interface, one SQL implementation for SQLite and PostgreSQL."""

from __future__ import annotations

from threadline.store.base import Store, StoreTx

__all__ = ["Store", "StoreTx"]
