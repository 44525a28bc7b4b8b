"""Synthetic claims in the contract's input shape, with injected and recorded fraud schemes.

``generate(output_dir, members=..., seed=...)`` writes:

- ``medical_claim/``  (one row per claim line; institutional inpatient stays and professional claims)
- ``pharmacy_claim/`` (one row per dispensed prescription)
- ``eligibility/``    (one row per enrollment span of one person)
- ``labels.csv``          one row per audited claim (label 1 confirmed improper, 0 audited clean)
- ``provider_labels.csv`` one row per labelled provider
- ``provider.parquet`` (``provider.csv`` with ``fmt="csv"``) one row per provider NPI: entity type,
  NUCC taxonomy, specialty, state (the contract's optional ``provider`` table)
- ``reference/`` the world's policy files in the publishers' formats (NCCI PTP, MUE and add-on
  code edits, the OIG LEIE), for ``claimsentry reference add`` (``generate.policy``)
- ``truth/claim_truth.parquet`` one row per injected improper claim: claim_id, claim_source, scheme,
  npi (the responsible provider; null for member-driven schemes: doctor_shopping,
  pharmacy_shopping), person_id, detail.

Tables are Parquet folders with one part file per chunk of members (``fmt="parquet"``) or one
``<table>.csv`` (``fmt="csv"``). Everything is drawn with numpy from ``seed`` (one generator per
chunk of members), so the same seed gives byte-identical content. Work is vectorised over claims;
memory is bounded by the chunk size, so 10M claim lines take minutes.

What is realistic here:
- NPIs are 10 digits with the Luhn check digit over the ``80840`` prefix, as CMS issues them.
- Inpatient stays use coding templates (``reference/generator_drg_templates.csv``) that the real
  MS-DRG v43.1 grouper assigns to their DRG (built and checked by
  ``tools/build_generator_templates.py``); LOS is drawn around the DRG's geometric mean LOS and
  payment is a base rate times the FY2026 relative weight (``reference/msdrg_fy2026.csv``).
- Drugs are real 11-digit NDCs (``reference/generator_drugs.csv``: CDC 2017 opioid/benzodiazepine
  list with MME factors, FDA NDC directory for the rest).

Injected schemes (names as in docs/ARCHITECTURE.md), each improper claim recorded in truth:
- ``drg_upcoding`` (one hospital in 20, at least one): two variants, told apart in truth ``detail``:
  ``coded`` — the bill carries an MCC secondary diagnosis the patient did not have and the "with
  MCC" DRG of the family; the codes really group to the billed DRG (only the hospital's MCC rate and
  the short, cheap stay betray it). ``billed`` — the codes are left as they were but the billed
  drg_code is the family's top DRG, so regrouping the codes gives a lower DRG than billed.
- ``inflated_los`` (a hospital): stays 2.5–4x the DRG's GMLOS, paid with an outlier add-on.
- ``split_admission`` (a hospital): one stay billed as two, readmitted 0–1 days after discharge
  at the same facility; the second claim is the improper one.
- ``em_upcoding`` (physicians): most office visits billed 99215/99205; improper where the billed
  level is above the level drawn for the visit.
- ``excessive_units`` (physical therapists): 6–10 timed 15-minute units per code instead of 1–3.
- ``duplicate_billing`` (physicians): copies of claims under a new claim_id, exact or near
  (one day later or with a 76 "repeat procedure" modifier).
- ``service_after_death`` / ``outside_enrollment`` (physicians, one pharmacy): claims dated after
  the member's death_date / in an enrollment gap.
- ``opioid_overprescribing`` (prescribers): monthly high-dose oxycodone (180–270 MME/day) to many
  patients. ``prescriber_pharmacy_collusion``: one prescriber's opioid scripts filled at one
  pharmacy (npi = the pharmacy). ``early_refill`` (a pharmacy): extra fills half-way through a
  30-day supply. ``doctor_shopping`` / ``pharmacy_shopping`` (members): overlapping opioid or
  benzodiazepine fills from many prescribers / many pharmacies.

Labels mimic audits: ~37% of improper claims are audited and labelled 1, plus ~2.5x as many
audited-clean claims (picked with probability growing with the paid amount) labelled 0;
``outcome_date`` is 60–365 days after the claim. About half of the fraudulent providers are
labelled 1 in provider_labels, and some clean ones 0.

Modules: ``world`` (constants, reference lists, providers and their schemes, members and
enrollment), ``medical`` (professional visits, inpatient stays, their schemes and contract rows),
``pharmacy`` (fills, pharmacy schemes, contract rows), ``output`` (labels, dirty rows, writers).
Rates and shares are named constants in ``world`` and at the scheme that uses them.

``dirty_fraction`` > 0 breaks that share of raw rows (blank required field, unparseable date,
negative or text amount, end before start, duplicate key) on claims outside truth and labels; the
tables are then written with every column as a string (Parquet string columns or CSV text).
"""


