"""Pharmacy claims: chronic monthly fills, acute fills and the pharmacy schemes, and their
contract rows (one per dispensed prescription)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimsentry.generate.world import LATE_SHARE, NULL_DAY, Members, Providers, Reference, _member_cols, _repeat_index


# --------------------------------------------------------------------------------- pharmacy claims

def _drug_rows(ref: Reference, key: str) -> np.ndarray:
    return np.flatnonzero(ref.drugs.drug_key.to_numpy() == key)


def _fills(m_idx, day, drug_key, qty, days_supply, prescriber, pharmacy, ref, rng, *, refills=0,
           scheme=None, npi=None, detail=None) -> pd.DataFrame:
    """Prescription fills (one row each) with a random NDC of each drug_key."""
    n = len(m_idx)
    keys = np.broadcast_to(np.asarray(drug_key, dtype=object), (n,))
    drug = np.empty(n, dtype=np.int64)
    for k in np.unique(keys):
        mask = keys == k
        drug[mask] = rng.choice(_drug_rows(ref, k), mask.sum())
    return pd.DataFrame({
        "m": m_idx, "day": day, "drug": drug,
        "qty": np.broadcast_to(np.asarray(qty, dtype=float), (n,)),
        "days_supply": np.broadcast_to(np.asarray(days_supply, dtype=np.int64), (n,)),
        "refills": np.broadcast_to(np.asarray(refills, dtype=np.int64), (n,)),
        "prescriber": np.broadcast_to(np.asarray(prescriber, dtype=object), (n,)),
        "pharmacy": np.broadcast_to(np.asarray(pharmacy, dtype=object), (n,)),
        "scheme": scheme, "npi": npi, "detail": detail,
    })


def _series(rng, m: Members, who: np.ndarray, n_fills: np.ndarray, first: np.ndarray, every: np.ndarray):
    """Repeated fills: member positions and days of fill k = first + k * every (+-2 days)."""
    rep = _repeat_index(n_fills)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_fills) - n_fills, n_fills)
    day = first[rep] + k * every[rep] + rng.integers(-2, 3, len(rep)) * (k > 0)
    return rep, who[rep], day, k


def pharmacy_fills(rng: np.random.Generator, m: Members, prov: Providers, ref: Reference, start: int,
                   end: int) -> pd.DataFrame:
    """One row per dispensed prescription: chronic monthly fills, acute fills, and the pharmacy schemes."""
    parts = []
    chronic = ["atorvastatin_20", "atorvastatin_40", "metformin_500", "metformin_1000", "lisinopril_10",
               "lisinopril_20", "amlodipine_5", "levothyroxine_50", "omeprazole_20", "sertraline_50", "metoprolol_25"]
    n_drugs = rng.binomial(3, np.clip(0.1 + m.age / 120, 0, 0.9))
    who = _repeat_index(n_drugs)
    # distinct drugs per member: two monthly series of one drug would be refills every ~15 days
    nth = np.arange(len(who)) - np.repeat(np.cumsum(n_drugs) - n_drugs, n_drugs)
    drug = np.array(chronic, dtype=object)[np.argsort(rng.random((m.n, len(chronic))), axis=1)[who, nth]]
    first = np.maximum(m.s1[who], start) + rng.integers(0, 40, len(who))
    span = np.where(m.s2[who] != NULL_DAY, m.e2[who], m.e1[who]) - first
    n_fills = np.maximum(0, span // 30 + 1)
    after_death = (m.death[who] != NULL_DAY) & (rng.random(len(who)) < 0.4)
    n_fills = n_fills + after_death * 3  # the after-death pharmacy keeps billing up to 3 more months
    rep, mi, day, k = _series(rng, m, who, n_fills, first, np.full(len(who), 30))
    series_pharmacy = np.where(rng.random(len(who)) < 0.9, m.pharmacy[who], rng.choice(prov.pharmacies, len(who)))
    f = _fills(mi, day, drug[rep], 30, 30, m.pcp[mi], series_pharmacy[rep], ref, rng,
               refills=np.maximum(0, 11 - k % 12))
    covered = m.covered(mi, day) & (day <= end) & (day >= start)
    dead_after = after_death[rep] & (day > m.death[mi]) & (day <= np.minimum(m.death[mi] + 95, end))
    f.loc[dead_after, "pharmacy"] = prov.fraud["_after_death_pharmacy"][0]
    f.loc[dead_after, ["scheme", "npi", "detail"]] = ["service_after_death", prov.fraud["_after_death_pharmacy"][0],
                                                       "fill dispensed after the member's death"]
    f = f[covered | dead_after]
    # early_refill: the pharmacies add a fill half-way through 8% of their 30-day supplies.
    early = f[f.pharmacy.isin(prov.fraud["early_refill"]).to_numpy() & f.scheme.isna().to_numpy() & (rng.random(len(f)) < 0.08)].copy()
    early["day"] = early.day + rng.integers(12, 18, len(early))
    early = early[m.covered(early.m.to_numpy(), early.day.to_numpy()) & (early.day <= end).to_numpy()
                  & prov.committing("early_refill", early.pharmacy, early.day)]
    early["scheme"], early["npi"], early["detail"] = "early_refill", early.pharmacy, "refilled after half of a 30-day supply"
    parts += [f, early]
    # Acute fills: antibiotics, steroids, short opioid courses, benzodiazepines.
    l1, l2 = m.covered_days()
    who = _repeat_index(rng.poisson(0.7 * (l1 + l2) / 365.25))
    kind = rng.choice(np.array(["amoxicillin_500", "azithromycin_250", "cephalexin_500", "prednisone_20",
                                "hydrocodone_5", "oxycodone_5", "tramadol_50", "alprazolam_1", "lorazepam_1"],
                               dtype=object), len(who), p=[0.2, 0.15, 0.1, 0.12, 0.13, 0.08, 0.08, 0.08, 0.06])
    opioid = np.isin(kind, ["hydrocodone_5", "oxycodone_5", "tramadol_50"])
    benzo = np.isin(kind, ["alprazolam_1", "lorazepam_1"])
    qty = np.where(opioid, rng.integers(10, 31, len(who)), np.where(benzo, 30, rng.integers(10, 31, len(who))))
    days = np.where(opioid, rng.integers(3, 8, len(who)), np.where(benzo, 30, rng.integers(5, 11, len(who))))
    acute_prescriber = np.concatenate([prov.of("emergency_medicine"), prov.of("orthopedic_surgery")])
    prescriber = np.where(opioid & (rng.random(len(who)) < 0.6), rng.choice(acute_prescriber, len(who)), m.pcp[who])
    parts.append(_fills(who, m.sample_dates(rng, who), kind, qty, days, prescriber, m.pharmacy[who], ref, rng))
    # Long-term opioid therapy (clean): hydrocodone 10 mg, 120 tablets / 30 days = 40 MME/day.
    lt = np.flatnonzero(rng.random(m.n) < 0.02)
    parts.append(_monthly(rng, m, lt, "hydrocodone_10", 120, m.pcp[lt], m.pharmacy[lt], ref, end, months=(6, 20)))
    parts += _opioid_schemes(rng, m, prov, ref, end)
    fills = pd.concat([p for p in parts if len(p)], ignore_index=True)
    fills = fills[(fills.day >= start) & (fills.day <= end)]
    return fills.sort_values(["m", "day"], kind="stable").reset_index(drop=True)


def _monthly(rng, m: Members, who: np.ndarray, drug_key, qty, prescriber, pharmacy, ref, end, *, months,
             every=30, **kw) -> pd.DataFrame:
    n = rng.integers(months[0], months[1] + 1, len(who))
    first = m.sample_dates(rng, who)
    rep, mi, day, _ = _series(rng, m, who, n, first, np.full(len(who), every))
    f = _fills(mi, day, drug_key, qty, 30, np.asarray(prescriber, dtype=object)[rep],
               np.asarray(pharmacy, dtype=object)[rep], ref, rng, **kw)
    return f[m.covered(mi, day) & (day <= end)]


def _some(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Member positions drawn with probability ``share`` each, at least one (so small runs show every scheme)."""
    who = np.flatnonzero(rng.random(n) < share)
    return who if len(who) else rng.integers(0, n, 1)


