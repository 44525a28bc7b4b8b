"""``claimsentry feedback --file F``: import auditors' dispositions, close cases, feed training.

Input: a CSV (UTF-8, with or without BOM) with one row per audited case:

| column | required | meaning |
|---|---|---|
| case_id | one of case_id / claim_id | the queue's case id (``CS-…``) |
| claim_id | one of case_id / claim_id | the queued claim, when the case id is not at hand |
| claim_source | with a claim_id queued as both | ``medical`` or ``pharmacy`` |
| outcome | yes | ``confirmed`` (improper), ``partial`` (partly improper), ``cleared`` (proper) |
| recovered_amount | no | dollars recovered: a finite number, ≥ 0, at most what the claim paid |
| outcome_date | yes | ``YYYY-MM-DD``, not in the future |
| note | no | free text, stored, never logged |

A disposition closes a case the queue opened, so its claim must be a queued case (the case
history under ``<history_dir>/queued/``); audits of claims never queued belong in the training
input's ``labels`` table. The claim's paid amount, recorded with the case, caps recovered_amount.

Every row is either accepted (stored under ``<history_dir>/dispositions/``) or rejected with its
reason in ``<history_dir>/dispositions/rejected/`` and in the command's output — none is dropped.
Importing the same file again replaces its own rows (idempotent). The next ``claimsentry train``
reads accepted dispositions as labels (confirmed/partial → 1, cleared → 0; the latest outcome per
case wins, and replaces the input's label for the same claim).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from pathlib import Path

import pandas as pd

from claimsentry import cases
from claimsentry.errors import InputError
from claimsentry.io import read_user_csv, write_csv_for_spreadsheets

log = logging.getLogger(__name__)

CLAIM_SOURCES = {"medical", "pharmacy"}


def _read(path: Path) -> pd.DataFrame:
    frame = read_user_csv(path, "feedback file")
    frame.columns = [c.strip().lower() for c in frame.columns]
    if "outcome" not in frame.columns or not ({"case_id", "claim_id"} & set(frame.columns)):
        raise InputError(f"feedback file needs columns outcome and case_id or claim_id; found {list(frame.columns)}")
    for col in ("case_id", "claim_id", "claim_source", "recovered_amount", "outcome_date", "note"):
        if col not in frame.columns:
            frame[col] = ""
    return frame.apply(lambda s: s.str.strip())


def check_rows(frame: pd.DataFrame, known: pd.DataFrame, today: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split feedback rows into accepted dispositions and rejected rows with every reason named.

    ``known`` holds the queued cases (case_id, claim_id, claim_source, and amount_paid where the
    history recorded it); a row names its case directly or by its claim. Grain of both outputs: one
    row per input row (accepted: ``DISPOSITION_COLUMNS`` without source_file; rejected: the input's
    columns, source_row, reason).
    """
    known = known.assign(amount_paid=known.get("amount_paid"))  # absent in history written before it was kept
    cols = ["case_id", "claim_id", "claim_source", "amount_paid"]
    by_case = known.set_index("case_id")[cols[1:]].to_dict("index")
    by_claim: dict[str, list[dict]] = {}
    for rec in known[cols].to_dict("records"):
        by_claim.setdefault(rec["claim_id"], []).append(rec)

    accepted, rejected = [], []
    for i, rec in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        problems: list[str] = []
        case, claim, source = rec["case_id"], rec["claim_id"], rec["claim_source"].lower()
        hit = None
        if source and source not in CLAIM_SOURCES:
            problems.append(f"claim_source {rec['claim_source']!r} is not medical or pharmacy")
        elif case:
            hit = by_case.get(case)
            if hit is None:
                problems.append(f"unknown case_id {case!r}")
            elif claim and claim != hit["claim_id"]:
                problems.append(f"case_id {case} belongs to another claim")
        elif claim:
            matches = [m for m in by_claim.get(claim, []) if not source or m["claim_source"] == source]
            if len(matches) == 1:
                hit = matches[0]
            elif matches:
                problems.append("claim_id was queued as both medical and pharmacy: give claim_source")
            else:
                problems.append("claim_id not found in any queued case")
        else:
            problems.append("case_id and claim_id both empty")
        if hit is not None:
            claim, source = hit["claim_id"], hit["claim_source"]
            case = case or hit["case_id"]

        outcome = rec["outcome"].lower()
        if outcome not in cases.OUTCOMES:
            problems.append(f"outcome {rec['outcome']!r} is not one of confirmed, partial, cleared")

        outcome_date = None
        try:
            outcome_date = dt.date.fromisoformat(rec["outcome_date"])
            if outcome_date > today:
                problems.append(f"outcome_date {rec['outcome_date']} is in the future")
        except ValueError:
            problems.append(f"outcome_date {rec['outcome_date']!r} is not YYYY-MM-DD")

        recovered = None
        if rec["recovered_amount"]:
            paid = hit["amount_paid"] if hit is not None else None
            try:
                recovered = float(rec["recovered_amount"].replace(",", "").lstrip("$"))
            except ValueError:
                problems.append(f"recovered_amount {rec['recovered_amount']!r} is not a number")
            else:
                if not math.isfinite(recovered):
                    problems.append(f"recovered_amount {rec['recovered_amount']!r} is not a finite number")
                elif recovered < 0:
                    problems.append(f"recovered_amount {rec['recovered_amount']} is negative")
                elif paid is not None and not pd.isna(paid) and round(recovered, 2) > round(float(paid), 2):
                    problems.append(f"recovered_amount {rec['recovered_amount']} exceeds the claim's paid amount ({float(paid):.2f})")
        if outcome == "cleared" and recovered:
            problems.append("a cleared case cannot have a recovered amount")

        if problems:
            rejected.append({**rec, "source_row": i, "reason": "; ".join(problems)})
        else:
            accepted.append(
                {
                    "case_id": case,
                    "claim_id": claim,
                    "claim_source": source,
                    "outcome": outcome,
                    "label": cases.OUTCOMES[outcome],
                    "recovered_amount": recovered,
                    "outcome_date": outcome_date.isoformat(),
                    "note": rec["note"] or None,
                    "source_row": i,
                }
            )
    return (
        pd.DataFrame(accepted, columns=[c for c in cases.DISPOSITION_COLUMNS if c != "source_file"]),
        pd.DataFrame(rejected, columns=[*frame.columns, "source_row", "reason"]),
    )


