"""Where the Spark JVM's CPU goes, by thread: executor tasks, the JIT compilers, GC, the driver.

    python bench/jvm_threads.py [--pid PID] [--interval 5] [--json FILE]

Start it, then the run (``bench/run.py``, ``claimsentry score``...): it waits for the first
``SparkSubmit`` JVM (or watches ``--pid``), reads every thread's CPU time (user + system, from
``/proc/<pid>/task/<tid>/stat``) every ``--interval`` seconds until the JVM exits, keeps each
thread's last reading and prints CPU seconds per thread group. Linux only.

Spark's event log (``bench/spark_profile.py``) counts executor run time only. The JVM also spends
CPU compiling code with the JIT, collecting garbage and planning queries on the driver's py4j
threads, and on 2 cores all of that competes with the tasks. At 2M and 10M lines the JIT
compilers alone used 250-315 s of CPU per run (BENCHMARKS.md's history in git, 2026-12-04 (c)).

A thread's name is the kernel's first 15 characters of it (``C2 CompilerThread0`` reads
``C2 CompilerThre``). Threads that end between two readings lose at most one interval of CPU.
Nothing here is a test: figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

# (group, pattern on the 15-character thread name), first match wins.
GROUPS: tuple[tuple[str, str], ...] = (
    ("executor tasks", r"^Executor task"),
    ("JIT compiler C2", r"^C2 CompilerThre"),
    ("JIT compiler C1", r"^C1 CompilerThre"),
    ("driver: py4j calls (planning, codegen)", r"^Thread-\d+$"),
    ("garbage collector", r"^(GC Thread|G1 |VM Thread)"),
    ("code cache sweeper", r"^Sweeper thread"),
)


def group_of(name: str) -> str:
    """The group of a thread name; an unknown name is its own group, digits folded (``pool-#``)."""
    for label, pattern in GROUPS:
        if re.search(pattern, name):
            return label
    return re.sub(r"\d+", "#", name)


def cpu_by_group(threads: Iterable[tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per group of (thread name, CPU seconds), largest first."""
    totals: Counter[str] = Counter()
    for name, seconds in threads:
        totals[group_of(name)] += seconds
    return {k: round(v, 1) for k, v in totals.most_common()}


def read_threads(pid: int) -> dict[str, tuple[str, float]]:
    """{tid: (name, CPU seconds)} of a live process; threads that end while read are skipped."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (name, (int(fields[11]) + int(fields[12])) / tick)  # utime, stime
    return out


def find_spark_jvm() -> int | None:
    """The first running Spark JVM (psutil, as ``bench/run.py``: no ``pgrep`` needed)."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "org.apache.spark.deploy.SparkSubmit" in (proc.info["cmdline"] or []):
            return proc.info["pid"]
    return None


def watch(pid: int, interval: float) -> dict[str, tuple[str, float]]:
    """Every thread's last reading, until the process exits."""
    last: dict[str, tuple[str, float]] = {}
    while Path(f"/proc/{pid}").exists():
        try:
            last.update(read_threads(pid))
        except OSError:  # the process ended between the check and the read
            break
        time.sleep(interval)
    return last


def render(groups: dict[str, float]) -> str:
    total = sum(groups.values()) or 1.0
    lines = [f"JVM CPU {total:,.1f} s", "", "| thread group | CPU s | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:,.1f} | {100 * seconds / total:.1f}% |" for name, seconds in groups.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid", type=int, help="the JVM to watch (default: wait for the first SparkSubmit)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--json", help="also write the groups here")
    args = parser.parse_args(argv)
    if not Path("/proc/self/task").is_dir():
        print("jvm_threads: needs Linux /proc", file=sys.stderr)
        return 2
    pid = args.pid
    while pid is None:
        pid = find_spark_jvm()
        if pid is None:
            time.sleep(1)
    groups = cpu_by_group(watch(pid, args.interval).values())
    print(render(groups))
    if args.json:
        Path(args.json).write_text(json.dumps({"pid": pid, "cpu_seconds_by_group": groups}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
