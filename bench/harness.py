"""What a measurement is handed: the size, a scratch folder and the shared model server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Size
from bench.model_server import ModelServer


@dataclass
class Bench:
    size: Size
    workdir: Path
    model: ModelServer
    # Extra facts for the machine section (e.g. the PostgreSQL server's version).
    facts: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.sqlite_path(name)}"

    def sqlite_path(self, name: str) -> Path:
        self._count += 1
        return self.workdir / f"{name}-{self._count}.db"


async def run_concurrently(
    count: int, concurrency: int, job: Callable[[], Awaitable[float]]
) -> tuple[float, list[float]]:
    """`count` jobs, `concurrency` at a time; the wall time and each job's own figure."""
    results: list[float] = []
    remaining = count

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await job())

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, results
