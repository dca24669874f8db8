"""Plain domain types: ids, statuses, the run state machine and limits. No I/O lives here."""

from __future__ import annotations
