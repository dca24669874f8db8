"""The process inside a sandbox: runs the code a model wrote, one call after another, in one
namespace, so variables, imports and files live on between calls (as a notebook's kernel).

It is started by `sandbox.py` inside bubblewrap and imports nothing of the service: the
sandbox shows it this file alone. It talks over its first stdin and stdout, in frames (a
4-byte big-endian length, then JSON); what the code prints, and what its child processes
write to their stdout and stderr, goes to a file of the sandbox's own `/tmp`, read back after
each call. A frame it sends is only ever a report of the call it was asked to make: the
service checks every field of it, so code that writes frames of its own forges nothing but
its own call's report.

Limits it sets on itself before any code runs (the service kills the whole sandbox at the
wall-time limit, which nothing in here can lift): memory (address space), processes, open
files and the size of any file written; CPU time is counted per call from where the last one
left it. A breach raises inside the code's call, where the model sees it in the traceback.

Nothing the code starts outlives its call: the processes it left are killed and reaped when
the call ends (else they would run on past the call's CPU and wall-time limits, and their
zombies would hold places under the process limit for good). The kernel is their subreaper,
so those whose parent is gone are its to reap too. Between calls the kernel waits and spends
no CPU time; a thread the code left running would, so it gets a call's CPU budget and then
SIGXCPU's default action ends the kernel (the service reports the sandbox stopped).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import ctypes
import io
import json
import os
import resource
import signal
import stat
import struct
import sys
import traceback
import warnings
from typing import Any

SCRATCH = "/mnt/data"
OUTPUT_FILE = "/tmp/.call-output"
FONT_CACHE = "/opt/threadline/matplotlib"
UNPRIVILEGED = 65534
MAX_REPORTED_FILES = 50
_PR_SET_CHILD_SUBREAPER = 36
_HEADER = struct.Struct(">I")


class LimitReached(BaseException):
    """A limit of the call was reached. A BaseException, so code that catches `Exception`
    does not swallow it."""


class _CappedOutput(io.TextIOBase):
    """sys.stdout and sys.stderr during a call: written straight to the call's output file,
    so prints and child processes' output stay in order, up to the output limit."""

    def __init__(self, fd: int, limit: int, counter: list[int]) -> None:
        self._fd = fd
        self._limit = limit
        self._counter = counter  # shared by stdout and stderr

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        room = self._limit - self._counter[0]
        if len(data) > room:
            os.write(self._fd, data[: max(room, 0)])
            self._counter[0] = self._limit
            raise LimitReached(f"killed: output limit {_size(self._limit)} reached")
        os.write(self._fd, data)
        self._counter[0] += len(data)
        return len(text)

    def flush(self) -> None:
        return None


def _size(count: int) -> str:
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MB"
    if count >= 1 << 10 and count % (1 << 10) == 0:
        return f"{count >> 10} KB"
    return f"{count} bytes"


