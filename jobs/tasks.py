"""Task callables behind the Airflow DAGs and ``spark_entry.py``: one function per pipeline stage.

Each function is a transaction over one explicit partition: it takes the run date (the logical
date, never "today"), the paths it reads and writes, and dotted settings overrides; it builds the
SparkSession through ``claimsentry.spark.get_spark`` (the active one when there is one: in tests,
under ``spark-submit``), calls the job functions, and returns a small JSON-able dict for XCom.
No Airflow imports here: the same functions run in-process on an Airflow worker and, through
``spark_entry.py``, as the driver of a ``spark-submit`` on a cluster.

Partitions (``ds`` = the run date, ``YYYY-MM-DD``):

- input ``<claims_root>/<ds>/`` (medical_claim, pharmacy_claim, eligibility), read only;
- gate artifacts ``<staging_root>/<ds>/gate/`` (replaced atomically);
- the run directory ``<output_root>/<ds>/`` (written atomically by ``run_score``), plus its report;
- training ``<training_output>/<ds>/train_summary.json`` and ``model_report.html``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

TABLES = ("medical_claim", "pharmacy_claim", "eligibility")
FEEDBACK_SUFFIXES = (".csv", ".csv.gz")


def _date(run_date: dt.date | str) -> dt.date:
    if isinstance(run_date, dt.datetime):
        return run_date.date()
    if isinstance(run_date, dt.date):
        return run_date
    from claimsentry.errors import InputError

    try:
        return dt.date.fromisoformat(str(run_date)[:10])
    except ValueError:
        raise InputError(f"run date must be YYYY-MM-DD, got {run_date!r}") from None


def load_run_settings(overrides: Mapping[str, Any] | None = None):
    """Settings for one task: packaged defaults < config file < ``CLAIMSENTRY_*`` env < overrides."""
    from claimsentry.config import load_settings

    return load_settings(overrides=dict(overrides or {}))


def _spark(settings):
    from claimsentry.spark import get_spark

    return get_spark(settings)


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON via a temp file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# claims_daily
# ---------------------------------------------------------------------------------------------
def check_landed(input_dir: str, *, tables: tuple[str, ...] = TABLES, success_marker: str | None = None) -> dict:
    """Has the day's claim drop fully landed? Returns {"ready", "missing", "found", "reason"}.

    Ready when ``input_dir`` exists, holds every table in ``tables`` (file or part-file folder, as
    ``claimsentry.io.locate_table`` finds them) and, when given, the ``success_marker`` file that
    the landing process writes last. Object-store paths cannot be listed from here: they are
    reported ready and the gate fails with a one-line reason if a table is absent.
    """
    from claimsentry.errors import InputError
    from claimsentry.io import is_uri, locate_table

    if is_uri(input_dir):
        return {"ready": True, "missing": [], "found": {}, "reason": f"{input_dir} is an object-store path: not listed"}
    base = Path(input_dir.removeprefix("file://"))
    if not base.is_dir():
        return {"ready": False, "missing": list(tables), "found": {}, "reason": f"input directory not found: {base}"}
    found: dict[str, str] = {}
    missing: list[str] = []
    problems: list[str] = []
    for name in tables:
        try:
            hit = locate_table(str(base), name)
        except InputError as exc:  # e.g. a part-file folder still being written
            problems.append(str(exc))
            hit = None
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit[0]
    if success_marker and not (base / success_marker).is_file():
        problems.append(f"marker {success_marker} not written yet")
    ready = not missing and not problems
    reason = "all tables landed" if ready else "; ".join([*(f"{m} missing" for m in missing), *problems]) + f" in {base}"
    return {"ready": ready, "missing": missing, "found": found, "reason": reason}


def validate_partition(
    run_date: dt.date | str, input_dir: str, gate_dir: str, overrides: Mapping[str, Any] | None = None
) -> dict:
    """Run the data-quality gate on one date's input; write its artifacts (quarantine, counts) to
    ``gate_dir`` atomically. Raises ``GateFailed``/``InputError`` (one line) when the gate stops.

    A local ``gate_dir`` also keeps the checked rows (``accepted/``) and the input's fingerprint, so
    that ``score_partition`` of the same date and input reads them instead of checking every row
    again (``jobs.validate.reusable_gate``); it removes that copy once the run is written."""
    from claimsentry.io import atomic_dir, is_uri
    from claimsentry.jobs.validate import GATE_COPY, GATE_SUMMARY, gate_fingerprint, run_gate, write_gate_artifacts

    settings = load_run_settings(overrides)
    spark = _spark(settings)
    day = _date(run_date)
    ge_max_rows = settings.get("validation.ge_max_rows")

    def headline(summary: Mapping[str, Any]) -> dict:
        out = {k: summary.get(k) for k in ("counts", "quarantined", "missing_tables", "warnings", "suites")}
        return json.loads(json.dumps(out | {"run_date": day.isoformat(), "gate_dir": gate_dir}, default=str))

    if is_uri(gate_dir):
        result = run_gate(spark, input_dir, settings, as_of=day)
        try:
            out = headline(write_gate_artifacts(result, gate_dir, ge_max_rows=ge_max_rows))
        finally:
            result.release()
    else:
        fingerprint = gate_fingerprint(input_dir, settings, day)  # before the read: a file landing later changes it
        with atomic_dir(gate_dir) as staging:
            result = run_gate(spark, input_dir, settings, as_of=day, checkpoint_dir=str(staging / GATE_COPY))
            try:
                summary = write_gate_artifacts(result, staging, ge_max_rows=ge_max_rows)
            finally:
                result.release()
            out = headline(summary)
            _write_json(staging / GATE_SUMMARY, out | {"fingerprint": fingerprint, "data_quality": summary})
    log.info("gate passed for %s: %s", day, json.dumps(out["counts"], default=str))
    return out


def score_partition(
    run_date: dt.date | str,
    input_dir: str,
    output_root: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    gate_dir: str | None = None,
) -> dict:
    """Validate, build features, score with the champion and write queues for one date: the run
    directory ``<output_root>/<ds>/`` is replaced atomically (``run_score``). Returns its headline.

    ``gate_dir``: where ``validate_partition`` wrote this date's gate. When it checked this same
    input, the run reads its copy of the checked rows instead of checking them again; otherwise
    (input changed since, copy gone, object store) the run re-checks every row itself."""
    from claimsentry.jobs.score import run_score
    from claimsentry.jobs.validate import GATE_COPY

    settings = load_run_settings(overrides)
    spark = _spark(settings)
    day = _date(run_date)
    summary = run_score(spark, input_dir, output_root, day, settings, gate_dir=gate_dir)
    if summary["gate"]["reused_from"]:  # the run is written: the gate's row copy has served
        shutil.rmtree(Path(gate_dir) / GATE_COPY, ignore_errors=True)
    run_dir = f"{output_root.rstrip('/')}/{day.isoformat()}"
    headline = {
        "run_date": day.isoformat(),
        "run_dir": run_dir,
        "scored_claims": summary.get("scored_claims"),
        "queues": summary.get("queues"),
        "model": summary.get("model"),
    }
    log.info("scored %s: %s", day, json.dumps(headline, default=str))
    return headline


def report_partition(run_dir: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """The actuaries' HTML report of one run directory, written into it as ``model_report.html``,
    with the run's headline figures read back from ``run_summary.json``."""
    from claimsentry.jobs.report import write_report

    settings = load_run_settings(overrides)
    run_path = Path(run_dir)
    summary_file = run_path / "run_summary.json"
    if not summary_file.is_file():
        from claimsentry.errors import InputError

        raise InputError(f"no run_summary.json in {run_path}: the score stage has not written this run")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    report = write_report(settings, run_path / "model_report.html", run_dir=run_path)
    return {
        "run_date": summary.get("run_date"),
        "run_dir": str(run_path),
        "report": str(report),
        "queues": summary.get("queues"),
        "model": summary.get("model"),
    }


