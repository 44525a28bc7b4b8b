"""``claimsentry extrapolate --sample FILE``: project an audited sample's overpayments onto its universe.

FILE is the ``sample.csv`` that ``claimsentry audit-sample`` wrote, with each sampled claim's
``overpayment`` filled in by the auditors (0 for a claim with none). Everything the estimate needs is
on its rows (each claim's stratum, the stratum's size and sample size); nothing else is read for it.
Every row must be there and every overpayment a number from 0 to the claim's paid amount: a missing,
non-numeric, negative or too large value is a one-line error naming the lines, never a dropped row.

Prints the result as JSON and writes it, atomically, to ``extrapolation.json`` beside FILE: the
mean-per-unit point estimate of the universe's overpayment, the two-sided 90% confidence interval
with the finite population correction, the precision (formulas and conventions:
``claimsentry.sampling``). When FILE's folder holds the ``audit.json`` of the same audit (same
universe and sample sizes), the result carries its ``audit_id``, and when the case store holds that
audit (``<queue.history_dir>/audits/<audit_id>/``) with the same claims in the same strata, the
result and a copy of FILE (``sample_audited.csv``) are written there too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pandas as pd

from claimsentry import cases, sampling
from claimsentry.io import neutralise_formulas, read_user_csv

log = logging.getLogger(__name__)

RESULT_FILE = "extrapolation.json"


def read_sample(path: Path) -> pd.DataFrame:
    """FILE as text: every cell a string, file order (line 2 is the first row)."""
    return read_user_csv(path, "sample file", utf8_hint=" (save it as 'CSV UTF-8')")


def _audit_beside(path: Path) -> dict | None:
    try:
        audit = json.loads((path.parent / "audit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return audit if isinstance(audit, dict) and audit.get("audit_id") else None


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _same_claims(sample: pd.DataFrame, frozen_sample: Path) -> bool:
    """Whether the checked ``sample`` holds exactly the claims, in the same strata, of an audit's
    frozen ``sample.parquet`` (its ids as the CSV shows them: ``neutralise_formulas``)."""
    frozen = neutralise_formulas(pd.read_parquet(frozen_sample, columns=["claim_source", "claim_id", "stratum"]))
    expect = {(str(r.claim_source), str(r.claim_id), str(r.stratum)) for r in frozen.itertuples(index=False)}
    got = {(r.claim_source, r.claim_id, r.stratum) for r in sample[["claim_source", "claim_id", "stratum"]].itertuples(index=False)}
    return got == expect


def extrapolate_file(settings, file_path) -> dict:
    """Check and extrapolate one audited sample file, write the result beside it (and into the case
    store's copy of its audit, when there is one). Returns the result."""
    path = Path(file_path)
    raw = read_sample(path)
    sample = sampling.check_sample(raw, name=path.name)
    result = sampling.extrapolate(sample)
    data = path.read_bytes()
    audit = _audit_beside(path)
    audit_id = None
    if audit is not None:
        if audit.get("universe_size") == result["universe_size"] and audit.get("size") == result["sample_size"]:
            audit_id = audit["audit_id"]
        else:
            result["notes"].append(
                f"audit.json beside the file describes another audit ({audit.get('audit_id')}: universe "
                f"{audit.get('universe_size')}, sample {audit.get('size')}): not linked to it"
            )
    frozen = cases.history_dir(settings) / "audits" / audit_id if audit_id else None
    if frozen is not None and (frozen / "sample.parquet").is_file() and not _same_claims(sample, frozen / "sample.parquet"):
        result["notes"].append(
            f"the file's claims are not those of audit {audit_id}'s frozen sample: not linked to it"
        )
        audit_id = frozen = None
    result = {"audit_id": audit_id, **result, "sample_file": path.name, "sample_sha256": hashlib.sha256(data).hexdigest()}
    _write_json(path.parent / RESULT_FILE, result)
    if frozen is not None:
        if (frozen / "audit.json").is_file():
            copy = frozen / "sample_audited.csv"
            tmp = copy.with_name(f".{copy.name}.tmp-{os.getpid()}")
            try:
                tmp.write_bytes(data)
                tmp.replace(copy)
            finally:
                tmp.unlink(missing_ok=True)
            _write_json(frozen / RESULT_FILE, result)
            log.info("extrapolation stored with audit %s in %s", audit_id, frozen)
    return result


def configure_parser(parser) -> None:
    parser.add_argument(
        "--sample",
        required=True,
        metavar="FILE",
        help="audit-sample's sample.csv with the overpayment column filled in (0 for a claim with none)",
    )


def run_from_cli(args, settings) -> int:
    result = extrapolate_file(settings, args.sample)
    print(json.dumps(result, indent=2))
    return 0
