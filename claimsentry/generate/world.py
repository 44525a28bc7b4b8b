"""The synthetic world: constants, reference lists, providers (with their schemes) and members.

Dates are int day numbers (days since 1970-01-01) inside the generator; ``NULL_DAY`` is "no date".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

CHUNK_MEMBERS = 5000
NULL_DAY = np.iinfo(np.int64).min  # "no date" in the int day-number arrays used internally
BASE_RATE_USD = 6500.0  # inpatient operating + capital base payment per unit of DRG weight
PAYER, PLAN, DATA_SOURCE = "synthetic health plan", "ppo", "claimsentry-synthetic"
AUDIT_SHARE_IMPROPER = 0.37
AUDIT_CLEAN_PER_IMPROPER = 2.5
# A share of every scheme's perpetrators starts late: in the last LATE_START_DAYS of the period (the
# last quarter) and never before. Audits only cover claims before that, so they are never labelled:
# the case a detection system exists for.
LATE_SHARE = 0.4
LATE_START_DAYS = 92

SCHEMES = (
    "drg_upcoding", "inflated_los", "split_admission", "duplicate_billing", "service_after_death",
    "outside_enrollment", "excessive_units", "em_upcoding", "opioid_overprescribing",
    "doctor_shopping", "pharmacy_shopping", "early_refill", "prescriber_pharmacy_collusion",
)

STATES = [("MA", "021"), ("NJ", "070"), ("NY", "112"), ("PA", "191"), ("OH", "432"), ("TX", "750"),
          ("FL", "331"), ("IL", "606"), ("CA", "900"), ("WA", "981")]
SPECIALTIES = {  # specialty -> share of physicians
    "family_medicine": 0.30, "internal_medicine": 0.20, "cardiology": 0.08, "orthopedic_surgery": 0.07,
    "pulmonology": 0.05, "emergency_medicine": 0.08, "pain_management": 0.05, "physical_therapy": 0.09,
    "hospitalist": 0.08,
}
PCP = ("family_medicine", "internal_medicine")
# Professional visits to non-PCP specialties: specialty -> share of specialist visits.
SPECIALIST_VISITS = {"cardiology": 0.3, "orthopedic_surgery": 0.25, "pulmonology": 0.2, "pain_management": 0.25}
# Office E/M levels: established 99211-99215, new patient 99202-99205, with a realistic mix.
EM_ESTABLISHED = (["99211", "99212", "99213", "99214", "99215"], [0.03, 0.10, 0.45, 0.35, 0.07])
EM_NEW = (["99202", "99203", "99204", "99205"], [0.05, 0.35, 0.45, 0.15])
# Specialists see sicker patients than primary care: more established visits at the top levels.
EM_ESTABLISHED_SPECIALIST = (["99212", "99213", "99214", "99215"], [0.05, 0.30, 0.43, 0.22])
SPECIALIST_EM = ("cardiology", "pulmonology")
# NUCC health care provider taxonomy codes of the world's specialties and organisations.
TAXONOMY = {
    "family_medicine": "207Q00000X", "internal_medicine": "207R00000X", "cardiology": "207RC0000X",
    "orthopedic_surgery": "207X00000X", "pulmonology": "207RP1001X", "emergency_medicine": "207P00000X",
    "pain_management": "208VP0014X", "physical_therapy": "225100000X", "hospitalist": "208M00000X",
    "hospital": "282N00000X", "pharmacy": "3336C0003X",
}
# Look-alike practices with truly complex patients (legitimately many top-level visits).
EM_ESTABLISHED_COMPLEX = (["99213", "99214", "99215"], [0.15, 0.35, 0.50])
EM_NEW_COMPLEX = (["99204", "99205"], [0.35, 0.65])
# Extra lines on a visit: specialty -> [(hcpcs, probability, max units)].
EXTRA_LINES = {
    "family_medicine": [("36415", 0.35, 1), ("80053", 0.25, 1), ("85025", 0.25, 1), ("83036", 0.12, 1),
                        ("80061", 0.15, 1), ("93000", 0.05, 1), ("96372", 0.04, 1), ("J1885", 0.03, 2)],
    "internal_medicine": [("36415", 0.40, 1), ("80053", 0.30, 1), ("85025", 0.30, 1), ("83036", 0.15, 1),
                          ("80061", 0.18, 1), ("93000", 0.06, 1)],
    "cardiology": [("93000", 0.6, 1), ("93306", 0.2, 1), ("71046", 0.1, 1)],
    "orthopedic_surgery": [("73562", 0.35, 1), ("20610", 0.25, 1), ("73721", 0.08, 1)],
    "pulmonology": [("94010", 0.4, 1), ("71046", 0.3, 1)],
    "pain_management": [("64483", 0.2, 2), ("20552", 0.15, 1)],
    "emergency_medicine": [("71046", 0.3, 1), ("80053", 0.3, 1), ("85025", 0.3, 1), ("93000", 0.2, 1)],
}
PT_CODES = [("97110", 1.0, 3), ("97140", 0.7, 2), ("97530", 0.4, 2)]  # timed 15-minute units
ER_LEVELS = (["99283", "99284", "99285"], [0.35, 0.45, 0.20])
DX_BY_SPECIALTY = {  # ICD-10-CM, no dots
    "family_medicine": ["I10", "E119", "E785", "J069", "M545", "Z0000", "N390", "F329", "J209", "E039"],
    "internal_medicine": ["I10", "E119", "E785", "E1165", "N183", "Z0000", "J449", "E039", "K219"],
    "cardiology": ["I10", "I4891", "I5022", "I251", "R079", "I480"],
    "orthopedic_surgery": ["M1711", "M1611", "M545", "M25561", "S83241A", "M7551"],
    "pulmonology": ["J449", "J441", "J45909", "R0602", "G4733"],
    "pain_management": ["M545", "M5416", "G894", "M47816", "M5450"],
    "emergency_medicine": ["R079", "R1010", "S0990XA", "J069", "N390", "R55"],
    "physical_therapy": ["M545", "M25561", "M1711", "Z9889", "M6281"],
    "hospitalist": ["I10"],
}
# Inpatient DRG families and their share of admissions.
FAMILY_WEIGHTS = {"291": 0.12, "193": 0.09, "871": 0.10, "870": 0.01, "689": 0.06, "469": 0.08, "391": 0.06,
                  "064": 0.05, "190": 0.07, "189": 0.04, "682": 0.05, "602": 0.05, "308": 0.06, "637": 0.03,
                  "417": 0.04, "313": 0.05, "312": 0.04}
TIER_WEIGHTS = {"mcc": 0.30, "cc": 0.35, "none": 0.35}
# Revenue centre lines of a stay: (revenue code, probability, share of charges). 0120 room and
# board semi-private (units = days), 0200 ICU, 0250 pharmacy, 0270 supplies, 0300 lab,
# 0320 radiology, 0360 operating room, 0410 respiratory, 0450 emergency room, 0730 EKG.
REVENUE_LINES = [("0120", 1.0, 0.30), ("0250", 1.0, 0.15), ("0300", 1.0, 0.10), ("0270", 0.7, 0.08),
                 ("0320", 0.6, 0.07), ("0730", 0.5, 0.02), ("0410", 0.3, 0.05), ("0200", 0.15, 0.18),
                 ("0450", 0.0, 0.05), ("0360", 0.0, 0.35)]
DISPOSITIONS = (["01", "06", "03"], [0.70, 0.18, 0.12])  # home, home health, skilled nursing facility


# --------------------------------------------------------------------------------------- reference

def _reference_csv(name: str) -> pd.DataFrame:
    with resources.files("claimsentry.reference").joinpath(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@dataclass
class Reference:
    """The small code lists generation needs (all loaded once)."""

    templates: pd.DataFrame  # one row per verified DRG coding template
    drg: pd.DataFrame  # one row per MS-DRG: weight, gmlos_days, family_id, severity_rank
    drugs: pd.DataFrame  # one row per NDC
    fees: dict[str, float]  # hcpcs -> allowed amount per unit, dollars


def load_reference() -> Reference:
    drg = _reference_csv("msdrg_fy2026.csv")
    drg = drg[drg.weight != ""].copy()
    drg["weight"] = drg.weight.astype(float)
    drg["gmlos_days"] = drg.gmlos_days.astype(float)
    drg["severity_rank"] = drg.severity_rank.astype(int)
    templates = _reference_csv("generator_drg_templates.csv")
    templates = templates.merge(drg[["drg_code", "weight", "gmlos_days"]], on="drg_code", how="left")
    drugs = _reference_csv("generator_drugs.csv")
    drugs["strength"] = drugs.strength.astype(float)
    drugs["unit_cost_usd"] = drugs.unit_cost_usd.astype(float)
    drugs["mme_conversion_factor"] = pd.to_numeric(drugs.mme_conversion_factor, errors="coerce")
    fees = _reference_csv("generator_fees.csv")
    return Reference(templates, drg, drugs, dict(zip(fees.hcpcs_code, fees.allowed_usd.astype(float))))


# ---------------------------------------------------------------------------------------- providers

def npi_check_digit(base9: np.ndarray) -> np.ndarray:
    """Luhn check digit of 9-digit NPI bases, computed over the card-issuer prefix 80840 + base."""
    digits = np.stack([(base9 // 10 ** (8 - i)) % 10 for i in range(9)], axis=1)
    doubled = digits.copy()
    doubled[:, 8::-2] *= 2  # rightmost digit of the base and every second one leftwards
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = 24 + doubled.sum(axis=1)  # 24 = Luhn sum of the prefix 80840
    return (10 - total % 10) % 10


def luhn_valid_npi(npi: str) -> bool:
    """True when a 10-digit NPI passes the Luhn check over ``80840`` + NPI."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def make_npis(rng: np.random.Generator, n: int, first_digit: int) -> np.ndarray:
    """``n`` distinct NPIs starting with 1 (individuals) or 2 (organisations)."""
    bases = np.unique(rng.integers(0, 10 ** 8, size=n * 2 + 10))  # sorted, distinct
    bases = rng.permutation(bases)[:n] + first_digit * 10 ** 8
    return np.array([f"{b}{c}" for b, c in zip(bases, npi_check_digit(bases))], dtype=object)


