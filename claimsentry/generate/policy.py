"""Payment-policy schemes of the synthetic world, and the policy files that define them, written in
the publishers' own formats so the demo and the tests load them with ``claimsentry reference add``.

Schemes (labelled in truth like every other):

- ``unbundling``: primary-care perpetrators bill a basic metabolic panel (80048) on the same day
  as the comprehensive panel (80053) that contains it: an NCCI PTP pair, modifier indicator 0.
- ``mue_breach``: family-medicine perpetrators bill 6 units of ketorolac (J1885) where the MUE
  allows 4 per day (MAI 3).
- ``add_on_without_primary``: pain-management and orthopedic perpetrators bill the add-on code for
  an additional epidural level (64484) without the primary injection (64483).
- ``excluded_provider``: cardiologists and pulmonologists keep billing, and prescribing, after the
  OIG excluded them.

Legitimate look-alikes that must not be flagged:

- ``modifier_59_distinct_service``: physical therapy visits with manual therapy (97140) and
  therapeutic activities (97530) in distinct time intervals carry modifier 59 on 97140, which the
  PTP edit (indicator 1) allows;
- ``edit_not_yet_effective``: cardiology visits with an ECG (93000) and an echocardiogram
  (93306) before the PTP edit between them takes effect; after it, cardiologists stop billing the
  pair together;
- ``add_on_with_primary``: 64484 billed with its primary 64483;
- a physician excluded and reinstated before the data starts, who bills throughout.

Everything here draws from its own random generators (``[seed, 36, ...]``), so the rest of the
world is the same as without these schemes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from claimsentry.generate.world import LATE_SHARE, PCP, Providers, make_npis

POLICY_SCHEMES = ("unbundling", "mue_breach", "add_on_without_primary", "excluded_provider")
PTP_EDITS = [  # column 1, column 2, effective ('start+365': a year into the data), modifier indicator, rationale
    ("80053", "80048", "19960101", "0", "Misuse of column two code with column one code"),
    ("97530", "97140", "20040101", "1", "Mutually exclusive procedures"),
    ("93306", "93000", "start+365", "0", "Standards of medical / surgical services"),
    ("99215", "99211", "20100101", "0", "Mutually exclusive procedures"),
    ("20610", "20552", "20120101", "1", "Misuse of column two code with column one code"),
    ("36415", "36416", "19960101", "9", "CPT Manual or CMS manual coding instruction"),
]
MUE_VALUES = [  # code, practitioner MUE value, MAI, rationale
    ("J1885", 4, "3 Date of Service Edit: Clinical", "Clinical: Data"),
    ("97110", 4, "3 Date of Service Edit: Clinical", "Clinical: Data"),
    ("97140", 4, "3 Date of Service Edit: Clinical", "Clinical: Data"),
    ("97530", 4, "3 Date of Service Edit: Clinical", "Clinical: Data"),
    ("36415", 2, "2 Date of Service Edit: Policy", "CMS Policy"),
    ("64483", 2, "3 Date of Service Edit: Clinical", "Anatomic Consideration"),
    ("64484", 4, "3 Date of Service Edit: Clinical", "Anatomic Consideration"),
    ("80048", 1, "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"),
    ("20552", 1, "2 Date of Service Edit: Policy", "Nature of Service/Procedure"),
]
AOC_EDITS = [  # add-on code, primary code, type
    ("64484", "64483", "1"),
    ("99292", "99291", "1"),
    ("22614", "22612", "1"),
    ("99417", "CCCCC", "2"),
]
DETAILS = {
    "unbundling": "80048 billed with 80053 the same day (NCCI PTP, modifier indicator 0)",
    "mue_breach": "6 units of J1885 where the MUE allows 4 per day",
    "add_on_without_primary": "add-on 64484 billed without its primary 64483",
    "excluded_provider": "billed by a provider the OIG had excluded",
}


def _policy_rng(seed: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, 36, *more])


def assign_policy_perpetrators(prov: Providers, seed: int, start: int) -> None:
    """Add the policy schemes' perpetrators (early and late) and their exclusion days to ``prov``.
    Perpetrators are physicians who commit no other scheme."""
    rng = _policy_rng(seed)
    taken = {n for who in prov.fraud.values() for n in who} | {n for who in prov.lookalike.values() for n in who}

    def pick(pool: np.ndarray, share: float) -> list[str]:
        pool = np.array(sorted(x for x in pool if x not in taken), dtype=object)
        chosen = list(rng.choice(pool, size=min(len(pool), max(2, int(round(share * len(pool))))), replace=False))
        taken.update(chosen)
        return chosen

    prov.fraud["unbundling"] = pick(np.concatenate([prov.of(s) for s in PCP]), 0.04)
    prov.fraud["mue_breach"] = pick(prov.of("family_medicine"), 0.04)
    prov.fraud["add_on_without_primary"] = pick(np.concatenate([prov.of("pain_management"), prov.of("orthopedic_surgery")]), 0.1)
    prov.fraud["excluded_provider"] = pick(np.concatenate([prov.of("cardiology"), prov.of("pulmonology")]), 0.04)
    prov.lookalike["reinstated_provider"] = pick(prov.of("internal_medicine"), 0.0)[:1]
    for scheme in POLICY_SCHEMES:
        who = prov.fraud[scheme]
        if len(who) >= 2:
            prov.late[scheme] = list(who[-min(len(who) - 1, max(1, int(round(LATE_SHARE * len(who))))):])
    late = set(prov.late.get("excluded_provider", []))
    prov.excluded_on = {
        npi: (prov.late_start if npi in late else start + int(rng.integers(300, 500)))
        for npi in prov.fraud["excluded_provider"]
    }


def inject_policy_schemes(seed: int, chunk: int, visits: pd.DataFrame, lines: pd.DataFrame, prov: Providers,
                          fees: dict[str, float], start: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The policy schemes and look-alikes on one chunk's professional visits and lines (grain:
    one row per visit; one row per claim line). Returns both, lines sorted by visit and order."""
    rng = _policy_rng(seed, chunk)
    visits, lines = visits.copy(), lines.copy()
    if "lookalike" not in visits:
        visits["lookalike"] = None
    clean = visits.scheme.isna().to_numpy()
    day = visits.day.to_numpy(dtype=np.int64)
    codes_of = lines.groupby("v").hcpcs.agg(set)
    has = lambda code: np.array([code in codes_of.get(i, ()) for i in range(len(visits))])  # noqa: E731
    new_lines = []

    def add(rows: np.ndarray, code: str, units: float) -> None:
        fee = fees.get(code, 10.0)
        new_lines.append(pd.DataFrame({
            "v": rows, "hcpcs": code, "units": units, "order": 50 + len(new_lines), "line_day": day[rows],
            "modifier": None, "allowed": np.round(fee * units * np.exp(rng.normal(0, 0.04, len(rows))), 2),
        }))

    def mark(rows: np.ndarray, scheme: str) -> None:
        visits.loc[visits.index[rows], "scheme"] = scheme
        visits.loc[visits.index[rows], "detail"] = DETAILS[scheme]

    # unbundling: 80048 added to half the perpetrators' visits that bill 80053
    rows = np.flatnonzero(prov.committing("unbundling", visits.npi, day) & clean & has("80053") & (rng.random(len(visits)) < 0.5))
    add(rows, "80048", 1.0)
    mark(rows, "unbundling")
    # MUE breach: 6 units of J1885 on 15% of the perpetrators' office visits
    office = (visits.kind == "office").to_numpy()
    rows = np.flatnonzero(prov.committing("mue_breach", visits.npi, day) & clean & office & ~has("J1885") & (rng.random(len(visits)) < 0.15))
    add(rows, "J1885", 6.0)
    mark(rows, "mue_breach")
    # add-on without its primary: 64484 alone on 30% of the perpetrators' visits
    pain = prov.committing("add_on_without_primary", visits.npi, day) & clean & ~has("64483")
    rows = np.flatnonzero(pain & (rng.random(len(visits)) < 0.3))
    add(rows, "64484", 1.0)
    mark(rows, "add_on_without_primary")
    # look-alike: 64484 with its primary on 30% of the visits that bill 64483
    rows = np.flatnonzero(has("64483") & (rng.random(len(visits)) < 0.3))
    add(rows, "64484", 1.0)
    visits.loc[visits.index[rows[visits.lookalike.isna().to_numpy()[rows]]], "lookalike"] = "add_on_with_primary"
    # excluded providers: every claim from the exclusion day on
    excluded_on = visits.npi.map(getattr(prov, "excluded_on", {})).to_numpy(dtype=float)
    rows = np.flatnonzero(~np.isnan(excluded_on) & (day >= np.nan_to_num(excluded_on, nan=np.inf)) & visits.scheme.isna().to_numpy())
    mark(rows, "excluded_provider")

    lines = pd.concat([lines, *new_lines], ignore_index=True)
    # look-alike: PT visits with 97140 and 97530 in distinct intervals carry modifier 59 on 97140
    both = has("97140") & has("97530")
    mod59 = np.isin(lines.v.to_numpy(), np.flatnonzero(both)) & (lines.hcpcs == "97140").to_numpy() & lines.modifier.isna().to_numpy()
    lines.loc[mod59, "modifier"] = "59"
    rows = np.flatnonzero(both & visits.lookalike.isna().to_numpy() & visits.scheme.isna().to_numpy())
    visits.loc[visits.index[rows], "lookalike"] = "modifier_59_distinct_service"
    # the 93306/93000 edit takes effect a year in: cardiologists stop billing the ECG with the echo
    edit_day = start + 365
    pair = has("93000") & has("93306")
    drop = np.isin(lines.v.to_numpy(), np.flatnonzero(pair & (day >= edit_day))) & (lines.hcpcs == "93000").to_numpy()
    lines = lines[~drop]
    rows = np.flatnonzero(pair & (day < edit_day) & visits.lookalike.isna().to_numpy() & visits.scheme.isna().to_numpy())
    visits.loc[visits.index[rows], "lookalike"] = "edit_not_yet_effective"
    return visits, lines.sort_values(["v", "order"], kind="stable").reset_index(drop=True)


