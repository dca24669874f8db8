"""API keys kept in the database and scoped to projects, made and revoked by `threadline keys`
while servers run; and the key settings a server refuses at start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import openai
import pytest
from support.keys import create_key, keys_command
from support.live import ServerFactory
from support.server import ServerProcess

# Short, so that a revoked key is refused soon; tests still wait for it, never for a time.
REFRESH = {"THREADLINE_KEY_REFRESH_SECONDS": "0.2"}


def _client(server: ServerProcess, key: str, project: str | None = None) -> openai.OpenAI:
    if project is None:
        return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    return openai.OpenAI(
        base_url=f"{server.url}/api/projects/{project}",
        api_key=key,
        max_retries=0,
        default_query={"api-version": "v1"},
    )


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Waits for something that must happen (a key taking effect), never for a time."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still not: {what}"
        time.sleep(0.02)


def _status_without_key(server: ServerProcess) -> int:
    return httpx.get(f"{server.base_url}/assistants").status_code


def _status_with_key(server: ServerProcess, secret: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.get(f"{server.base_url}/assistants", headers=headers).status_code


@pytest.mark.parametrize("value", [",", " , ", "", " "])
def test_a_key_list_that_names_no_key_stops_the_server_at_start(value: str) -> None:
    env = {**os.environ, "THREADLINE_API_KEYS": value}
    started = subprocess.run(
        [sys.executable, "-m", "threadline.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.returncode != 0
    assert "THREADLINE_API_KEYS" in started.stderr and "names no key" in started.stderr


def test_a_key_made_while_the_server_runs_closes_it_to_requests_without_one(
    start_server: ServerFactory,
) -> None:
    server = start_server(**REFRESH)
    assert _status_without_key(server) == 200  # no key anywhere: open, as it warned at start
    assert "No API key is set" in server.log_path.read_text()

    _, admin = create_key(server.database_url, "--all-projects")

    _eventually(lambda: _status_without_key(server) == 401, "requests without a key refused")
    assert _client(server, admin).beta.assistants.list().data == []
    with pytest.raises(openai.AuthenticationError) as refused:
        _client(server, "tl-not-a-key").beta.assistants.list()
    assert refused.value.code == "invalid_api_key"


def test_a_scoped_key_reaches_its_projects_only(start_server: ServerFactory) -> None:
    server = start_server(**REFRESH)
    _, admin = create_key(server.database_url, "--all-projects")
    _, alpha = create_key(server.database_url, "--project", "alpha", "--name", "team alpha")
    _, beta = create_key(server.database_url, "--project", "beta")
    thread = _client(server, admin, "alpha").beta.threads.create(metadata={"team": "alpha"})

    assert _client(server, alpha, "alpha").beta.threads.retrieve(thread.id).id == thread.id
    for key, project in ((beta, "alpha"), (alpha, None), (alpha, "gamma")):
        denied = _client(server, key, project)
        with pytest.raises(openai.NotFoundError) as refused:
            denied.beta.threads.retrieve(thread.id)
        # The same answer for an object that exists and for one that does not.
        with pytest.raises(openai.NotFoundError) as refused_missing:
            denied.beta.threads.retrieve("thread_missing")
        assert refused.value.body == refused_missing.value.body
        with pytest.raises(openai.NotFoundError):
            denied.beta.threads.create()
    # Nothing was made in a project the key does not hold.
    assert _client(server, admin, "gamma").beta.assistants.list().data == []
    assert _client(server, beta, "beta").beta.assistants.list().data == []


def test_a_revoked_key_stops_working_and_the_list_never_shows_a_secret(
    start_server: ServerFactory,
) -> None:
    server = start_server(**REFRESH)
    _, admin = create_key(server.database_url, "--all-projects")
    key_id, secret = create_key(server.database_url, "--project", "default")
    assert _client(server, secret).beta.assistants.list().data == []

    revoked = keys_command(server.database_url, "revoke", key_id)

    assert revoked.returncode == 0, revoked.stderr
    _eventually(lambda: _status_with_key(server, secret) == 401, "the revoked key refused")
    assert _client(server, admin).beta.assistants.list().data == []
    listed = keys_command(server.database_url, "list")
    assert listed.returncode == 0
    assert key_id in listed.stdout and "revoked" in listed.stdout
    assert secret not in listed.stdout and admin not in listed.stdout
    again = keys_command(server.database_url, "revoke", key_id)
    assert again.returncode == 1 and "No key in force" in again.stderr


def test_keys_are_stored_hashed(start_server: ServerFactory) -> None:
    server = start_server()
    _, secret = create_key(server.database_url, "--project", "alpha")
    if server.database_url.startswith("sqlite"):
        path = server.database_url.removeprefix("sqlite:///")
        with open(path, "rb") as database:
            assert secret.encode() not in database.read()
    listed = keys_command(server.database_url, "list")
    assert secret not in listed.stdout


def test_a_key_needs_a_valid_project(start_server: ServerFactory) -> None:
    server = start_server()
    made = keys_command(server.database_url, "create", "--project", "bad\nname")

    assert made.returncode != 0 and "Invalid project name" in made.stderr
    assert "key_" not in keys_command(server.database_url, "list").stdout


def test_no_auth_serves_without_keys_and_says_so(start_server: ServerFactory) -> None:
    server = start_server(THREADLINE_API_KEYS="a-key")
    assert _status_without_key(server) == 401
    server.stop()
    server.args = ("--no-auth",)
    server.start()

    assert _status_without_key(server) == 200
    assert "--no-auth" in server.log_path.read_text()


def test_a_project_name_matches_whole(start_server: ServerFactory) -> None:
    server = start_server()
    answer = httpx.post(f"{server.url}/api/projects/alpha%0A/threads?api-version=v1", json={})

    assert answer.status_code == 400 and answer.json()["error"]["param"] == "project"


def test_revoking_the_last_key_closes_the_server_rather_than_opening_it(
    start_server: ServerFactory,
) -> None:
    """A leaked key revoked in a hurry must not leave the server serving everyone."""
    server = start_server(**REFRESH)
    key_id, secret = create_key(server.database_url, "--all-projects")
    _eventually(lambda: _status_without_key(server) == 401, "requests without a key refused")

    revoked = keys_command(server.database_url, "revoke", key_id)

    assert revoked.returncode == 0 and "No key is in force now" in revoked.stderr
    _eventually(lambda: _status_with_key(server, secret) == 401, "the revoked key refused")
    server.restart()
    assert _status_without_key(server) == 401