@dataclass
class Providers:
    """Every provider of the synthetic world and which of them commit which scheme."""

    hospitals: np.ndarray
    physicians: pd.DataFrame  # npi, specialty
    pharmacies: np.ndarray
    fraud: dict[str, list[str]] = field(default_factory=dict)  # scheme -> responsible NPIs
    late: dict[str, list[str]] = field(default_factory=dict)  # scheme -> the NPIs of fraud that start late
    late_start: int = np.iinfo(np.int64).max  # day the late perpetrators start (set by make_providers' caller)
    lookalike: dict[str, list[str]] = field(default_factory=dict)  # kind -> legitimate look-alike NPIs
    excluded_on: dict[str, int] = field(default_factory=dict)  # NPI -> day the OIG excluded it (generate.policy)

    def of(self, specialty: str) -> np.ndarray:
        return self.physicians.npi[self.physicians.specialty == specialty].to_numpy()

    def committing(self, scheme: str, npi, day) -> np.ndarray:
        """True where ``npi`` commits ``scheme`` on ``day``: the early perpetrators on every day, the
        late ones from ``late_start`` on."""
        npi, day = np.asarray(npi, dtype=object), np.asarray(day, dtype=np.int64)
        return np.isin(npi, self.fraud[scheme]) & (~np.isin(npi, self.late.get(scheme, [])) | (day >= self.late_start))

    def pick(self, rng: np.random.Generator, scheme: str, day) -> np.ndarray:
        """A perpetrator of ``scheme`` for each day, among those committing it that day."""
        day = np.asarray(day, dtype=np.int64)
        early = np.array([x for x in self.fraud[scheme] if x not in self.late.get(scheme, [])], dtype=object)
        out = rng.choice(np.array(self.fraud[scheme], dtype=object), len(day))
        redo = ~self.committing(scheme, out, day)
        out[redo] = rng.choice(early, int(redo.sum()))
        return out


