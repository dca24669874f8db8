"""HTTP: routers per resource, error bodies, pagination parameters. Knows nothing of SQL."""

from __future__ import annotations
