"""``claimsentry demo``: the whole product on the embedded defaults, no arguments.

generate a synthetic claims set with labelled fraud schemes and the policy files that define some
of them -> load those files as policy references -> gate -> features -> train (MLflow,
register, champion) -> score one run date -> queues -> actuary report. Everything lands under
``<data_dir>/demo/``; the MLflow store is the default local one under ``<data_dir>/mlflow``.
At the end it prints how many of the top queued claims are truly improper (the generator knows).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

log = logging.getLogger(__name__)

DEMO_RUN_DATE = dt.date(2026, 1, 1)  # the day after the generated period ends


def configure_parser(parser) -> None:  # no arguments, by contract
    parser.set_defaults()


def queue_precision(queue_pdf, truth_pdf, labels_pdf, *, top: int) -> dict:
    """Share of the top ``top`` queued claims that are truly improper, overall and among claims
    whose label the model never saw (the honest figure)."""
    improper = set(zip(truth_pdf["claim_id"], truth_pdf["claim_source"]))
    labelled = set(zip(labels_pdf["claim_id"], labels_pdf["claim_source"])) if labels_pdf is not None else set()
    head = queue_pdf.sort_values("rank").head(top)
    keys = list(zip(head["claim_id"], head["claim_source"]))
    unseen = [k for k in keys if k not in labelled]
    return {
        "top": len(keys),
        "precision": round(sum(k in improper for k in keys) / max(len(keys), 1), 3),
        "unlabelled_in_top": len(unseen),
        "precision_unlabelled": round(sum(k in improper for k in unseen) / max(len(unseen), 1), 3),
    }


def run_demo(settings) -> dict:
    import pandas as pd

    from claimsentry.generate import generate
    from claimsentry.jobs.report import write_report
    from claimsentry.jobs.score import run_score
    from claimsentry.jobs.train import train_from_input, training_summary
    from claimsentry.policy.store import add_reference
    from claimsentry.spark import get_spark

    root = settings.data_dir / "demo"
    input_dir, output_dir = root / "input", root / "output"
    started = time.perf_counter()
    gen = generate(
        str(input_dir),
        members=int(settings.get("generate.members", 4000)),
        seed=int(settings.get("generate.seed", 42)),
        fmt="parquet",
        dirty_fraction=float(settings.get("generate.dirty_fraction", 0.001)),
    )
    print(f"generated synthetic claims -> {input_dir}: {json.dumps(gen.get('rows', gen), default=str)}")
    spark = get_spark(settings)
    # the world's policy files (NCCI PTP, MUE, add-on codes, OIG LEIE), as `claimsentry reference add` loads them
    for kind, path in gen.get("reference_files", {}).items():
        added = add_reference(spark, settings, kind, [path])
        print(f"policy reference {added.manifest['source']}: {added.manifest['rows']['accepted']} rows"
              + (" (already stored)" if added.already_stored else ""))
    train_summary = train_from_input(spark, str(input_dir), settings)
    print(training_summary(train_summary))
    summary = run_score(spark, str(input_dir), str(output_dir), DEMO_RUN_DATE, settings)
    run_dir = output_dir / DEMO_RUN_DATE.isoformat()
    report = write_report(settings, run_dir / "model_report.html", run_dir=run_dir)

    queue = pd.read_parquet(run_dir / "claim_queue.parquet")
    truth = pd.read_parquet(input_dir / "truth" / "claim_truth.parquet")
    labels = pd.read_csv(input_dir / "labels.csv", dtype=str)
    precision = queue_precision(queue, truth, labels, top=50)
    result = {
        "run_dir": str(run_dir),
        "report": str(report),
        "claim_queue": summary["queues"]["claim_queue"],
        "provider_queue": summary["queues"]["provider_queue"],
        "top50": precision,
        "unknown_perpetrators": train_summary["metrics"].get("unknown_perpetrators"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (run_dir / "demo_summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def run_from_cli(args, settings) -> int:
    result = run_demo(settings)
    p = result["top50"]
    print(
        f"demo done in {result['seconds']}s: claim queue {result['claim_queue']} claims, provider queue "
        f"{result['provider_queue']}; top {p['top']} queued claims: {p['precision']:.0%} truly improper "
        f"({p['precision_unlabelled']:.0%} of the {p['unlabelled_in_top']} the model never saw a label for)\n"
        f"queue: {result['run_dir']}/claim_queue.csv\nreport: {result['report']}"
    )
    return 0