def make_providers(rng: np.random.Generator, members: int, late_start: int = np.iinfo(np.int64).max) -> Providers:
    n_hosp = max(6, members // 400)
    n_phys = max(40, members // 35)
    n_pharm = max(6, members // 300)
    orgs = make_npis(rng, n_hosp + n_pharm, 2)
    names = list(SPECIALTIES)
    counts = np.maximum(3, np.round(np.array(list(SPECIALTIES.values())) * n_phys).astype(int))
    physicians = pd.DataFrame({"npi": make_npis(rng, counts.sum(), 1), "specialty": np.repeat(names, counts)})
    p = Providers(orgs[:n_hosp], physicians, orgs[n_hosp:], late_start=late_start)
    hosp = list(rng.permutation(p.hospitals))
    k = max(2, n_hosp // 20)  # hospitals per inpatient scheme
    p.fraud["drg_upcoding"], p.fraud["inflated_los"], p.fraud["split_admission"] = hosp[:k], hosp[k:2 * k], hosp[2 * k:3 * k]

    def pick(pool: np.ndarray, share: float, taken: set) -> list[str]:
        pool = np.array([x for x in pool if x not in taken], dtype=object)
        chosen = list(rng.choice(pool, size=min(len(pool), max(2, int(round(share * len(pool))))), replace=False))
        taken.update(chosen)
        return chosen

    taken: set = set()
    office = np.concatenate([p.of(s) for s in PCP + ("cardiology", "orthopedic_surgery", "pulmonology")])
    p.fraud["em_upcoding"] = pick(office, 0.05, taken)
    p.fraud["duplicate_billing"] = pick(office, 0.04, taken)
    p.fraud["excessive_units"] = pick(p.of("physical_therapy"), 0.25, taken)
    p.fraud["service_after_death"] = pick(p.of("family_medicine"), 0.02, taken)
    p.fraud["outside_enrollment"] = pick(p.of("internal_medicine"), 0.03, taken)
    p.fraud["opioid_overprescribing"] = pick(p.of("pain_management"), 0.25, taken)
    colluder = pick(p.of("pain_management"), 0.01, taken)  # one per colluding pharmacy
    pharm = rng.permutation(p.pharmacies)
    n_early = max(2, n_pharm // 30)  # one pharmacy in 30, at least two
    p.fraud["early_refill"] = list(pharm[4:4 + n_early])
    p.fraud["prescriber_pharmacy_collusion"] = [pharm[1], pharm[3]][:len(colluder)]
    p.fraud["_colluding_prescriber"] = colluder[:2]
    p.fraud["_after_death_pharmacy"] = [pharm[2]]
    for scheme in SCHEMES:  # the late ones: LATE_SHARE of each scheme's perpetrators, at least one, never all
        who = p.fraud.get(scheme, [])
        if len(who) >= 2:
            n_late = min(len(who) - 1, max(1, int(round(LATE_SHARE * len(who)))))
            p.late[scheme] = list(who[-n_late:])
    # Legitimate look-alikes (never improper): cardiologists and pulmonologists whose patients are
    # truly complex (many 99215s), and pain specialists treating cancer pain at high doses.
    clean_office = np.array([x for x in np.concatenate([p.of("cardiology"), p.of("pulmonology")]) if x not in taken], dtype=object)
    p.lookalike["high_acuity_em"] = list(rng.choice(clean_office, size=min(len(clean_office), max(2, len(clean_office) // 6)), replace=False))
    clean_pain = np.array([x for x in p.of("pain_management") if x not in taken], dtype=object)
    p.lookalike["cancer_pain_high_mme"] = list(rng.choice(clean_pain, size=min(len(clean_pain), 2), replace=False))
    return p


# ------------------------------------------------------------------------------------------ members

def _day(d: str | dt.date) -> int:
    return int(np.datetime64(str(d), "D").astype(np.int64))


@dataclass
class Members:
    """One chunk of members: arrays indexed by member position in the chunk (dates as day numbers)."""

    person_id: np.ndarray
    birth: np.ndarray
    gender: np.ndarray
    state: np.ndarray
    zip_code: np.ndarray
    s1: np.ndarray  # first span start
    e1: np.ndarray  # first span end
    s2: np.ndarray  # second span start, NULL_DAY if one span
    e2: np.ndarray
    death: np.ndarray  # NULL_DAY if alive
    pcp: np.ndarray  # PCP NPI
    pharmacy: np.ndarray  # home pharmacy NPI
    age: np.ndarray  # years at the start of the period
    start: int  # first day of the generated period (spans may begin before it)

    @property
    def n(self) -> int:
        return len(self.person_id)

    def covered_days(self) -> tuple[np.ndarray, np.ndarray]:
        """Days of each span within the period during which the member was enrolled and alive."""
        alive_to = np.where(self.death == NULL_DAY, np.iinfo(np.int64).max, self.death)
        l1 = np.maximum(0, np.minimum(self.e1, alive_to) - self._from1 + 1)
        l2 = np.where(self.s2 == NULL_DAY, 0, np.maximum(0, np.minimum(self.e2, alive_to) - self.s2 + 1))
        return l1, l2

    @property
    def _from1(self) -> np.ndarray:
        return np.maximum(self.s1, self.start)

    def sample_dates(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        """One covered, alive day for each member position in ``idx``."""
        l1, l2 = self.covered_days()
        u = (rng.random(len(idx)) * (l1 + l2)[idx]).astype(np.int64)
        return np.where(u < l1[idx], self._from1[idx] + u, self.s2[idx] + u - l1[idx])

    def covered(self, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        alive = (self.death[idx] == NULL_DAY) | (day <= self.death[idx])
        in1 = (day >= self.s1[idx]) & (day <= self.e1[idx])
        in2 = (self.s2[idx] != NULL_DAY) & (day >= self.s2[idx]) & (day <= self.e2[idx])
        return alive & (in1 | in2)


def make_members(rng: np.random.Generator, first: int, n: int, start: int, end: int, prov: Providers) -> Members:
    age = np.clip(np.round(rng.normal(52, 19, n)), 18, 95).astype(np.int64)
    birth = start - age * 365 - rng.integers(0, 365, n)
    gender = rng.choice(np.array(["female", "male", "unknown"], dtype=object), n, p=[0.52, 0.475, 0.005])
    st = rng.integers(0, len(STATES), n)
    state = np.array([s for s, _ in STATES], dtype=object)[st]
    zip_code = np.array([z for _, z in STATES], dtype=object)[st] + np.char.zfill(
        rng.integers(0, 100, n).astype(str), 2).astype(object)
    # Spans: 70% enrolled over the whole period (often from before it), 12% join late, 8% leave early,
    # 10% have two spans with a 1-6 month gap.
    kind = rng.choice(4, n, p=[0.70, 0.12, 0.08, 0.10])
    s1 = np.where(rng.random(n) < 0.6, start - rng.integers(30, 900, n), start)
    e1 = np.full(n, end, dtype=np.int64)
    late = kind == 1
    s1 = np.where(late, start + rng.integers(30, 500, n), s1)
    early = kind == 2
    e1 = np.where(early, end - rng.integers(60, 500, n), e1)
    two = kind == 3
    gap_start = start + rng.integers(120, 450, n)
    gap_len = rng.integers(30, 180, n)
    e1 = np.where(two, gap_start - 1, e1)
    s2 = np.where(two, gap_start + gap_len, NULL_DAY)
    e2 = np.where(two, end, NULL_DAY)
    # ~2.5% die during the period (older members more often); enrollment ends with the death month.
    p_death = np.clip(0.006 + (age - 40).clip(0) * 0.0012, 0, 0.2)
    dies = rng.random(n) < p_death
    last_cov = np.where(two, e2, e1)
    death = np.where(dies, s1 + 60 + (rng.random(n) * np.maximum(1, last_cov - s1 - 60)).astype(np.int64), NULL_DAY)
    death = np.where(dies & (death > end), NULL_DAY, death)
    dead = death != NULL_DAY
    month_end = (death.astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]").astype(np.int64) - 1
    in_gap = dead & two & (death > e1) & (death < s2)
    drop2 = dead & two & (death < s2)
    s2, e2 = np.where(drop2, NULL_DAY, s2), np.where(drop2, NULL_DAY, e2)
    e1 = np.where(dead & ~in_gap & (death <= e1), np.minimum(e1, month_end), e1)
    e2 = np.where(dead & (s2 != NULL_DAY), np.minimum(e2, month_end), e2)
    pcps = np.concatenate([prov.of(s) for s in PCP])
    person_id = np.char.add("P", np.char.zfill(np.arange(first, first + n).astype(str), 8)).astype(object)
    return Members(person_id, birth, gender, state, zip_code, s1, e1, s2, e2, death,
                   rng.choice(pcps, n), rng.choice(prov.pharmacies, n), age, start)


def eligibility_frame(m: Members) -> pd.DataFrame:
    """One row per enrollment span of one person."""
    has2 = m.s2 != NULL_DAY
    idx = np.concatenate([np.arange(m.n), np.flatnonzero(has2)])
    start = np.concatenate([m.s1, m.s2[has2]])
    end = np.concatenate([m.e1, m.e2[has2]])
    order = np.lexsort((start, idx))
    idx, start, end = idx[order], start[order], end[order]
    return pd.DataFrame({
        "person_id": m.person_id[idx], "member_id": np.char.add("M", m.person_id[idx].astype(str)).astype(object),
        "gender": m.gender[idx], "birth_date": m.birth[idx], "death_date": m.death[idx],
        "death_flag": (m.death[idx] != NULL_DAY).astype(np.int32),
        "enrollment_start_date": start, "enrollment_end_date": end, "payer": PAYER,
        "payer_type": np.where(m.age[idx] >= 65, "medicare", "commercial").astype(object), "plan": PLAN,
        "state": m.state[idx], "zip_code": m.zip_code[idx], "data_source": DATA_SOURCE,
    })


# ------------------------------------------------------------------------------- professional claims

def _choose(rng: np.random.Generator, options: tuple[list[str], list[float]], n: int) -> np.ndarray:
    codes, p = options
    return rng.choice(np.array(codes, dtype=object), n, p=p)


def _repeat_index(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _physician_of(rng: np.random.Generator, prov: Providers, specialty: np.ndarray) -> np.ndarray:
    out = np.empty(len(specialty), dtype=object)
    for s in np.unique(specialty):
        mask = specialty == s
        out[mask] = rng.choice(prov.of(s), mask.sum())
    return out



def _ids(prefix: str, first: int, n: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(first, first + n).astype(str), 10)).astype(object)


def _line_numbers(v: np.ndarray) -> np.ndarray:
    """1, 2, ... within runs of equal (sorted) claim positions."""
    starts = np.r_[0, np.flatnonzero(np.diff(v)) + 1]
    counts = np.diff(np.r_[starts, len(v)])
    return (np.arange(len(v)) - np.repeat(starts, counts) + 1).astype(np.int32)


def _member_cols(m: Members, mi: np.ndarray) -> dict:
    return {"person_id": m.person_id[mi], "member_id": np.char.add("M", m.person_id[mi].astype(str)).astype(object),
            "payer": PAYER, "plan": PLAN, "data_source": DATA_SOURCE}
