"""Payment-policy edits, given -> expect: NCCI PTP (modifier indicators 0/1/9, effective and
deletion dates), MUE (MAI 1/2/3, the version's effective date), add-on codes (types 1/2/3), OIG
exclusions (reinstatement, waiver), each finding with its citation; and the rules that read them."""

from __future__ import annotations

import datetime as dt

import pytest

from claimsentry.features import policy
from claimsentry.features.header import medical_claim_header
from claimsentry.features.rules import apply_rules, load_rules
from claimsentry.policy.formats import AOC_SCHEMA, LEIE_SCHEMA, MUE_SCHEMA, PTP_SCHEMA
from claimsentry.policy.store import ReferenceTable
from claimsentry.schemas import MEDICAL_CLAIM, PHARMACY_CLAIM
from test_pharmacy_features import typed_frame  # noqa: E402

D = dt.date
OPEN = None


def ln(claim, n, day, code, *, person="M1", npi="1111111111", units=1.0, mod=None, ctype="professional", bill=None, rendering=None):
    return {"claim_id": claim, "claim_line_number": n, "claim_type": ctype, "person_id": person, "claim_start_date": day,
            "claim_end_date": day, "billing_npi": npi, "rendering_npi": rendering, "hcpcs_code": code,
            "service_unit_quantity": units, "hcpcs_modifier_1": mod, "bill_type_code": bill, "paid_amount": 50.0}


LINES = [
    # PTP 97140 (column 1) / 97530 (column 2), modifier indicator 1
    ln("p1", 1, "2026-02-02", "97140"), ln("p1", 2, "2026-02-02", "97530"),  # no modifier: found
    ln("p2", 1, "2026-02-02", "97140", person="M2"), ln("p2", 2, "2026-02-02", "97530", person="M2", mod="59"),  # 59: bypassed
    ln("p3", 1, "2026-02-02", "29881", person="M3"), ln("p3", 2, "2026-02-02", "29880", person="M3", mod="59"),  # indicator 0: found
    ln("p4", 1, "2026-02-02", "11042", person="M4"), ln("p4", 2, "2026-02-02", "97597", person="M4"),  # indicator 9: never
    ln("p5", 1, "2026-02-02", "20610", person="M5"), ln("p5", 2, "2026-02-02", "76942", person="M5"),  # deleted 2026-01-01
    ln("p6", 1, "2025-12-15", "20610", person="M6"), ln("p6", 2, "2025-12-15", "76942", person="M6"),  # before deletion: found
    ln("p7", 1, "2026-03-01", "93000", person="M7"), ln("p7", 2, "2026-03-01", "93005", person="M7"),  # edit from 2026-04-01
    ln("p8a", 1, "2026-02-03", "97140", person="M8"), ln("p8b", 1, "2026-02-03", "97530", person="M8"),  # across claims: p8b
    ln("p9", 1, "2026-02-02", "97140", person="M9", ctype="institutional", bill="111"),  # inpatient: no NCCI
    ln("p9", 2, "2026-02-02", "97530", person="M9", ctype="institutional", bill="111"),
    # MUE: J1885 4 units per day (MAI 3); 20552 1 per line (MAI 1); 36415 2 per day (MAI 2); from 2026-01-01
    ln("m1", 1, "2026-02-02", "J1885", person="N1", units=6.0),  # 6 > 4: found, excess 2
    ln("m2", 1, "2026-02-02", "J1885", person="N2", units=3.0), ln("m3", 1, "2026-02-02", "J1885", person="N2", units=3.0),  # 6 a day:
    # m2 is adjudicated first and fits; m3 takes the day to 6: found
    ln("m4", 1, "2026-02-02", "20552", person="N3"), ln("m4", 2, "2026-02-02", "20552", person="N3"),  # 1 + 1 per line: fine
    ln("m5", 1, "2026-02-02", "20552", person="N4", units=2.0),  # 2 on a line: found
    ln("m6", 1, "2026-02-02", "36415", person="N5"), ln("m6", 2, "2026-02-02", "36415", person="N5"),
    ln("m6", 3, "2026-02-02", "36415", person="N5"),  # 3 a day > 2 (MAI 2): found
    ln("m7", 1, "2025-12-01", "J1885", person="N6", units=6.0),  # before the MUE version: not found
    # add-on codes: 22614 needs 22612 (type 1); 99292 needs 99291 (type 1); 0001A contractor-defined (type 2)
    ln("a1", 1, "2026-02-02", "22614", person="A1"),  # orphan: found
    ln("a2", 1, "2026-02-02", "22612", person="A2"), ln("a2", 2, "2026-02-02", "22614", person="A2"),  # with its primary
    ln("a3", 1, "2026-02-02", "0001A", person="A3"),  # type 2: not checked
    ln("a4", 1, "2026-02-02", "64491", person="A4"),  # type 3 orphan: found, with the contractor caveat
    # exclusions
    ln("x1", 1, "2025-04-01", "99213", person="X1", npi="1234567893"),  # excluded 2025-03-01: found
    ln("x2", 1, "2025-02-01", "99213", person="X2", npi="1234567893"),  # before the exclusion
    ln("x3", 1, "2025-06-01", "99213", person="X3", npi="2222222222", rendering="3333333333"),  # reinstated 2025-01-01
    ln("x4", 1, "2024-06-01", "99213", person="X4", npi="2222222222", rendering="3333333333"),  # rendering excluded then: found
    ln("x5", 1, "2025-06-01", "99213", person="X5", npi="4444444444"),  # waiver from 2025-05-01
]
FILLS = [{"claim_id": "r1", "claim_line_number": 1, "person_id": "R1", "prescribing_provider_npi": "1234567893",
          "dispensing_provider_npi": "5555555555", "dispensing_date": "2025-05-01", "ndc_code": "00406052301",
          "quantity": 30.0, "days_supply": 30, "paid_amount": 20.0}]