def mark_excluded_prescriptions(fills: pd.DataFrame, prov: Providers) -> pd.DataFrame:
    """Fills prescribed by an excluded physician from the exclusion day on are improper too
    (Medicare pays for no item an excluded person orders or prescribes). Grain: one row per fill."""
    fills = fills.copy()
    excluded_on = fills.prescriber.map(prov.excluded_on).to_numpy(dtype=float)
    rows = ~np.isnan(excluded_on) & (fills.day.to_numpy() >= np.nan_to_num(excluded_on, nan=np.inf)) & fills.scheme.isna().to_numpy()
    fills.loc[rows, "scheme"] = "excluded_provider"
    fills.loc[rows, "npi"] = fills.prescriber[rows]
    fills.loc[rows, "detail"] = "prescribed by a provider the OIG had excluded"
    return fills


def provider_table(prov: Providers, seed: int) -> pd.DataFrame:
    """The contract's optional ``provider`` table: one row per provider NPI of the world (npi,
    entity_type, taxonomy_code, specialty, state), states drawn from their own generator."""
    from claimsentry.generate.world import STATES, TAXONOMY

    rng = _policy_rng(seed, 38)
    phys = prov.physicians
    rows = [pd.DataFrame({"npi": phys.npi.to_numpy(), "entity_type": "individual",
                          "taxonomy_code": phys.specialty.map(TAXONOMY).to_numpy(), "specialty": phys.specialty.to_numpy()})]
    for kind, npis in (("hospital", prov.hospitals), ("pharmacy", prov.pharmacies)):
        rows.append(pd.DataFrame({"npi": npis, "entity_type": "organization", "taxonomy_code": TAXONOMY[kind], "specialty": kind}))
    out = pd.concat(rows, ignore_index=True)
    out["state"] = np.array([s for s, _ in STATES], dtype=object)[rng.integers(0, len(STATES), len(out))]
    return out.sort_values("npi").reset_index(drop=True)


