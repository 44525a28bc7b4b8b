"""Medical claims: professional visits (office, ER, physical therapy) and inpatient stays, with
the medical schemes injected, and their contract rows (one per claim line)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimsentry.generate.world import (
    BASE_RATE_USD, DISPOSITIONS, DX_BY_SPECIALTY, EM_ESTABLISHED, EM_ESTABLISHED_COMPLEX, EM_NEW, EM_NEW_COMPLEX, ER_LEVELS, EXTRA_LINES, FAMILY_WEIGHTS,
    EM_ESTABLISHED_SPECIALIST, NULL_DAY, PT_CODES, REVENUE_LINES, SPECIALIST_EM, SPECIALIST_VISITS, TIER_WEIGHTS, Members, Providers, Reference, _choose,
    _line_numbers, _member_cols, _physician_of, _repeat_index,
)


INPATIENT_SCHEMES = ("drg_upcoding", "inflated_los", "split_admission")


def hospitalist_visits(stays: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    """One professional claim per inpatient stay by its attending hospitalist (place of service 21:
    inpatient hospital), coded with the stay's principal and first secondary diagnosis. Its lines
    (99223 admission day, 99232 on up to 4 following days, 99238 discharge day) are added by
    :func:`professional_lines` from ``los``."""
    t = ref.templates.iloc[stays.code_template.to_numpy()]
    return pd.DataFrame({
        "m": stays.m.to_numpy(dtype=np.int64), "day": stays.admit.to_numpy(dtype=np.int64),
        "npi": stays.attending.to_numpy(), "specialty": "hospitalist", "pos": "21", "kind": "inpatient",
        "pt_first": False, "scheme": None, "detail": None, "true_em": "99223", "em_code": "99223",
        "dx1": t.pdx.to_numpy(), "dx2": t.sdx.str.split("|").str[0].to_numpy(), "los": stays.los.to_numpy(),
    })


def professional_visits(rng: np.random.Generator, m: Members, prov: Providers, end: int,
                        hospitalist: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per professional claim (before lines): member position, service day, billing/rendering
    NPI, specialty, place of service, E/M code, diagnoses, scheme (None when proper)."""
    l1, l2 = m.covered_days()
    years = (l1 + l2) / 365.25
    rate = 3.0 + m.age / 12.0  # office visits per covered year
    n_office = rng.poisson(rate * years)
    idx = _repeat_index(n_office)
    is_pcp = rng.random(len(idx)) < 0.65
    spec_names = np.array(list(SPECIALIST_VISITS), dtype=object)
    specialty = np.where(is_pcp, None, rng.choice(spec_names, len(idx), p=list(SPECIALIST_VISITS.values())))
    npi = np.where(is_pcp, m.pcp[idx], None)
    pcp_specialty = pd.Series(prov.physicians.specialty.to_numpy(), index=prov.physicians.npi.to_numpy())
    specialty[is_pcp] = pcp_specialty.reindex(m.pcp[idx][is_pcp]).to_numpy()
    npi[~is_pcp] = _physician_of(rng, prov, specialty[~is_pcp])
    office = pd.DataFrame({"m": idx, "day": m.sample_dates(rng, idx), "npi": npi, "specialty": specialty,
                           "pos": "11", "kind": "office"})  # place of service 11: office
    # Emergency department visits: place of service 23.
    n_er = rng.poisson(0.15 * years)
    idx = _repeat_index(n_er)
    er = pd.DataFrame({"m": idx, "day": m.sample_dates(rng, idx), "specialty": "emergency_medicine",
                       "pos": "23", "kind": "er"})
    er["npi"] = rng.choice(prov.of("emergency_medicine"), len(er))
    # Physical therapy episodes: 6-12 weekly visits by one therapist, place of service 22 (outpatient hospital).
    has_pt = rng.random(m.n) < 0.08
    pt_m = np.flatnonzero(has_pt)
    n_pt = rng.integers(6, 13, len(pt_m))
    first = m.sample_dates(rng, pt_m)
    therapist = rng.choice(prov.of("physical_therapy"), len(pt_m))
    rep = _repeat_index(n_pt)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_pt) - n_pt, n_pt)
    pt = pd.DataFrame({"m": pt_m[rep], "day": first[rep] + 7 * k, "npi": therapist[rep],
                       "specialty": "physical_therapy", "pos": "22", "kind": "pt", "pt_first": k == 0})
    pt = pt[m.covered(pt.m.to_numpy(), pt.day.to_numpy()) & (pt.day <= end)]
    visits = pd.concat([office, er, pt], ignore_index=True)
    visits["scheme"] = None
    visits["detail"] = None
    visits = pd.concat([visits, _off_coverage_visits(rng, m, prov, end)], ignore_index=True)
    visits["pt_first"] = visits["pt_first"].eq(True)
    visits["m"], visits["day"] = visits.m.astype(np.int64), visits.day.astype(np.int64)
    n = len(visits)
    new = rng.random(n) < 0.12
    em = np.where(new, _choose(rng, EM_NEW, n), _choose(rng, EM_ESTABLISHED, n))
    em = np.where(visits.kind == "er", _choose(rng, ER_LEVELS, n), em)
    em = np.where(visits.kind == "pt", np.where(visits.pt_first, "97161", None), em)
    # Specialists' established visits run at higher levels (their own generator, so the draws of
    # the rest of the world stay as they were).
    spec_rng = np.random.default_rng([37, n, int(visits.day.sum() % 2**31)])
    specialist = np.isin(visits.specialty.to_numpy(), SPECIALIST_EM) & (visits.kind == "office").to_numpy() & ~new
    em = np.where(specialist, _choose(spec_rng, EM_ESTABLISHED_SPECIALIST, n), em)
    # Look-alike (proper): practices whose patients are truly complex bill many 99215s, all earned.
    complex_ = visits.npi.isin(prov.lookalike.get("high_acuity_em", [])).to_numpy() & (visits.kind == "office").to_numpy()
    em = np.where(complex_, np.where(new, _choose(rng, EM_NEW_COMPLEX, n), _choose(rng, EM_ESTABLISHED_COMPLEX, n)), em)
    visits["lookalike"] = np.where(complex_ & np.isin(em, ["99215", "99205"]), "high_acuity_em", None)
    visits["true_em"] = em
    upcoder = prov.committing("em_upcoding", visits.npi, visits.day) & (visits.kind == "office").to_numpy()
    bump = upcoder & (rng.random(n) < 0.8)
    billed = np.where(bump, np.where(new, "99205", "99215"), em)
    visits["em_code"] = billed
    improper = bump & (billed != em) & visits.scheme.isna().to_numpy()
    visits.loc[improper, "scheme"] = "em_upcoding"
    visits.loc[improper, "detail"] = "billed " + visits.em_code[improper] + " for a " + visits.true_em[improper] + " visit"
    spec = visits.specialty.to_numpy()
    dx1 = np.empty(n, dtype=object)
    for s in np.unique(spec):
        mask = spec == s
        dx1[mask] = rng.choice(np.array(DX_BY_SPECIALTY[s], dtype=object), mask.sum())
    visits["dx1"] = dx1
    chronic = np.array(["I10", "E119", "E785", "J449", None], dtype=object)
    member_dx = rng.choice(chronic, m.n, p=[0.3, 0.15, 0.2, 0.05, 0.3])
    dx2 = member_dx[visits.m.to_numpy()]
    visits["dx2"] = np.where(dx2 == dx1, None, dx2)
    # the look-alike practices' patients are complex: two more chronic conditions coded on every visit
    comorbid = np.array(["N183", "I5022", "E1122", "J449", "I4891", "E6601"], dtype=object)
    extra = np.stack([rng.choice(comorbid[:3], n), rng.choice(comorbid[3:], n)], axis=1)
    visits["dx3"] = np.where(complex_, extra[:, 0], None)
    visits["dx4"] = np.where(complex_, extra[:, 1], None)
    if hospitalist is not None and len(hospitalist):
        visits = pd.concat([visits, hospitalist], ignore_index=True)
    return visits


