"""`make bench` runs end to end: the harness on its tiny size produces every figure. The first
half of the sections here, the second in `test_bench_smoke_second_half.py` (a module of its
own, so that a parallel run of the suite runs the halves at once).

Benchmarks are not timed tests: this checks that each measurement ran and produced numbers,
never what the numbers are.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.bench_smoke import FIRST_HALF, SECOND_HALF, judged, run_tiny

from bench.run import MEASUREMENTS


def test_the_halves_hold_every_section_once() -> None:
    assert sorted(FIRST_HALF + SECOND_HALF) == sorted(MEASUREMENTS)


# Bounds that catch a hang, not a slow machine: on a loaded two-core machine the tiny size
# took well over twice its usual time.
@pytest.mark.timeout(620)
def test_the_first_half_runs_end_to_end_on_the_tiny_size(tmp_path: Path) -> None:
    sections = run_tiny(tmp_path, FIRST_HALF)
    # Every target these sections set has its figure, with a verdict beside it.
    assert judged(sections) >= 5
