"""The signal that a worker's turn no longer counts."""

from __future__ import annotations


class Superseded(Exception):
    """The run was moved by someone else while this worker carried it (cancelled, expired),
    or its lease passed to another worker, which does the turn again. What this worker's
    transaction was writing is rolled back with it, and the worker stops carrying the run."""
