"""Issue 34's side-by-side run: claimsentry's ``train`` + ``score`` next to a plain pandas + XGBoost
baseline (``bench/baseline.py``), on the same generated input, in the same session.

    .venv/bin/python bench/versus_baseline.py --members 4000 --seed 42     # the demo's size
    .venv/bin/python bench/versus_baseline.py --input DIR                  # reuse a generated set

Steps (progress on stderr):
1. ``claimsentry generate --output DIR --members N --seed S`` (unless ``--input``; not timed in the ratio);
2. the baseline as its own process (``python bench/baseline.py``): load, features, fit on audit labels of
   claims dated before the evaluation period, score the evaluation period; wall time with interpreter start;
3. ``claimsentry train --input DIR`` then ``claimsentry score --input DIR --output OUT --run-date D`` as
   processes, in a fresh data dir (``CLAIMSENTRY_DATA_DIR``; ``CLAIMSENTRY_MLFLOW_URI`` unset, so the
   local MLflow store under it), D the day after the last claim; each timed;
4. both rankings of the evaluation period (the last quarter of claim dates, claim grain) against
   generator truth with ``unknown_perpetrator_metrics``: PR-AUC, precision in the top 1%, recall in
   the top 5% per scheme for never-labelled perpetrators, share of look-alikes in the top 5%.

Writes ``bench/results/<UTC timestamp>-versus-baseline.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
KEY = ["claim_id", "claim_source"]
T0 = time.perf_counter()


def _baseline():
    """bench/baseline.py as a module (also when this file is imported from elsewhere, e.g. a test)."""
    if "baseline" not in sys.modules:
        import importlib.util

        spec = importlib.util.spec_from_file_location("baseline", BENCH / "baseline.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["baseline"] = module
        spec.loader.exec_module(module)
    return sys.modules["baseline"]


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ evaluation period

def claim_dates(input_dir) -> pd.DataFrame:
    """One row per (claim_id, claim_source) of the input with its date: medical claim_start_date
    (else admission_date), the earliest of the claim's lines; pharmacy dispensing_date."""
    baseline = _baseline()
    med = baseline._read(input_dir, "medical_claim")[["claim_id", "claim_start_date", "admission_date"]]
    med = med.assign(date=pd.to_datetime(med.claim_start_date.fillna(med.admission_date)))
    rx = baseline._read(input_dir, "pharmacy_claim")[["claim_id", "dispensing_date"]]
    rx = rx.assign(date=pd.to_datetime(rx.dispensing_date))
    out = pd.concat([med.groupby("claim_id").date.min().reset_index().assign(claim_source="medical"),
                     rx.groupby("claim_id").date.min().reset_index().assign(claim_source="pharmacy")])
    return out[KEY + ["date"]].sort_values(KEY).reset_index(drop=True)


def evaluation_claims(input_dir) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """The evaluation period's claims (key, date; sorted by key), its first day and the last claim date."""
    dates = claim_dates(input_dir)
    start = _baseline().evaluation_start(dates.date)
    return dates[dates.date >= start].reset_index(drop=True), start, dates.date.max()


def truth_for(input_dir, keys: pd.DataFrame) -> pd.DataFrame:
    """Generator truth aligned to ``keys``: scheme (None = proper), never_labelled (the improper
    claim's perpetrator is never labelled: truth ``perpetrator_labelled`` == "false"; False when the
    generator does not write that column), lookalike (its kind, None = not one; none when the
    generator writes no truth/lookalikes.parquet)."""
    base = Path(input_dir) / "truth"
    truth = pd.read_parquet(base / "claim_truth.parquet")
    if "perpetrator_labelled" in truth:
        truth["never_labelled"] = truth.perpetrator_labelled.astype(str).str.strip().str.lower().isin(["false", "0"])
    else:
        truth["never_labelled"] = False
    out = keys[KEY].merge(truth[KEY + ["scheme", "never_labelled"]].drop_duplicates(KEY), on=KEY, how="left")
    out["never_labelled"] = out.never_labelled.astype("boolean").fillna(False).astype(bool)
    look_path = base / "lookalikes.parquet"
    if look_path.exists():
        look = pd.read_parquet(look_path)[KEY + ["kind"]].drop_duplicates(KEY)
        out = out.merge(look.rename(columns={"kind": "lookalike"}), on=KEY, how="left")
    else:
        out["lookalike"] = None
    out["scheme"] = out.scheme.astype(object).where(out.scheme.notna(), None)
    out["lookalike"] = out.lookalike.astype(object).where(out.lookalike.notna(), None)
    return out


