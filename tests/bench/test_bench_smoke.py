"""`make bench` runs end to end: the harness on its tiny size produces every figure.

Benchmarks are not timed tests: this checks that each measurement ran and produced numbers,
never what the numbers are.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = [
    "turns",
    "overhead",
    "append",
    "big_thread",
    "many_runs",
    "local_model",
    "streaming",
    "workers",
    "big_bodies",
    "long_reply",
    "tool_rounds",
    "file_search",
    "code_interpreter",
    "responses",
]


# Bounds that catch a hang, not a slow machine: on a loaded two-core machine the tiny size
# took well over twice its usual time.
@pytest.mark.timeout(620)
def test_bench_runs_end_to_end_on_the_tiny_size(tmp_path: Path) -> None:
    markdown, figures = tmp_path / "RESULTS.md", tmp_path / "results.json"
    command = [sys.executable, "-m", "bench.run", "--size", "tiny", "--output", str(markdown)]
    # A session of its own, so that a hang takes the servers the harness started down with
    # it: killed alone, the harness left them serving after the test.
    with subprocess.Popen(
        [*command, "--json", str(figures)],
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
    sections = {section["name"]: section for section in results["sections"]}
    assert sorted(sections) == sorted(MEASUREMENTS)
    for name, section in sections.items():
        assert section["error"] is None, f"{name}: {section['error']}"
        values = [figure["value"] for figure in section["figures"]]
        assert values, f"{name} produced no figures"
        assert all(isinstance(v, int | float) and math.isfinite(v) for v in values), (
            f"{name}: {section['figures']}"
        )
    # Every target the issue sets has its figure, with a verdict beside it.
    judged = [f for s in results["sections"] for f in s["figures"] if f["ok"] is not None]
    assert len(judged) >= 7

    text = markdown.read_text()
    for heading in ("# Threadline benchmarks", "## Machine", "## Summary", "Command:", "Date:"):
        assert heading in text