def table(spark, schema, rows, manifest):
    return ReferenceTable(spark.createDataFrame(rows, schema), manifest)


@pytest.fixture(scope="module")
def found(spark):
    ptp = [("97140", "97530", False, D(2020, 1, 1), OPEN, "1", "Misuse of column two code with column one code"),
           ("29881", "29880", False, D(2020, 1, 1), OPEN, "0", "Mutually exclusive procedures"),
           ("11042", "97597", False, D(2020, 1, 1), OPEN, "9", "Standards of medical / surgical practice"),
           ("20610", "76942", False, D(2020, 1, 1), D(2026, 1, 1), "1", "CPT Manual or CMS manual coding instruction"),
           ("93000", "93005", False, D(2026, 4, 1), OPEN, "0", "Standard preparation / monitoring services")]
    mue = [("J1885", 4, "3", "Date of Service Edit: Clinical", "Prescribing Information"),
           ("20552", 1, "1", "Line Edit", "Anatomic Consideration"),
           ("36415", 2, "2", "Date of Service Edit: Policy", "CMS Policy")]
    aoc = [("22614", "22612", "1", False, None, None, D(2020, 1, 1), OPEN, None),
           ("99292", "99291", "1", False, None, None, D(2020, 1, 1), OPEN, None),
           ("0001A", "CCCCC", "2", True, None, None, D(2020, 1, 1), OPEN, None),
           ("64491", "64490", "3", False, None, None, D(2020, 1, 1), OPEN, None)]
    leie_cols = [f.name for f in LEIE_SCHEMA.fields]

    def leie_row(npi, excl, rein=None, waiver=None):
        row = dict.fromkeys(leie_cols)
        row.update(npi=npi, entity_type="individual", last_name="DOE", exclusion_type="1128a1",
                   exclusion_date=excl, reinstatement_date=rein, waiver_date=waiver)
        return tuple(row[c] for c in leie_cols)

    leie = [leie_row("1234567893", D(2025, 3, 1)), leie_row("3333333333", D(2024, 1, 1), rein=D(2025, 1, 1)),
            leie_row("4444444444", D(2024, 1, 1), waiver=D(2025, 5, 1)), leie_row(None, D(2024, 1, 1))]
    refs = {
        "ncci-ptp/practitioner": table(spark, PTP_SCHEMA, ptp, {"kind": "ncci-ptp", "setting": "practitioner", "version": "2026Q1"}),
        "ncci-mue/practitioner": table(spark, MUE_SCHEMA, mue, {"kind": "ncci-mue", "setting": "practitioner", "version": "2026Q1",
                                                                "effective_from": "2026-01-01"}),
        "ncci-aoc": table(spark, AOC_SCHEMA, aoc, {"kind": "ncci-aoc", "version": "2026Q1"}),
        "leie": table(spark, LEIE_SCHEMA, leie, {"kind": "leie", "version": "2026-01"}),
    }
    lines = typed_frame(spark, MEDICAL_CLAIM, LINES)
    rx = typed_frame(spark, PHARMACY_CLAIM, FILLS)
    frame, missing = policy.policy_features(lines, medical_claim_header(lines), rx, refs)
    rows = {(r["claim_source"], r["claim_id"]): r.asDict() for r in frame.collect()}
    return {"rows": rows, "missing": missing, "frame": frame}


