"""The server's collector policy: the startup heap is frozen while serving and thawed after,
so a server stopped inside a process that goes on leaves nothing the collector cannot reach."""

from __future__ import annotations

import gc

from threadline.heap import YOUNG_THRESHOLD, startup_heap_frozen


def test_the_startup_heap_is_frozen_while_serving_and_thawed_after() -> None:
    before = gc.get_threshold()
    started_with: list[int] = []  # alive at the start, as the app's own objects are

    with startup_heap_frozen():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert not any(o is started_with for o in gc.get_objects())

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert any(o is started_with for o in gc.get_objects())
