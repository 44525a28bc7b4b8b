"""Profile one ``claimsentry score`` run: where the executors' time goes, per pipeline stage and per
Spark stage, read from Spark's own event log.

    python bench/spark_profile.py --input DIR --model-data-dir STATE [--top 25]
    python bench/spark_profile.py --event-log FILE            # summarise a log written earlier

The run is the real scoring path (``jobs.score.run_score``: gate, GE report, features, score,
queues) with ``spark.eventLog.enabled``; its jobs carry the description ``claimsentry <stage>``
(``jobs.score.Timings``), so each Spark job is attributed to the pipeline stage that started it.
Printed:

- per pipeline stage: wall seconds, executor run time and CPU time summed over tasks, GC, bytes
  spilled to disk, shuffle bytes written, number of Spark jobs and tasks;
- the ``--top`` Spark stages by executor run time, each with its operators (the SQL plan nodes
  Spark records for the stage's RDDs: Scan, Exchange, Sort, Window, HashAggregate, ...).

On 2 cores, executor time is up to twice the wall time of a stage. Nothing here is a test: figures
go to BENCHMARKS.md with the input and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PREFIX = "claimsentry "


def _scope_names(stage_info: dict) -> list[str]:
    """The SQL operators of one Spark stage, from its RDDs' scopes, in first-seen order."""
    names: list[str] = []
    for rdd in stage_info.get("RDD Info", []):
        scope = rdd.get("Scope")
        if not scope:
            continue
        try:
            name = json.loads(scope).get("name", "")
        except ValueError:
            continue
        name = name.split(" (")[0]  # "WholeStageCodegen (3)" -> "WholeStageCodegen"
        if name and name not in names and name not in ("WholeStageCodegen", "mapPartitionsInternal"):
            names.append(name)
    return names


def _event_lines(event_log: Path):
    """Lines of an event log: one file, or Spark 4's rolling folder ``eventlog_v2_<app>/events_<n>_<app>``."""
    if event_log.is_dir():
        parts = [p for p in event_log.iterdir() if p.name.startswith("events_")]
        files = sorted(parts, key=lambda p: int(p.name.split("_")[1]))
    else:
        files = [event_log]
    for f in files:
        if f.suffix == ".zstd":  # Spark's default codec for event logs
            import io

            import zstandard

            with f.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as z:
                yield from io.TextIOWrapper(z, encoding="utf-8")
        else:
            with f.open(encoding="utf-8") as handle:
                yield from handle