def test_ptp_pairs_honour_modifier_indicators_dates_and_setting(found):
    got = {k[1]: v for k, v in found["rows"].items() if v["ncci_ptp_breaks"]}
    assert sorted(got) == ["p1", "p3", "p6", "p8b"]
    assert (got["p1"]["ptp_column_1_code"], got["p1"]["ptp_column_2_code"], got["p1"]["ncci_ptp_breaks"]) == ("97140", "97530", 1.0)
    assert got["p1"]["citations"] == (
        "NCCI PTP practitioner 2026Q1: 97530 is column 2 to 97140 on the same day, modifier indicator 1, "
        "no 59/XE/XP/XS/XU or other NCCI modifier billed")
    assert got["p3"]["citations"] == (
        "NCCI PTP practitioner 2026Q1: 29880 is column 2 to 29881 on the same day, modifier indicator 0 (no modifier bypasses it)")


def test_mue_by_adjudication_indicator_and_effective_date(found):
    got = {k[1]: v for k, v in found["rows"].items() if v["ncci_mue_excess_units"]}
    assert sorted(got) == ["m1", "m3", "m5", "m6"]  # m2 fits the day's 4 units; m3 takes it past them
    assert (got["m1"]["mue_code"], got["m1"]["mue_value"], got["m1"]["mue_units"], got["m1"]["ncci_mue_excess_units"]) == ("J1885", 4.0, 6.0, 2.0)
    assert got["m1"]["citations"] == "NCCI MUE practitioner 2026Q1: J1885 allows 4 units per day (MAI 3), billed 6"
    assert (got["m3"]["mue_units"], got["m3"]["ncci_mue_excess_units"]) == (6.0, 2.0)  # MAI 3: the day's units over both claims
    assert got["m5"]["citations"] == "NCCI MUE practitioner 2026Q1: 20552 allows 1 units per line (MAI 1), billed 2"
    assert got["m6"]["citations"] == "NCCI MUE practitioner 2026Q1: 36415 allows 2 units per day (MAI 2), billed 3"


def test_add_on_codes_without_their_primary(found):
    got = {k[1]: v for k, v in found["rows"].items() if v["ncci_aoc_orphans"]}
    assert sorted(got) == ["a1", "a4"]
    assert got["a1"]["citations"] == "NCCI add-on 2026Q1: 22614 is an add-on code billed without a primary code (22612) the same day, type 1"
    assert got["a4"]["citations"].endswith("type 3; the contractor may allow other primaries")


def test_excluded_providers_until_reinstatement_or_waiver(found):
    got = {k: v for k, v in found["rows"].items() if v["excluded_provider"]}
    assert sorted(got) == [("medical", "x1"), ("medical", "x4"), ("pharmacy", "r1")]
    assert got[("medical", "x1")]["citations"] == "OIG LEIE 2026-01: 1234567893 excluded 2025-03-01 (1128a1), not reinstated by the date of service"
    assert (got[("medical", "x4")]["leie_npi"], got[("medical", "x4")]["leie_exclusion_date"]) == ("3333333333", "2024-01-01")
    assert found["missing"] == []


