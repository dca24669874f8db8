"""The second half of `test_bench_smoke.py`'s sections, run on the tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.bench_smoke import SECOND_HALF, judged, run_tiny


@pytest.mark.timeout(620)
def test_the_second_half_runs_end_to_end_on_the_tiny_size(tmp_path: Path) -> None:
    sections = run_tiny(tmp_path, SECOND_HALF)
    assert judged(sections) >= 5
