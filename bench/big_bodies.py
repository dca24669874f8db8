"""9. Bodies at the cap: the server's peak memory while four clients send big bodies at once.

Two bursts, each on a server started fresh (its peak RSS, VmHWM, only ever rises):

- four bodies of exactly the cap (`THREADLINE_MAX_BODY_BYTES`), each a valid thread of as
  many messages of the largest allowed text as fit, padded with trailing spaces; all are
  accepted and stored;
- four bodies of 100 MiB (the probe's size), streamed; each is refused with 413 once it
  passes the cap, and the rest is read and dropped by the server.

The tiny size uses a 4 MiB cap, the full size the default (32 MiB).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from bench.common import Figure, Section, ThreadlineServer, http_client
from bench.harness import Bench
from threadline.config import Settings
from threadline.domain.limits import MAX_MESSAGE_CHARS

CLIENTS = 4
OVERSIZED_MIB = 100
PIECE = 1024 * 1024


def body_at(cap: int) -> bytes:
    """A thread of the largest allowed messages, padded to exactly `cap` bytes."""
    message = {"role": "user", "content": "a" * MAX_MESSAGE_CHARS}
    one = len(json.dumps(message).encode()) + 2  # and ", "
    count = max(1, (cap - 32) // one)
    body = json.dumps({"messages": [message] * count}).encode()
    if len(body) > cap:
        raise RuntimeError(f"a body of one message is already {len(body)} bytes, above {cap}")
    return body + b" " * (cap - len(body))


async def _oversized() -> AsyncIterator[bytes]:
    yield b'{"messages": []}'
    piece = b" " * PIECE
    for _ in range(OVERSIZED_MIB):
        yield piece


async def _post(client: httpx.AsyncClient, content: bytes | None) -> int:
    body = content if content is not None else _oversized()
    response = await client.post(
        "/v1/threads", content=body, headers={"content-type": "application/json"}
    )
    return response.status_code


async def _burst(
    bench: Bench, cap: int, content: bytes | None, expected: int
) -> tuple[float, float]:
    """(idle RSS, peak RSS) in MB of a fresh server while four clients send at once."""
    env = {"THREADLINE_MAX_BODY_BYTES": str(cap)}
    url = bench.sqlite_url("big-bodies")
    with ThreadlineServer(url, bench.workdir, model_url=bench.model.base_url, env=env) as server:
        async with http_client(server.url, connections=CLIENTS) as client:
            for _ in range(3):  # warm: the routes and the database are in use once
                if (await client.post("/v1/threads", json={})).status_code != 200:
                    raise RuntimeError(f"warm-up failed: {server.log_tail()}")
            idle = server.rss_mb() or 0.0
            statuses = await asyncio.gather(*(_post(client, content) for _ in range(CLIENTS)))
        peak = server.peak_rss_mb() or 0.0
    if any(status != expected for status in statuses):
        raise RuntimeError(f"expected {expected} for every body, got {statuses}")
    return idle, peak


async def measure(bench: Bench) -> Section:
    cap = 4 * PIECE if bench.size.name == "tiny" else Settings().max_body_bytes
    mib = cap / PIECE
    section = Section("big_bodies", "9. Request bodies at the cap")
    section.method = [
        f"{CLIENTS} clients (httpx, one connection each) send at once to one `threadline serve`"
        " (SQLite) started fresh for each burst, after three warm-up requests.",
        f"Accepted: {CLIENTS} `POST /v1/threads` bodies of exactly the cap ({mib:g} MiB,"
        f" `THREADLINE_MAX_BODY_BYTES={cap}`), each a thread of messages of"
        f" {MAX_MESSAGE_CHARS:,} characters (the message limit), padded with spaces; all 200.",
        f"Refused: {CLIENTS} streamed (chunked) bodies of {OVERSIZED_MIB} MiB each; all 413 once"
        " past the cap; the server reads and drops the rest.",
        "Peak RSS: VmHWM of the server process (`/proc/<pid>/status`) after the burst; the"
        " reference is its RSS just before the burst.",
    ]
    content = body_at(cap)
    idle, peak = await _burst(bench, cap, content, 200)
    section.add(
        Figure(
            f"Peak RSS, {CLIENTS} bodies of {mib:g} MiB (the cap) accepted at once",
            peak,
            "MB",
            floor=f"{idle:.0f} MB (idle, before)",
            digits=0,
        )
    )
    refused_idle, refused_peak = await _burst(bench, cap, None, 413)
    section.add(
        Figure(
            f"Peak RSS, {CLIENTS} bodies of {OVERSIZED_MIB} MiB refused at the {mib:g} MiB cap",
            refused_peak,
            "MB",
            floor=f"{refused_idle:.0f} MB (idle, before)",
            digits=0,
        )
    )
    section.notes.append(
        f"Accepted: {(peak - idle) / CLIENTS:.0f} MB above idle per body of {mib:g} MiB"
        f" ({(peak - idle) / CLIENTS / mib:.1f} times the body); refused:"
        f" {(refused_peak - refused_idle) / CLIENTS:.0f} MB above idle per client."
    )
    return section
