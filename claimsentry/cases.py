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
import math
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
    # what ``cases show`` and the recovery roll-up need without the run directory (absent in older history)
    "person_id",
    "claim_date",
    "schemes",
    "reasons",
    "citations",
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
    cases = pd.concat(frames, ignore_index=True).reindex(columns=QUEUED_COLUMNS).sort_values(["run_date", "rank"])
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
    """Auditors' findings as training labels in the contract's ``labels`` shape (one row per
    claim_id, claim_source). The label is the case's latest finding dated on or before ``as_of``,
    from a ``findings_issued`` event or an imported disposition (confirmed/partial -> 1, cleared
    -> 0); an ``appeal_overturned`` after it turns the label to 0. ``recovered_amount`` sums the
    case's recoveries."""
    cols = ["claim_id", "claim_source", "label", "outcome_date", "recovered_amount"]
    folded = fold_events(case_events(root, as_of))
    found = {k: v for k, v in folded.items() if v["label"] is not None}
    if not found:
        return pd.DataFrame(columns=cols)
    opened = queued_before(root, dt.date.max).set_index("case_id")
    rows = [
        {
            "claim_id": opened.at[case, "claim_id"],
            "claim_source": opened.at[case, "claim_source"],
            "label": int(pos["label"]),
            "outcome_date": pos["label_date"],
            "recovered_amount": round(pos["recovered"], 2) if pos["recovered"] else None,
        }
        for case, pos in sorted(found.items())
        if case in opened.index
    ]
    return pd.DataFrame(rows, columns=cols)


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


# --- Lifecycle ------------------------------------------------------------------------------------
#
# A case moves through states by append-only events (who, when, what, amount, note) stored under
# ``<history_dir>/events/``. Its state is the state its latest event entered; a case with no event
# is ``open`` since the run that queued it. A disposition imported by ``claimsentry feedback`` is
# one way in: the case's latest disposition reads as a ``findings_issued`` event with its outcome
# and, when it recovered money, a ``recovered`` event on the same date.

STATES = (
    "open",
    "records_requested",  # medical records requested from the provider
    "under_review",
    "findings_issued",  # with an outcome: confirmed, partial or cleared
    "appealed",  # the provider appealed the findings
    "appeal_upheld",  # the findings stand (a further appeal level may follow)
    "appeal_overturned",  # the findings are reversed: the claim was proper
    "recovered",  # money back; may repeat (installments)
    "referred",  # to the special investigations unit or law enforcement
    "closed",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"records_requested", "under_review", "findings_issued", "referred", "closed"}),
    "records_requested": frozenset({"under_review", "findings_issued", "referred", "closed"}),
    "under_review": frozenset({"records_requested", "findings_issued", "referred", "closed"}),
    "findings_issued": frozenset({"appealed", "recovered", "referred", "closed"}),
    "appealed": frozenset({"appeal_upheld", "appeal_overturned"}),
    "appeal_upheld": frozenset({"appealed", "recovered", "referred", "closed"}),
    "appeal_overturned": frozenset({"closed"}),
    "recovered": frozenset({"recovered", "closed"}),
    "referred": frozenset({"under_review", "findings_issued", "closed"}),
    "closed": frozenset(),
}
EVENT_COLUMNS = [
    "event_id",
    "case_id",
    "state",  # the state the event enters
    "event_date",  # ISO date the event happened
    "actor",  # who recorded it
    "outcome",  # findings_issued only: confirmed, partial, cleared
    "amount",  # findings_issued: overpayment identified; recovered: dollars recovered
    "note",  # free text: stored and shown, never logged
    "recorded_at",  # UTC timestamp of the import
    "source",  # "cli", the CSV's file name, or "feedback <file>"
    "source_row",
]


def _events_on_disk(root: Path) -> pd.DataFrame:
    files = sorted((root / "events").glob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True).reindex(columns=EVENT_COLUMNS)