# --- The policy files, in the publishers' formats ---------------------------------------------------


def _ymd(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).strftime("%Y%m%d")


def _quarter(day: int) -> tuple[int, int]:
    d = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
    return d.year, (d.month - 1) // 3 + 1


def write_policy_files(folder: Path, prov: Providers, seed: int, start: int, end: int) -> dict[str, Path]:
    """Write the world's policy files under ``folder``; return {kind: path}. The PTP and add-on
    files are named for the quarter the data ends in, as CMS names its quarterly releases; the MUE
    file takes effect on the first day of the data; the LEIE is dated by its latest exclusion."""
    folder.mkdir(parents=True, exist_ok=True)
    year, q = _quarter(end)
    out = {}
    # NCCI PTP, practitioner: tab-delimited text after the AMA notice and the two-line header
    rows = [
        "CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t",
        "Column1/Column2 Edits\t\t\t\t\t\t",
        "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale",
        "\t\tprior to 1996\tDate\tDate\t0=not allowed\t",
        "\t\t\t\t*=no data\t1=allowed\t",
        "\t\t\t\t\t9=not applicable\t",
    ]
    for c1, c2, eff, mod, why in PTP_EDITS:
        eff = _ymd(start + 365) if eff == "start+365" else eff
        rows.append("\t".join([c1, c2, "*" if eff <= "19960101" else "", eff, "*", mod, why]))
    out["ncci-ptp"] = folder / f"ccipra-v{year - 1994}{q - 1}r0-f1.TXT"  # NCCI version NN.q: quarter q+1 of 1994+NN
    out["ncci-ptp"].write_text("\r\n".join(rows) + "\r\n", encoding="latin-1")
    # NCCI MUE, practitioner: CSV after the AMA notice; effective from the first day of the data
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(start))
    lines = ['"CPT codes, descriptions and other data only are copyright 2025 American Medical Association. '
             'All Rights Reserved. Applicable FARS/HHSARS apply.",,,',
             '"HCPCS/\nCPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"']
    lines += [f'{code},{value},"{mai}","{why}"' for code, value, mai, why in MUE_VALUES]
    out["ncci-mue"] = folder / f"MCR_MUE_PractitionerServices_Eff_{first.strftime('%m-%d-%Y')}.csv"
    out["ncci-mue"].write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")
    # NCCI add-on code edits: the fixed-width text form (add-on, primary, type, dates as YYYYDDD)
    julian = "2013001"
    recs = [f"{t}{a:<5}{'':7}{p:<5}{'':7}{julian}{'':7}{'':45}" for a, p, t in AOC_EDITS]
    out["ncci-aoc"] = folder / f"AOC_V{year}Q{q}-F-MCR.txt"
    out["ncci-aoc"].write_text("\r\n".join(recs) + "\r\n", encoding="latin-1")
    # OIG LEIE UPDATED.csv: the excluded perpetrators, a reinstated physician, unrelated rows
    rng = _policy_rng(seed, 999)
    head = "LASTNAME,FIRSTNAME,MIDNAME,BUSNAME,GENERAL,SPECIALTY,UPIN,NPI,DOB,ADDRESS,CITY,STATE,ZIP,EXCLTYPE,EXCLDATE,REINDATE,WAIVERDATE,WVRSTATE"

    def person(npi: str, excl: int, rein: int | None, kind: str) -> str:
        return ",".join(f'"{v}"' for v in [
            f"DOE{rng.integers(100, 999)}", "PAT", "", "", "IND- LIC HC SERV PRO", "PHYSICIAN", "", npi,
            "19600101", "1 MAIN ST", "ALBANY", "NY", "12207", kind, _ymd(excl), _ymd(rein) if rein else "00000000",
            "00000000", ""])

    rows = [head]
    rows += [person(npi, day, None, "1128b4") for npi, day in sorted(getattr(prov, "excluded_on", {}).items())]
    rows += [person(npi, start - 800, start - 100, "1128b4") for npi in prov.lookalike.get("reinstated_provider", [])]
    rows += [person(npi, start - 400, None, "1128a1") for npi in make_npis(_policy_rng(seed, 998), 5, 1)]
    rows.append('"","","","#1 MEDICAL SUPPLY, INC","OTHER BUSINESS","DME - GENERAL","","0000000000","",'
                f'"239 BRIGHTON BEACH AVENUE","BROOKLYN","NY","11235","1128a1","{_ymd(start - 900)}","00000000","00000000",""')
    out["leie"] = folder / "UPDATED.csv"
    out["leie"].write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return out
