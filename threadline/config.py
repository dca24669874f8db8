"""Settings, read once from the environment at start and validated then.

The variable names are a contract with users (see DESIGN.md): they do not change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from threadline.domain import limits as default


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, default: float, *, positive: bool = False) -> float:
    """`positive` for the intervals a loop waits: at 0 the loop would spin."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {value}")
    if positive and value == 0:
        raise SystemExit(f"{name} must be above 0")
    return value


def _switch(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SystemExit(f"{name} must be on or off, got {raw!r}")


def _keys(raw: str | None) -> tuple[str, ...]:
    """Unset: no keys from the environment. Set, it must name one: a list that holds only
    separators or spaces is a mistake, and serving without keys must be chosen explicitly."""
    if raw is None:
        return ()
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise SystemExit(
            f"THREADLINE_API_KEYS is set to {raw!r}, which names no key. Give one or more "
            "keys separated by commas; to serve without keys, unset it (or pass --no-auth)."
        )
    return keys


def _endpoint_url(name: str) -> str | None:
    raw = os.environ.get(name) or None
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise SystemExit(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw


_S3_DETAILS = (
    "THREADLINE_FILES_S3_PREFIX",
    "THREADLINE_FILES_S3_ENDPOINT_URL",
    "THREADLINE_FILES_S3_REGION",
)


def _check_files_settings() -> None:
    """The S3 settings take effect only with a bucket, and the files directory only without
    one: a setting that would be silently ignored is refused, so that files never land in a
    place the operator did not mean."""
    env = os.environ
    if env.get("THREADLINE_FILES_S3_BUCKET"):
        if env.get("THREADLINE_FILES_DIR"):
            raise SystemExit(
                "THREADLINE_FILES_DIR and THREADLINE_FILES_S3_BUCKET are both set: files are "
                "kept in one place. Unset one of them."
            )
        return
    for name in _S3_DETAILS:
        if env.get(name):
            raise SystemExit(
                f"{name} is set but THREADLINE_FILES_S3_BUCKET is not: set the bucket to keep "
                "files in an S3-compatible store, or unset it to keep them in a local directory."
            )


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./threadline.db"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    # A TOML file routing model names to providers (README, "Models"); read by
    # `providers.registry` at start.
    models_file: str | None = None
    run_expiry_seconds: int = 600
    api_keys: tuple[str, ...] = field(default_factory=tuple)
    # False only by `serve --no-auth`: no key is asked for, even if keys are stored.
    auth: bool = True
    key_refresh_seconds: float = 1.0
    provider_max_retries: int = 4
    provider_timeout_seconds: float = 120.0
    provider_context_window: int = 128_000
    worker_concurrency: int = 256
    lease_seconds: float = 30.0
    poll_after_ms: int = 100
    sweep_interval_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    database_pool_size: int = 5
    event_retention_seconds: float = 86_400.0
    delta_interval_ms: int = 100
    stream_keepalive_seconds: float = 15.0
    # What one request may carry (README, "Limits"); the defaults are the hosted API's where
    # it documents one.
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    request_read_timeout_seconds: float = 30.0
    max_message_chars: int = default.MAX_MESSAGE_CHARS
    max_content_parts: int = default.MAX_CONTENT_PARTS
    max_instructions_chars: int = default.MAX_INSTRUCTIONS_CHARS
    max_function_bytes: int = default.MAX_FUNCTION_BYTES
    max_tools: int = default.MAX_TOOLS
    max_messages_per_thread: int = default.MAX_MESSAGES_PER_THREAD
    # Tools the service runs itself (README, "Tools").
    max_tool_rounds: int = 20
    tool_timeout_seconds: float = 60.0
    max_tool_output_chars: int = default.MAX_MESSAGE_CHARS
    max_agent_depth: int = 3
    # The TOML file of connections OpenAPI tools authenticate with (`tools.connections`).
    connections_file: str | None = None
    # Where uploaded files' bytes live (`store.blobs`): a local directory (None: the default
    # of `files_directory`), or an S3-compatible bucket that must already exist. S3
    # credentials come from the standard AWS environment variables and config files, never
    # from here or from the database.
    files_dir: str | None = None
    files_s3_bucket: str | None = None
    files_s3_prefix: str = ""
    files_s3_endpoint_url: str | None = None
    files_s3_region: str | None = None
    # The largest file one upload may carry (the hosted API's limit).
    max_file_bytes: int = 512 * 1024 * 1024
    # Files a worker ingests into vector stores at once (CPU work: parsing and embedding).
    ingest_concurrency: int = 1
    # The model file_search embeds with, routed like a chat model's name to an upstream's
    # `/embeddings` (`providers.embedders.select`); None: the bundled embedding model.
    embedding_model: str | None = None
    # The code_interpreter tool (README, "The code interpreter"): off refuses it; its
    # sandboxes' lifetime and number per worker, and what each may use.
    code_interpreter: bool = True
    code_idle_seconds: float = 600.0
    code_max_sandboxes: int = 8
    code_cpu_seconds: int = 30
    code_wall_seconds: float = 45.0
    code_memory_mb: int = 1024
    code_max_processes: int = 64
    code_max_open_files: int = 256
    code_max_output_bytes: int = 256 * 1024
    code_scratch_mb: int = 256

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        _check_files_settings()
        return cls(
            database_url=env.get("THREADLINE_DATABASE_URL") or cls.database_url,
            openai_base_url=env.get("THREADLINE_OPENAI_BASE_URL") or None,
            openai_api_key=env.get("THREADLINE_OPENAI_API_KEY") or None,
            models_file=env.get("THREADLINE_MODELS_FILE") or None,
            run_expiry_seconds=_int("THREADLINE_RUN_EXPIRY_SECONDS", cls.run_expiry_seconds),
            api_keys=_keys(env.get("THREADLINE_API_KEYS")),
            key_refresh_seconds=_float(
                "THREADLINE_KEY_REFRESH_SECONDS", cls.key_refresh_seconds, positive=True
            ),
            provider_max_retries=_int(
                "THREADLINE_PROVIDER_MAX_RETRIES", cls.provider_max_retries, minimum=0
            ),
            provider_timeout_seconds=_float(
                "THREADLINE_PROVIDER_TIMEOUT_SECONDS", cls.provider_timeout_seconds
            ),
            provider_context_window=_int(
                "THREADLINE_PROVIDER_CONTEXT_WINDOW", cls.provider_context_window
            ),
            worker_concurrency=_int("THREADLINE_WORKER_CONCURRENCY", cls.worker_concurrency),
            lease_seconds=_float("THREADLINE_LEASE_SECONDS", cls.lease_seconds, positive=True),
            poll_after_ms=_int("THREADLINE_POLL_AFTER_MS", cls.poll_after_ms),
            sweep_interval_seconds=_float(
                "THREADLINE_SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds, positive=True
            ),
            database_pool_size=_int("THREADLINE_DATABASE_POOL_SIZE", cls.database_pool_size),
            event_retention_seconds=_float(
                "THREADLINE_EVENT_RETENTION_SECONDS", cls.event_retention_seconds
            ),
            delta_interval_ms=_int(
                "THREADLINE_DELTA_INTERVAL_MS", cls.delta_interval_ms, minimum=0
            ),
            shutdown_grace_seconds=_float(
                "THREADLINE_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds
            ),
            stream_keepalive_seconds=_float(
                "THREADLINE_STREAM_KEEPALIVE_SECONDS", cls.stream_keepalive_seconds, positive=True
            ),
            max_body_bytes=_int("THREADLINE_MAX_BODY_BYTES", cls.max_body_bytes),
            max_header_bytes=_int("THREADLINE_MAX_HEADER_BYTES", cls.max_header_bytes),
            max_header_count=_int("THREADLINE_MAX_HEADER_COUNT", cls.max_header_count),
            request_read_timeout_seconds=_float(
                "THREADLINE_REQUEST_READ_TIMEOUT_SECONDS",
                cls.request_read_timeout_seconds,
                positive=True,
            ),
            max_message_chars=_int("THREADLINE_MAX_MESSAGE_CHARS", cls.max_message_chars),
            max_content_parts=_int("THREADLINE_MAX_CONTENT_PARTS", cls.max_content_parts),
            max_instructions_chars=_int(
                "THREADLINE_MAX_INSTRUCTIONS_CHARS", cls.max_instructions_chars
            ),
            max_function_bytes=_int("THREADLINE_MAX_FUNCTION_BYTES", cls.max_function_bytes),
            max_tools=_int("THREADLINE_MAX_TOOLS", cls.max_tools),
            max_messages_per_thread=_int(
                "THREADLINE_MAX_MESSAGES_PER_THREAD", cls.max_messages_per_thread
            ),
            max_tool_rounds=_int("THREADLINE_MAX_TOOL_ROUNDS", cls.max_tool_rounds),
            tool_timeout_seconds=_float(
                "THREADLINE_TOOL_TIMEOUT_SECONDS", cls.tool_timeout_seconds, positive=True
            ),
            max_tool_output_chars=_int(
                "THREADLINE_MAX_TOOL_OUTPUT_CHARS", cls.max_tool_output_chars
            ),
            connections_file=env.get("THREADLINE_CONNECTIONS_FILE") or None,
            max_agent_depth=_int("THREADLINE_MAX_AGENT_DEPTH", cls.max_agent_depth),
            files_dir=env.get("THREADLINE_FILES_DIR") or None,
            files_s3_bucket=env.get("THREADLINE_FILES_S3_BUCKET") or None,
            files_s3_prefix=env.get("THREADLINE_FILES_S3_PREFIX") or "",
            files_s3_endpoint_url=_endpoint_url("THREADLINE_FILES_S3_ENDPOINT_URL"),
            files_s3_region=env.get("THREADLINE_FILES_S3_REGION") or None,
            max_file_bytes=_int("THREADLINE_MAX_FILE_BYTES", cls.max_file_bytes),
            ingest_concurrency=_int("THREADLINE_INGEST_CONCURRENCY", cls.ingest_concurrency),
            embedding_model=(env.get("THREADLINE_EMBEDDING_MODEL") or "").strip() or None,
            code_interpreter=_switch("THREADLINE_CODE_INTERPRETER", cls.code_interpreter),
            code_idle_seconds=_float(
                "THREADLINE_CODE_IDLE_SECONDS", cls.code_idle_seconds, positive=True
            ),
            code_max_sandboxes=_int("THREADLINE_CODE_MAX_SANDBOXES", cls.code_max_sandboxes),
            code_cpu_seconds=_int("THREADLINE_CODE_CPU_SECONDS", cls.code_cpu_seconds),
            code_wall_seconds=_float(
                "THREADLINE_CODE_WALL_SECONDS", cls.code_wall_seconds, positive=True
            ),
            code_memory_mb=_int("THREADLINE_CODE_MEMORY_MB", cls.code_memory_mb, minimum=64),
            code_max_processes=_int("THREADLINE_CODE_MAX_PROCESSES", cls.code_max_processes),
            code_max_open_files=_int(
                "THREADLINE_CODE_MAX_OPEN_FILES", cls.code_max_open_files, minimum=16
            ),
            code_max_output_bytes=_int(
                "THREADLINE_CODE_MAX_OUTPUT_BYTES", cls.code_max_output_bytes
            ),
            code_scratch_mb=_int("THREADLINE_CODE_SCRATCH_MB", cls.code_scratch_mb),
        )

    def limits(self) -> default.Limits:
        """The limits the services check requests against."""
        return default.Limits(
            message_chars=self.max_message_chars,
            content_parts=self.max_content_parts,
            instructions_chars=self.max_instructions_chars,
            function_bytes=self.max_function_bytes,
            tools=self.max_tools,
            messages_per_thread=self.max_messages_per_thread,
        )

    def with_database(self, url: str | None) -> Settings:
        return self if url is None else replace(self, database_url=url)

    def files_directory(self) -> Path:
        """The local blob store's directory: `THREADLINE_FILES_DIR`, else a `threadline-files`
        folder beside the SQLite database file (so that a laptop's data stays together), else
        `./threadline-files`. Worked out when asked rather than at start, so that the
        default follows a database chosen later (`with_database`)."""
        if self.files_dir:
            return Path(self.files_dir)
        # Imported here: it brings SQLAlchemy, which reading the settings does not need.
        from threadline.store.engine import is_sqlite, sqlite_file

        if is_sqlite(self.database_url):
            database = sqlite_file(self.database_url)
            if database is not None:
                return Path(database).parent / "threadline-files"
        return Path("threadline-files")
