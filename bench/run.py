"""Benchmark: the full scoring pipeline on N generated claim lines, with each stage's ceiling.

    python bench/run.py                      # sizes 1M, 5M, 10M claim lines (medical + pharmacy)
    python bench/run.py --sizes 1000000      # one size
    python bench/run.py --sizes 20000 --train-members 300   # smoke
    python bench/run.py --sizes 3000 --model-data-dir DIR   # reuse DIR's champion
    CI (tests/test_bench_smoke.py) calls main with --sizes 3000 --model-data-dir DIR --in-process

For each size, in a fresh process (so memory figures are per size; ``--in-process``: in this one,
on its running Spark session, which is what CI's smoke does and is no benchmark):
  generate N lines -> ``run_score`` (gate, features, score with the champion, queues) and records
  per-stage wall time, rows per second, peak driver memory (the Python driver's RSS and the JVM's
  RSS; in local mode the JVM is both driver and executor) and the Spark configuration.
Ceilings measured in the same process on the same data:
  - raw Parquet scan: every column of the input read and hashed (what the gate cannot beat);
  - raw XGBoost ``inplace_predict`` on the same feature matrix (what scoring cannot beat).
A champion model is trained once per benchmark on a small generated set (not timed), unless
``--model-data-dir`` names a data dir whose MLflow store already has one.

Results: ``bench/results/<utc timestamp>.json`` and a Markdown table printed for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RUN_DATE = dt.date(2026, 1, 1)


class PeakMemory:
    """Samples RSS of this process and of its child JVM every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.python_peak = 0
        self.jvm_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.python_peak = max(self.python_peak, self._proc.memory_info().rss)
                jvm = sum(c.memory_info().rss for c in self._proc.children(recursive=True) if "java" in c.name())
                self.jvm_peak = max(self.jvm_peak, jvm)
            except Exception:  # a child exiting between listing and reading
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _settings(data_dir: Path, extra: dict | None = None):
    from claimsentry.config import load_settings

    overrides = {"data_dir": str(data_dir), **(extra or {})}
    return load_settings(None, overrides=overrides)


def lines_per_member(train_summary: dict) -> float:
    rows = train_summary["rows"]
    return (rows["medical_claim"] + rows.get("pharmacy_claim", 0)) / train_summary["members"]


def prepare_model(work: Path, state: Path, train_members: int, seed: int, *, train: bool = True) -> dict:
    """Generate a small labelled set and (with ``train``) train and register a champion in
    ``state``. Returns generation stats (they give the lines per member used to size each run)."""
    from claimsentry.generate import generate

    gen = generate(str(work / "train_input"), members=train_members, seed=seed)
    gen["members"] = train_members
    if train:
        from claimsentry.jobs.train import train_from_input
        from claimsentry.spark import get_spark

        settings = _settings(state)
        train_from_input(get_spark(settings), str(work / "train_input"), settings)
    return gen


def scan_ceiling(spark, input_dir: Path) -> dict:
    """Rows per second of a full Parquet scan of the input (all columns hashed)."""
    from pyspark.sql import functions as F

    out = {}
    for table in ("medical_claim", "pharmacy_claim"):
        path = input_dir / table
        if not path.exists():
            continue
        df = spark.read.parquet(str(path))
        start = time.perf_counter()
        rows = df.select(F.hash(*df.columns).alias("h")).agg(F.count("h"), F.sum("h")).collect()[0][0]
        out[table] = {"rows": rows, "seconds": round(time.perf_counter() - start, 2)}
    rows = sum(v["rows"] for v in out.values())
    seconds = sum(v["seconds"] for v in out.values())
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / max(seconds, 1e-9))}


def predict_ceiling(settings, run_dir: Path, max_rows: int = 2_000_000) -> dict:
    """Rows per second of raw ``Booster.inplace_predict`` on the run's own feature matrix."""
    import numpy as np
    import pyarrow.dataset as ds

    from claimsentry.models.registry import load_champion

    bundle = load_champion(settings)
    table = ds.dataset(str(run_dir / "scored_claims"), format="parquet").head(max_rows, columns=bundle.feature_cols)
    matrix = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype("float32") for c in bundle.feature_cols])
    bundle.booster.inplace_predict(matrix[:1000])  # warm-up
    start = time.perf_counter()
    bundle.booster.inplace_predict(matrix)
    seconds = time.perf_counter() - start
    return {"rows": int(matrix.shape[0]), "seconds": round(seconds, 3), "rows_per_second": round(matrix.shape[0] / max(seconds, 1e-9))}


