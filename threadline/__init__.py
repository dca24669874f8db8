"""Threadline: a self-hosted agent service speaking the OpenAI Assistants and Azure APIs."""

from __future__ import annotations

__version__ = "0.1.0"
