"""``claimsentry audit-sample``: a seeded, reproducible random sample of one provider's claims for a
period, frozen with its universe for a statistically valid audit (issue 37).

Extract: the claims of ``--input`` (a contract input folder) read through the data-quality gate
(``claimsentry.jobs.validate.run_gate``): only accepted rows. The claims store (issue 35) is not
built yet; when it is, the claims will come from it and ``--input`` will be optional.

Transform (``provider_claims``, Spark): the claims with a line of the provider, aggregated to one row
per claim. A medical claim is one claim_id, its header voted across its lines
(``claimsentry.features.header.medical_claim_header``); it is the provider's when its ``billing_npi``
is the NPI, dated by its ``claim_start_date``. A pharmacy claim is one fill (claim_id), the
provider's when its ``dispensing_provider_npi`` is the NPI, dated by its ``dispensing_date`` (a fill
whose lines disagree on either is left out and counted). ``paid_amount`` is the sum of the claim's
lines. Then, on the driver (``claimsentry.sampling``): the claims dated within [from, to] inclusive,
those paid nothing or less left out and counted, and the sample drawn.

Load: ``OUTPUT/universe.csv`` (one row per claim of the universe, with its stratum, random number and
whether it was sampled), ``OUTPUT/sample.csv`` (one row per sampled claim, an empty ``overpayment``
column for the auditors), ``OUTPUT/audit.json`` (the design), each written to a temporary file and
renamed; and a frozen copy under ``<queue.history_dir>/audits/<audit_id>/`` (``universe.parquet``,
``sample.parquet``, ``audit.json``), written once. The CSVs go through
``claimsentry.io.write_csv_for_spreadsheets``: no cell starts a formula. The same arguments on the
same claims give the same audit id and byte-identical CSVs. An output folder already holding another
audit, or a ``sample.csv`` that differs from this one (overpayments recorded), is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from claimsentry import __version__, cases, sampling
from claimsentry.errors import InputError
from claimsentry.io import atomic_dir, write_csv_for_spreadsheets

log = logging.getLogger(__name__)

OUTPUT_FILES = ("universe.csv", "sample.csv", "audit.json")


# --- Transform ------------------------------------------------------------------------------------


def provider_claims(medical: DataFrame, pharmacy: DataFrame | None, npi: str) -> DataFrame:
    """Every claim with a line of ``npi``, whatever its date: one row per (claim_source, claim_id) with
    ``paid_amount`` (exact sum of all its lines), ``claim_date``, ``person_id`` and ``attributed``
    (the claim as a whole is the provider's and dated: for medical, its voted ``billing_npi`` is
    ``npi``; for pharmacy, all its lines name ``npi`` as the dispensing provider and share one
    dispensing date). ``medical`` and ``pharmacy``: the gate's accepted, typed line tables."""
    from claimsentry.features.header import medical_claim_header

    touched = medical.where(F.col("billing_npi") == F.lit(npi)).select("claim_id").distinct()
    header = medical_claim_header(medical.join(touched, "claim_id", "left_semi"))
    frames = [
        header.select(
            F.lit("medical").alias("claim_source"),
            "claim_id",
            F.col("paid_amount").cast("double").alias("paid_amount"),
            F.col("claim_start_date").alias("claim_date"),
            "person_id",
            F.coalesce(F.col("billing_npi") == F.lit(npi), F.lit(False)).alias("attributed"),
        )
    ]
    if pharmacy is not None:
        from claimsentry.exact import exact_sum

        touched = pharmacy.where(F.col("dispensing_provider_npi") == F.lit(npi)).select("claim_id").distinct()
        fills = (
            pharmacy.join(touched, "claim_id", "left_semi")
            .groupBy("claim_id")
            .agg(
                exact_sum("paid_amount").alias("paid_amount"),
                F.min("dispensing_provider_npi").alias("npi_min"),
                F.max("dispensing_provider_npi").alias("npi_max"),
                F.count("dispensing_provider_npi").alias("npi_n"),
                F.min("dispensing_date").alias("date_min"),
                F.max("dispensing_date").alias("date_max"),
                F.min("person_id").alias("person_min"),
                F.max("person_id").alias("person_max"),
                F.count(F.lit(1)).alias("lines"),
            )
        )
        agrees = (
            (F.col("npi_min") == F.lit(npi))
            & (F.col("npi_max") == F.lit(npi))
            & (F.col("npi_n") == F.col("lines"))
            & (F.col("date_min") == F.col("date_max"))
        )
        frames.append(
            fills.select(
                F.lit("pharmacy").alias("claim_source"),
                "claim_id",
                "paid_amount",
                F.when(F.col("date_min") == F.col("date_max"), F.col("date_min")).alias("claim_date"),
                F.when(F.col("person_min") == F.col("person_max"), F.col("person_min")).alias("person_id"),
                F.coalesce(agrees, F.lit(False)).alias("attributed"),
            )
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def claims_in_period(touched: pd.DataFrame, start: dt.date, end: dt.date) -> tuple[pd.DataFrame, int]:
    """The provider's claims dated within [start, end] (``sampling.CLAIM_COLUMNS``; one row per
    claim), and how many claims with a line of the provider were left out for not being its claims
    as a whole (``attributed`` false) or having no single date."""
    dates = pd.to_datetime(touched["claim_date"], errors="coerce").dt.date
    attributed = touched["attributed"].astype(bool) & dates.notna()
    in_period = attributed & (dates >= start) & (dates <= end)
    claims = touched.loc[in_period, sampling.CLAIM_COLUMNS].copy()
    claims["claim_date"] = dates[in_period]
    return claims.reset_index(drop=True), int((~attributed).sum())


# --- Load -----------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _existing_audit(folder: Path) -> str | None:
    path = folder / "audit.json"
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("audit_id") or "an unnamed audit")
    except (OSError, ValueError, AttributeError):
        return "an unreadable audit.json"