from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from claimsentry.errors import InputError
from claimsentry.generate.medical import (
    hospitalist_visits, inpatient_stays, institutional_frame, institutional_lines, professional_frame, professional_lines,
    professional_visits,
)
from claimsentry.generate.output import _TableWriter, _as_strings, audit_labels, make_dirty, provider_labels, to_arrow
from claimsentry.generate.pharmacy import pharmacy_fills, pharmacy_frame
from claimsentry.generate.policy import (
    POLICY_SCHEMES, assign_policy_perpetrators, inject_policy_schemes, mark_excluded_prescriptions, provider_table,
    write_policy_files,
)
from claimsentry.generate.world import (
    CHUNK_MEMBERS, LATE_START_DAYS, _day, _ids, eligibility_frame, load_reference, luhn_valid_npi, make_members,
    make_providers, npi_check_digit,
)
from claimsentry.schemas import ELIGIBILITY, LABELS, MEDICAL_CLAIM, PHARMACY_CLAIM

from claimsentry.generate.world import SCHEMES as _WORLD_SCHEMES  # noqa: E402

SCHEMES = (*_WORLD_SCHEMES, *POLICY_SCHEMES)  # every labelled scheme the generator injects
__all__ = ["SCHEMES", "generate", "luhn_valid_npi", "npi_check_digit"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- entry

def _claims_summary(frame: pd.DataFrame, source: str, date_col: str, truth_ids: set) -> pd.DataFrame:
    g = frame.groupby("claim_id", sort=True).agg(claim_day=(date_col, "min"), paid_amount=("paid_amount", "sum"))
    g = g.reset_index()
    g["claim_source"] = source
    g["improper"] = g.claim_id.isin(truth_ids).to_numpy()
    return g


def _truth_frame(m, *parts: tuple[pd.DataFrame, np.ndarray, str, str]) -> pd.DataFrame:
    """One row per injected improper claim of a chunk. ``parts``: (one-row-per-claim frame with
    m/scheme/detail columns, its claim ids, column holding the responsible NPI, claim_source)."""
    out = []
    for frame, ids, npi_col, source in parts:
        bad = frame.scheme.notna().to_numpy()
        out.append(pd.DataFrame({
            "claim_id": ids[bad], "claim_source": source,
            "scheme": frame.scheme.to_numpy()[bad], "npi": frame[npi_col].to_numpy()[bad],
            "person_id": m.person_id[frame.m.to_numpy(dtype=np.int64)[bad]], "detail": frame.detail.to_numpy()[bad],
        }))
    return pd.concat(out, ignore_index=True)


def _lookalike_frame(*parts: tuple[pd.DataFrame, np.ndarray, str]) -> pd.DataFrame:
    """One row per legitimate look-alike claim of a chunk: claim_id, claim_source, kind."""
    out = [pd.DataFrame({"claim_id": ids[frame.lookalike.notna().to_numpy()], "claim_source": source,
                         "kind": frame.lookalike.dropna().to_numpy()})
           for frame, ids, source in parts if "lookalike" in frame]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["claim_id", "claim_source", "kind"])


