"""Runs the benchmark harness on its tiny size for some of its sections and checks what it
wrote: each section ran and produced numbers, never what the numbers are. The sections are
split between test modules so that a parallel run of the suite runs the halves at once."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_tiny(tmp_path: Path, sections: list[str]) -> list[dict[str, Any]]:
    """The sections' results, once each ran without error and gave finite figures."""
    markdown, figures = tmp_path / "RESULTS.md", tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--size",
        "tiny",
        "--output",
        str(markdown),
        "--json",
        str(figures),
        "--only",
        *sections,
    ]
    # A session of its own, so that a hang takes the servers the harness started down with
    # it: killed alone, the harness left them serving after the test.
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as harness:
        try:
            stdout, stderr = harness.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(harness.pid, signal.SIGKILL)
            raise
    assert harness.returncode == 0, stdout[-4000:] + stderr[-4000:]

    results = json.loads(figures.read_text())
    assert results["size"] == "tiny"
    ran = {section["name"]: section for section in results["sections"]}
    assert sorted(ran) == sorted(sections)
    for name, section in ran.items():
        assert section["error"] is None, f"{name}: {section['error']}"
        values = [figure["value"] for figure in section["figures"]]
        assert values, f"{name} produced no figures"
        assert all(isinstance(v, int | float) and math.isfinite(v) for v in values), (
            f"{name}: {section['figures']}"
        )
    text = markdown.read_text()
    for heading in ("# Threadline benchmarks", "## Machine", "## Summary", "Command:", "Date:"):
        assert heading in text
    return list(results["sections"])


def judged(sections: list[dict[str, Any]]) -> int:
    """How many figures have a target's verdict beside them."""
    return len([f for section in sections for f in section["figures"] if f["ok"] is not None])


# The halves take about as long as each other on the tiny size.
FIRST_HALF = ["turns", "overhead", "append", "big_thread", "many_runs", "local_model", "workers"]
SECOND_HALF = [
    "streaming",
    "big_bodies",
    "long_reply",
    "tool_rounds",
    "file_search",
    "code_interpreter",
    "responses",
]