def summarise(event_log: Path) -> dict:
    """Per pipeline stage and per Spark stage totals from one event log (file or rolling folder)."""
    job_stage: dict[int, str] = {}  # spark stage id -> pipeline stage
    job_times: dict[int, list] = {}
    job_label: dict[int, str] = {}
    stages: dict[int, dict] = {}
    for line in _event_lines(event_log):
        ev = json.loads(line)
        kind = ev.get("Event")
        if kind == "SparkListenerJobStart":
            label = (ev.get("Properties") or {}).get("spark.job.description") or "(outside the stages)"
            label = label[len(PREFIX):] if label.startswith(PREFIX) else label
            job_label[ev["Job ID"]] = label
            job_times[ev["Job ID"]] = [ev.get("Submission Time"), None]
            for sid in ev.get("Stage IDs", []):
                job_stage.setdefault(sid, label)
        elif kind == "SparkListenerJobEnd":
            if ev["Job ID"] in job_times:
                job_times[ev["Job ID"]][1] = ev.get("Completion Time")
        elif kind == "SparkListenerTaskEnd":
            m = ev.get("Task Metrics") or {}
            s = stages.setdefault(ev["Stage ID"], defaultdict(float))
            s["tasks"] += 1
            s["run_s"] += m.get("Executor Run Time", 0) / 1e3
            s["cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
            s["gc_s"] += m.get("JVM GC Time", 0) / 1e3
            s["spill_mb"] += m.get("Disk Bytes Spilled", 0) / 2**20
            s["shuffle_write_mb"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0) / 2**20
            s["input_mb"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0) / 2**20
        elif kind == "SparkListenerStageCompleted":
            info = ev["Stage Info"]
            s = stages.setdefault(info["Stage ID"], defaultdict(float))
            s["operators"] = ", ".join(_scope_names(info))
            s["name"] = info.get("Stage Name", "")

    per_stage: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for jid, label in job_label.items():
        start, end = job_times.get(jid, [None, None])
        per_stage[label]["jobs"] += 1
        if start and end:
            per_stage[label]["job_s"] += (end - start) / 1e3
    for sid, s in stages.items():
        label = job_stage.get(sid, "(unknown)")
        for k in ("tasks", "run_s", "cpu_s", "gc_s", "spill_mb", "shuffle_write_mb"):
            per_stage[label][k] += s.get(k, 0.0)
    top = sorted(
        ({"stage_id": sid, "pipeline_stage": job_stage.get(sid, "(unknown)"), **s} for sid, s in stages.items()),
        key=lambda r: -r.get("run_s", 0.0),
    )
    return {"pipeline_stages": {k: dict(v) for k, v in per_stage.items()}, "spark_stages": top}


def render(summary: dict, wall: dict[str, float] | None = None, top: int = 25) -> str:
    wall = wall or {}
    out = [
        "| pipeline stage | wall (s) | executor run (s) | CPU (s) | GC (s) | spill (MB) | shuffle write (MB) | jobs | tasks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in sorted(summary["pipeline_stages"].items(), key=lambda kv: -kv[1].get("run_s", 0.0)):
        out.append(
            f"| {name} | {wall.get(name, '')} | {s.get('run_s', 0):.1f} | {s.get('cpu_s', 0):.1f} | {s.get('gc_s', 0):.1f} | "
            f"{s.get('spill_mb', 0):,.0f} | {s.get('shuffle_write_mb', 0):,.0f} | {int(s.get('jobs', 0))} | {int(s.get('tasks', 0))} |"
        )
    out += [
        "",
        "| spark stage | pipeline stage | executor run (s) | CPU (s) | spill (MB) | shuffle write (MB) | tasks | operators |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary["spark_stages"][:top]:
        out.append(
            f"| {s['stage_id']} | {s['pipeline_stage']} | {s.get('run_s', 0):.1f} | {s.get('cpu_s', 0):.1f} | "
            f"{s.get('spill_mb', 0):,.0f} | {s.get('shuffle_write_mb', 0):,.0f} | {int(s.get('tasks', 0))} | {s.get('operators', '')} |"
        )
    return "\n".join(out)


def profile_run(input_dir: str, state: str, log_dir: Path) -> tuple[Path, dict]:
    """Score ``input_dir`` with the champion in ``state`` (an existing data dir), event log on."""
    from claimsentry.config import load_settings
    from claimsentry.jobs.score import run_score
    from claimsentry.spark import get_spark

    settings = load_settings(
        None,
        overrides={
            "data_dir": state,
            "queue": {"history_dir": str(log_dir / "cases")},
            "spark": {"conf": {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(log_dir)}},
        },
    )
    spark = get_spark(settings)
    app_id = spark.sparkContext.applicationId
    start = time.perf_counter()
    summary = run_score(spark, input_dir, str(log_dir / "output"), dt.date(2026, 1, 1), settings)
    summary["timings_seconds"]["total"] = round(time.perf_counter() - start, 1)
    spark.stop()  # flushes the event log
    logs = [p for p in log_dir.iterdir() if app_id in p.name]
    if not logs:
        raise SystemExit(f"profile: no event log for {app_id} in {log_dir}")
    return logs[0], summary["timings_seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="claims directory to score")
    parser.add_argument("--model-data-dir", help="data dir whose MLflow store holds the champion")
    parser.add_argument("--event-log", help="summarise this event log (file or eventlog_v2_* folder) instead of running")
    parser.add_argument("--work-dir", help="where the event log and output go (default: a temp dir, removed)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args(argv)

    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="claimsentry-profile-") as tmp:
        if args.event_log:
            log_file = Path(args.event_log)
        else:
            if not (args.input and args.model_data_dir):
                parser.error("--input and --model-data-dir are required unless --event-log is given")
            work = Path(args.work_dir or tmp)
            work.mkdir(parents=True, exist_ok=True)
            log_file, wall = profile_run(args.input, args.model_data_dir, work)
        summary = summarise(log_file)
    print(render(summary, wall, args.top))
    if wall:
        print(f"\nwall seconds per stage: {json.dumps(wall)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall": wall, **summary}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