def _events_from_dispositions(root: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """The latest disposition per case as lifecycle events (grain: one row per event)."""
    rows = []
    for rec in dispositions(root, as_of).to_dict("records"):
        common = {
            "case_id": rec["case_id"],
            "event_date": rec["outcome_date"],
            "actor": "feedback import",
            "note": rec.get("note"),
            "recorded_at": None,
            "source": f"feedback {rec['source_file']}",
            "source_row": rec["source_row"],
        }
        rows.append({**common, "event_id": f"{rec['case_id']}-fb", "state": "findings_issued",
                     "outcome": rec["outcome"], "amount": None})
        if pd.notna(rec["recovered_amount"]) and float(rec["recovered_amount"]) > 0:
            rows.append({**common, "event_id": f"{rec['case_id']}-fb-rec", "state": "recovered", "outcome": None,
                         "amount": float(rec["recovered_amount"])})
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def case_events(root: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """Every lifecycle event, recorded or from feedback, in the order they apply.

    Grain: one row per event. Order: event_date, then recording order (recorded_at, source_row);
    events dated after ``as_of`` are left out, so a run for date D sees the cases as of D."""
    events = pd.concat(
        [e for e in (_events_on_disk(root), _events_from_dispositions(root, as_of)) if len(e)]
        or [pd.DataFrame(columns=EVENT_COLUMNS)],
        ignore_index=True,
    )
    if as_of is not None:
        events = events[events["event_date"] <= as_of.isoformat()]
    events = events.assign(_rec=events["recorded_at"].fillna("").astype(str))
    return events.sort_values(["event_date", "_rec", "source", "source_row"]).drop(columns="_rec").reset_index(drop=True)


def fold_events(events: pd.DataFrame) -> dict[str, dict]:
    """Each case's position after its events, keyed by case id: ``state``, ``since`` (the date it
    entered that state), ``outcome`` and ``label`` (of its findings, an overturned appeal turning
    the label to 0), ``label_date``, ``identified`` and ``recovered`` dollars. Events arrive in
    ``case_events`` order; feedback dispositions are taken as given (checked at import)."""
    out: dict[str, dict] = {}
    for rec in events.to_dict("records"):
        case = out.setdefault(
            rec["case_id"],
            {"state": "open", "since": None, "outcome": None, "label": None, "label_date": None,
             "identified": None, "recovered": 0.0, "events": 0},
        )
        case["state"], case["since"], case["events"] = rec["state"], rec["event_date"], case["events"] + 1
        amount = float(rec["amount"]) if pd.notna(rec["amount"]) else None
        if rec["state"] == "findings_issued":
            case["outcome"], case["label"], case["label_date"] = rec["outcome"], OUTCOMES.get(rec["outcome"]), rec["event_date"]
            case["identified"] = amount
        elif rec["state"] == "appeal_overturned":
            case["outcome"], case["label"], case["label_date"] = "overturned", 0, rec["event_date"]
        elif rec["state"] == "recovered" and amount:
            case["recovered"] += amount
    return out


def deadlines(settings) -> dict[str, int]:
    """Days a case may stay in each state before it is overdue (``cases.deadlines_days``);
    states without a number have no deadline."""
    configured = settings.get("cases.deadlines_days") or {}
    unknown = set(configured) - set(STATES)
    if unknown:
        from claimsentry.errors import InputError

        raise InputError(f"cases.deadlines_days: unknown states {sorted(unknown)}; states are {', '.join(STATES)}")
    return {state: int(days) for state, days in configured.items() if days is not None}


def case_board(root: Path, settings, as_of: dt.date, *, opened_before: dt.date | None = None) -> pd.DataFrame:
    """Every case opened by a run on or before ``as_of`` (before ``opened_before`` when given: a
    run for date D leaves out the cases it opens itself, so re-running D gives the same board)
    with its lifecycle position as of ``as_of`` and its deadline.

    Grain: one row per case. Columns: the queued case's (``QUEUED_COLUMNS``) plus state, since,
    outcome, label, identified, recovered, due_date, days_left, overdue, due_soon."""
    opened = queued_before(root, opened_before or as_of + dt.timedelta(days=1))
    folded = fold_events(case_events(root, as_of))
    limits = deadlines(settings)
    soon = int(settings.get("cases.due_soon_days", 7))
    rows = []
    for rec in opened.to_dict("records"):
        pos = folded.get(rec["case_id"]) or {"state": "open", "since": None, "outcome": None, "label": None,
                                            "identified": None, "recovered": 0.0}
        since = pos["since"] or rec["run_date"]
        days = limits.get(pos["state"])
        due = dt.date.fromisoformat(since) + dt.timedelta(days=days) if days is not None else None
        left = (due - as_of).days if due else None
        rows.append({
            **rec,
            "state": pos["state"],
            "since": since,
            "outcome": pos["outcome"],
            "label": pos["label"],
            "identified": pos["identified"],
            "recovered": round(pos["recovered"], 2),
            "due_date": due.isoformat() if due else None,
            "days_left": left,
            "overdue": left is not None and left < 0,
            "due_soon": left is not None and 0 <= left <= soon,
        })
    extra = ["state", "since", "outcome", "label", "identified", "recovered", "due_date", "days_left", "overdue", "due_soon"]
    return pd.DataFrame(rows, columns=[*opened.columns, *extra])


def deadline_summary(board: pd.DataFrame, *, limit: int = 50) -> dict:
    """What a daily run reports about the case lifecycle: counts by state, the overdue and
    due-soon cases (most overdue first, at most ``limit`` of each listed)."""
    cols = ["case_id", "claim_id", "claim_source", "billing_npi", "state", "since", "due_date", "days_left"]

    def listed(rows: pd.DataFrame) -> list[dict]:
        rows = rows.sort_values(["days_left", "case_id"]).head(limit)
        return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.reindex(columns=cols).to_dict("records")]

    # .astype(bool): on an empty board the flags are object dtype, and a frame indexed by a
    # non-boolean Series selects columns instead of rows
    overdue, soon = board.loc[board["overdue"].astype(bool)], board.loc[board["due_soon"].astype(bool)]
    return {
        "cases": int(len(board)),
        "by_state": {k: int(v) for k, v in board["state"].value_counts().sort_index().items()},
        "overdue_count": int(len(overdue)),
        "due_soon_count": int(len(soon)),
        "overdue": listed(overdue),
        "due_soon": listed(soon),
        "recovered_amount": round(float(board["recovered"].sum()), 2) if len(board) else 0.0,
    }


def recoveries(board: pd.DataFrame) -> pd.DataFrame:
    """Recovered dollars by provider, scheme and model version (grain: one row per billing_npi,
    scheme, model_version). A case suggesting several schemes counts under each of them, so the
    sum over schemes can exceed the total; ``"(none)"`` marks cases queued by the score alone."""
    if board.empty:
        return pd.DataFrame(columns=["billing_npi", "scheme", "model_version", "cases", "confirmed", "recovered"])
    rows = board.assign(
        scheme=[[s.strip() for s in str(v).split(",") if s.strip()] or ["(none)"] if pd.notna(v) else ["(none)"]
                for v in board["schemes"]],
        confirmed=board["label"].eq(1),
    ).explode("scheme")
    out = (
        rows.groupby(["billing_npi", "scheme", "model_version"], dropna=False)
        .agg(cases=("case_id", "size"), confirmed=("confirmed", "sum"), recovered=("recovered", "sum"))
        .reset_index()
    )
    return out.sort_values(["recovered", "cases"], ascending=False).reset_index(drop=True)


def check_events(rows: pd.DataFrame, root: Path, *, today: dt.date, actor: str, skip_key: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split new lifecycle events into accepted and rejected rows, every reason named.

    ``rows``: strings, one event per row: case_id, state, event_date, and optionally actor,
    outcome, amount, note. Each row is checked against its case's state after every earlier event
    (stored ones, then the accepted rows above it), so a CSV can walk a case through several
    states. ``skip_key``: a stored batch this one replaces (a re-imported file). Grain of both
    outputs: one row per input row."""
    fields = ["case_id", "state", "event_date", "actor", "outcome", "amount", "note"]
    rows = rows.assign(**{c: rows[c] if c in rows.columns else "" for c in fields})
    rows[fields] = rows[fields].fillna("").astype(str).apply(lambda col: col.str.strip())
    stored = case_events(root)
    if skip_key:
        stored = stored[stored["event_id"].astype(str).str.split(":").str[0] != skip_key]
    position = fold_events(stored)
    opened = queued_before(root, dt.date.max).set_index("case_id")
    accepted, rejected = [], []
    for i, rec in enumerate(rows.to_dict("records"), start=1):
        problems: list[str] = []
        case, state = rec.get("case_id") or "", (rec.get("state") or "").lower()
        pos = position.get(case, {"state": "open", "since": None, "recovered": 0.0, "outcome": None})
        if case not in opened.index:
            problems.append(f"unknown case_id {case!r}" if case else "case_id is empty")
        if state not in STATES or state == "open":
            problems.append(f"state {rec.get('state')!r} is not one of {', '.join(STATES[1:])}")
        elif not problems and state not in TRANSITIONS[pos["state"]]:
            allowed = ", ".join(sorted(TRANSITIONS[pos["state"]])) or "none: the case is closed"
            problems.append(f"{case} is {pos['state']}: it can move to {allowed}, not {state}")
        date = None
        try:
            date = dt.date.fromisoformat(rec.get("event_date") or "")
            if date > today:
                problems.append(f"event_date {date} is in the future")
            since = pos["since"] or (opened.at[case, "run_date"] if case in opened.index else None)
            if since and date.isoformat() < since:
                problems.append(f"event_date {date} is before the case's last change ({since})")
        except ValueError:
            problems.append(f"event_date {rec.get('event_date')!r} is not YYYY-MM-DD")
        outcome = (rec.get("outcome") or "").lower() or None
        if state == "findings_issued" and outcome not in OUTCOMES:
            problems.append(f"findings_issued needs an outcome: confirmed, partial or cleared (got {rec.get('outcome')!r})")
        elif state != "findings_issued" and outcome:
            problems.append("only findings_issued takes an outcome")
        amount = None
        if rec.get("amount"):
            try:
                amount = float(str(rec["amount"]).replace(",", "").lstrip("$"))
            except ValueError:
                problems.append(f"amount {rec['amount']!r} is not a number")
            else:
                paid = opened.at[case, "amount_paid"] if case in opened.index else None
                paid = float(paid) if paid is not None and pd.notna(paid) else None
                if not math.isfinite(amount) or amount < 0:
                    problems.append(f"amount {rec['amount']!r} is not a finite number >= 0")
                elif state == "recovered" and paid is not None and round(pos["recovered"] + amount, 2) > round(paid, 2):
                    problems.append(f"recoveries would total {pos['recovered'] + amount:.2f}, more than the claim paid ({paid:.2f})")
                elif state == "findings_issued" and paid is not None and round(amount, 2) > round(paid, 2):
                    problems.append(f"overpayment {amount:.2f} is more than the claim paid ({paid:.2f})")
        if state == "recovered" and not amount:
            problems.append("recovered needs an amount > 0")
        if state not in ("recovered", "findings_issued") and amount:
            problems.append("only findings_issued and recovered take an amount")
        if outcome == "cleared" and amount:
            problems.append("a cleared finding cannot have an overpayment")
        if problems:
            rejected.append({**rec, "source_row": i, "reason": "; ".join(problems)})
            continue
        event = {
            "case_id": case, "state": state, "event_date": date.isoformat(), "actor": rec.get("actor") or actor,
            "outcome": outcome, "amount": amount, "note": rec.get("note") or None, "source_row": i,
        }
        accepted.append(event)
        position.update(fold_events(pd.DataFrame([*_history_of(stored, case), *[e for e in accepted if e["case_id"] == case]],
                                                 columns=EVENT_COLUMNS)))
    return (
        pd.DataFrame(accepted, columns=[c for c in EVENT_COLUMNS if c not in ("event_id", "recorded_at", "source")]),
        pd.DataFrame(rejected, columns=[*rows.columns, "source_row", "reason"]),
    )


def _history_of(events: pd.DataFrame, case: str) -> list[dict]:
    return events[events["case_id"] == case].to_dict("records")


def store_events(root: Path, accepted: pd.DataFrame, *, key: str, source: str) -> Path | None:
    """Write accepted events as one batch file ``events/<key>.parquet`` (replacing an earlier batch
    with the same key: re-importing a file, or repeating the same command, is idempotent)."""
    folder = root / "events"
    final = folder / f"{key}.parquet"
    if accepted.empty:
        final.unlink(missing_ok=True)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows = accepted.assign(
        event_id=[f"{key}:{r}" for r in accepted["source_row"]], recorded_at=now, source=source
    ).reindex(columns=EVENT_COLUMNS)
    rows["amount"] = rows["amount"].astype("float64")
    tmp = folder / f".{final.name}.tmp"
    rows.to_parquet(tmp, index=False)
    tmp.replace(final)
    return final
