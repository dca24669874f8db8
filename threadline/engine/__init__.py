"""Run execution: claiming, the run loop, context building, expiry and recovery."""

from __future__ import annotations