# ---------------------------------------------------------------------------------------------
# model_training
# ---------------------------------------------------------------------------------------------
def promoted(decision: Any) -> bool:
    """Did training move the champion alias? Reads the job's ``decision`` (a dict with
    ``promoted``, or a text starting with "promoted")."""
    if isinstance(decision, Mapping):
        return bool(decision.get("promoted"))
    return str(decision or "").strip().lower().startswith("promot")


def train_model(
    run_date: dt.date | str,
    input_dir: str,
    summary_path: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    labels_path: str | None = None,
    provider_labels_path: str | None = None,
) -> dict:
    """Build the training set from ``input_dir``, train, evaluate, register, and promote to champion
    only when better (all inside ``train_from_input``), as of ``run_date`` (the logical date, so a
    re-run trains on the same view of the data). The decision is written to ``summary_path`` (JSON)
    so the report stage reads the same thing on either the in-process or the cluster path."""
    from claimsentry.jobs.train import train_from_input

    settings = load_run_settings(overrides)
    spark = _spark(settings)
    day = _date(run_date)
    result = train_from_input(
        spark,
        input_dir,
        settings,
        labels_path=labels_path or None,
        provider_labels_path=provider_labels_path or None,
        as_of=day,
    )
    promotion = result.get("promotion") or {}
    out = {
        "run_date": day.isoformat(),
        "input_dir": input_dir,
        "model_version": result.get("model_version"),
        "run_id": result.get("run_id"),
        "decision": result.get("decision"),
        "promoted": bool(promotion["promote"]) if "promote" in promotion else promoted(result.get("decision")),
        "reason": promotion.get("reason"),
        "labels_from_dispositions": result.get("labels_from_dispositions"),
        "metrics": result.get("metrics"),
    }
    _write_json(Path(summary_path), out)
    log.info("trained %s: %s; %s labels from auditor dispositions", out["model_version"], out["decision"],
             out["labels_from_dispositions"])
    return json.loads(json.dumps(out, default=str))