def write_audit(out: Path, frame: pd.DataFrame, sample: pd.DataFrame, audit: dict) -> dict:
    """Write ``universe.csv``, ``sample.csv`` and ``audit.json`` into ``out``: each to a hidden
    temporary file first, renamed into place once all three are written. Refuses (InputError) a folder
    holding another audit or a ``sample.csv`` that differs from this one. Returns ``audit`` with the
    CSVs' sha256."""
    out.mkdir(parents=True, exist_ok=True)
    held = _existing_audit(out)
    if held is not None and held != audit["audit_id"]:
        raise InputError(f"{out} already holds {held}: choose another --output (or remove that audit first)")
    token = f"{os.getpid()}"
    temps = {name: out / f".{name}.tmp-{token}" for name in OUTPUT_FILES}
    try:
        write_csv_for_spreadsheets(frame, temps["universe.csv"])
        write_csv_for_spreadsheets(sample, temps["sample.csv"])
        current = out / "sample.csv"
        if current.is_file() and current.read_bytes() != temps["sample.csv"].read_bytes():
            raise InputError(
                f"{current} exists and differs from this audit's sample (overpayments recorded?): "
                "it is not overwritten; choose another --output"
            )
        audit = {
            **audit,
            "files": {
                "universe.csv": _sha256(temps["universe.csv"]),
                "sample.csv": _sha256(temps["sample.csv"]),
            },
        }
        temps["audit.json"].write_text(json.dumps(audit, indent=2) + "\n", encoding="utf-8")
        for name in OUTPUT_FILES:
            temps[name].replace(out / name)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return audit


def freeze_audit(root: Path, frame: pd.DataFrame, sample: pd.DataFrame, audit: dict) -> tuple[Path, bool]:
    """The audit's frozen copy in the case store: ``<root>/audits/<audit_id>/`` with
    ``universe.parquet``, ``sample.parquet`` and ``audit.json``, written whole or not at all, and
    never rewritten once there. Returns the folder and whether this call wrote it."""
    folder = root / "audits" / audit["audit_id"]
    if (folder / "audit.json").is_file():
        return folder, False
    with atomic_dir(folder) as staging:
        frame.to_parquet(staging / "universe.parquet", index=False)
        sample.to_parquet(staging / "sample.parquet", index=False)
        (staging / "audit.json").write_text(json.dumps(audit, indent=2) + "\n", encoding="utf-8")
    return folder, True


