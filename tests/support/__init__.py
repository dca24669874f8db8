"""Test-only helpers shared by the suite, kept out of the shipped ``threadline`` package."""

from __future__ import annotations