class Kernel:
    def __init__(self, limits: dict[str, Any], reader: Any, writer: Any) -> None:
        self.limits = limits
        self.reader = reader
        self.writer = writer
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.seen = self._snapshot()

    # -- frames --------------------------------------------------------------------------
    def receive(self) -> dict[str, Any] | None:
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        body = self._read_exactly(length)
        if body is None:
            return None
        request: dict[str, Any] = json.loads(body)
        return request

    def _read_exactly(self, count: int) -> bytes | None:
        chunks = []
        while count:
            chunk = self.reader.read(count)
            if not chunk:
                return None
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def send(self, reply: dict[str, Any]) -> None:
        body = json.dumps(reply).encode()
        self.writer.write(_HEADER.pack(len(body)) + body)
        self.writer.flush()

    # -- requests ------------------------------------------------------------------------
    def serve(self) -> None:
        self._idle_cpu_budget()
        while (request := self.receive()) is not None:
            op = request.get("op")
            if op == "run":
                self.send(self.run(str(request["code"])))
            elif op == "put":
                self.send(self.put(str(request["path"]), base64.b64decode(request["data"])))
            else:
                self.send({"ok": True})
            self._idle_cpu_budget()

    def put(self, path: str, data: bytes) -> dict[str, Any]:
        target = os.path.normpath(os.path.join(SCRATCH, path))
        if not target.startswith(SCRATCH + "/"):
            return {"ok": False, "error": f"not a path in {SCRATCH}: {path!r}"}
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb", opener=_no_follow) as out:
            out.write(data)
        self.seen = self._snapshot()
        return {"ok": True}

    def run(self, code: str) -> dict[str, Any]:
        fd = os.open(OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        saved = (os.dup(1), os.dup(2))
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        counter = [0]
        limit = int(self.limits["output_bytes"])
        old_streams = (sys.stdout, sys.stderr)
        sys.stdout = _CappedOutput(1, limit, counter)
        sys.stderr = _CappedOutput(2, limit, counter)
        error = None
        self._start_cpu_budget()
        try:
            self._execute(code)
        except BaseException as raised:  # everything the code raises is its answer
            error = self._explain(raised)
        finally:
            self._stop_cpu_budget()
            sys.stdout, sys.stderr = old_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            _end_leftovers()
        images = self._figures()
        files, removed, skipped = self._changes()
        return {
            "ok": True,
            "output": self._read_output(limit),
            "error": error,
            "images": images,
            "files": files,
            "removed": removed,
            "skipped": skipped,
        }

    def _execute(self, code: str) -> None:
        tree = ast.parse(code, "<code>", "exec")
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            body = ast.Module(body=tree.body[:-1], type_ignores=[])
            exec(compile(body, "<code>", "exec"), self.namespace)
            value = eval(compile(ast.Expression(last.value), "<code>", "eval"), self.namespace)
            if value is not None:
                print(repr(value))
        else:
            exec(compile(tree, "<code>", "exec"), self.namespace)

    def _explain(self, raised: BaseException) -> str:
        if isinstance(raised, LimitReached):
            return str(raised)
        if isinstance(raised, MemoryError):
            return (
                f"MemoryError: killed: memory limit {self.limits['memory_mb']} MB reached"
                " (the sandbox's limit)"
            )
        lines = traceback.format_exception(type(raised), raised, raised.__traceback__)
        # The kernel's own frames say nothing about the code: keep those of `<code>` on.
        kept = [lines[0]] + [line for line in lines[1:] if "kernel.py" not in line]
        return "".join(kept).rstrip()

    # -- CPU time, per call --------------------------------------------------------------
    def _start_cpu_budget(self) -> None:
        signal.signal(signal.SIGXCPU, _on_cpu_limit)
        self._cpu_budget_from_now()

    def _stop_cpu_budget(self) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))

    def _idle_cpu_budget(self) -> None:
        """While it waits for a call: a Python handler would run only once a call came, so
        SIGXCPU ends the process, whichever thread spent the time."""
        self._cpu_budget_from_now()
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)

    def _cpu_budget_from_now(self) -> None:
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = int(spent + float(self.limits["cpu_seconds"])) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    # -- what the call left -------------------------------------------------------------
    def _read_output(self, limit: int) -> str:
        with open(OUTPUT_FILE, "rb") as done:
            data = done.read(limit + 1)
        os.unlink(OUTPUT_FILE)
        text = data[:limit].decode("utf-8", "replace")
        if len(data) > limit:
            text += f"\n[output cut at the limit of {_size(limit)}]"
        return text

    def _figures(self) -> list[str]:
        """Open matplotlib figures, as PNGs, then closed: shown at the end of a call, as a
        notebook shows them."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return []
        images = []
        try:
            for number in pyplot.get_fignums():
                buffer = io.BytesIO()
                pyplot.figure(number).savefig(buffer, format="png")
                images.append(base64.b64encode(buffer.getvalue()).decode())
        finally:
            pyplot.close("all")
        return images

    def _snapshot(self) -> dict[str, tuple[int, int, int]]:
        found: dict[str, tuple[int, int, int]] = {}
        for folder, dirs, names in os.walk(SCRATCH):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                path = os.path.join(folder, name)
                try:
                    status = os.lstat(path)
                except OSError:
                    continue
                relative = os.path.relpath(path, SCRATCH)
                found[relative] = (status.st_size, status.st_mtime_ns, status.st_mode)
        return found

    def _changes(self) -> tuple[list[dict[str, str]], list[str], list[str]]:
        """Files the call wrote (new or changed) with their bytes, files it removed, and
        what it left that is not a plain file (a symlink is never followed out)."""
        now = self._snapshot()
        files: list[dict[str, str]] = []
        skipped: list[str] = []
        for path, status in sorted(now.items()):
            if self.seen.get(path) == status or path.startswith("."):
                continue
            if not stat.S_ISREG(status[2]):
                skipped.append(path)
                continue
            if len(files) >= MAX_REPORTED_FILES:
                skipped.append(path)
                continue
            try:
                with open(os.path.join(SCRATCH, path), "rb", opener=_no_follow) as written:
                    data = written.read()
            except OSError:
                skipped.append(path)
                continue
            files.append({"path": path, "data": base64.b64encode(data).decode()})
        removed = sorted(set(self.seen) - set(now))
        self.seen = now
        return files, removed, skipped


def _end_leftovers() -> None:
    """Kill every process of the sandbox but the kernel (kill(-1) reaches no further than
    its process namespace, and spares its init) and reap them all: the kernel is their
    subreaper. Killed again before each reap: a thread the code left could fork meanwhile."""
    while True:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _on_cpu_limit(signum: int, frame: Any) -> None:
    raise LimitReached("killed: CPU time limit reached")


def _drop_privileges() -> None:
    """Started as root of its own user namespace (the service ran as root), it gives the
    scratch folder to the unprivileged user and becomes that user, keeping no capability."""
    if os.getuid() != 0:
        return
    os.chown(SCRATCH, UNPRIVILEGED, UNPRIVILEGED)
    with contextlib.suppress(PermissionError):
        os.setgroups([])
    os.setgid(UNPRIVILEGED)
    os.setuid(UNPRIVILEGED)


def _copy_font_cache() -> None:
    """matplotlib's font list, made once by the service, where matplotlib looks for it."""
    target = os.environ.get("MPLCONFIGDIR")
    if not target or not os.path.isdir(FONT_CACHE):
        return
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(FONT_CACHE):
        if name.endswith(".json"):
            with open(os.path.join(FONT_CACHE, name), "rb") as source:
                data = source.read()
            with open(os.path.join(target, name), "wb") as copy:
                copy.write(data)


def _limit_self(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    processes = int(limits["processes"])
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    files = int(limits["open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    largest = int(limits["scratch_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest, largest))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Orphans of the code's processes become the kernel's children, for `_end_leftovers`.
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    # Writing past RLIMIT_FSIZE is an error (EFBIG) the code sees, not a signal that kills.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main() -> None:
    limits = json.loads(sys.argv[1])
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    writer = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    try:
        _drop_privileges()
        _copy_font_cache()
        _limit_self(limits)
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        os.chdir(SCRATCH)
        kernel = Kernel(limits, reader, writer)
    except Exception:  # said to the service, which says why no sandbox started
        body = json.dumps({"ok": False, "error": traceback.format_exc()}).encode()
        writer.write(_HEADER.pack(len(body)) + body)
        return
    kernel.send({"ok": True, "ready": True})
    kernel.serve()


if __name__ == "__main__":
    main()
