"""A real S3-compatible server for the tests: moto's `moto_server` (the `moto[server]` test
dependency) as a process of its own on a free loopback port.

    with S3Server() as s3:
        s3.create_bucket("files")
        store = S3BlobStore("files", endpoint_url=s3.endpoint_url, region=s3.region)

The store under test finds its credentials the way it does in production, in the standard
AWS environment variables: `aws_env` holds the (meaningless) ones this server accepts, and
points the AWS config files at nothing so that the machine's own settings stay out of the
tests; set it with `monkeypatch.setenv`, or pass `environment()` to a process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import boto3  # type: ignore[import-untyped]
import httpx

from support.server import free_port, stop_gracefully

_START_TIMEOUT = 30.0


class S3Server:
    region = "us-east-1"
    aws_env: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "threadline-test",
        "AWS_SECRET_ACCESS_KEY": "threadline-test-secret",
        # Set too, so that a session token from the machine's own environment is not sent.
        "AWS_SESSION_TOKEN": "threadline-test-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def __init__(self, log_path: Path | None = None):
        """`log_path` keeps the server's output (by default it is discarded)."""
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._session: Any = None
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        # `python -m moto.server` is what the `moto_server` script runs, found beside the
        # interpreter whether or not the venv is activated.
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        finally:
            if not isinstance(log, int):
                log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop_gracefully(self.process, timeout=5)
        self.process = None

    def session(self) -> Any:
        """A boto3 session holding this server's credentials. Sharing one between stores
        saves each the tenth of a second a new session takes to load S3's description."""
        if self._session is None:
            self._session = boto3.session.Session(
                aws_access_key_id=self.aws_env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.aws_env["AWS_SECRET_ACCESS_KEY"],
                region_name=self.region,
            )
        return self._session

    def client(self) -> Any:
        """A boto3 S3 client of the test's own, to look at the bucket beside the store."""
        if self._client is None:
            self._client = self.session().client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (a fresh name unless one is given); returns its name."""
        name = name or f"threadline-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def environment(self) -> dict[str, str]:
        """`os.environ` with this server's credentials and region, for a child process."""
        return {**os.environ, **self.aws_env, "AWS_DEFAULT_REGION": self.region}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