def rank_metrics(input_dir, scores: pd.DataFrame, claims: pd.DataFrame | None = None) -> dict:
    """``unknown_perpetrator_metrics`` of one ranking (``scores``: claim_id, claim_source, score) over
    the evaluation period's claims (``claims``, default: computed from the input). A claim the ranking
    lacks ranks last (NaN score) and is counted in ``n_unscored``."""
    from claimsentry.models.evaluate import unknown_perpetrator_metrics

    if claims is None:
        claims = evaluation_claims(input_dir)[0]
    frame = claims[KEY].merge(scores[KEY + ["score"]].drop_duplicates(KEY), on=KEY, how="left")
    truth = truth_for(input_dir, claims)
    has_lookalikes = (Path(input_dir) / "truth" / "lookalikes.parquet").exists()
    out = unknown_perpetrator_metrics(frame.score.to_numpy(dtype="float64"), truth.scheme.to_numpy(),
                                      truth.never_labelled.to_numpy(), truth.lookalike.to_numpy())
    out["n_unscored"] = int(frame.score.isna().sum())
    out["truth_has_perpetrator_labelled"] = "perpetrator_labelled" in pd.read_parquet(
        Path(input_dir) / "truth" / "claim_truth.parquet").columns
    out["truth_has_lookalikes"] = has_lookalikes
    return out


# ----------------------------------------------------------------------------------- processes

class TreeCPU:
    """CPU seconds (user + system) of a process and all its descendants (the JVM, Python workers),
    sampled every 0.25 s while it runs (the last fraction of a second of each process is missed), and the
    machine's 1-minute load average over the same time: the wall time on a shared machine depends
    on what else runs, the CPU time much less."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root, self.seen, self.loads = psutil.Process(pid), {}, []

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                t = p.cpu_times()
                self.seen[(p.pid, p.create_time())] = t.user + t.system
            except psutil.Error:
                pass
        self.loads.append(os.getloadavg()[0])

    def summary(self) -> dict:
        loads = self.loads or [float("nan")]
        return {"cpu_seconds": round(sum(self.seen.values()), 1), "processes": len(self.seen),
                "load_1min": {"min": round(min(loads), 2), "mean": round(sum(loads) / len(loads), 2),
                              "max": round(max(loads), 2)}}


def timed(cmd: list[str], what: str, log: Path, env: dict | None = None, cwd: Path | None = None) -> tuple[dict, str]:
    """Run ``cmd`` to the end (stdout and stderr to ``log``.out/.err); its wall seconds, CPU seconds
    of its process tree and the load average meanwhile, and its stdout. A heartbeat on stderr every
    30 s. Raises SystemExit with the log's tail when it fails."""
    progress(f"{what}: {' '.join(str(c) for c in cmd[:3])} ... (load {os.getloadavg()[0]:.1f})")
    start = time.perf_counter()
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        cpu, next_beat, next_sample = TreeCPU(proc.pid), 30.0, 0.0
        while proc.poll() is None:
            elapsed = time.perf_counter() - start
            if elapsed >= next_sample:
                cpu.sample()
                next_sample += 0.25
            if elapsed >= next_beat:
                progress(f"{what}: still running, {elapsed:.0f}s (load {os.getloadavg()[0]:.1f})")
                next_beat += 30.0
            time.sleep(0.1)
    seconds = time.perf_counter() - start
    stdout = log.with_suffix(".out").read_text()
    if proc.returncode != 0:
        tail = log.with_suffix(".err").read_text()[-3000:]
        sys.stderr.write(tail)
        raise SystemExit(f"versus_baseline: {what} failed (exit {proc.returncode}); logs: {log}.out/.err")
    progress(f"{what}: done in {seconds:.1f}s")
    return {"wall_seconds": round(seconds, 1), **cpu.summary()}, stdout


def claimsentry_command() -> list[str]:
    """The working tree's ``claimsentry`` (the console script beside this interpreter)."""
    beside = Path(sys.executable).parent / "claimsentry"
    return [str(beside) if beside.exists() else "claimsentry"]


