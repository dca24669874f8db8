"""What the figures were measured on."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import time
from pathlib import Path

# A run object's worth of JSON, encoded and decoded, and some dict and string work: the kind of
# work the service's event loop does, so its time tracks the machine's pace for the figures.
_PACE_OBJECT = {
    "id": "run_abc",
    "object": "thread.run",
    "status": "in_progress",
    "tools": [
        {"type": "function", "function": {"name": f"f{n}", "parameters": {}}} for n in range(8)
    ],
    "metadata": {f"key{n}": "value" * 4 for n in range(16)},
    "instructions": "You are a helpful assistant. " * 20,
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    try:
        out = (
            subprocess.run(
                ["df", "-T", str(path)], capture_output=True, text=True, check=True, timeout=10
            )
            .stdout.splitlines()[-1]
            .split()
        )
        return f"{out[1]} ({out[0]})"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    ).stdout


def code_version(root: Path) -> str:
    """The commit measured and, when the service's code differs from it, a fingerprint of the
    difference (so two runs on different uncommitted code never read as the same code)."""
    paths = ["--", "threadline", "pyproject.toml"]
    try:
        commit = _git(root, "log", "-1", "--format=%h %s").strip()
        changes = _git(root, "diff", "HEAD", *paths) + _git(
            root, "ls-files", "--others", "--exclude-standard", *paths
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    if not changes:
        return commit
    fingerprint = hashlib.sha1(changes.encode()).hexdigest()[:8]
    return f"{commit}, with uncommitted changes to threadline/ (fingerprint {fingerprint})"


def pace_ms() -> float:
    """The median time of a fixed piece of Python work, in ms: the machine's pace right now.

    The machine's pace drifted by more than two times between days (and within an hour):
    figures from two runs compare only beside this."""
    times = []
    for _ in range(7):
        started = time.perf_counter()
        for n in range(400):
            decoded = json.loads(json.dumps(_PACE_OBJECT))
            decoded["status"] = f"completed {n}"
            sorted(decoded["metadata"].items())
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def describe(scratch: Path) -> list[tuple[str, str]]:
    import llama_cpp
    import uvicorn

    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("Memory", _memory_gb()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("uvicorn", uvicorn.__version__),
        ("llama-cpp-python", llama_cpp.__version__),
        ("Scratch disk (databases)", f"{scratch}: {_filesystem(scratch)}"),
    ]
