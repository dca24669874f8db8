"""Settings from the environment: what a user may set, and what is refused at start."""

from __future__ import annotations

import pytest

from threadline.config import Settings


@pytest.mark.parametrize(
    "name",
    [
        "THREADLINE_STREAM_KEEPALIVE_SECONDS",
        "THREADLINE_SWEEP_INTERVAL_SECONDS",
        "THREADLINE_LEASE_SECONDS",
    ],
)
def test_an_interval_a_loop_waits_must_be_above_zero(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "0")

    with pytest.raises(SystemExit, match=f"{name} must be above 0"):
        Settings.from_env()


def test_intervals_may_be_fractions_of_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_STREAM_KEEPALIVE_SECONDS", "0.2")
    monkeypatch.setenv("THREADLINE_SHUTDOWN_GRACE_SECONDS", "0")

    settings = Settings.from_env()

    assert settings.stream_keepalive_seconds == 0.2
    assert settings.shutdown_grace_seconds == 0


def test_the_connections_file_is_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADLINE_CONNECTIONS_FILE", raising=False)
    assert Settings.from_env().connections_file is None

    monkeypatch.setenv("THREADLINE_CONNECTIONS_FILE", "/etc/threadline/connections.toml")

    assert Settings.from_env().connections_file == "/etc/threadline/connections.toml"