def snapshot_command(ref: str, work: Path) -> tuple[list[str], dict]:
    """claimsentry as committed at ``ref``, not as the working tree is right now (another engineer
    may be editing it while the run lasts): ``git archive`` of the commit, laid out as installed
    (pyproject's package-dir), on the path of a fresh venv that borrows this venv's packages
    through a .pth file (so not its editable install). Spark's Python workers run that venv's
    interpreter too. Returns the command prefix and where it came from."""
    import io
    import shutil
    import tarfile
    import tomllib

    commit = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    src, layout, env = (work / f"{kind}-{commit[:12]}" for kind in ("src", "site", "env"))
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True).stdout
    shutil.rmtree(src, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    package_dir = tomllib.loads((src / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(layout, ignore_errors=True)
    for package, folder in sorted(package_dir.items()):  # "claimsentry" before "claimsentry.jobs"...
        shutil.copytree(src / folder, layout / package.replace(".", "/"), dirs_exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(env)], check=True)
    import sysconfig

    site = Path(subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "claimsentry_snapshot.pth").write_text(f"{layout}\n{sysconfig.get_paths()['purelib']}\n")
    # run from outside the repository: `python -m` puts the current directory first on sys.path
    done = subprocess.run([str(env / "bin" / "python"), "-c", "import claimsentry.models.train as m; print(m.__file__)"],
                          capture_output=True, text=True, cwd=work)
    if done.returncode != 0 or not done.stdout.strip().startswith(str(layout)):
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"versus_baseline: the snapshot of {ref} does not import from {layout} ({done.stdout.strip()})")
    progress(f"claimsentry from {ref} = {commit[:12]} (a git archive snapshot, not the working tree)")
    return [str(env / "bin" / "python"), "-m", "claimsentry.cli"], {"ref": ref, "commit": commit, "from": "git archive snapshot"}


def run_claimsentry(input_dir: Path, work: Path, run_date: dt.date, cli: list[str]) -> tuple[pd.DataFrame, dict]:
    """train + score in a fresh data dir; the scored claims (key, score) and the timings."""
    state = Path(tempfile.mkdtemp(dir=work, prefix="claimsentry-data-"))
    drop = {"CLAIMSENTRY_MLFLOW_URI", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"}  # workers: claimsentry's own interpreter
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["CLAIMSENTRY_DATA_DIR"] = str(state)
    out_dir = work / "claimsentry-output"
    # --as-of: the gate's "today", so the run does not depend on the wall-clock date
    train_t, train_out = timed([*cli, "train", "--input", str(input_dir), "--as-of", run_date.isoformat()],
                               "claimsentry train", work / "logs" / "train", env=env, cwd=state)
    score_t, score_out = timed([*cli, "score", "--input", str(input_dir), "--output", str(out_dir),
                                "--run-date", run_date.isoformat()], "claimsentry score", work / "logs" / "score",
                               env=env, cwd=state)
    run_dir = out_dir / run_date.isoformat()
    scored = pd.read_parquet(run_dir / "scored_claims", columns=KEY + ["score"])
    summary = json.loads((run_dir / "run_summary.json").read_text())
    info = {
        "seconds": {"train": train_t["wall_seconds"], "score": score_t["wall_seconds"],
                    "total": round(train_t["wall_seconds"] + score_t["wall_seconds"], 1)},
        "cpu_seconds": {"train": train_t["cpu_seconds"], "score": score_t["cpu_seconds"],
                        "total": round(train_t["cpu_seconds"] + score_t["cpu_seconds"], 1)},
        "steps": {"train": train_t, "score": score_t},
        "score_stages_seconds": summary.get("timings_seconds"),
        "model": summary.get("model"),
        "scored_claims": summary.get("scored_claims"),
        "train_output": train_out.strip().splitlines()[-1:] if train_out.strip() else [],
        "data_dir": str(state),
        "env": {k: v for k, v in env.items() if k.startswith("CLAIMSENTRY_")},
    }
    return scored, info


def run_baseline(input_dir: Path, work: Path, seed: int, run: int = 1) -> tuple[pd.DataFrame, dict]:
    """bench/baseline.py as its own process: scores and timings (wall, with interpreter start)."""
    out = work / f"baseline_scores_{run}.parquet"
    step, stdout = timed([sys.executable, str(BENCH / "baseline.py"), "--input", str(input_dir), "--output", str(out),
                          "--seed", str(seed)], f"baseline (run {run})", work / "logs" / f"baseline_{run}")
    info = json.loads(stdout.strip().splitlines()[-1])
    info["seconds"]["wall_with_startup"] = step["wall_seconds"]
    info["cpu_seconds"] = {"total": step["cpu_seconds"]}
    info["steps"] = {"baseline": step}
    return pd.read_parquet(out), info


def median_runs(runs: list[dict]) -> dict:
    """The first run's figures, with wall and CPU seconds replaced by the median over ``runs``
    (every run is kept under ``runs``)."""
    info = json.loads(json.dumps(runs[0]))
    med = lambda values: round(float(np.median(values)), 3)  # noqa: E731
    info["seconds"] = {k: med([r["seconds"][k] for r in runs]) for k in runs[0]["seconds"]}
    info["cpu_seconds"] = {"total": med([r["cpu_seconds"]["total"] for r in runs])}
    info["runs"] = [{"seconds": r["seconds"], **r["steps"]["baseline"]} for r in runs]
    info.pop("steps", None)
    return info


def wait_for_quiet(threshold: float | None, max_wait: float) -> dict | None:
    """Wait (at most ``max_wait`` s) until the 1-minute load average is below ``threshold``: the
    machine may be shared. Returns what happened (None when not asked)."""
    if threshold is None:
        return None
    start = time.perf_counter()
    while os.getloadavg()[0] >= threshold and time.perf_counter() - start < max_wait:
        if int(time.perf_counter() - start) % 60 == 0:
            progress(f"waiting for the load average ({os.getloadavg()[0]:.1f}) to fall below {threshold}")
        time.sleep(1.0)
    waited, load = round(time.perf_counter() - start), os.getloadavg()[0]
    progress(f"load {load:.1f} after waiting {waited}s" + ("" if load < threshold else ": starting anyway"))
    return {"threshold": threshold, "waited_seconds": waited, "load_1min": round(load, 2), "quiet": load < threshold}


# ------------------------------------------------------------------------------------- reporting

def machine() -> dict:
    try:
        import psutil

        memory = psutil.virtual_memory().total
    except ImportError:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        java = None
    return {"cpus": os.cpu_count(), "memory_gb": round(memory / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform(), "java": java}


def source_tree() -> dict:
    """The commit and the files changed in the working tree (another engineer may be editing it)."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "changed_files": changed.splitlines() if changed else []}


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _f(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def near_zero_schemes(metrics: dict, below: float = 0.05) -> list[str]:
    return sorted(s for s, r in metrics["recall_top5_never_labelled_by_scheme"].items() if r < below)


def render(result: dict) -> str:
    c, b = result["claimsentry"]["metrics"], result["baseline"]["metrics"]
    ct, bt = result["claimsentry"]["seconds"], result["baseline"]["seconds"]
    n_schemes = len(c["recall_top5_never_labelled_by_scheme"] | b["recall_top5_never_labelled_by_scheme"])
    rows = [
        ("PR-AUC", _f(c["pr_auc"]), _f(b["pr_auc"])),
        ("precision in the top 1%", _f(c["precision_top1"]), _f(b["precision_top1"])),
        ("recall in the top 5%, all improper", _f(c["recall_top5"]), _f(b["recall_top5"])),
        ("recall in the top 5%, never-labelled", _f(c.get("recall_top5_never_labelled")),
         _f(b.get("recall_top5_never_labelled"))),
        ("lowest never-labelled scheme recall, top 5%", _f(c["min_recall_top5_never_labelled"]),
         _f(b["min_recall_top5_never_labelled"])),
        ("schemes with never-labelled recall < 0.05", f"{len(near_zero_schemes(c))} of {n_schemes}",
         f"{len(near_zero_schemes(b))} of {n_schemes}"),
        ("share of look-alike claims ranked in the top 5%", _f(c.get("lookalike_share_top5")), _f(b.get("lookalike_share_top5"))),
        ("wall time (s)", f"train {ct['train']} + score {ct['score']} = {ct['total']}",
         f"{bt['wall_with_startup']} (in-script {bt['total']:.1f}; median of {len(result['baseline'].get('runs', [1]))})"),
    ]
    e = result["evaluation"]
    lines = [f"evaluation period {e['start']} .. {e['last_claim_date']}: {c['n_claims']:,} claims, "
             f"{c['n_improper']:,} improper ({c['n_improper_never_labelled']:,} of never-labelled perpetrators)",
             "", "| evaluation period, generator truth | claimsentry | baseline (pandas + XGBoost) |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {cv} | {bv} |" for name, cv, bv in rows]
    lines.append(f"\ntime ratio claimsentry / baseline: {result['time_ratio']:.1f}x "
                 f"({result['time_ratio_in_script']:.1f}x against the baseline's in-script time; "
                 f"CPU seconds {result['claimsentry']['cpu_seconds']['total']} / "
                 f"{result['baseline']['cpu_seconds']['total']} = {result['cpu_ratio']:.1f}x)")
    loads = {name: step["load_1min"]["mean"] for side in ("claimsentry", "baseline")
             for name, step in result[side].get("steps", {}).items()}
    loads.update({f"baseline run {k}": r["load_1min"]["mean"] for k, r in enumerate(result["baseline"].get("runs", []), 1)})
    if loads:
        lines.append("mean 1-minute load average while running (2 = the cores busy): "
                     + ", ".join(f"{k} {v}" for k, v in loads.items()))
    schemes = sorted(set(c["labelled_claims_by_scheme"]) | set(c["never_labelled_claims_by_scheme"]))
    lines += ["", "| scheme | never-labelled claims | claimsentry | baseline | labelled-perpetrator claims | claimsentry | baseline |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for s in schemes:
        lines.append(
            f"| {s} | {c['never_labelled_claims_by_scheme'].get(s, 0)} | "
            f"{_f(c['recall_top5_never_labelled_by_scheme'].get(s), 2)} | {_f(b['recall_top5_never_labelled_by_scheme'].get(s), 2)} | "
            f"{c['labelled_claims_by_scheme'].get(s, 0)} | {_f(c['recall_top5_labelled_by_scheme'].get(s), 2)} | "
            f"{_f(b['recall_top5_labelled_by_scheme'].get(s), 2)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=4000, help="members to generate (default 4000, the demo's size)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (the baseline's XGBoost seed too)")
    parser.add_argument("--input", help="reuse this generated claims directory instead of generating one")
    parser.add_argument("--work-dir", help="keep generated data, logs and outputs here (default: a temp dir, removed)")
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    parser.add_argument("--baseline-runs", type=int, default=3,
                        help="times the baseline runs (one before claimsentry, the rest after; median times)")
    parser.add_argument("--wait-for-load", type=float, default=None,
                        help="before the timed steps, wait until the 1-minute load average is below this")
    parser.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for that at most")
    parser.add_argument("--claimsentry-ref", help="run claimsentry as committed at this git ref (e.g. HEAD) instead of "
                        "the working tree (default), so edits made while the run lasts cannot reach it")
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="claimsentry-versus-") as tmp:
        work = Path(args.work_dir or tmp).resolve()
        (work / "logs").mkdir(parents=True, exist_ok=True)
        generate_t, source = None, source_tree()  # the tree as it was when the run started
        if args.claimsentry_ref:
            cli, source["claimsentry"] = snapshot_command(args.claimsentry_ref, work)
        else:
            cli, source["claimsentry"] = claimsentry_command(), {"from": "working tree (editable install)"}
        load_at_start = os.getloadavg()
        if args.input:
            input_dir = Path(args.input).resolve()
        else:
            input_dir = work / "input"
            generate_t, _ = timed([*cli, "generate", "--output", str(input_dir), "--members",
                                   str(args.members), "--seed", str(args.seed)], "generate", work / "logs" / "generate", cwd=work)
        claims, start, last = evaluation_claims(input_dir)
        run_date = (last + pd.Timedelta(days=1)).date()
        progress(f"evaluation period {start.date()} .. {last.date()} ({len(claims):,} claims); run date {run_date}")

        quiet = wait_for_quiet(args.wait_for_load, args.max_wait)
        base_scores, first = run_baseline(input_dir, work, args.seed, 1)
        cs_scores, cs_info = run_claimsentry(input_dir, work, run_date, cli)
        base_info = median_runs([first] + [run_baseline(input_dir, work, args.seed, k)[1]
                                           for k in range(2, max(1, args.baseline_runs) + 1)])

        progress("metrics")
        base_info["metrics"] = rank_metrics(input_dir, base_scores, claims)
        cs_info["metrics"] = rank_metrics(input_dir, cs_scores, claims)
        result = {
            "started": started.isoformat(timespec="seconds"),
            "members": args.members if not args.input else None,
            "seed": args.seed,
            "input": str(input_dir) if args.input else None,
            "generate_seconds": None if generate_t is None else generate_t["wall_seconds"],
            "evaluation": {"start": str(start.date()), "last_claim_date": str(last.date()), "run_date": str(run_date),
                           "claims": len(claims), "ground_truth": "generator truth (truth/claim_truth.parquet)"},
            "claimsentry": cs_info,
            "baseline": base_info,
            "time_ratio": cs_info["seconds"]["total"] / base_info["seconds"]["wall_with_startup"],
            "time_ratio_in_script": cs_info["seconds"]["total"] / base_info["seconds"]["total"],
            "cpu_ratio": cs_info["cpu_seconds"]["total"] / max(base_info["cpu_seconds"]["total"], 1e-9),
            "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in load_at_start],
                        "waited_for_quiet": quiet},
            "source": source,
        }
        if args.input:  # members from the input itself when it was generated elsewhere
            elig = pd.read_parquet(input_dir / "eligibility", columns=["person_id"]) if (input_dir / "eligibility").exists() else None
            result["members"] = int(elig.person_id.nunique()) if elig is not None else None
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{started:%Y%m%dT%H%M%SZ}-versus-baseline.json"
    out.write_text(json.dumps(_json_safe(result), indent=2))
    print(render(result))
    print(f"results: {out}")
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
