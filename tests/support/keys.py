"""The `threadline keys` command, run as its users run it: a process of its own against the
server's database, while the server runs."""

from __future__ import annotations

import os
import subprocess
import sys


def keys_command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THREADLINE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_key(database_url: str, *scope: str) -> tuple[str, str]:
    """(key id, secret) of a new key; `scope` is `--project P ...` or `--all-projects`."""
    made = keys_command(database_url, "create", *scope)
    assert made.returncode == 0, made.stderr
    first, secret = made.stdout.strip().splitlines()[-2:]
    key_id = first.split()[1]
    assert key_id.startswith("key_") and secret.startswith("tl-"), made.stdout
    return key_id, secret