def _shopping_start(rng: np.random.Generator, m: Members, who: np.ndarray, late_start: int) -> np.ndarray:
    """First fill day of each shopper: a covered day, or for ``LATE_SHARE`` of them (the late, never
    labelled shoppers) a day in the first month from ``late_start``."""
    day = m.sample_dates(rng, who)
    late = (rng.random(len(who)) < LATE_SHARE) & (np.arange(len(who)) > 0)  # never all: small runs show every scheme
    return np.where(late, late_start + rng.integers(0, 30, len(who)), day)


def _opioid_schemes(rng, m: Members, prov: Providers, ref: Reference, end: int) -> list[pd.DataFrame]:
    out = []
    # Look-alike (proper): cancer-pain patients of ordinary pain specialists on oxycodone 30 mg, 120
    # tablets / 30 days (180 MME/day), one prescriber, their home pharmacy, on schedule.
    if prov.lookalike.get("cancer_pain_high_mme"):
        who = _some(rng, m.n, 0.004)
        doc = rng.choice(np.array(prov.lookalike["cancer_pain_high_mme"], dtype=object), len(who))
        f = _monthly(rng, m, who, "oxycodone_30", 120, doc, m.pharmacy[who], ref, end, months=(6, 20))
        f["lookalike"] = "cancer_pain_high_mme"
        out.append(f)
    # opioid_overprescribing: ~1.2% of members get oxycodone 30 mg, 120-180 tablets / 30 days
    # (180-270 MME/day) from a pill-mill prescriber, filled at their home pharmacy.
    who = _some(rng, m.n, 0.012)
    doc = rng.choice(np.array(prov.fraud["opioid_overprescribing"], dtype=object), len(who))
    f = _monthly(rng, m, who, "oxycodone_30", 150, doc, m.pharmacy[who], ref, end, months=(3, 10))
    f = f[prov.committing("opioid_overprescribing", f.prescriber, f.day)]
    f["qty"] = rng.choice([120.0, 150.0, 180.0], len(f))
    f["scheme"], f["npi"], f["detail"] = "opioid_overprescribing", f.prescriber, "oxycodone 30 mg at 180-270 MME/day"
    out.append(f)
    # prescriber_pharmacy_collusion: ~0.6% of members, oxycodone 10 mg 90-120 / 30 days, all from
    # one prescriber at one pharmacy (npi = the pharmacy).
    who = _some(rng, m.n, 0.006)
    pair = rng.integers(0, len(prov.fraud["prescriber_pharmacy_collusion"]), len(who))
    ph = np.array(prov.fraud["prescriber_pharmacy_collusion"], dtype=object)[pair]
    doc = np.array(prov.fraud["_colluding_prescriber"], dtype=object)[pair]
    f = _monthly(rng, m, who, "oxycodone_10", 120, doc, ph, ref, end, months=(3, 8))
    f = f[prov.committing("prescriber_pharmacy_collusion", f.pharmacy, f.day)]
    f["scheme"], f["npi"], f["detail"] = "prescriber_pharmacy_collusion", f.pharmacy, "one prescriber's opioid scripts filled at one pharmacy"
    out.append(f)
    # doctor_shopping: ~0.3% of members collect 6-12 overlapping opioid scripts every 7-12 days
    # from 4-8 prescribers at 3-5 pharmacies. Member-driven: npi is null.
    who = _some(rng, m.n, 0.003)
    n = rng.integers(6, 13, len(who))
    rep, mi, day, k = _series(rng, m, who, n, _shopping_start(rng, m, who, prov.late_start), rng.integers(7, 13, len(who)))
    docs = np.concatenate([prov.of(s) for s in ("emergency_medicine", "family_medicine", "orthopedic_surgery")])
    n_docs, n_ph = rng.integers(4, 9, len(who)), rng.integers(3, 6, len(who))
    doc_pick = rng.integers(0, 10 ** 6, (len(who), 8)) % len(docs)
    ph_pick = rng.integers(0, 10 ** 6, (len(who), 5)) % len(prov.pharmacies)
    f = _fills(mi, day, rng.choice(np.array(["oxycodone_10", "hydrocodone_10"], dtype=object), len(mi)), 60, 15,
               docs[doc_pick[rep, k % n_docs[rep]]], prov.pharmacies[ph_pick[rep, k % n_ph[rep]]], ref, rng,
               scheme="doctor_shopping", detail="overlapping opioid scripts from several prescribers")
    out.append(f[m.covered(mi, day) & (day <= end)])
    # pharmacy_shopping: ~0.2% of members fill one prescriber's 30-day benzodiazepine or opioid
    # supply every 10-14 days, rotating over 4-6 pharmacies. Member-driven: npi is null.
    who = _some(rng, m.n, 0.002)
    n = rng.integers(6, 11, len(who))
    rep, mi, day, k = _series(rng, m, who, n, _shopping_start(rng, m, who, prov.late_start), rng.integers(10, 15, len(who)))
    n_ph = rng.integers(4, 7, len(who))
    ph_pick = rng.integers(0, 10 ** 6, (len(who), 6)) % len(prov.pharmacies)
    f = _fills(mi, day, rng.choice(np.array(["alprazolam_1", "hydrocodone_10"], dtype=object), len(mi)), 90, 30,
               m.pcp[mi], prov.pharmacies[ph_pick[rep, k % n_ph[rep]]], ref, rng,
               scheme="pharmacy_shopping", detail="30-day supplies refilled every 10-14 days at rotating pharmacies")
    out.append(f[m.covered(mi, day) & (day <= end)])
    return out



