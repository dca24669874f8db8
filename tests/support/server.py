"""Runs `threadline serve` as a real process on a loopback port, as users run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

_START_TIMEOUT = 60.0


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A `threadline serve` process; `restart()` keeps its port and database."""

    def __init__(
        self,
        database_url: str,
        env: dict[str, str],
        log_path: Path,
        tls: tuple[Path, Path] | None = None,
        ca_file: Path | None = None,
        args: tuple[str, ...] = (),
    ):
        """`tls` is (certificate, key) to serve HTTPS; `ca_file` verifies it when polling;
        `args` go to `threadline serve` as they are (e.g. `--no-worker`)."""
        self.args = args
        self.database_url = database_url
        self.env = env
        self.log_path = log_path
        self.tls = tls
        self.verify: str | bool = str(ca_file) if ca_file else True
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def files_dir(self) -> Path:
        return self.log_path.parent / f"{self.log_path.stem}-files"

    def start(self) -> None:
        env = {**os.environ, **self.env, "THREADLINE_DATABASE_URL": self.database_url}
        if "THREADLINE_FILES_DIR" not in env and "THREADLINE_FILES_S3_BUCKET" not in env:
            # Beside its log, never in the checkout (a PostgreSQL server's default is ./).
            env["THREADLINE_FILES_DIR"] = str(self.files_dir)
        command = [sys.executable, "-m", "threadline.cli", "serve", "--port", str(self.port)]
        if self.tls:
            command += ["--ssl-certfile", str(self.tls[0]), "--ssl-keyfile", str(self.tls[1])]
        command += self.args
        logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            if not self._listening_since(logged_before):
                time.sleep(0.05)
                continue
            try:
                health = httpx.get(f"{self.url}/health", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def _listening_since(self, offset: int) -> bool:
        """Whether this process has bound its port, as its log says. The port was free when
        chosen, but another process (another test worker's server) may have taken it since:
        then this one fails to bind and exits, and until it does, that other server would
        answer the health check in its place."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return b"Uvicorn running on" in log.read()

    def stop(self) -> None:
        if self.process is not None:
            stop_gracefully(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine or container dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

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


class WorkerProcess:
    """A `threadline worker` process (PostgreSQL only)."""

    def __init__(self, database_url: str, env: dict[str, str], log_path: Path):
        self.database_url = database_url
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        env = {**os.environ, **self.env, "THREADLINE_DATABASE_URL": self.database_url}
        command = [sys.executable, "-m", "threadline.cli", "worker"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + _START_TIMEOUT
        while "carrying up to" not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None
