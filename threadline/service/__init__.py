"""Use cases the API calls. Validation and the rules of the domain live here, not in routers."""

from __future__ import annotations