def ingest_feedback(settings, file_path, *, today: dt.date | None = None) -> dict:
    """Import one dispositions file. Returns counts and where accepted/rejected rows went."""
    path = Path(file_path)
    frame = _read(path)
    root = cases.history_dir(settings)
    known = cases.queued_before(root, dt.date.max)
    accepted, rejected = check_rows(frame, known, today or dt.date.today())

    file_key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    out_dir = root / "dispositions"
    (out_dir / "rejected").mkdir(parents=True, exist_ok=True)
    accepted["source_file"] = path.name
    accepted = accepted[cases.DISPOSITION_COLUMNS]
    accepted_path = out_dir / f"{file_key}.parquet"
    rejected_path = out_dir / "rejected" / f"{file_key}.csv"
    if len(accepted):
        tmp = accepted_path.with_suffix(".tmp")
        accepted.to_parquet(tmp, index=False)
        tmp.replace(accepted_path)
    if len(rejected):
        write_csv_for_spreadsheets(rejected, rejected_path)  # auditors open it: no cell may start a formula
    closed = set(accepted["case_id"]) & set(known["case_id"])
    log.info("feedback %s: %d accepted, %d rejected", path.name, len(accepted), len(rejected))
    return {
        "file": str(path),
        "rows": int(len(frame)),
        "accepted": int(len(accepted)),
        "rejected": int(len(rejected)),
        "closed_cases": len(closed),
        "accepted_path": str(accepted_path) if len(accepted) else None,
        "rejected_path": str(rejected_path) if len(rejected) else None,
        "rejections": rejected[["source_row", "reason"]].to_dict("records"),
    }


def configure_parser(parser) -> None:
    parser.add_argument("--file", required=True, help="dispositions CSV: case_id or claim_id, outcome, outcome_date, ...")


def run_from_cli(args, settings) -> int:
    result = ingest_feedback(settings, args.file)
    print(
        f"{result['accepted']} of {result['rows']} dispositions accepted, {result['closed_cases']} cases closed, "
        f"{result['rejected']} rejected"
    )
    for rej in result["rejections"][:20]:
        print(f"  line {rej['source_row']}: {rej['reason']}")
    if result["rejected_path"]:
        print(f"rejected rows with reasons: {result['rejected_path']}")
    return 1 if result["rejected"] and not result["accepted"] else 0