def _off_coverage_visits(rng: np.random.Generator, m: Members, prov: Providers, end: int) -> pd.DataFrame:
    """Office visits billed after the member's death or in an enrollment gap (both improper)."""
    parts = []
    dead = np.flatnonzero((m.death != NULL_DAY) & (m.death + 10 < end) & (rng.random(m.n) < 0.45))
    if len(dead):
        k = rng.integers(1, 4, len(dead))
        idx = dead[_repeat_index(k)]
        day = np.minimum(m.death[idx] + rng.integers(1, 120, len(idx)), end)
        parts.append(pd.DataFrame({"m": idx, "day": day, "npi": prov.pick(rng, "service_after_death", day),
                                   "scheme": "service_after_death", "detail": "service after the member's death"}))
    gap = np.flatnonzero((m.s2 != NULL_DAY) & (rng.random(m.n) < 0.5))
    if len(gap):
        k = rng.integers(1, 3, len(gap))
        idx = gap[_repeat_index(k)]
        day = m.e1[idx] + 1 + (rng.random(len(idx)) * (m.s2[idx] - m.e1[idx] - 1)).astype(np.int64)
        ok = (m.death[idx] == NULL_DAY) | (day < m.death[idx])
        parts.append(pd.DataFrame({"m": idx[ok], "day": day[ok],
                                   "npi": prov.pick(rng, "outside_enrollment", day[ok]),
                                   "scheme": "outside_enrollment", "detail": "service in an enrollment gap"}))
    left = np.flatnonzero((m.s2 == NULL_DAY) & (m.e1 + 10 < end) & (m.death == NULL_DAY) & (rng.random(m.n) < 0.3))
    if len(left):  # visits billed after the member's coverage ended
        day = m.e1[left] + 1 + (rng.random(len(left)) * np.minimum(120, end - m.e1[left] - 1)).astype(np.int64)
        parts.append(pd.DataFrame({"m": left, "day": day, "npi": prov.pick(rng, "outside_enrollment", day),
                                   "scheme": "outside_enrollment", "detail": "service after coverage ended"}))
    if not parts:
        return pd.DataFrame(columns=["m", "day", "npi", "specialty", "pos", "kind", "scheme", "detail"])
    out = pd.concat(parts, ignore_index=True)
    spec = dict(zip(prov.physicians.npi, prov.physicians.specialty))
    out["specialty"] = out.npi.map(spec)
    out["pos"], out["kind"], out["pt_first"] = "11", "office", False
    return out