# --- The job --------------------------------------------------------------------------------------


def run_audit_sample(
    spark: SparkSession,
    settings,
    *,
    input_dir: str,
    npi: str,
    start: dt.date,
    end: dt.date,
    size: int,
    strata: int | None,
    seed: int,
    output: str,
    as_of: dt.date,
) -> dict:
    """Gate ``input_dir``, build the provider's universe for [start, end], draw the sample, write and
    freeze the audit. Returns the audit record (what ``audit.json`` holds) with ``output`` and
    ``frozen`` paths."""
    from claimsentry.jobs.validate import run_gate

    out = Path(output)
    held = _existing_audit(out)  # before the gate's minutes, when the answer is already known
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".audit-sample-gate-", dir=out.parent) as work:
        gate = run_gate(spark, input_dir, settings, as_of=as_of, checkpoint_dir=work)
        try:
            touched = provider_claims(gate.tables["medical_claim"], gate.tables.get("pharmacy_claim"), npi).toPandas()
        finally:
            gate.release()
    claims, unattributed = claims_in_period(touched, start, end)
    universe, excluded = sampling.universe_of(claims)
    if universe.empty:
        raise InputError(
            f"no paid claims of NPI {npi} with service dates from {start} to {end} among the accepted claims"
            + (f" ({excluded['claims']} with paid_amount <= 0 left out)" if excluded["claims"] else "")
        )
    aid = sampling.audit_id(npi, start.isoformat(), end.isoformat(), size, strata, seed, universe)
    if held is not None and held != aid:
        raise InputError(f"{out} already holds {held}: choose another --output (or remove that audit first)")
    frame, sample, design = sampling.draw_sample(universe, size, strata=strata, seed=seed)
    audit = {
        "audit_id": aid,
        "npi": npi,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "size": size,
        "strata": strata or 1,
        "seed": seed,
        **design,
        "unit": "claim: a medical claim_id (its lines summed) or a pharmacy fill",
        "universe_size": int(len(frame)),
        "universe_paid_amount": round(float(frame["paid_amount"].sum()), 2),
        "universe_by_source": {k: int(v) for k, v in frame["claim_source"].value_counts().sort_index().items()},
        "excluded": {
            "paid_amount_not_positive": excluded["claims"],
            "paid_amount_not_positive_total": excluded["paid_amount"],
            "not_the_providers_claim_or_undated": unattributed,
        },
        "input": str(input_dir) if "://" in str(input_dir) else str(Path(input_dir).resolve()),
        "as_of": as_of.isoformat(),
        "gate": gate.counts,
        "claimsentry_version": __version__,
    }
    audit = write_audit(out, frame, sample, audit)
    frozen, _ = freeze_audit(cases.history_dir(settings), frame, sample, audit)
    return {**audit, "output": str(out), "frozen": str(frozen)}


# --- CLI ------------------------------------------------------------------------------------------