def run_one(size: int, work: Path, state: Path, members: int, seed: int) -> dict:
    """One size, measured in this process (called in a child process by ``main``)."""
    from claimsentry.generate import generate
    from claimsentry.jobs.score import run_score
    from claimsentry.spark import get_spark

    settings = _settings(state, {"queue": {"history_dir": str(work / f"cases_{size}")}})
    input_dir, output_dir = work / f"input_{size}", work / f"output_{size}"
    start = time.perf_counter()
    gen = generate(str(input_dir), members=members, seed=seed + 1)
    generate_seconds = round(time.perf_counter() - start, 1)
    lines = gen["rows"]["medical_claim"] + gen["rows"].get("pharmacy_claim", 0)

    spark = get_spark(settings)
    with PeakMemory() as mem:
        start = time.perf_counter()
        summary = run_score(spark, str(input_dir), str(output_dir), RUN_DATE, settings)
        total = time.perf_counter() - start
    run_dir = output_dir / RUN_DATE.isoformat()
    scan = scan_ceiling(spark, input_dir)
    predict = predict_ceiling(settings, run_dir)
    claims = sum(summary["scored_claims"].values())
    stages = {}
    for stage, seconds in summary["timings_seconds"].items():
        unit_rows = claims if stage in ("score", "queues") else lines
        stages[stage] = {"seconds": seconds, "rows": unit_rows, "rows_per_second": round(unit_rows / max(seconds, 1e-9))}
    ceilings = {
        "validate": {"ceiling": "parquet scan", "fraction": round(stages["validate"]["rows_per_second"] / scan["rows_per_second"], 3)},
        "score": {"ceiling": "xgboost inplace_predict", "fraction": round(stages["score"]["rows_per_second"] / predict["rows_per_second"], 4)},
        "end_to_end": {"ceiling": "parquet scan", "fraction": round((lines / total) / scan["rows_per_second"], 3)},
    }
    return {
        "claim_lines": lines,
        "claims": claims,
        "members": members,
        "generate_seconds": generate_seconds,
        "total_seconds": round(total, 1),
        "seconds_per_million_lines": round(total / (lines / 1e6), 1),
        "stages": stages,
        "ceilings": {"parquet_scan": scan, "xgboost_inplace_predict": predict, "fractions": ceilings},
        "peak_memory_mb": {"python_driver": round(mem.python_peak / 2**20), "jvm": round(mem.jvm_peak / 2**20)},
        "spark_conf": {k: v for k, v in spark.sparkContext.getConf().getAll() if k.startswith("spark.") and "id" not in k},
        "queues": summary["queues"],
    }


def machine() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "java": subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0],
    }


def markdown(results: dict) -> str:
    head = (
        "| claim lines | claims | end to end (s) | s per 1M lines | validate | GE report (beside features and score) | features (header) | "
        "score (rest of the features + model) | queues | peak Python RSS (MB) | peak JVM RSS (MB) | gate vs scan | score vs inplace_predict |\n"
    )
    head += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    rows = []
    for r in results["sizes"]:
        s = r["stages"]
        fr = r["ceilings"]["fractions"]
        seconds = lambda name: s.get(name, {}).get("seconds", "")  # noqa: E731 - older results lack a stage
        rows.append(
            f"| {r['claim_lines']:,} | {r['claims']:,} | {r['total_seconds']} | {r['seconds_per_million_lines']} | "
            f"{seconds('validate')} | {seconds('data_quality_report')} | {seconds('features')} | {seconds('score')} | "
            f"{seconds('queues')} | {r['peak_memory_mb']['python_driver']} | {r['peak_memory_mb']['jvm']} | "
            f"{fr['validate']['fraction']:.1%} | {fr['score']['fraction']:.2%} |"
        )
    return head + "\n".join(rows)


def _child(args: list[str], what: str) -> dict | None:
    """Run this script with ``args`` in a fresh process (its own JVM); its last stdout line is JSON.
    None, with the child's stderr tail and a one-line reason on stderr, when it fails."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        print(f"bench: {what} failed (exit {done.returncode})", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,5000000,10000000", help="comma-separated claim-line counts")
    parser.add_argument("--train-members", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work-dir", help="where generated data goes (default: a temp dir, removed after)")
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument(
        "--model-data-dir", help="score with the champion already registered in this data dir (no training)"
    )
    parser.add_argument(
        "--in-process", action="store_true",
        help="measure every size in this process, on its Spark session if one is running (the CI smoke; "
        "real figures come from the default: each size in a fresh process)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child-process mode: one size
    parser.add_argument("--members", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)  # child: train, print stats
    args = parser.parse_args(argv)

    if args.train_only:
        print(json.dumps(prepare_model(Path(args.work_dir), Path(args.model_data_dir), args.train_members, args.seed)))
        return 0

    if args.one:
        # the parent always passes the state dir it trained into (or was given)
        print(json.dumps(run_one(args.one, Path(args.work_dir), Path(args.model_data_dir), args.members, args.seed)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    with tempfile.TemporaryDirectory(prefix="claimsentry-bench-") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        state = Path(args.model_data_dir) if args.model_data_dir else work / "state"
        if args.model_data_dir or args.in_process:
            gen = prepare_model(work, state, args.train_members, args.seed, train=not args.model_data_dir)
        else:  # train in its own process too: its JVM must be gone before a size's JVM starts
            gen = _child(["--train-only", "--work-dir", str(work), "--model-data-dir", str(state),
                          "--train-members", str(args.train_members), "--seed", str(args.seed)], "training the champion")
            if gen is None:
                return 1
        per_member = lines_per_member(gen)
        results = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "lines_per_member": round(per_member, 1), "sizes": []}
        for size in sizes:
            members = max(50, round(size / per_member))
            if args.in_process:
                result = run_one(size, work, state, members, args.seed)
            else:
                result = _child(["--one", str(size), "--members", str(members), "--work-dir", str(work),
                                 "--seed", str(args.seed), "--model-data-dir", str(state)], f"size {size:,}")
                if result is None:
                    return 1
            result["in_process"] = bool(args.in_process)
            results["sizes"].append(result)
            out.write_text(json.dumps(results, indent=2))  # after every size: a later failure keeps these
            print(f"{result['claim_lines']:,} lines: {result['total_seconds']}s end to end, {result['seconds_per_million_lines']}s per 1M lines", flush=True)
    print(markdown(results))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