def pharmacy_frame(fills: pd.DataFrame, m: Members, ref: Reference, claim_id: np.ndarray,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Contract rows, one per dispensed prescription."""
    d = ref.drugs.iloc[fills.drug.to_numpy()]
    qty = fills.qty.to_numpy()
    allowed = np.round(qty * d.unit_cost_usd.to_numpy() * np.exp(rng.normal(0, 0.05, len(fills))) + 1.75, 2)
    copay = np.minimum(np.round(allowed / 2, 2), rng.choice([0.0, 5.0, 10.0], len(fills)))
    return pd.DataFrame({
        "claim_id": claim_id, "claim_line_number": np.ones(len(fills), dtype=np.int32),
        **_member_cols(m, fills.m.to_numpy(dtype=np.int64)),
        "prescribing_provider_npi": fills.prescriber.to_numpy(), "dispensing_provider_npi": fills.pharmacy.to_numpy(),
        "dispensing_date": fills.day.to_numpy(), "ndc_code": d.ndc_code.to_numpy(), "quantity": qty,
        "days_supply": fills.days_supply.to_numpy(), "refills": fills.refills.to_numpy(),
        "paid_date": fills.day.to_numpy() + rng.integers(7, 21, len(fills)),
        "paid_amount": np.round(allowed - copay, 2), "allowed_amount": allowed,
        "charge_amount": np.round(allowed * 1.3, 2), "coinsurance_amount": 0.0, "copayment_amount": copay,
        "deductible_amount": 0.0,
    })
