"""``claimsentry score``: validate, build features, score with the champion, write the run directory.

Extract (gate) -> transform (features, score) -> load (``OUTPUT/<run_date>/``, atomically). The run
directory holds scored_claims, claim_queue, provider_queue, quarantine, data-quality results and
run_summary.json. A failed run leaves the previous output of that date untouched; a re-run of the
same date with the same input and champion gives the same outputs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pyspark.sql import SparkSession

from claimsentry import __version__ as claimsentry_version
from claimsentry import case_pages, cases
from claimsentry.queue_page import write_queue_page
from claimsentry.errors import InputError
from claimsentry.io import atomic_dir, write_csv_for_spreadsheets
from claimsentry.queues import (
    QueueParams,
    render_claim_queue,
    render_provider_queue,
    select_claims,
    select_providers,
)
from claimsentry.spark import beside

log = logging.getLogger(__name__)

SCORED_COLUMNS = [
    "claim_id",
    "claim_source",
    "score",
    "model_version",
    "model_score",
    "anomaly_score",
    "claim_type",
    "claim_date",
    "person_id",
    "billing_npi",
    "prescriber_npi",
    "amount_paid",
    "rule_hits",
]


class Timings:
    """Wall-clock seconds per named stage, for run_summary.json. With a SparkSession, every Spark
    job started inside a stage carries the description ``claimsentry <stage>``: the Spark UI and
    event log (``bench/spark_profile.py``) then attribute executor time to the pipeline's own stages."""

    def __init__(self, spark: SparkSession | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._spark = spark

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._spark is not None:
            self._spark.sparkContext.setJobDescription(f"claimsentry {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
            if self._spark is not None:
                self._spark.sparkContext.setJobDescription(None)
            log.info("stage %s: %.1fs", name, self.seconds[name])


def parse_run_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"--run-date must be YYYY-MM-DD, got {text!r}") from None


def write_queue(pdf, folder: Path, name: str) -> None:
    """A queue as Parquet and as a spreadsheet-friendly CSV (bounded rows: pandas is fine)."""
    pdf.to_parquet(folder / f"{name}.parquet", index=False)
    write_csv_for_spreadsheets(pdf, folder / f"{name}.csv")


def run_score(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    run_date: dt.date,
    settings,
    *,
    bundle=None,
    gate_dir: str | None = None,
) -> dict:
    """Score one run date. Returns the run summary (also written as run_summary.json).
    ``bundle``: the champion, when the caller already loaded it. ``gate_dir``: an earlier gate of
    this date (``validate_partition``); when it checked this same input (``reusable_gate``), its
    copy of the checked rows, its quarantine and its data-quality report are used instead of a
    second check of every row. The summary's ``gate.reused_from`` says which happened.

    The data-quality report runs beside the features and scoring (``claimsentry.spark.beside``);
    its ``timings_seconds`` entry overlaps theirs."""
    from claimsentry.features.assemble import build_claim_features
    from claimsentry.policy import store as policy_store
    from claimsentry.features.rules import load_rules
    from claimsentry.jobs.validate import GATE_COPY, copy_gate_artifacts, reusable_gate, run_gate, write_gate_artifacts
    from claimsentry.models.registry import load_champion
    from claimsentry.models.scoring import explain_pandas, score_claims

    timings = Timings(spark)
    params = QueueParams.from_settings(settings)
    with timings.stage("load_model"):
        bundle = bundle or load_champion(settings)  # fail fast, before any Spark work, when no model exists
    final_dir = Path(output_dir) / run_date.isoformat()
    history = cases.history_dir(settings)
    with atomic_dir(final_dir) as staging:
        saved_gate = reusable_gate(gate_dir, input_dir, settings, run_date)
        with timings.stage("validate"):
            if saved_gate:  # the same rows, checked by this date's validate task: read its copy
                log.info("gate: reusing the rows checked in %s (same input)", gate_dir)
            copy = Path(gate_dir) / GATE_COPY if saved_gate else staging / "_accepted"
            gate = run_gate(spark, input_dir, settings, as_of=run_date, checkpoint_dir=str(copy),
                            reuse_checkpoint=bool(saved_gate))

        def data_quality_report() -> dict:  # quarantine + GE results and Data Docs
            with timings.stage("data_quality_report"):
                if saved_gate:
                    copy_gate_artifacts(gate_dir, staging)
                    return saved_gate["data_quality"]
                return write_gate_artifacts(gate, staging, ge_max_rows=settings.get("validation.ge_max_rows"))

        # The report reads only the gate's output, and GE runs one small Spark job per metric (one
        # core, much of it driver time): beside the features and scoring it fills cores they leave
        # idle (300 members -33%, 2M -9%; at the demo's size about even: BENCHMARKS.md's history in git, 2026-12-03 (f)).
        with beside(spark, data_quality_report, pool="data_quality") as report:
            with timings.stage("features"):
                references = policy_store.load_current(spark, settings)  # the latest version of each policy file
                fs = build_claim_features(spark, gate.tables, settings, quarantine=gate.quarantine, references=references)
            with timings.stage("score"):
                # No per-claim SHAP here: only the queued claims are explained (explain_pandas below).
                scored = score_claims(fs.frame, bundle, top_k=0).drop("contributions")
                # Checkpoint through Parquet: queues read the written scores instead of recomputing.
                keep = [c for c in SCORED_COLUMNS if c in scored.columns]
                extra = [c for c in scored.columns if c not in keep]
                scored.select(*keep, *extra).write.mode("overwrite").parquet(str(staging / "scored_claims"))
                fs.release()
            gate_summary = report()
        gate.release()  # the small group-rule frames it persisted
        scored = spark.read.parquet(str(staging / "scored_claims"))
        rules = load_rules()
        with timings.stage("queues"):
            prior = cases.queued_before(history, run_date)  # open or closed cases of earlier runs
            exclude = spark.createDataFrame(
                prior[["claim_id", "claim_source"]].astype(str), "claim_id string, claim_source string"
            )
            queued = explain_pandas(select_claims(scored, params, exclude=exclude).toPandas(), bundle)
            queued["case_id"] = [cases.case_id(s, c) for s, c in zip(queued["claim_source"], queued["claim_id"])]
            queued["run_date"] = run_date.isoformat()
            queued["rules_version"] = cases.rules_version(rules)
            claim_pdf = render_claim_queue(queued, rules, params)
            write_queue(claim_pdf, staging, "claim_queue")
            board = cases.case_board(history, settings, run_date, opened_before=run_date)
            case_deadlines = cases.deadline_summary(board)
            provider_pdf = render_provider_queue(select_providers(scored, params).toPandas(), rules)
            write_queue(provider_pdf, staging, "provider_queue")
            write_queue_page(claim_pdf, staging / "claim_queue.html", run_date=run_date.isoformat(), cases=case_deadlines,
                             providers=provider_pdf)
        with timings.stage("case_pages"):  # the queued claims' pages: every scored column, and their reasons
            page_rows = queued.merge(claim_pdf[["case_id", "reasons"]], on="case_id", how="left")
            page_data = case_pages.gather(
                spark, gate.tables, scored, page_rows, provider_pdf,
                before_days=int(settings.get("features.rx_window_days")),
                after_days=int(settings.get("features.readmit_long_days")),
                max_member_claims=int(settings.get("queue.case_page_member_claims")),
                max_provider_claims=int(settings.get("queue.provider_page_claims")),
            )
            pages = case_pages.write_pages(staging, page_rows, provider_pdf, page_data, rules,
                                           cases.case_events(history, run_date), board, run_date=run_date.isoformat())
        if not settings.get("validation.keep_accepted", False):
            shutil.rmtree(staging / "_accepted", ignore_errors=True)  # working copy of the typed input
        counts_by_source = {
            r["claim_source"]: r["count"] for r in scored.groupBy("claim_source").count().collect()
        }
        summary = {
            "run_date": run_date.isoformat(),
            "input_dir": str(input_dir),
            "claimsentry_version": claimsentry_version,
            "tables": gate.counts,
            "missing_tables": gate.missing_tables,
            "warnings": gate.warnings,
            "data_quality": gate_summary,
            "gate": {"reused_from": str(gate_dir) if saved_gate else None},
            "scored_claims": counts_by_source,
            "features": {"count": len(fs.feature_cols), "names": fs.feature_cols, "unavailable": fs.unavailable},
            "queues": {
                "claim_queue": len(claim_pdf),
                "provider_queue": len(provider_pdf),
                "skipped_prior_cases": len(prior),
                "amount_at_risk": round(float(claim_pdf["amount_at_risk"].sum()), 2) if len(claim_pdf) else 0.0,
                "expected_recovery": round(float(claim_pdf["expected_recovery"].sum()), 2) if len(claim_pdf) else 0.0,
            },
            "cases": case_deadlines,
            "pages": pages,
            "rules_version": cases.rules_version(rules),
            "peers": (
                f"E/M mix against the same specialty (and state, with at least {settings.get('features.min_specialty_peers')} "
                "other providers), from the provider table; other peer measures pooled by code"
                if gate.tables.get("provider") is not None
                else "no provider table: peers are all providers, by code (DRG, HCPCS, NDC), not by specialty"
            ),
            "references": policy_store.versions_used(references)
            or "no policy reference stored: the NCCI and OIG edits did not run (claimsentry reference add)",
            "source_import": _source_import_report(input_dir),
            "queue_params": params.__dict__,
            "model": {"name": settings.get("mlflow.model_name"), "version": bundle.version},
            "timings_seconds": timings.seconds,
        }
        (staging / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    cases.record_queue(history, run_date, claim_pdf)  # after the run dir is in place
    return summary


def _source_import_report(input_dir: str) -> dict | None:
    """Counts and decisions of the adapter that produced the input (e.g. ``import-synpuf``): the
    source's oddities (negative payments, two-segment claims...) belong in the run's summary."""
    path = Path(input_dir) / "import_report.json"
    if "://" in str(input_dir) or not path.is_file():
        return None
    report = json.loads(path.read_text(encoding="utf-8"))
    keep = {k: report[k] for k in ("source", "decisions") if k in report}
    for table in ("medical_claim", "eligibility"):
        if isinstance(report.get(table), dict) and "counts" in report[table]:
            keep[table] = report[table]["counts"]
    return keep


def configure_parser(parser) -> None:
    parser.add_argument("--input", required=True, help="claims directory (medical_claim, pharmacy_claim, eligibility)")
    parser.add_argument("--output", required=True, help="output root; the run is written to OUTPUT/<run-date>/")
    parser.add_argument("--run-date", required=True, help="YYYY-MM-DD: the run's partition and as-of date")


def run_from_cli(args, settings) -> int:
    from claimsentry.spark import get_spark

    run_date = parse_run_date(args.run_date)
    if not Path(args.input).is_dir() and "://" not in args.input:
        raise InputError(f"input directory not found: {args.input}")
    from claimsentry.models.registry import load_champion

    bundle = load_champion(settings)  # no model: one line, before a JVM is started
    spark = get_spark(settings)
    summary = run_score(spark, args.input, args.output, run_date, settings, bundle=bundle)
    print(
        f"scored {sum(summary['scored_claims'].values()):,} claims with {summary['model']['version']}; "
        f"claim queue {summary['queues']['claim_queue']}, provider queue {summary['queues']['provider_queue']} "
        f"-> {Path(args.output) / run_date.isoformat()}"
    )
    return 0
