"""Run the benchmarks and write `bench/RESULTS.md`.

    python -m bench.run [--size tiny|full] [--only NAME ...] [--output PATH] [--json PATH]

`make bench` runs the full size. Each measurement starts the processes it needs and stops them
when it is done; a measurement that fails is reported as failed in the results, the others
still run, and the command then exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path

from bench import (
    append,
    big_bodies,
    big_thread,
    code_interpreter,
    file_search,
    local_model,
    long_reply,
    many_runs,
    overhead,
    responses,
    streaming,
    tool_rounds,
    turns,
    workers,
)
from bench.common import ROOT, SIZES, Section
from bench.harness import Bench
from bench.machine import code_version, describe, pace_ms
from bench.model_server import ModelServer

Measurement = Callable[[Bench], Coroutine[None, None, Section]]

MEASUREMENTS: dict[str, Measurement] = {
    "turns": turns.measure,
    "overhead": overhead.measure,
    "append": append.measure,
    "big_thread": big_thread.measure,
    "many_runs": many_runs.measure,
    "local_model": local_model.measure,
    "streaming": streaming.measure,
    "workers": workers.measure,
    "big_bodies": big_bodies.measure,
    "long_reply": long_reply.measure,
    "tool_rounds": tool_rounds.measure,
    "file_search": file_search.measure,
    "code_interpreter": code_interpreter.measure,
    "responses": responses.measure,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", nargs="+", choices=list(MEASUREMENTS), metavar="NAME")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the Markdown goes (default: bench/RESULTS.md; bench/RESULTS-tiny.md for tiny)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--code-version",
        default=None,
        help="what code is measured, for a tree that is not this git checkout (default: git)",
    )
    return parser


def _run_one(name: str, measurement: Measurement, bench: Bench) -> Section:
    print(f"[bench] {name} ...", flush=True)
    started = time.perf_counter()
    try:
        section: Section = asyncio.run(measurement(bench))
    except Exception as exc:
        section = Section(name, name, error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    section.seconds = time.perf_counter() - started
    for figure in section.figures:
        verdict = f"  [{figure.verdict()}]" if figure.ok is not None else ""
        print(f"[bench]   {figure.label}: {figure.shown()}{verdict}", flush=True)
    if section.error:
        print(f"[bench]   FAILED: {section.error}", flush=True)
    print(f"[bench] {name} took {section.seconds:.1f} s", flush=True)
    return section


def _table(rows: list[list[str]]) -> list[str]:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def render(
    sections: list[Section],
    machine: list[tuple[str, str]],
    command: str,
    size: str,
    when: datetime.datetime,
    seconds: float,
    version: str,
) -> str:
    lines = [
        "# Threadline benchmarks",
        "",
        "Written by the harness (`bench/run.py`); do not edit by hand. See `bench/README.md`.",
        "",
        f"- Date: {when.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command}` (size `{size}`;"
        " `make bench` runs `.venv/bin/python -m bench.run`)",
        f"- Code measured: {version}",
        f"- Wall time of the whole run: {seconds:.0f} s",
        "",
        "## Machine",
        "",
        *_table([["", ""], *[[key, value] for key, value in machine]]),
        "",
        "## Summary: the figures the issue sets targets for",
        "",
    ]
    rows = [["figure", "measured", "floor / reference", "target", ""]]
    for section in sections:
        for figure in section.figures:
            if figure.ok is not None:
                rows.append(
                    [figure.label, figure.shown(), figure.floor, figure.target, figure.verdict()]
                )
        if section.error:
            rows.append([section.title, "failed", "", "", "**failed**"])
    lines += [*_table(rows), ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.error:
            lines += [f"**This measurement failed:** `{section.error}`", ""]
        lines += [f"- {line}" for line in section.method]
        lines.append("")
        if section.figures:
            rows = [["figure", "measured", "floor / reference", "target", ""]]
            rows += [[f.label, f.shown(), f.floor, f.target, f.verdict()] for f in section.figures]
            lines += [*_table(rows), ""]
        if section.notes:
            lines += [f"- {note}" for note in section.notes]
            lines.append("")
        lines += [f"_Measured in {section.seconds:.0f} s._", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    size = SIZES[args.size]
    names = args.only or list(MEASUREMENTS)
    output = args.output or (
        ROOT / "bench" / ("RESULTS.md" if size.name == "full" else f"RESULTS-{size.name}.md")
    )
    command = shlex.join(
        ["python", "-m", "bench.run", *(argv if argv is not None else sys.argv[1:])]
    )
    when = datetime.datetime.now(datetime.UTC)
    version = args.code_version or code_version(ROOT)
    started = time.perf_counter()
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as scratch:
        workdir = Path(scratch)
        machine = describe(workdir)
        pace_before = pace_ms()
        with ModelServer(workdir) as model:
            bench = Bench(size=size, workdir=workdir, model=model)
            for name in names:
                sections.append(_run_one(name, MEASUREMENTS[name], bench))
        machine += sorted(bench.facts.items())
        machine.append(
            (
                "Pace (a fixed piece of Python work, `bench/machine.py`; lower is faster)",
                f"{pace_before:.1f} ms before the measurements, {pace_ms():.1f} ms after",
            )
        )
    seconds = time.perf_counter() - started
    if args.code_version is None and code_version(ROOT) != version:
        version += (
            f". **The code changed while the benchmark ran** (at the end: {code_version(ROOT)});"
            " the figures may mix both."
        )
    output.write_text(render(sections, machine, command, size.name, when, seconds, version))
    print(f"[bench] wrote {output} in {seconds:.0f} s", flush=True)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "size": size.name,
                    "date": when.isoformat(),
                    "command": command,
                    "code": version,
                    "seconds": seconds,
                    "machine": dict(machine),
                    "sections": [section.as_json() for section in sections],
                },
                indent=2,
            )
        )
    return 1 if any(section.error for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
