"""Projects: the namespaces that hold assistants, threads and runs, and that keys are
scoped to. `/v1` is the project `default`."""

from __future__ import annotations

import re

DEFAULT_PROJECT = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def is_project_name(name: str) -> bool:
    """Whole-string match: a trailing newline (`A%0A`) is no name, not another `A`."""
    return _NAME.fullmatch(name) is not None