def perpetrator_columns(truth: pd.DataFrame, labels: pd.DataFrame, prov_labels: pd.DataFrame) -> pd.DataFrame:
    """Truth with ``perpetrator`` (the responsible NPI; the member for the member-driven shopping
    schemes) and ``perpetrator_labelled`` ("true" when any claim of that perpetrator's scheme is
    labelled improper, or the provider is labelled 1 in provider_labels; else "false": a perpetrator
    nobody has labelled)."""
    out = truth.copy()
    out["perpetrator"] = out.npi.where(out.npi.notna(), out.person_id)
    confirmed = labels.loc[labels.label == 1, ["claim_id", "claim_source"]]
    hit = out.merge(confirmed, on=["claim_id", "claim_source"])
    known = set(zip(hit.scheme, hit.perpetrator)) | {(s, n) for s, n in zip(out.scheme, out.perpetrator)
                                                   if n in set(prov_labels.npi[prov_labels.label == 1])}
    out["perpetrator_labelled"] = np.where([(s, n) in known for s, n in zip(out.scheme, out.perpetrator)], "true", "false")
    return out


def _write_strings(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), preserve_index=False,
                                        schema=pa.schema([(c, pa.string()) for c in frame.columns])), path)


def generate(output_dir, *, members: int, seed: int, start_date: str = "2024-01-01",
             end_date: str = "2025-12-31", fmt: str = "parquet", dirty_fraction: float = 0.0,
             chunk_members: int = CHUNK_MEMBERS) -> dict:
    """Write a synthetic claims set (see module docstring) to ``output_dir``; return a summary:
    rows per table, improper claims per scheme, lines per member, seconds."""
    started = time.perf_counter()
    if fmt not in ("parquet", "csv"):
        raise InputError(f"format must be parquet or csv, not {fmt!r}")
    if members < 1:
        raise InputError("members must be at least 1")
    if not 0 <= dirty_fraction < 0.5:
        raise InputError("dirty_fraction must be in [0, 0.5)")
    start, end = _day(start_date), _day(end_date)
    if end <= start:
        raise InputError("end_date must be after start_date")
    out = Path(output_dir)
    for stale in ("medical_claim", "pharmacy_claim", "eligibility", "truth", "reference"):
        if (out / stale).exists():
            shutil.rmtree(out / stale)
    for stale in ("provider.csv", "provider.parquet"):
        (out / stale).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    ref = load_reference()
    late_start = end - LATE_START_DAYS + 1
    prov = make_providers(np.random.default_rng([seed, 0]), members, late_start)
    assign_policy_perpetrators(prov, seed, start)
    writers = {n: _TableWriter(out, n, fmt) for n in ("medical_claim", "pharmacy_claim", "eligibility")}
    specs = {"medical_claim": MEDICAL_CLAIM, "pharmacy_claim": PHARMACY_CLAIM, "eligibility": ELIGIBILITY}
    rows = dict.fromkeys(specs, 0)
    dirty_rows = dict.fromkeys(specs, 0)
    truths, labels, lookalikes = [], [], []
    next_med, next_rx = 1, 1
    for chunk, first in enumerate(range(0, members, chunk_members)):
        rng = np.random.default_rng([seed, 1, chunk])
        m = make_members(rng, first + 1, min(chunk_members, members - first), start, end, prov)
        stays = inpatient_stays(rng, m, prov, ref, end)
        visits = professional_visits(rng, m, prov, end, hospitalist_visits(stays, ref))
        visits, plines = professional_lines(rng, visits, prov, ref.fees)
        visits, plines = inject_policy_schemes(seed, chunk, visits, plines, prov, ref.fees, start)
        ilines = institutional_lines(rng, stays)
        stay_ids = _ids("MC", next_med, len(stays))
        visit_ids = _ids("MC", next_med + len(stays), len(visits))
        next_med += len(stays) + len(visits)
        medical = pd.concat([institutional_frame(stays, ilines, m, ref, stay_ids, rng),
                             professional_frame(visits, plines, m, visit_ids, rng)], ignore_index=True)
        fills = mark_excluded_prescriptions(pharmacy_fills(rng, m, prov, ref, start, end), prov)
        rx_ids = _ids("RX", next_rx, len(fills))
        next_rx += len(fills)
        pharmacy = pharmacy_frame(fills, m, ref, rx_ids, rng)
        truth = _truth_frame(m, (stays, stay_ids, "hospital", "medical"), (visits, visit_ids, "npi", "medical"),
                             (fills, rx_ids, "npi", "pharmacy"))
        truths.append(truth)
        lookalikes.append(_lookalike_frame((stays, stay_ids, "medical"), (visits, visit_ids, "medical"),
                                           (fills, rx_ids, "pharmacy")))
        truth_ids = set(truth.claim_id)
        claims = pd.concat([_claims_summary(medical, "medical", "claim_start_date", truth_ids),
                            _claims_summary(pharmacy, "pharmacy", "dispensing_date", truth_ids)], ignore_index=True)
        chunk_labels = audit_labels(rng, claims, audited_before=late_start, outcomes_by=end)
        labels.append(chunk_labels)
        eligibility = eligibility_frame(m)
        frames = {"medical_claim": medical, "pharmacy_claim": pharmacy, "eligibility": eligibility}
        touched = truth_ids | set(chunk_labels.claim_id)
        for name, frame in frames.items():
            table = to_arrow(frame, specs[name])
            rows[name] += table.num_rows
            if dirty_fraction > 0:
                key = frame.claim_id if "claim_id" in frame else frame.person_id
                protected = key.isin(touched).to_numpy()
                pdf, k = make_dirty(rng, _as_strings(table), specs[name], dirty_fraction, protected)
                dirty_rows[name] += k
                rows[name] += len(pdf) - table.num_rows
                writers[name].write(pdf)
            else:
                writers[name].write(table)
        log.info("generate: chunk %d (%d members) written", chunk, m.n)
    truth = pd.concat(truths, ignore_index=True)
    label_frame = pd.concat(labels, ignore_index=True)
    lab = to_arrow(label_frame, LABELS)
    _as_strings(lab).to_csv(out / "labels.csv", index=False)
    prov_labels = provider_labels(np.random.default_rng([seed, 2]), prov, truth, end)
    prov_labels.to_csv(out / "provider_labels.csv", index=False)
    truth = perpetrator_columns(truth, label_frame, prov_labels)
    (out / "truth").mkdir(exist_ok=True)
    _write_strings(truth, out / "truth" / "claim_truth.parquet")
    _write_strings(pd.concat(lookalikes, ignore_index=True), out / "truth" / "lookalikes.parquet")
    policy_files = write_policy_files(out / "reference", prov, seed, start, end)
    providers = provider_table(prov, seed)
    if fmt == "csv":
        providers.to_csv(out / "provider.csv", index=False)
    else:
        providers.to_parquet(out / "provider.parquet", index=False)
    lines_medical = rows["medical_claim"]
    summary = {
        "members": members, "seed": seed, "format": fmt, "output": str(out),
        "rows": {**rows, "labels": len(label_frame), "truth": len(truth), "provider": len(providers)},
        "schemes": {k: int(v) for k, v in truth.scheme.value_counts().sort_index().items()},
        "improper_share": round(len(truth) / max(1, next_med - 1 + next_rx - 1), 4),
        "dirty_rows": dirty_rows,
        "medical_lines_per_member": round(lines_medical / members, 2),
        "pharmacy_lines_per_member": round(rows["pharmacy_claim"] / members, 2),
        "reference_files": {kind: str(path) for kind, path in policy_files.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
    return summary
