"""A cluster of real API and worker processes sharing one PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

from support.server import ServerProcess, WorkerProcess

# Short leases so a dead worker's runs are taken over within seconds.
CLUSTER_ENV = {"THREADLINE_LEASE_SECONDS": "2"}


class Cluster:
    """API processes without workers, and worker processes, sharing one database."""

    def __init__(self, database_url: str, folder: Path, env: dict[str, str]):
        self.database_url = database_url
        self.folder = folder
        # Uploads an API process stores are read by the workers that ingest them.
        self.env = {"THREADLINE_FILES_DIR": str(folder / "files"), **env, **CLUSTER_ENV}
        self.apis: list[ServerProcess] = []
        self.workers: list[WorkerProcess] = []

    def api(self) -> ServerProcess:
        log = self.folder / f"api{len(self.apis)}.log"
        process = ServerProcess(self.database_url, self.env, log, args=("--no-worker",))
        self.apis.append(process)
        process.start()
        return process

    def worker(self, **env: str) -> WorkerProcess:
        log = self.folder / f"worker{len(self.workers)}.log"
        process = WorkerProcess(self.database_url, {**self.env, **env}, log)
        self.workers.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()
        for api in self.apis:
            api.stop()
