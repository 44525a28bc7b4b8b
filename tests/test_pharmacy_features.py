"""Pharmacy features (features/pharmacy.py) and the drug reference: given hand-written fills ->
exact expected features; sparse feeds; NDC normalisation; generator scheme separation."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from claimsentry.features import pharmacy
from claimsentry.features.assemble import BlockContext, pharmacy_base
from claimsentry.features.drug_reference import load_drug_reference, normalise_ndc
from claimsentry.features.rules import apply_rules, load_rules
from claimsentry.schemas import PHARMACY_CLAIM, TableSpec

REPO = Path(__file__).resolve().parents[1]


def typed_frame(spark, spec: TableSpec, rows: list[dict]):
    """A frame with every contract column of ``spec`` (typed), values from ``rows``, others null.
    ISO date strings are parsed for DateType columns."""
    types = dict(spec.columns)
    data = []
    for r in rows:
        unknown = set(r) - set(types)
        assert not unknown, f"not contract columns: {unknown}"
        values = []
        for c in spec.column_names:
            v = r.get(c)
            if v is not None and types[c].typeName() == "date" and isinstance(v, str):
                v = date.fromisoformat(v)
            values.append(v)
        data.append(tuple(values))
    return spark.createDataFrame(data, spec.schema)


OXY = "00406051201"  # oxycodone/acetaminophen 5 mg tablet: CII opioid, CDC factor 1.5, generic
ALPRAZOLAM = "0054-3068-44"  # alprazolam tablet, CIV benzodiazepine (4-4-2 form on purpose)
LIPITOR = "00071015523"  # atorvastatin 10 mg, brand (NDA); generics exist in its product group
ATORVA_GENERIC = "00093505698"  # atorvastatin 10 mg, ANDA generic, same product group as LIPITOR


def fill(claim_id, person, day, ndc, qty, ds, prescriber, pharmacy_npi, paid):
    return {
        "claim_id": claim_id,
        "claim_line_number": 1,
        "person_id": person,
        "prescribing_provider_npi": prescriber,
        "dispensing_provider_npi": pharmacy_npi,
        "dispensing_date": day,
        "ndc_code": ndc,
        "quantity": qty,
        "days_supply": ds,
        "paid_amount": paid,
    }


FILLS = [
    # M1: overlapping opioid supplies from 3 prescribers and 3 pharmacies, then a benzodiazepine
    fill("c1", "M1", "2024-01-01", OXY, 120.0, 30, "P1", "R1", 60.0),  # 120*5*1.5/30 = 30 MME/day
    fill("c2", "M1", "2024-01-11", OXY, 180.0, 30, "P2", "R2", 90.0),  # 45 MME/day; 20 of 30 days left
    fill("c3", "M1", "2024-01-21", OXY, 120.0, 20, "P3", "R3", 60.0),  # 45 MME/day; day total 120
    fill("c4", "M1", "2024-01-25", ALPRAZOLAM, 30.0, 30, "P1", "R1", 15.0),
    # M2: brand atorvastatin, then four generic fills exactly when the supply runs out
    fill("c5", "M2", "2024-02-01", LIPITOR, 30.0, 30, "P1", "R1", 300.0),
    fill("c6", "M2", "2024-03-02", ATORVA_GENERIC, 30.0, 30, "P4", "R4", 30.0),
    fill("c7", "M2", "2024-04-01", ATORVA_GENERIC, 30.0, 30, "P4", "R4", 30.0),
    fill("c8", "M2", "2024-05-01", ATORVA_GENERIC, 30.0, 30, "P4", "R4", 30.0),
    fill("c9", "M2", "2024-05-31", ATORVA_GENERIC, 30.0, 30, "P4", "R4", 30.0),
    # M3: an NDC that is in no reference
    fill("c10", "M3", "2024-01-05", "99999999999", 10.0, 10, "P5", "R5", 5.0),
]
PARAMS = {
    "min_prescriber_fills": 2,
    "min_prescriber_opioid_fills": 1,
    "min_pharmacy_controlled_fills": 2,
    "min_peer_claims": 3,
}
COLS = list(pharmacy.FEATURES)
N = None
# Expected, per claim, in FEATURES order:
# mme, max90, days>=90, prescribers, pharmacies, early, early_unneeded (c2: the next fill, c3, came
# before c1's supply ran out -> 1.0; c3 has no next fill -> null), pharmacy_early_rate (on early refills: R2's and
# R3's only refill is early -> 1.0), overlap, controlled, presc_share_vs, presc_mme_vs,
# new_patient_rate, pharmacy_top_share, brand_when_generic, cost_to_peer
# Prescribers: P1 3 fills (1 opioid, share 1/3; peers' mean share = (1/3 + 0)/2 = 1/6 -> 2.0; mean MME 30
# vs median of [30, 45, 45] = 45 -> 0.667; 2 patients / 3 fills); P4 4 fills, 0 opioids, 1 patient.
EXPECTED = {
    "c1": (30.0, 30.0, 0.0, 1.0, 1.0, N, N, N, 0.0, 1.0, 2.0, 2 / 3, 2 / 3, 1.0, 0.0, 1.0),
    "c2": (45.0, 75.0, 0.0, 2.0, 2.0, 20 / 30, 1.0, 1.0, 0.0, 1.0, N, 1.0, N, N, 0.0, 1.0),
    "c3": (45.0, 120.0, 1.0, 3.0, 3.0, 20 / 30, N, 1.0, 0.0, 1.0, N, 1.0, N, N, 0.0, 1.0),
    "c4": (N, 120.0, 5.0, 3.0, 3.0, N, N, N, 1.0, 1.0, 2.0, 2 / 3, 2 / 3, 1.0, 0.0, N),
    "c5": (N, 0.0, 0.0, 0.0, 0.0, N, N, N, 0.0, 0.0, 2.0, 2 / 3, 2 / 3, N, 1.0, 10.0),
    "c6": (N, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0, 0.0, N, 0.25, N, 0.0, 1.0),
    "c7": (N, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0, 0.0, N, 0.25, N, 0.0, 1.0),
    "c8": (N, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0, 0.0, N, 0.25, N, 0.0, 1.0),
    "c9": (N, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0, 0.0, N, 0.25, N, 0.0, 1.0),
    "c10": (N, 0.0, 0.0, 0.0, 0.0, N, N, N, 0.0, N, N, N, N, N, N, N),
}


def _ctx(spark, rx, params=PARAMS):
    return BlockContext(
        spark=spark, tables={"pharmacy_claim": rx}, header=None, base=pharmacy_base(rx), params=dict(params)
    )


def test_pharmacy_features_given_expect(spark):
    rx = typed_frame(spark, PHARMACY_CLAIM, FILLS)
    ctx = _ctx(spark, rx)
    frame, features = pharmacy.build(ctx)
    assert features is pharmacy.FEATURES and ctx.unavailable == []
    frame = frame.cache()
    assert frame.count() == frame.select("claim_id", "claim_source").distinct().count() == len(FILLS)
    expected = spark.createDataFrame(
        [(cid, "pharmacy", *vals) for cid, vals in EXPECTED.items()],
        ", ".join(["claim_id string", "claim_source string"] + [f"{c} double" for c in COLS]),
    )
    assertDataFrameEqual(frame.select("claim_id", "claim_source", *COLS), expected, rtol=1e-6)
    ctx_row = frame.where("claim_id = 'c4'").first()
    assert ctx_row["drug_name"] == "alprazolam"
    assert ctx_row["pharmacy_top_prescriber_npi"] == "P1" and ctx_row["pharmacy_controlled_fills"] == 2.0
    c5 = frame.where("claim_id = 'c5'").first()
    assert (c5["cost_per_unit"], c5["peer_cost_per_unit"]) == (10.0, 1.0)
    assert c5["prescriber_opioid_share"] == pytest.approx(1 / 3) and c5["peer_opioid_share"] == pytest.approx(1 / 6)
    # the RX rules of the knowledge base evaluate on these columns and fire where expected
    rules = [r for r in load_rules() if r["id"].startswith("RX")]
    hit_frame, rule_cols, _ = apply_rules(frame, rules)
    hits = {r["claim_id"]: sorted(r["rule_hits"]) for r in hit_frame.select("claim_id", "rule_hits").collect()}
    assert {k: v for k, v in hits.items() if v} == {
        "c1": ["RX006"],  # R1: 2 of 2 controlled fills from P1
        "c2": ["RX004"],  # 67% of the previous supply left
        "c3": ["RX001", "RX004"],  # 120 MME/day
        "c4": ["RX005", "RX006"],  # alprazolam on top of oxycodone
    }
    frame.unpersist()


def test_reason_templates_cover_every_feature_and_name_known_columns():
    import yaml

    from claimsentry.reasons import template_fields

    conf = REPO / "conf"
    templates = yaml.safe_load((conf / "reasons_pharmacy.yaml").read_text())["reasons"]
    assert set(templates) == set(pharmacy.FEATURES)
    known = set(pharmacy.FEATURES) | set(pharmacy.CONTEXT_COLUMNS)
    rules = yaml.safe_load((conf / "rules_pharmacy.yaml").read_text())["rules"]
    for text in list(templates.values()) + [r["reason"] for r in rules]:
        assert template_fields(text) <= known, text
    assert all(set(r["reads"]) <= known for r in rules)


def test_lines_of_one_claim_sum_mme_and_window_looks_back_only(spark):
    """Two opioid lines on one claim add their MME; a fill 130 days later sees none of it."""
    rows = [
        fill("a", "M9", "2024-01-01", OXY, 120.0, 30, "P1", "R1", 1.0),  # 30 MME/day
        {**fill("a", "M9", "2024-01-01", OXY, 240.0, 30, "P1", "R1", 1.0), "claim_line_number": 2},  # 60
        fill("b", "M9", "2024-05-10", OXY, 120.0, 30, "P1", "R1", 1.0),  # 130 days later
    ]
    frame, _ = pharmacy.build(_ctx(spark, typed_frame(spark, PHARMACY_CLAIM, rows)))
    got = {r["claim_id"]: r for r in frame.collect()}
    assert got["a"]["mme_per_day"] == 90.0
    assert got["a"]["member_mme_per_day_max_90d"] == 90.0 and got["a"]["member_days_ge_90mme_90d"] == 1.0
    assert got["b"]["member_mme_per_day_max_90d"] == 30.0 and got["b"]["member_days_ge_90mme_90d"] == 0.0
    assert got["b"]["early_refill_share"] == 0.0


def test_an_inserted_fill_is_unneeded_and_the_regular_fill_after_it_only_half(spark):
    """Monthly fills on days 0, 30, 60, 90 and one inserted on day 45: the inserted fill and the
    day-60 fill both come with half a supply left, but only the inserted one was not needed (the
    day-30 supply lasted until day 60); the day-60 fill bridged 15 of its 30 days (day 75 to 90)."""
    days = {"f0": "2024-01-01", "f30": "2024-01-31", "f45": "2024-02-15", "f60": "2024-03-01", "f90": "2024-03-31"}
    rows = [fill(c, "M7", d, OXY, 120.0, 30, "P1", "R1", 1.0) for c, d in days.items()]
    frame, _ = pharmacy.build(_ctx(spark, typed_frame(spark, PHARMACY_CLAIM, rows)))
    got = {r["claim_id"]: (r["early_refill_share"], r["early_refill_unneeded_share"]) for r in frame.collect()}
    assert got == {
        "f0": (None, None),  # no earlier fill
        "f30": (0.0, 0.0),  # on time: not early
        "f45": (0.5, 1.0),  # inserted: day 30's supply lasted to the next fill (day 60)
        "f60": (0.5, 0.5),  # early after the inserted fill, but half of it was needed (days 75-90)
        "f90": (0.0, 0.0),  # day 60's supply ran out on day 90: on time
    }


def test_sparse_feed_leaves_dependent_features_null_and_names_them(spark):
    """Like the Tuva demo feed: no prescriber, no pharmacy, no days supply."""
    rows = [
        {**r, "prescribing_provider_npi": None, "dispensing_provider_npi": None, "days_supply": None} for r in FILLS
    ]
    ctx = _ctx(spark, typed_frame(spark, PHARMACY_CLAIM, rows))
    frame = pharmacy.build(ctx)[0].cache()
    unavailable = {
        "mme_per_day", "member_mme_per_day_max_90d", "member_days_ge_90mme_90d", "member_opioid_prescribers_90d",
        "member_opioid_pharmacies_90d", "early_refill_share", "early_refill_unneeded_share", "pharmacy_early_refill_rate_90d", "opioid_benzo_overlap",
        "prescriber_opioid_share_vs_peers", "prescriber_mean_mme_vs_peers", "prescriber_new_patient_rate",
        "pharmacy_top_prescriber_share",
    }
    assert set(ctx.unavailable) == unavailable
    nonnull = frame.agg(*[F.count(c).alias(c) for c in COLS]).first().asDict()
    assert {c for c, n in nonnull.items() if n == 0} == unavailable
    # what does not depend on the missing columns is still computed
    got = {r["claim_id"]: r for r in frame.select("claim_id", "brand_when_generic", "cost_per_unit_to_peer_median", "controlled_fill").collect()}
    assert got["c5"]["brand_when_generic"] == 1.0 and got["c5"]["cost_per_unit_to_peer_median"] == 10.0
    assert got["c4"]["controlled_fill"] == 1.0


def test_no_pharmacy_table_gives_empty_block_with_every_feature_unavailable(spark):
    """A medical-only feed still yields the block's columns (rule reasons read them), no rows, all named unavailable."""
    rx = typed_frame(spark, PHARMACY_CLAIM, FILLS[:1])
    ctx = BlockContext(spark=spark, tables={"pharmacy_claim": None}, header=None, base=pharmacy_base(rx), params={})
    frame, features = pharmacy.build(ctx)
    assert features == pharmacy.FEATURES
    assert frame.count() == 0
    assert set(pharmacy.FEATURES) <= set(frame.columns)
    assert set(ctx.unavailable) == set(pharmacy.FEATURES)


