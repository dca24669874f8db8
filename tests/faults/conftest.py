"""What the fault tests share: a cluster of API and worker processes on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import Cluster
from support.live import TEST_SERVER_ENV
from support.postgres import PostgresDatabases
from support.scripted_model import ScriptedModelServer


@pytest.fixture
def cluster(tmp_path: Path, scripted_model: ScriptedModelServer) -> Iterator[Cluster]:
    """API and worker processes on a PostgreSQL database of the test's own (workers need
    PostgreSQL: on SQLite the server's own worker is the only one)."""
    databases = PostgresDatabases("threadline_fault")
    env = {**TEST_SERVER_ENV, "THREADLINE_OPENAI_BASE_URL": scripted_model.base_url}
    cluster = Cluster(databases.create(), tmp_path, env)
    try:
        yield cluster
    finally:
        cluster.stop()
        databases.drop_all()
