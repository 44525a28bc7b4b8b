"""Audit cases across runs: stable case ids, the queue history and auditors' dispositions.

A claim queued for audit becomes a *case*. Its case id is derived from the claim itself
(``CS-`` + 12 hex of sha256 over claim_source and claim_id), so it is the same in every run and on
every machine without a sequence to keep in sync.

State lives under ``<queue.history_dir>`` (default ``<data_dir>/cases``):

- ``queued/run_date=YYYY-MM-DD.parquet`` — one row per case opened by that run's claim queue
  (grain: one row per claim_id, claim_source, run_date). Written after the run's queue, replaced
  when the date is re-run.
- ``dispositions/<sha of the source file>.parquet`` — one row per accepted auditor outcome
  (grain: one row per case_id per outcome_date), from ``claimsentry feedback``. Re-importing the
  same file replaces its own rows, so imports are idempotent.

``claimsentry train`` reads the dispositions as labels (``feedback_labels``, ``with_feedback_labels``):
confirmed/partial -> 1, cleared -> 0, the latest outcome per case winning over the input's label.

A run for date D excludes every claim already opened as a case by a run *before* D — open cases
are not queued twice and cases closed by feedback never come back as open — and ignores its own
date's history, so re-running D gives the same queue.

History tables are bounded by queue capacity times the number of runs, so they are read with
pandas on the driver; claims-sized frames never are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OUTCOMES = {"confirmed": 1, "partial": 1, "cleared": 0}  # -> training label
QUEUED_COLUMNS = [
    "case_id",
    "claim_id",
    "claim_source",
    "run_date",
    "rank",
    "score",
    "amount_at_risk",
    "expected_recovery",
    "billing_npi",
    "amount_paid",  # what the claim paid: caps an auditor's recovered_amount (absent in older history)
    "model_version",
    "rules_version",
]
DISPOSITION_COLUMNS = [
    "case_id",
    "claim_id",
    "claim_source",
    "outcome",
    "label",
    "recovered_amount",
    "outcome_date",
    "note",
    "source_file",
    "source_row",
]
_RUN_FILE = re.compile(r"run_date=(\d{4}-\d{2}-\d{2})\.parquet$")


def case_id(claim_source: str, claim_id: str) -> str:
    """Stable case id of a claim: same claim, same id, in every run."""
    digest = hashlib.sha256(f"{claim_source}|{claim_id}".encode("utf-8")).hexdigest()
    return f"CS-{digest[:12].upper()}"


def rules_version(rules: list[dict]) -> str:
    """Content hash of the rules knowledge base, recorded on every queue row for traceability."""
    canonical = json.dumps(sorted(rules, key=lambda r: r.get("id", "")), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def history_dir(settings) -> Path:
    configured = settings.get("queue.history_dir")
    return Path(configured) if configured else settings.data_dir / "cases"


def _queued_files(root: Path) -> list[tuple[dt.date, Path]]:
    out = []
    for path in sorted((root / "queued").glob("run_date=*.parquet")):
        match = _RUN_FILE.search(path.name)
        if match:
            out.append((dt.date.fromisoformat(match.group(1)), path))
    return out


def queued_before(root: Path, run_date: dt.date) -> pd.DataFrame:
    """Cases opened by runs strictly before ``run_date`` (one row per case: its first opening)."""
    frames = [pd.read_parquet(p) for d, p in _queued_files(root) if d < run_date]
    if not frames:
        return pd.DataFrame(columns=QUEUED_COLUMNS)
    cases = pd.concat(frames, ignore_index=True).sort_values(["run_date", "rank"])
    return cases.drop_duplicates(["claim_id", "claim_source"], keep="first").reset_index(drop=True)


def record_queue(root: Path, run_date: dt.date, queue: pd.DataFrame) -> Path:
    """Store the cases this run opened (replacing an earlier run of the same date)."""
    folder = root / "queued"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"run_date={run_date.isoformat()}.parquet"
    tmp = folder / f".{final.name}.tmp"
    rows = queue.reindex(columns=QUEUED_COLUMNS)
    rows["run_date"] = run_date.isoformat()
    rows.to_parquet(tmp, index=False)
    tmp.replace(final)
    return final


def dispositions(root: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """Accepted dispositions, one row per case: its latest outcome (dated on or before ``as_of``)."""
    files = sorted((root / "dispositions").glob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=DISPOSITION_COLUMNS)
    rows = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    if as_of is not None:
        rows = rows[rows["outcome_date"] <= as_of.isoformat()]  # ISO strings sort as dates
    rows = rows.sort_values(["case_id", "outcome_date", "source_file", "source_row"])
    return rows.drop_duplicates("case_id", keep="last").reset_index(drop=True)


def case_status(root: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """Every case with its status: ``open`` or the outcome that closed it."""
    opened = queued_before(root, as_of or dt.date.max)
    closed = dispositions(root)[["case_id", "outcome", "outcome_date", "recovered_amount"]]
    status = opened.merge(closed, on="case_id", how="left")
    status["status"] = status["outcome"].fillna("open")
    return status


def feedback_labels(root: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """Dispositions as training labels in the contract's ``labels`` shape (one row per claim_id,
    claim_source: the case's latest outcome dated on or before ``as_of``)."""
    rows = dispositions(root, as_of)
    return rows[["claim_id", "claim_source", "label", "outcome_date", "recovered_amount"]].reset_index(drop=True)


def with_feedback_labels(spark: "SparkSession", labels: "DataFrame | None", feedback: pd.DataFrame) -> "DataFrame | None":
    """The training labels: the input's ``labels`` with auditors' dispositions laid over them.

    Grain: one row per (claim_id, claim_source), in the contract's ``labels`` columns and types.
    ``labels``: the gate's accepted labels table (Spark, may be large; None when the input has none).
    ``feedback``: ``feedback_labels`` (pandas, one row per case, bounded by queue capacity), turned
    into a small Spark frame. A disposition replaces the input's label for the same claim: it is the
    auditor's own, newer outcome. None when there are neither input labels nor dispositions, so
    training without any label stays the unsupervised path.
    """
    from pyspark.sql import functions as F

    from claimsentry.schemas import LABELS

    if labels is None and feedback.empty:
        return None
    key = list(LABELS.key)
    rows = [
        (
            str(r["claim_id"]),
            str(r["claim_source"]),
            int(r["label"]),
            dt.date.fromisoformat(str(r["outcome_date"])) if pd.notna(r["outcome_date"]) else None,
            float(r["recovered_amount"]) if pd.notna(r["recovered_amount"]) else None,
        )
        for r in feedback[LABELS.column_names].to_dict("records")
    ]
    audited = spark.createDataFrame(rows, LABELS.schema)
    if labels is None:
        return audited
    kept = labels.select(
        *[
            (F.col(c) if c in labels.columns else F.lit(None)).cast(t).alias(c)
            for c, t in LABELS.columns
        ]
    )
    if not rows:
        return kept
    return kept.join(audited.select(*key), key, "left_anti").unionByName(audited)
