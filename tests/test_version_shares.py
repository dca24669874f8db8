"""How an agent's endpoint splits requests among versions: each version's share of 100 holds
the draws that choose it (`domain/agent_versions.chosen_version`)."""

from __future__ import annotations

import pytest

from threadline.domain.agent_versions import chosen_version

SHARES = [("1", 25), ("2", 0), ("3", 75)]


@pytest.mark.parametrize(
    ("draw", "version"), [(0.0, "1"), (24.999, "1"), (25.0, "3"), (99.999, "3"), (100.0, "3")]
)
def test_a_draw_picks_the_version_whose_share_holds_it(draw: float, version: str) -> None:
    assert chosen_version(SHARES, draw) == version


def test_a_version_with_no_share_is_never_chosen() -> None:
    draws = [step / 10 for step in range(1000)]
    assert {chosen_version(SHARES, draw) for draw in draws} == {"1", "3"}
    assert [chosen_version(SHARES, draw) for draw in draws].count("1") == 250
