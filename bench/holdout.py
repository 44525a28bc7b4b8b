"""The held-out-perpetrator evaluation of docs/modeling.md, reproduced with one command:

    .venv/bin/python bench/holdout.py                 # the demo's size, seed 42 and the untuned seed 7
    .venv/bin/python bench/holdout.py --seeds 42 --members 4000 --json out.json

For each seed: generate the synthetic claims (a share of every scheme's perpetrators starts in the
last quarter and is never labelled; legitimate look-alikes mixed in), train into a fresh data
directory exactly as ``claimsentry train`` does, and print the training run's held-out figures:
per scheme, recall in the top 5% of the test period for the claims of perpetrators nobody labelled
and of those already labelled, then PR-AUC, precision in the top 1% and look-alikes in the top 5%.
Progress goes to stderr; the tables to stdout (Markdown).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_seed(members: int, seed: int, work: Path) -> dict:
    from claimsentry.config import load_settings
    from claimsentry.generate import generate
    from claimsentry.jobs.train import train_from_input
    from claimsentry.policy.store import add_reference
    from claimsentry.spark import get_spark

    started = time.perf_counter()
    data = work / f"seed{seed}"
    gen = generate(str(data / "input"), members=members, seed=seed)
    print(f"holdout: seed {seed}: generated {members} members ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    # the user's settings, but a fresh data directory and its own local MLflow store
    environ = {k: v for k, v in os.environ.items() if k not in ("CLAIMSENTRY_DATA_DIR", "CLAIMSENTRY_MLFLOW_URI")}
    settings = load_settings(environ=environ, overrides={"data_dir": str(data / "store")})
    spark = get_spark(settings)
    for kind, path in gen.get("reference_files", {}).items():  # the world's policy files, as the demo loads them
        add_reference(spark, settings, kind, [path])
    result = train_from_input(spark, str(data / "input"), settings)
    print(f"holdout: seed {seed}: trained ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    metrics = result["metrics"]
    return {"seed": seed, "members": members, "seconds": round(time.perf_counter() - started, 1),
            "split": metrics.get("split"), "blend": metrics.get("blend"), "unknown_perpetrators": metrics.get("unknown_perpetrators")}


def table(run: dict) -> str:
    u = run["unknown_perpetrators"] or {}
    never, known = u.get("recall_top5_never_labelled_by_scheme", {}), u.get("recall_top5_labelled_by_scheme", {})
    n_never, n_known = u.get("never_labelled_claims_by_scheme", {}), u.get("labelled_claims_by_scheme", {})
    pct = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"seed {run['seed']}, {run['members']:,} members (validation: {(run['split'] or {}).get('validation')}; "
             f"blend: {(run['blend'] or {}).get('winner')})", "",
             "| scheme | never labelled: recall top 5% | claims | labelled: recall top 5% | claims |",
             "|---|---:|---:|---:|---:|"]
    for scheme in sorted(set(never) | set(known)):
        lines.append(f"| {scheme} | {pct(never.get(scheme))} | {n_never.get(scheme, 0)} | {pct(known.get(scheme))} | {n_known.get(scheme, 0)} |")
    lines += ["", f"PR-AUC {pct(u.get('pr_auc'))}, precision in the top 1% {pct(u.get('precision_top1'))}, "
              f"recall in the top 5% never labelled {pct(u.get('recall_top5_never_labelled'))} (lowest scheme "
              f"{pct(u.get('min_recall_top5_never_labelled'))}), look-alikes in the top 5% {pct(u.get('lookalike_share_top5'))}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4000)
    parser.add_argument("--seeds", default="42,7", help="comma-separated; 42 is the demo's, 7 was never tuned on")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="holdout-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            runs.append(run_seed(args.members, seed, Path(tmp)))
            print(table(runs[-1]))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