def professional_lines(rng: np.random.Generator, visits: pd.DataFrame, prov: Providers,
                       fees: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lines of the visits: one row per professional claim line (visit position ``v``, hcpcs,
    units, line day, allowed amount). Injects excessive units; returns (visits with duplicate
    claims appended, lines)."""
    n = len(visits)
    parts = [pd.DataFrame({"v": np.arange(n), "hcpcs": visits.em_code.to_numpy(), "units": 1.0, "order": 0})]
    spec = visits.specialty.to_numpy()
    for s, extras in EXTRA_LINES.items():
        rows = np.flatnonzero(spec == s)
        for j, (code, p, max_units) in enumerate(extras, start=1):
            hit = rows[rng.random(len(rows)) < p]
            parts.append(pd.DataFrame({"v": hit, "hcpcs": code, "units": rng.integers(1, max_units + 1, len(hit)).astype(float),
                                       "order": j}))
    pt_rows = np.flatnonzero(spec == "physical_therapy")
    heavy = prov.committing("excessive_units", visits.npi, visits.day)
    for j, (code, p, max_units) in enumerate(PT_CODES, start=1):
        hit = pt_rows[rng.random(len(pt_rows)) < p]
        units = rng.integers(1, max_units + 1, len(hit)).astype(float)
        inflate = heavy[hit] & (rng.random(len(hit)) < 0.7)
        units = np.where(inflate, rng.integers(6, 11, len(hit)), units)
        parts.append(pd.DataFrame({"v": hit, "hcpcs": code, "units": units, "order": j, "inflated": inflate}))
    if "los" in visits:  # hospitalist claims: daily visits after admission, then discharge day
        rows = np.flatnonzero(visits.kind.to_numpy() == "inpatient")
        los = visits.los.to_numpy()[rows].astype(np.int64)
        follow = np.minimum(np.maximum(los - 1, 0), 4)
        rep = np.repeat(rows, follow)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(follow) - follow, follow)
        parts.append(pd.DataFrame({"v": rep, "hcpcs": "99232", "units": 1.0, "order": 1 + k, "offset": 1 + k}))
        parts.append(pd.DataFrame({"v": rows, "hcpcs": "99238", "units": 1.0, "order": 9, "offset": los}))
    lines = pd.concat(parts, ignore_index=True)
    lines = lines[lines.hcpcs.notna()].copy()
    lines["inflated"] = lines["inflated"].eq(True)
    bad_units = np.unique(lines.v[lines.inflated].to_numpy())
    clean = visits.scheme.isna().to_numpy()
    bad_units = bad_units[clean[bad_units]]
    visits.loc[visits.index[bad_units], "scheme"] = "excessive_units"
    visits.loc[visits.index[bad_units], "detail"] = "6-10 timed 15-minute units per therapy code"
    lines = lines.sort_values(["v", "order"], kind="stable").reset_index(drop=True)
    offset = lines["offset"].fillna(0).to_numpy(dtype=np.int64) if "offset" in lines else 0
    lines["line_day"] = visits.day.to_numpy()[lines.v.to_numpy()] + offset
    lines["modifier"] = None
    fee = lines.hcpcs.map(fees).to_numpy(dtype=float)
    allowed = np.round(fee * lines.units.to_numpy() * np.exp(rng.normal(0, 0.04, len(lines))), 2)
    lines["allowed"] = allowed
    return _duplicate_claims(rng, visits, lines, prov)


def _duplicate_claims(rng: np.random.Generator, visits: pd.DataFrame, lines: pd.DataFrame,
                      prov: Providers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of ~30% of the duplicate-billers' proper claims as new visits: 60% exact, 40% near
    (one day later, or modifier 76 'repeat procedure by same physician' on line 1)."""
    src = np.flatnonzero(prov.committing("duplicate_billing", visits.npi, visits.day)
                         & visits.scheme.isna().to_numpy() & (rng.random(len(visits)) < 0.3))
    if not len(src):
        return visits, lines
    new_pos = len(visits) + np.arange(len(src))
    near = rng.random(len(src)) < 0.4
    shift = (near & (rng.random(len(src)) < 0.5)).astype(np.int64)
    copies = visits.iloc[src].copy()
    copies["day"] = copies.day.to_numpy() + shift
    copies["scheme"], copies["lookalike"] = "duplicate_billing", None
    copies["detail"] = np.where(near, np.where(shift == 1, "near duplicate: one day later",
                                               "near duplicate: modifier 76"), "exact duplicate")
    pos_of = np.full(len(visits), -1)
    pos_of[src] = np.arange(len(src))
    dup_lines = lines[np.isin(lines.v.to_numpy(), src)].copy()
    k = pos_of[dup_lines.v.to_numpy()]
    dup_lines["v"] = new_pos[k]
    dup_lines["line_day"] = dup_lines.line_day.to_numpy() + shift[k]
    mod76 = near[k] & (shift[k] == 0) & (dup_lines.order == 0).to_numpy()
    dup_lines.loc[mod76, "modifier"] = "76"
    visits = pd.concat([visits, copies], ignore_index=True)
    lines = pd.concat([lines, dup_lines], ignore_index=True).sort_values(["v", "order"], kind="stable")
    return visits, lines.reset_index(drop=True)


# ---------------------------------------------------------------------------------- inpatient stays

def inpatient_stays(rng: np.random.Generator, m: Members, prov: Providers, ref: Reference, end: int) -> pd.DataFrame:
    """One row per institutional inpatient claim: member position, facility, admission day, LOS,
    true and billed coding template, billed DRG and payment, scheme (None when proper)."""
    l1, l2 = m.covered_days()
    years = (l1 + l2) / 365.25
    rate = np.where(m.age >= 65, 0.25, np.where(m.age >= 45, 0.09, 0.04))  # admissions per year
    idx = _repeat_index(rng.poisson(rate * years))
    n = len(idx)
    t = ref.templates
    fam_names = np.array(list(FAMILY_WEIGHTS), dtype=object)
    family = rng.choice(fam_names, n, p=np.array(list(FAMILY_WEIGHTS.values())) / sum(FAMILY_WEIGHTS.values()))
    tier = rng.choice(np.array(list(TIER_WEIGHTS), dtype=object), n, p=list(TIER_WEIGHTS.values()))
    template = np.full(n, -1)
    for f in fam_names:
        in_f = t.family_id.to_numpy() == f
        for tr in TIER_WEIGHTS:
            mask = (family == f) & (tier == tr)
            pool = np.flatnonzero(in_f & (t.tier.to_numpy() == tr))
            if not len(pool):
                pool = np.flatnonzero(in_f)
            template[mask] = rng.choice(pool, mask.sum())
    # Fraudulent hospitals are busy ones: twice the market share of the others.
    busy = np.isin(prov.hospitals, sum((prov.fraud[k] for k in INPATIENT_SCHEMES), []))
    home = rng.choice(prov.hospitals, m.n, p=(1 + busy) / (1 + busy).sum())
    hospital = np.where(rng.random(n) < 0.85, home[idx], rng.choice(prov.hospitals, n))
    gmlos = t.gmlos_days.to_numpy(dtype=float)[template]
    los = np.maximum(1, np.round(gmlos * np.exp(rng.normal(0, 0.35, n)))).astype(np.int64)
    stays = pd.DataFrame({"m": idx, "admit": m.sample_dates(rng, idx), "los": los, "hospital": hospital,
                          "true_template": template, "code_template": template,
                          "drg_code": t.drg_code.to_numpy()[template], "scheme": None, "detail": None})
    stays["discharge"] = stays.admit + stays.los
    ok = m.covered(stays.m.to_numpy(), stays.discharge.to_numpy()) & (stays.discharge <= end).to_numpy()
    stays = stays[ok].reset_index(drop=True)
    stays = _inpatient_schemes(rng, stays, prov, ref, m, end)
    stays = _legitimate_readmissions(rng, stays, prov, ref, m, end)
    weight = dict(zip(ref.drg.drg_code, ref.drg.weight))
    gm = dict(zip(ref.drg.drg_code, ref.drg.gmlos_days))
    w = stays.drg_code.map(weight).to_numpy(dtype=float)
    excess = np.maximum(0, stays.los.to_numpy() / stays.drg_code.map(gm).to_numpy(dtype=float) - 2.0)
    outlier = 1 + 0.25 * excess  # cost-outlier add-on for very long stays
    stays["payment"] = np.round(BASE_RATE_USD * w * outlier * np.exp(rng.normal(0, 0.06, len(stays))), 2)
    stays["disposition"] = np.where(stays.lookalike.notna(), "03", _choose(rng, DISPOSITIONS, len(stays)))  # 03: SNF
    stays["attending"] = rng.choice(prov.of("hospitalist"), len(stays))
    coded = stays.code_template.to_numpy()
    stays["surgical"] = t.surgical.to_numpy()[coded] == "1"
    stays["admit_type"] = t.admit_type_code.to_numpy()[coded]
    return stays


def _share(rng: np.random.Generator, candidates: np.ndarray, p: float) -> np.ndarray:
    """Each candidate with probability ``p``; at least one when there is any (small runs show every scheme)."""
    chosen = candidates & (rng.random(len(candidates)) < p)
    if not chosen.any() and candidates.any():
        chosen[rng.choice(np.flatnonzero(candidates))] = True
    return chosen


def _inpatient_schemes(rng: np.random.Generator, stays: pd.DataFrame, prov: Providers, ref: Reference,
                       m: Members, end: int) -> pd.DataFrame:
    t = ref.templates
    fam = t.family_id.to_numpy()
    top_of = ref.drg.sort_values("severity_rank").groupby("family_id").drg_code.last().to_dict()
    # drg_upcoding: 60% of the hospital's stays below the family's top DRG.
    true_drg = t.drg_code.to_numpy()[stays.true_template.to_numpy()]
    top = pd.Series(fam[stays.true_template.to_numpy()]).map(top_of).to_numpy(dtype=object)
    up = _share(rng, prov.committing("drg_upcoding", stays.hospital, stays.admit) & (true_drg != top), 0.6)
    coded = up & (rng.random(len(stays)) < 0.5)
    for i in np.flatnonzero(coded):  # loop over the few upcoded stays of one hospital only
        cand = np.flatnonzero((t.drg_code.to_numpy() == top[i]) & (t.pdx.to_numpy() == t.pdx.iat[stays.true_template.iat[i]]))
        if not len(cand):
            cand = np.flatnonzero(t.drg_code.to_numpy() == top[i])
        stays.at[i, "code_template"] = int(rng.choice(cand))
    stays.loc[up, "drg_code"] = top[up]
    stays.loc[up, "scheme"] = "drg_upcoding"
    stays.loc[coded, "detail"] = "coded: MCC added to the codes, billed DRG " + top[coded] + " instead of " + true_drg[coded]
    billed = up & ~coded
    stays.loc[billed, "detail"] = "billed: codes group to " + true_drg[billed] + " but DRG " + top[billed] + " billed"
    # inflated_los: 50% of the hospital's stays held 2.5-4x the GMLOS.
    gm = t.gmlos_days.to_numpy(dtype=float)[stays.true_template.to_numpy()]
    new_los = np.ceil(gm * rng.uniform(2.5, 4.0, len(stays))).astype(np.int64) + 1
    fits = m.covered(stays.m.to_numpy(), stays.admit.to_numpy() + new_los) & (stays.admit.to_numpy() + new_los <= end)
    infl = _share(rng, prov.committing("inflated_los", stays.hospital, stays.admit) & stays.scheme.isna().to_numpy()
                  & fits, 0.5)
    stays.loc[infl, "los"] = new_los[infl]
    stays.loc[infl, "scheme"] = "inflated_los"
    stays.loc[infl, "detail"] = "length of stay " + stays.los[infl].astype(str) + " days vs GMLOS " + pd.Series(gm[infl], index=stays.index[infl]).astype(str)
    stays["discharge"] = stays.admit + stays.los
    # Look-alike (proper): 3% of other stays are long for a reason (complications, waiting for a
    # nursing-home bed): 2.5-4x the GMLOS, discharged to a skilled nursing facility.
    fair = ~stays.hospital.isin(sum((prov.fraud[k] for k in INPATIENT_SCHEMES), [])).to_numpy()
    long_ok = fair & stays.scheme.isna().to_numpy() & fits & (rng.random(len(stays)) < 0.03)
    stays.loc[long_ok, "los"] = new_los[long_ok]
    stays["lookalike"] = np.where(long_ok, "long_justified_stay", None)
    stays["discharge"] = stays.admit + stays.los
    # split_admission: 50% of the hospital's stays of 3+ days billed as two claims.
    split = _share(rng, prov.committing("split_admission", stays.hospital, stays.admit) & stays.scheme.isna().to_numpy()
                   & (stays.los >= 3).to_numpy(), 0.5)
    first_los = np.maximum(1, stays.los.to_numpy() // 2)
    gap = rng.integers(0, 2, len(stays))
    second = stays[split].copy()
    second["admit"] = second.admit + first_los[split] + gap[split]
    second["discharge"] = stays.discharge[split].to_numpy() + gap[split]
    second["los"] = second.discharge - second.admit
    second["scheme"] = "split_admission"
    second["detail"] = "readmitted " + pd.Series(gap[split], index=second.index).astype(str) + " day(s) after discharge from the same facility"
    keep = m.covered(second.m.to_numpy(), second.discharge.to_numpy()) & (second.discharge <= end).to_numpy()
    second = second[keep & (second.los >= 1).to_numpy()]
    cut = second.index  # the copies keep the index of the stay they were split from
    stays.loc[cut, "los"] = first_los[cut]
    stays.loc[cut, "discharge"] = stays.admit[cut] + stays.los[cut]
    return pd.concat([stays, second], ignore_index=True)


def _legitimate_readmissions(rng: np.random.Generator, stays: pd.DataFrame, prov: Providers, ref: Reference,
                             m: Members, end: int) -> pd.DataFrame:
    """Look-alike (proper): 3% of the stays at hospitals that commit no inpatient scheme are followed
    5-25 days after discharge by a new, unrelated admission to the same hospital (another DRG)."""
    t = ref.templates
    fair = ~stays.hospital.isin(sum((prov.fraud[k] for k in INPATIENT_SCHEMES), [])).to_numpy()
    pick = stays[fair & stays.scheme.isna().to_numpy() & stays.lookalike.isna().to_numpy() & (rng.random(len(stays)) < 0.03)]
    template = rng.integers(0, len(t), len(pick))
    gm = t.gmlos_days.to_numpy(dtype=float)[template]
    again = pd.DataFrame({
        "m": pick.m.to_numpy(), "admit": pick.discharge.to_numpy() + rng.integers(5, 26, len(pick)),
        "los": np.maximum(1, np.round(gm * np.exp(rng.normal(0, 0.35, len(pick))))).astype(np.int64),
        "hospital": pick.hospital.to_numpy(), "true_template": template, "code_template": template,
        "drg_code": t.drg_code.to_numpy()[template], "scheme": None, "detail": None, "lookalike": "legitimate_readmission",
    })
    again["discharge"] = again.admit + again.los
    ok = m.covered(again.m.to_numpy(), again.discharge.to_numpy()) & (again.discharge <= end).to_numpy()
    return pd.concat([stays, again[ok]], ignore_index=True)


def institutional_lines(rng: np.random.Generator, stays: pd.DataFrame) -> pd.DataFrame:
    """One row per revenue centre line of a stay: stay position ``v``, revenue code, units, paid share."""
    n = len(stays)
    surgical = stays.surgical.to_numpy()
    emergency = stays.admit_type.to_numpy() == "1"
    parts = []
    for j, (code, p, share) in enumerate(REVENUE_LINES):
        if code == "0360":
            hit = np.flatnonzero(surgical)
        elif code == "0450":
            hit = np.flatnonzero(emergency)
        else:
            hit = np.flatnonzero(rng.random(n) < p)
        units = stays.los.to_numpy()[hit].astype(float) if code == "0120" else rng.integers(1, 6, len(hit)).astype(float)
        parts.append(pd.DataFrame({"v": hit, "revenue": code, "units": units, "order": j,
                                   "share": share * np.exp(rng.normal(0, 0.2, len(hit)))}))
    lines = pd.concat(parts, ignore_index=True).sort_values(["v", "order"], kind="stable").reset_index(drop=True)
    total = lines.groupby("v").share.transform("sum").to_numpy()
    lines["paid"] = np.round(stays.payment.to_numpy()[lines.v.to_numpy()] * lines.share.to_numpy() / total, 2)
    return lines



def professional_frame(visits: pd.DataFrame, lines: pd.DataFrame, m: Members, claim_id: np.ndarray,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Contract rows (one per professional claim line) of the visits."""
    v = lines.v.to_numpy()
    mi = visits.m.to_numpy(dtype=np.int64)[v]
    day = lines.line_day.to_numpy(dtype=np.int64)
    start = pd.Series(day).groupby(v).transform("min").to_numpy()
    end_ = pd.Series(day).groupby(v).transform("max").to_numpy()
    allowed = lines.allowed.to_numpy()
    paid = np.round(allowed * 0.8, 2)  # 20% member coinsurance
    paid_lag = rng.integers(14, 45, len(visits))
    npi = visits.npi.to_numpy()[v]
    return pd.DataFrame({
        "claim_id": claim_id[v], "claim_line_number": _line_numbers(v), "claim_type": "professional",
        **_member_cols(m, mi),
        "claim_start_date": start, "claim_end_date": end_, "claim_line_start_date": day, "claim_line_end_date": day,
        "place_of_service_code": visits.pos.to_numpy()[v], "service_unit_quantity": lines.units.to_numpy(),
        "hcpcs_code": lines.hcpcs.to_numpy(), "hcpcs_modifier_1": lines.modifier.to_numpy(),
        "rendering_npi": npi, "billing_npi": npi, "paid_date": end_ + paid_lag[v],
        "paid_amount": paid, "allowed_amount": allowed, "charge_amount": np.round(allowed * 2.2, 2),
        "coinsurance_amount": np.round(allowed - paid, 2), "copayment_amount": 0.0, "deductible_amount": 0.0,
        "diagnosis_code_type": "icd-10-cm", "diagnosis_code_1": visits.dx1.to_numpy()[v],
        "diagnosis_code_2": visits.dx2.to_numpy()[v],
        **{f"diagnosis_code_{i}": visits[f"dx{i}"].to_numpy()[v] for i in (3, 4) if f"dx{i}" in visits},
    })


def institutional_frame(stays: pd.DataFrame, lines: pd.DataFrame, m: Members, ref: Reference,
                        claim_id: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Contract rows (one per revenue centre line) of the stays; header fields on every line."""
    v = lines.v.to_numpy()
    st = stays.iloc[v]
    t = ref.templates.iloc[st.code_template.to_numpy()]
    admit, disch = st.admit.to_numpy(dtype=np.int64), st.discharge.to_numpy(dtype=np.int64)
    paid = lines.paid.to_numpy()
    cols = {
        "claim_id": claim_id[v], "claim_line_number": _line_numbers(v), "claim_type": "institutional",
        **_member_cols(m, st.m.to_numpy(dtype=np.int64)),
        "claim_start_date": admit, "claim_end_date": disch, "claim_line_start_date": admit,
        "claim_line_end_date": disch, "admission_date": admit, "discharge_date": disch,
        # point of origin 1: non-health-care facility; 2: clinic or physician referral
        "admit_source_code": np.where(t.admit_type_code.to_numpy() == "3", "2", "1"),
        "admit_type_code": t.admit_type_code.to_numpy(),
        "discharge_disposition_code": st.disposition.to_numpy(),
        "bill_type_code": "111",  # hospital inpatient (Part A), admit through discharge claim
        "drg_code_type": "ms-drg", "drg_code": st.drg_code.to_numpy(),
        "revenue_center_code": lines.revenue.to_numpy(), "service_unit_quantity": lines.units.to_numpy(),
        "rendering_npi": st.attending.to_numpy(), "billing_npi": st.hospital.to_numpy(),
        "facility_npi": st.hospital.to_numpy(), "paid_date": disch + rng.integers(14, 60, len(stays))[v],
        "paid_amount": paid, "allowed_amount": paid, "charge_amount": np.round(paid * rng.uniform(3, 4.5, len(v)), 2),
        "diagnosis_code_type": "icd-10-cm", "diagnosis_code_1": t.pdx.to_numpy(), "diagnosis_poa_1": "Y",
    }
    sdx = t.sdx.str.split("|", expand=True)
    for j in range(sdx.shape[1]):
        cols[f"diagnosis_code_{j + 2}"] = sdx[j].to_numpy()
        cols[f"diagnosis_poa_{j + 2}"] = np.where(sdx[j].isna(), None, "Y")
    proc = t.procedures.replace("", None).to_numpy()
    cols["procedure_code_1"] = proc
    cols["procedure_code_type"] = np.where(pd.isna(proc), None, "icd-10-pcs")
    cols["procedure_date_1"] = np.where(pd.isna(proc), NULL_DAY, admit + (t.admit_type_code.to_numpy() != "3"))
    return pd.DataFrame(cols)
