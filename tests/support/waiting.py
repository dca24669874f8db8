"""Waiting for a run to reach a status, bounded so that a broken server fails the test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import openai
from openai.types.beta.threads import Run

WAIT_LIMIT_SECONDS = 60.0
T = TypeVar("T")


TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


def wait_for_run(client: openai.OpenAI, thread_id: str, run_id: str, *statuses: str) -> Run:
    """Poll until the run reaches one of `statuses`; a different final status fails at once."""

    def settled(run: Run) -> bool:
        if run.status not in statuses and run.status in TERMINAL:
            raise AssertionError(f"run {run_id} ended {run.status}, not {statuses}: {run!r}")
        return run.status in statuses

    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        settled,
        f"run {run_id} to reach {statuses}",
    )


def wait_until(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; last seen: {value!r}")
        time.sleep(0.02)