NDC_CASES = [
    ("0002-0800-01", "00002080001"),  # 4-4-2: pad labeler
    ("12345-678-90", "12345067890"),  # 5-3-2: pad product
    ("12345-6789-0", "12345678900"),  # 5-4-1: pad package
    ("00406-0512-01", "00406051201"),  # 5-4-2 hyphenated
    (" 00406051201 ", "00406051201"),  # already 11 digits
    ("406051201", "00406051201"),  # numeric storage lost the leading zeros
    ("50090-347-0", None),  # 5-3-1 is no NDC layout
    ("123456789012", None),  # 12 digits
    ("ABC-1234-56", None),
    ("", None),
    (None, None),
]


def test_normalise_ndc_cases_and_tool_twin_agree(spark):
    df = spark.createDataFrame([(raw,) for raw, _ in NDC_CASES], "raw string")
    got = {r["raw"]: r["ndc_11"] for r in df.select("raw", normalise_ndc("raw").alias("ndc_11")).collect()}
    assert got == {raw: want for raw, want in NDC_CASES}
    spec = importlib.util.spec_from_file_location("build_drug_reference", REPO / "tools" / "build_drug_reference.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert {raw: tool.normalise_ndc(raw) for raw, _ in NDC_CASES} == {raw: want for raw, want in NDC_CASES}


def test_drug_reference_shipped_table(spark):
    ref = load_drug_reference(spark)
    assert ref.count() == ref.select("ndc_11").distinct().count()
    assert ref.where(~F.col("ndc_11").rlike(r"^\d{11}$")).count() == 0
    rows = {r["ndc_11"]: r for r in ref.where(F.col("ndc_11").isin(OXY, "00054306844", LIPITOR)).collect()}
    oxy = rows[OXY]
    assert (oxy["is_opioid"], oxy["dea_schedule"], oxy["strength_per_unit"], oxy["mme_conversion_factor"]) == (1, 2, 5.0, 1.5)
    assert (rows["00054306844"]["is_benzodiazepine"], rows["00054306844"]["dea_schedule"]) == (1, 4)
    assert (rows[LIPITOR]["is_brand"], rows[LIPITOR]["generic_available"], rows[LIPITOR]["dea_schedule"]) == (1, 1, None)


def _auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney AUC (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.slow
def test_generator_opioid_and_doctor_shopping_schemes_are_separated(spark, tmp_path):
    """On generated claims, opioid_overprescribing claims stand out on the member's daily MME and
    doctor_shopping claims on distinct opioid prescribers (AUC > 0.8 against clean fills), and the
    two schemes are told apart from each other (prescribers; prescriber's MME vs peers)."""
    generate = pytest.importorskip("claimsentry.generate")
    generate.generate(tmp_path / "gen", members=2000, seed=7)
    from claimsentry.io import read_raw

    rx = read_raw(spark, str(tmp_path / "gen"), "pharmacy_claim")
    rx = rx.select(
        *[F.col(c).cast(t) if c in rx.columns else F.lit(None).cast(t).alias(c) for c, t in PHARMACY_CLAIM.columns]
    )
    frame, _ = pharmacy.build(_ctx(spark, rx, params={}))
    truth = spark.read.parquet(str(tmp_path / "gen" / "truth" / "claim_truth.parquet")).where("claim_source = 'pharmacy'")
    scored = frame.join(truth.select("claim_id", "scheme"), "claim_id", "left").fillna({"scheme": "none"})
    # bounded: generated test set of a few thousand fills, three feature columns
    rows = scored.where("scheme IN ('none', 'opioid_overprescribing', 'doctor_shopping')").select(
        "scheme", "mme_per_day", "member_mme_per_day_max_90d", "prescriber_mean_mme_vs_peers", "member_opioid_prescribers_90d"
    ).collect()

    def values(scheme, col):
        return [r[col] if r[col] is not None else 0.0 for r in rows if r["scheme"] == scheme]

    clean = "none"
    assert len(values("opioid_overprescribing", "mme_per_day")) >= 10 and len(values("doctor_shopping", "mme_per_day")) >= 5
    assert _auc(values("opioid_overprescribing", "member_mme_per_day_max_90d"), values(clean, "member_mme_per_day_max_90d")) > 0.8
    assert _auc(values("doctor_shopping", "member_opioid_prescribers_90d"), values(clean, "member_opioid_prescribers_90d")) > 0.8
    # and the two schemes are told apart from each other
    assert _auc(values("doctor_shopping", "member_opioid_prescribers_90d"),
                values("opioid_overprescribing", "member_opioid_prescribers_90d")) > 0.8
    assert _auc(values("opioid_overprescribing", "prescriber_mean_mme_vs_peers"),
                values("doctor_shopping", "prescriber_mean_mme_vs_peers")) > 0.8