def _date(flag: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None


def _int(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise InputError(f"{flag} must be a whole number, got {text!r}")
    return int(text)


def configure_parser(parser) -> None:
    parser.add_argument("--npi", required=True, help="the provider: billing NPI of its medical claims, dispensing NPI of its fills")
    parser.add_argument("--from", dest="date_from", required=True, metavar="D1", help="first service date, YYYY-MM-DD (inclusive)")
    parser.add_argument("--to", dest="date_to", required=True, metavar="D2", help="last service date, YYYY-MM-DD (inclusive)")
    parser.add_argument("--size", required=True, metavar="N", help="number of claims to sample")
    parser.add_argument("--strata", metavar="K", help="stratify by paid amount into K strata (default: simple random sample)")
    parser.add_argument("--seed", required=True, metavar="S", help="random seed (non-negative integer): same seed, same sample")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for universe.csv, sample.csv and audit.json")
    parser.add_argument(
        "--input",
        required=True,
        metavar="DIR",
        help="claims directory (medical_claim, pharmacy_claim, eligibility), read through the data-quality gate; "
        "required until the claims store (issue 35) exists",
    )
    parser.add_argument("--as-of", help="YYYY-MM-DD for the gate: dates after it are in the future (default: today)")


def run_from_cli(args, settings) -> int:
    npi = (args.npi or "").strip()
    if not npi:
        raise InputError("--npi is empty")
    start, end = _date("--from", args.date_from), _date("--to", args.date_to)
    if start > end:
        raise InputError(f"--from {start} is after --to {end}")
    size, strata, seed = _int("--size", args.size), _int("--strata", args.strata), _int("--seed", args.seed)
    if size < 1:
        raise InputError(f"--size must be at least 1, got {size}")
    if strata is not None and strata < 1:
        raise InputError(f"--strata must be at least 1, got {strata}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    as_of = _date("--as-of", args.as_of) if args.as_of else dt.date.today()
    if "://" not in args.input and not Path(args.input).is_dir():
        raise InputError(f"input directory not found: {args.input}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise InputError(f"--output {args.output} is a file, not a folder")

    from claimsentry.spark import get_spark

    result = run_audit_sample(
        get_spark(settings), settings, input_dir=args.input, npi=npi, start=start, end=end, size=size,
        strata=strata, seed=seed, output=args.output, as_of=as_of,
    )
    print(summary(result))
    return 0


def summary(audit: dict) -> str:
    """What ``audit-sample`` prints: the universe, the sample per stratum and where the files went."""
    excluded = audit["excluded"]
    left_out = []
    if excluded["paid_amount_not_positive"]:
        left_out.append(f"{excluded['paid_amount_not_positive']:,} with paid_amount <= 0")
    if excluded["not_the_providers_claim_or_undated"]:
        left_out.append(f"{excluded['not_the_providers_claim_or_undated']:,} with a line of the NPI but not its claim or undated")
    lines = [
        f"audit {audit['audit_id']}: NPI {audit['npi']}, service dates {audit['from']} to {audit['to']}, seed {audit['seed']}",
        f"universe: {audit['universe_size']:,} claims, ${audit['universe_paid_amount']:,.2f} paid"
        + (f" (left out: {'; '.join(left_out)})" if left_out else ""),
        f"{audit['method']}: {sum(s['sample_size'] for s in audit['allocation'])} claims"
        + (f", {audit['strata_formed']} strata by paid amount" if audit["strata_formed"] > 1 else ""),
    ]
    if audit["strata_formed"] < audit["strata_requested"]:
        lines.append(
            f"note: {audit['strata_requested']} strata asked for, {audit['strata_formed']} formed "
            "(the paid amounts do not split further)"
        )
    if audit["strata_formed"] > 1:
        for s in audit["allocation"]:
            lo, hi = s["paid_at_least"], s["paid_below"]
            span = (f"${lo:,.2f} <= " if lo is not None else "") + "paid" + (f" < ${hi:,.2f}" if hi is not None else "")
            whole = " (taken whole)" if s["certainty"] else ""
            lines.append(
                f"  stratum {s['stratum']}: {span}: {s['claims']:,} claims, ${s['paid_amount']:,.2f} -> "
                f"{s['sample_size']} sampled{whole}"
            )
    out = audit["output"]
    lines.append(f"-> {os.path.join(out, 'universe.csv')}, {os.path.join(out, 'sample.csv')}, {os.path.join(out, 'audit.json')}")
    lines.append(f"frozen in {audit['frozen']}")
    lines.append(
        "record each sampled claim's overpayment in sample.csv (0 when none), then: "
        f"claimsentry extrapolate --sample {os.path.join(out, 'sample.csv')}"
    )
    return "\n".join(lines)