def test_rules_fire_on_the_findings_and_cite_them(spark, found):
    rules = [r for r in load_rules() if r["id"] in ("NCC001", "NCC002", "NCC003", "OIG001")]
    assert {r["id"]: r.get("certain", False) for r in rules} == {"NCC001": True, "NCC002": True, "NCC003": False, "OIG001": True}
    hit, _, _ = apply_rules(found["frame"], rules)
    hits = {r["claim_id"]: sorted(r["rule_hits"]) for r in hit.select("claim_id", "rule_hits").collect() if r["rule_hits"]}
    assert hits["p1"] == ["NCC001"] and hits["m6"] == ["NCC002"] and hits["a1"] == ["NCC003"] and hits["x1"] == ["OIG001"]


def test_without_references_nothing_runs_and_every_feature_is_unavailable(spark):
    lines = typed_frame(spark, MEDICAL_CLAIM, LINES[:2])
    frame, missing = policy.policy_features(lines, medical_claim_header(lines), None, {})
    assert frame is None and missing == list(policy.FEATURES)


def test_generated_policy_files_load_and_flag_every_injected_claim_and_no_lookalike(spark, generated_claims, tmp_path):
    """The generator's policy files, in the publishers' formats, load with ``add_reference`` (what
    ``claimsentry reference add`` runs); the edits then flag every injected unbundling, MUE breach,
    orphan add-on and excluded-provider claim with a citation, and no legitimate modifier-59 claim,
    no claim billed before its edit took effect, no add-on billed with its primary."""
    import pandas as pd

    from claimsentry.config import load_settings
    from claimsentry.policy.store import add_reference, load_current, versions_used

    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path / "data")})
    files = {"ncci-ptp": "ccipra-*.TXT", "ncci-mue": "MCR_MUE_*.csv", "ncci-aoc": "AOC_*.txt", "leie": "UPDATED.csv"}
    for kind, pattern in files.items():
        (path,) = (generated_claims / "reference").glob(pattern)
        assert add_reference(spark, settings, kind, [str(path)]).manifest["rows"]["quarantined"] == 0
    refs = load_current(spark, settings)
    assert sorted(versions_used(refs)) == ["leie", "ncci-aoc", "ncci-mue/practitioner", "ncci-ptp/practitioner"]

    lines = spark.read.parquet(str(generated_claims / "medical_claim"))
    rx = spark.read.parquet(str(generated_claims / "pharmacy_claim"))
    frame, missing = policy.policy_features(lines, medical_claim_header(lines), rx, refs)
    assert missing == []
    got = frame.toPandas().set_index(["claim_source", "claim_id"])
    truth = pd.read_parquet(generated_claims / "truth" / "claim_truth.parquet")
    for scheme, column in (("unbundling", "ncci_ptp_breaks"), ("mue_breach", "ncci_mue_excess_units"),
                           ("add_on_without_primary", "ncci_aoc_orphans"), ("excluded_provider", "excluded_provider")):
        keys = list(zip(truth.claim_source[truth.scheme == scheme], truth.claim_id[truth.scheme == scheme]))
        assert keys, scheme
        assert set(keys) <= set(got.index), scheme
        assert (got.loc[keys, column] > 0).all() and got.loc[keys, "citations"].str.len().gt(0).all(), scheme
    lookalikes = pd.read_parquet(generated_claims / "truth" / "lookalikes.parquet")
    for kind in ("modifier_59_distinct_service", "edit_not_yet_effective", "add_on_with_primary"):
        keys = set(zip(lookalikes.claim_source[lookalikes.kind == kind], lookalikes.claim_id[lookalikes.kind == kind]))
        assert keys and not keys & set(got.index), kind
    # and nothing the generator did not inject as improper
    improper = set(zip(truth.claim_source, truth.claim_id))
    assert set(got.index) <= improper