def training_report(summary_path: str, report_path: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """The model report after a training run, and the promotion decision read back for XCom/logs."""
    from claimsentry.errors import InputError
    from claimsentry.jobs.report import write_report

    path = Path(summary_path)
    if not path.is_file():
        raise InputError(f"no training summary at {path}: the train stage has not written it")
    summary = json.loads(path.read_text(encoding="utf-8"))
    settings = load_run_settings(overrides)
    report = write_report(settings, Path(report_path))
    verdict = "promoted to champion" if summary.get("promoted") else "champion kept"
    log.info("model %s: %s (%s: %s)", summary.get("model_version"), verdict, summary.get("decision"), summary.get("reason"))
    return {
        "model_version": summary.get("model_version"),
        "decision": summary.get("decision"),
        "reason": summary.get("reason"),
        "promoted": bool(summary.get("promoted")),
        "report": str(report),
    }


# ---------------------------------------------------------------------------------------------
# audit_feedback
# ---------------------------------------------------------------------------------------------
def _move(src: Path, folder: Path) -> Path:
    """Move ``src`` into ``folder`` without overwriting an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / src.name
    n = 1
    while dest.exists():
        dest = folder / f"{src.name}.{n}"
        n += 1
    shutil.move(str(src), dest)
    return dest


def ingest_inbox(inbox: str, overrides: Mapping[str, Any] | None = None, *, today: dt.date | str) -> dict:
    """Import every disposition file waiting in ``inbox`` (oldest first) with
    ``claimsentry.jobs.feedback.ingest_feedback`` and move it to ``inbox/processed/``; a file that
    cannot be read at all goes to ``inbox/failed/`` with ``<name>.reason.txt`` beside it.
    ``today`` is the run's date (dispositions dated after it are rejected). Re-importing a file
    replaces its own rows, so a crash between import and move is harmless."""
    from claimsentry.errors import ClaimSentryError
    from claimsentry.jobs.feedback import ingest_feedback

    settings = load_run_settings(overrides)
    root = Path(inbox)
    root.mkdir(parents=True, exist_ok=True)
    waiting = sorted(
        (p for p in root.iterdir() if p.is_file() and p.name.lower().endswith(FEEDBACK_SUFFIXES) and not p.name.startswith(".")),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    files, failed = [], []
    for path in waiting:
        try:
            result = ingest_feedback(settings, path, today=_date(today))
        except ClaimSentryError as exc:
            moved = _move(path, root / "failed")
            moved.with_name(moved.name + ".reason.txt").write_text(f"{exc}\n", encoding="utf-8")
            log.error("feedback file %s rejected: %s", path.name, exc)
            failed.append({"file": path.name, "reason": str(exc)})
            continue
        _move(path, root / "processed")
        files.append({k: result.get(k) for k in ("rows", "accepted", "rejected", "closed_cases")} | {"file": path.name})
    return {
        "files": files,
        "failed": failed,
        "accepted": sum(f["accepted"] or 0 for f in files),
        "rejected": sum(f["rejected"] or 0 for f in files),
    }
