"""The data-quality gate: suites load, row rules quarantine with named reasons, table-level breaks stop
the run with one line, counts reconcile, GE results and Data Docs are written, the CLI exits cleanly.

The bad-input corpus is ``ROW_CASES`` (each a bad row and the reason it must be quarantined with) and
``TABLE_CASES`` (each a bad table and the one-line error or outcome it must give). Row cases share
one gate run over tiny CSVs; table cases run the gate one by one.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from claimsentry.errors import GateFailed, InputError
from claimsentry.expectations import suites
from claimsentry.jobs.validate import run_gate, write_gate_artifacts
from claimsentry.spark import session_conf

AS_OF = dt.date(2026, 1, 1)
NPI = "1234567893"  # valid: Luhn check digit over 80840 + 123456789 is 3
NPI2 = "1245319599"  # valid (CMS's published example)

MED_BASE = {
    "claim_id": None,
    "claim_line_number": "1",
    "claim_type": "professional",
    "person_id": "p1",
    "claim_start_date": "2025-03-01",
    "claim_end_date": "2025-03-01",
    "admission_date": "",
    "discharge_date": "",
    "billing_npi": NPI,
    "rendering_npi": NPI2,
    "paid_amount": "80.00",
    "paid_date": "2025-03-20",
    "drg_code_type": "",
    "drg_code": "",
    "hcpcs_code": "99213",
    "diagnosis_code_type": "icd-10-cm",
    "diagnosis_code_1": "E11.9",
    "diagnosis_code_2": "",
    "payer": "acme",
}
RX_BASE = {
    "claim_id": None,
    "claim_line_number": "1",
    "person_id": "p1",
    "prescribing_provider_npi": NPI,
    "dispensing_provider_npi": NPI2,
    "dispensing_date": "2025-04-01",
    "ndc_code": "00406051201",
    "quantity": "30",
    "days_supply": "30",
    "paid_amount": "12.50",
    "paid_date": "2025-04-10",
}
ELIG_BASE = {
    "person_id": None,
    "gender": "female",
    "birth_date": "1950-05-05",
    "enrollment_start_date": "2025-01-01",
    "enrollment_end_date": "2025-12-31",
}

# (case id, table, row overrides, expected reason substring). Each bad row has its own key.
ROW_CASES = [
    ("text_amount", "medical_claim", {"paid_amount": "abc"}, "paid_amount not a number: 'abc'"),
    ("negative_amount", "medical_claim", {"paid_amount": "-5"}, "paid_amount negative or implausibly large (over $100M): '-5'"),
    ("huge_amount", "medical_claim", {"paid_amount": "1e12"}, "paid_amount negative or implausibly large (over $100M): '1e12'"),
    ("nan_amount", "medical_claim", {"paid_amount": "NaN"}, "paid_amount negative or implausibly large"),
    ("swapped_dates", "medical_claim", {"claim_start_date": "2025-03-09", "claim_end_date": "2025-03-01"},
     "claim_end_date 2025-03-01 before claim_start_date 2025-03-09"),
    ("impossible_date", "medical_claim", {"claim_start_date": "2025-02-30", "claim_end_date": "2025-03-01"},
     "claim_start_date not a valid YYYY-MM-DD date: '2025-02-30'"),
    ("us_date", "medical_claim", {"claim_end_date": "03/01/2025"}, "claim_end_date not a valid YYYY-MM-DD date: '03/01/2025'"),
    ("admit_after_discharge", "medical_claim",
     {"claim_type": "institutional", "admission_date": "2025-03-05", "discharge_date": "2025-03-02", "claim_end_date": "2025-03-05"},
     "discharge_date 2025-03-02 before admission_date 2025-03-05"),
    ("missing_person", "medical_claim", {"person_id": ""}, "person_id is missing"),
    ("invalid_npi", "medical_claim", {"billing_npi": "1234567890"},
     "billing_npi not a valid NPI (10 digits ending in a Luhn check digit): '1234567890'"),
    ("short_npi", "medical_claim", {"rendering_npi": "12345"}, "rendering_npi not a valid NPI"),
    ("bad_icd10", "medical_claim", {"diagnosis_code_2": "250.00"}, "diagnosis code not ICD-10-CM format: '250.00'"),
    ("bad_icd9", "medical_claim", {"diagnosis_code_type": "icd-9-cm", "diagnosis_code_1": "E11.9X"},
     "diagnosis code not ICD-9-CM format: 'E11.9X'"),
    ("drg_two_digits", "medical_claim", {"claim_type": "institutional", "drg_code_type": "ms-drg", "drg_code": "29"},
     "drg_code not a 3-digit MS-DRG: '29'"),
    ("bad_hcpcs", "medical_claim", {"hcpcs_code": "9921"}, "hcpcs_code not a HCPCS/CPT code"),
    ("unknown_claim_type", "medical_claim", {"claim_type": "dental"}, "claim_type not one of institutional, professional: 'dental'"),
    ("fractional_line_number", "medical_claim", {"claim_line_number": "1.5"}, "claim_line_number not a whole number: '1.5'"),
    ("future_service", "medical_claim", {"claim_start_date": "2026-02-01", "claim_end_date": "2026-02-01"},
     "claim_start_date 2026-02-01 is after the as-of date"),
    ("ten_digit_ndc", "pharmacy_claim", {"ndc_code": "0040605120"}, "ndc_code not an 11-digit NDC: '0040605120'"),
    ("days_supply_zero", "pharmacy_claim", {"days_supply": "0"}, "days_supply outside 1..365 days: '0'"),
    ("days_supply_huge", "pharmacy_claim", {"days_supply": "9000"}, "days_supply outside 1..365 days: '9000'"),
    ("quantity_zero", "pharmacy_claim", {"quantity": "0"}, "quantity not above 0"),
    ("dispensed_in_future", "pharmacy_claim", {"dispensing_date": "2026-03-01"},
     "dispensing_date 2026-03-01 is after the as-of date (dispensed in the future)"),
    ("text_days_supply", "pharmacy_claim", {"days_supply": "thirty"}, "days_supply not a whole number: 'thirty'"),
    ("end_before_start_enrollment", "eligibility", {"enrollment_start_date": "2025-06-01", "enrollment_end_date": "2025-01-31"},
     "enrollment_end_date 2025-01-31 before enrollment_start_date 2025-06-01"),
    ("bad_gender", "eligibility", {"gender": "x"}, "gender not one of male, female, unknown: 'x'"),
]

# Rows whose bad content cannot be written through the dict writer: raw CSV lines appended to a file.
RAW_LINE_CASES = [
    ("malformed_line", "medical_claim", "malformed CSV line (field count does not match the header)"),
    ("latin1_line", "medical_claim", "text is not valid UTF-8 (wrong file encoding?)"),
]


def _write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or list(rows[0].keys())
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def _med(claim_id: str, **over) -> dict:
    return {**MED_BASE, "claim_id": claim_id, **over}


def _rx(claim_id: str, **over) -> dict:
    return {**RX_BASE, "claim_id": claim_id, **over}


def _elig(person_id: str, **over) -> dict:
    return {**ELIG_BASE, "person_id": person_id, **over}


def _write_clean(folder: Path, *, n_med: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(folder / "medical_claim.csv", [_med(f"ok{i}") for i in range(n_med)])
    _write_csv(folder / "eligibility.csv", [_elig("p1")])


@pytest.fixture(scope="module")
def corpus(spark, tmp_path_factory):
    """One input directory holding every row case beside clean rows, and its gate result."""
    from claimsentry.config import load_settings

    folder = tmp_path_factory.mktemp("corpus")
    med = [_med("ok1"), _med("ok2", claim_line_number="1"), _med("ok2", claim_line_number="2")]
    # duplicated key: the second copy (later by row text) is quarantined, the first accepted
    med += [_med("dup", paid_amount="10.00"), _med("dup", paid_amount="20.00")]
    # conflicting claim_type within one claim: the whole claim is quarantined
    med += [_med("mixed", claim_line_number="1"), _med("mixed", claim_line_number="2", claim_type="institutional")]
    med += [_med("two_faults", paid_amount="abc", billing_npi="1234567890")]
    # a valid institutional ICD-9 claim with a 3-digit DRG is accepted
    med += [_med("icd9_ok", claim_type="institutional", diagnosis_code_type="icd-9-cm", diagnosis_code_1="250.00",
                 drg_code_type="ms-drg", drg_code="003", hcpcs_code="", paid_date="2026-02-01")]
    rx = [_rx("rx_ok"), _rx("rx_dup"), _rx("rx_dup", quantity="60")]
    elig = [_elig("p1"), _elig("p2"), _elig("p2", enrollment_start_date="2025-06-01", enrollment_end_date="2026-06-30"),
            _elig("p3", enrollment_end_date="2025-05-31"), _elig("p3", enrollment_start_date="2025-06-01")]
    builders = {"medical_claim": (_med, med), "pharmacy_claim": (_rx, rx), "eligibility": (_elig, elig)}
    for case, table, over, _ in ROW_CASES:
        make, rows = builders[table]
        rows.append(make(case, **over))
    columns = list(MED_BASE) + ["vendor_note"]
    _write_csv(folder / "medical_claim.csv", [{**r, "vendor_note": "x"} for r in med], columns)
    with (folder / "medical_claim.csv").open("ab") as f:
        f.write(b"malformed_line,1,professional,p1,2025-03-01,2025-03-01,,,1234567893,1245319599,5,,,,99213,icd-10-cm,E11.9,,acme,x,EXTRA,EXTRA\n")
        f.write("latin1_line,1,professional,p1,2025-03-01,2025-03-01,,,1234567893,1245319599,5,,,,99213,icd-10-cm,E11.9,,Caf\u00e9 Sant\u00e9,x\n".encode("latin-1"))
    _write_csv(folder / "pharmacy_claim.csv", rx)
    _write_csv(folder / "eligibility.csv", elig)
    _write_csv(folder / "labels.csv", [
        {"claim_id": "ok1", "claim_source": "medical", "label": "1"},
        {"claim_id": "ok2", "claim_source": "medical", "label": "2"},
        {"claim_id": "rx_ok", "claim_source": "dental", "label": "0"},
    ])
    settings = load_settings(environ={}, overrides={"validation.max_error_rate": 1.0})
    result = run_gate(spark, str(folder), settings, as_of=AS_OF)
    q = [r.asDict() for r in result.quarantine.collect()]  # tiny test corpus
    by_key: dict[tuple, list[str]] = {}
    for r in q:
        content = json.loads(r["row_content"])
        k = (r["table"], content.get("claim_id") or content.get("person_id"))
        by_key.setdefault(k, []).append(r["reason"])
    return {"result": result, "quarantine": q, "by_key": by_key, "folder": folder}


# --- suites ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", suites.SUITE_TABLES)
def test_each_suite_file_loads_as_a_ge_suite(table):
    suite = suites.load_suite(table)
    ge_suite = suites.to_ge_suite(suite, as_of=AS_OF)
    assert ge_suite.name == table
    assert len(ge_suite.expectations) == len(suite["expectations"]) > 5
    from claimsentry.schemas import ALL_TABLES

    assert set(suites.required_columns(suite)) == set(ALL_TABLES[table].required)


def test_compiled_rules_on_hand_written_rows(spark):
    """given -> expect, one rule each: failing predicates and their reason text."""
    from claimsentry.quality import flag_rows, type_table
    from claimsentry.schemas import PROVIDER_LABELS

    raw = spark.createDataFrame(
        [("1245319599", "1", "2024-05-01", None, "f"),
         ("1245319598", "1", None, None, "f"),    # bad check digit
         ("12453195", "x", "2024-13-01", None, "f"),  # short, not a number, bad month
         (None, "0", None, None, "f")],
        "npi string, label string, label_date string, _corrupt_record string, _source_file string",
    )
    checked = type_table(raw, PROVIDER_LABELS)
    rows, groups = suites.compile_checks(suites.load_suite("provider_labels"), checked.columns, as_of=AS_OF)
    got = {r["npi"]: r["_reason"] for r in flag_rows(checked, rows, groups).select("npi", "_reason").collect()}
    assert got == {
        "1245319599": None,
        "1245319598": "npi not a valid NPI (10 digits ending in a Luhn check digit): '1245319598'",
        "12453195": "label not a whole number: 'x'; label_date not a valid YYYY-MM-DD date: '2024-13-01'; "
        "npi not a valid NPI (10 digits ending in a Luhn check digit): '12453195'",
        None: "npi is missing",
    }


def test_every_npi_rule_agrees_with_the_reference_luhn_check(spark):
    """The suites spell the NPI check digit out position by position (so Spark compiles it). Each
    NPI rule of each suite must agree with the textbook Luhn over 80840 + NPI on 10-digit strings,
    about one in ten of them valid, and on short, long and non-digit ones."""
    import random

    from claimsentry.generate.world import luhn_valid_npi
    from claimsentry.schemas import ALL_TABLES

    rng = random.Random(7)
    values = ["".join(rng.choice("0123456789") for _ in range(10)) for _ in range(3000)]
    values += ["".join(rng.choice("0123456789 a-") for _ in range(rng.randint(0, 12))) for _ in range(500)]
    values += [NPI, NPI2, "1234567890", None]
    expected = [v is not None and luhn_valid_npi(v) for v in values]
    assert 200 < sum(expected) < 600  # the sample holds both outcomes in numbers
    checked_rules = 0
    for table in ALL_TABLES:
        suite = suites.load_suite(table)
        columns = list(ALL_TABLES[table].column_names)
        rows, _ = suites.compile_checks(suite, columns, as_of=AS_OF)
        for rule in (r for r in rows if r.rule == "npi_luhn"):
            column = rule.text.split(" ", 1)[0]
            frame = spark.createDataFrame([(v,) for v in values], f"`{column}` string")
            got = [not r[0] for r in frame.select(rule.fails).collect()]
            valid = [e or v is None for v, e in zip(values, expected)]  # a null NPI is another rule's
            assert got == valid, f"{table}.{column}"
            checked_rules += 1
    assert checked_rules == 7


def test_rules_over_the_25_code_slots_check_every_slot(spark):
    """The procedure-date and diagnosis-format rules look at all 25 slots: a fault in any slot, the
    last included, quarantines the line and names the value; null slots never do."""
    from claimsentry.quality import flag_rows, type_table
    from claimsentry.schemas import MEDICAL_CLAIM

    columns = [c for c, _ in MEDICAL_CLAIM.columns]
    ok = {"claim_id": "c", "claim_line_number": "1", "person_id": "p", "claim_type": "professional",
          "claim_start_date": "2025-03-01", "claim_end_date": "2025-03-01", "diagnosis_code_type": "icd-10-cm",
          "diagnosis_code_1": "E11.9", "billing_npi": NPI, "paid_amount": "10", "data_source": "x"}
    cases = {
        "clean": {},
        "date3": {"procedure_code_3": "0DTJ4ZZ", "procedure_date_3": "2025-02-30"},
        "date25": {"procedure_code_25": "0DTJ4ZZ", "procedure_date_25": "03/01/2025"},
        "dx25": {"diagnosis_code_25": "250.00"},
        "dx7": {"diagnosis_code_7": "E119X1234"},
    }
    rows = [tuple({**ok, "claim_id": k, **over}.get(c) for c in columns) + (None, "f") for k, over in cases.items()]
    raw = spark.createDataFrame(rows, ", ".join(f"`{c}` string" for c in columns) + ", _corrupt_record string, _source_file string")
    checked = type_table(raw, MEDICAL_CLAIM)
    row_checks, _ = suites.compile_checks(suites.load_suite("medical_claim"), checked.columns, as_of=AS_OF)
    got = {r["claim_id"]: r["_reason"] for r in flag_rows(checked, row_checks, []).select("claim_id", "_reason").collect()}
    assert got == {
        "clean": None,
        "date3": "procedure date not a valid YYYY-MM-DD date: '2025-02-30'",
        "date25": "procedure date not a valid YYYY-MM-DD date: '03/01/2025'",
        "dx25": "diagnosis code not ICD-10-CM format: '250.00'",
        "dx7": "diagnosis code not ICD-10-CM format: 'E119X1234'",
    }


# --- the bad-input corpus: row cases ----------------------------------------------------------------


@pytest.mark.parametrize("case,table,over,expected", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_row_case_is_quarantined_with_its_reason(corpus, case, table, over, expected):
    reasons = corpus["by_key"].get((table, case))
    assert reasons and len(reasons) == 1, f"{case}: {reasons}"
    assert expected in reasons[0]


@pytest.mark.parametrize("case,table,expected", RAW_LINE_CASES, ids=[c[0] for c in RAW_LINE_CASES])
def test_raw_line_case_is_quarantined(corpus, case, table, expected):
    reasons = [r["reason"] for r in corpus["quarantine"] if case in r["row_content"]]
    assert len(reasons) == 1 and expected in reasons[0], reasons


def test_every_failing_rule_is_named(corpus):
    # a row breaking two rules carries both, "; "-joined, in suite order
    assert corpus["by_key"][("medical_claim", "two_faults")] == [
        "paid_amount not a number: 'abc'; "
        "billing_npi not a valid NPI (10 digits ending in a Luhn check digit): '1234567890'"
    ]
    (reason,) = corpus["by_key"][("medical_claim", "swapped_dates")]
    assert reason == "claim_end_date 2025-03-01 before claim_start_date 2025-03-09"


def test_group_rules_duplicates_conflicts_overlaps(corpus):
    by_key = corpus["by_key"]
    assert by_key[("medical_claim", "dup")] == ["duplicate key (claim_id, claim_line_number): dup, 1"]
    assert by_key[("pharmacy_claim", "rx_dup")] == ["duplicate key (claim_id, claim_line_number): rx_dup, 1"]
    assert sorted(by_key[("medical_claim", "mixed")]) == [
        "claim_id has lines with different claim_type values (whole claim quarantined)"] * 2
    assert by_key[("eligibility", "p2")] == [
        "enrollment span overlaps an earlier span of the same person (earlier span ends 2025-12-31)"]
    assert ("eligibility", "p3") not in by_key  # adjacent spans do not overlap
    dup_kept = corpus["result"].tables["medical_claim"].filter("claim_id = 'dup'").select("paid_amount").collect()
    assert [r.paid_amount for r in dup_kept] == [10.0]  # the first by row text is kept


def test_the_wide_rows_are_never_shuffled_and_both_join_paths_agree(spark, corpus):
    """The gate's one pass over the input (typing and row rules, the frame it writes) has no shuffle
    and no sort; the group rules shuffle only narrow columns (at 10M lines the wide-row shuffle and
    sort were a third of the gate: BENCHMARKS.md's history in git, 2026-12-02). Their failing rows are broadcast
    back; the shuffle-join fallback for a badly broken feed gives the same reasons."""
    from claimsentry import quality
    from claimsentry.jobs.validate import _read_table, check_table

    raw = _read_table(spark, str(corpus["folder"]), "medical_claim", required=True)
    plan = check_table(raw, "medical_claim", as_of=AS_OF)
    assert {g.kind for g in plan.group_checks} >= {"unique_key", "one_value_per_key"}
    physical = plan.ruled._jdf.queryExecution().executedPlan().toString()
    assert "Exchange" not in physical and "Sort [" not in physical, physical

    rows = plan.ruled.persist()
    # At 0 rows: Spark would still broadcast a frame this small on its own.
    no_auto_broadcast = {k: "-1" for k in ("spark.sql.autoBroadcastJoinThreshold", "spark.sql.adaptive.autoBroadcastJoinThreshold")}
    try:
        by_path = {}
        for limit in (quality.BROADCAST_ROWS, 0):  # broadcast, then the shuffle-join fallback
            with session_conf(spark, no_auto_broadcast if limit == 0 else {}):
                failures = quality.group_failures(rows, plan.group_checks, broadcast_rows=limit)
                assert set(failures.columns) == {quality.ROW_ID, quality.GROUP_REASON}
                flagged = quality.apply_group_failures(rows, failures, broadcast_rows=limit)
                joined = flagged._jdf.queryExecution().executedPlan().toString()
                assert ("BroadcastHashJoin" in joined) == (limit > 0), joined
                by_path[limit] = sorted(
                    (r["claim_id"], r["claim_line_number"], r["_reason"])
                    for r in flagged.where("_reason IS NOT NULL").select("claim_id", "claim_line_number", "_reason").collect()
                )
        assert by_path[quality.BROADCAST_ROWS] == by_path[0]
        assert ("dup", 1, "duplicate key (claim_id, claim_line_number): dup, 1") in by_path[0]
        assert sum(r[0] == "mixed" for r in by_path[0]) == 2
    finally:
        rows.unpersist()


def test_labels_rows_checked(corpus):
    by_key = corpus["by_key"]
    assert by_key[("labels", "ok2")] == ["label not one of 0, 1: '2'"]
    assert by_key[("labels", "rx_ok")] == ["claim_source not one of medical, pharmacy: 'dental'"]


def test_accepted_tables_are_typed_and_counts_reconcile(corpus):
    from claimsentry.schemas import ALL_TABLES

    result = corpus["result"]
    n_q = {t: sum(1 for r in corpus["quarantine"] if r["table"] == t) for t in ALL_TABLES}
    for name, c in result.counts.items():
        assert c["read"] == c["accepted"] + c["quarantined"], name
        assert c["accepted"] == result.tables[name].count()
        assert c["quarantined"] == n_q[name]
    assert result.counts["medical_claim"]["accepted"] == 5  # ok1, ok2 x2, dup (first), icd9_ok
    assert result.counts["medical_claim"]["read"] == 9 + 18 + 2  # base rows, ROW_CASES, raw lines
    med = result.tables["medical_claim"]
    for col, dtype in ALL_TABLES["medical_claim"].columns:
        assert med.schema[col].dataType == dtype, col
    assert "vendor_note" in med.columns  # unknown columns kept
    icd9 = med.filter("claim_id = 'icd9_ok'").select("drg_code", "paid_amount").first()
    assert icd9.drg_code == "003"  # codes keep leading zeros
    assert result.missing_tables == ["provider_labels", "provider"]
    assert result.tables["provider_labels"] is None


def test_warnings_do_not_block(corpus):
    warnings = corpus["result"].warnings
    assert "medical_claim: 1 unknown column(s) kept and ignored: vendor_note" in warnings
    assert any(w.startswith("medical_claim: 1 of") and "paid_date after the as-of date" in w for w in warnings)


# --- the bad-input corpus: table cases --------------------------------------------------------------


def _blank(folder: Path):
    (folder / "medical_claim.csv").write_bytes(b"")


def _header_only(folder: Path):
    (folder / "medical_claim.csv").write_text(",".join(MED_BASE) + "\n", encoding="utf-8")


def _missing_column(folder: Path):
    _write_csv(folder / "medical_claim.csv", [{k: v for k, v in _med("c1").items() if k != "paid_amount"}])


def _utf16(folder: Path):
    text = "\n".join(",".join(str(v) for v in r.values()) for r in [dict(zip(MED_BASE, MED_BASE)), _med("c1")])
    (folder / "medical_claim.csv").write_bytes(text.encode("utf-16"))


def _no_medical(folder: Path):
    (folder / "medical_claim.csv").unlink()


def _error_rate(folder: Path):
    _write_csv(folder / "medical_claim.csv", [_med("ok"), _med("bad1", paid_amount="x"), _med("bad2", paid_amount="y")])


def _all_rows_bad_eligibility(folder: Path):
    _write_csv(folder / "eligibility.csv", [_elig("p1", birth_date="yesterday")])


def _header_only_pharmacy(folder: Path):
    (folder / "pharmacy_claim.csv").write_text(",".join(RX_BASE) + "\n", encoding="utf-8")


def _binary_garbage(folder: Path):
    (folder / "medical_claim.parquet").write_bytes(b"PAR1 this is not parquet")
    (folder / "medical_claim.csv").unlink()


def _truncated_gzip(folder: Path):
    import gzip

    rows = "".join(",".join(str(v) for v in _med(f"c{i}").values()) + "\n" for i in range(200))
    data = gzip.compress((",".join(MED_BASE) + "\n" + rows).encode("utf-8"))
    (folder / "medical_claim.csv").unlink()
    (folder / "medical_claim.csv.gz").write_bytes(data[: len(data) // 2])


def _repeated_column(folder: Path):
    _write_csv(folder / "medical_claim.csv", [_med("c1")])
    text = (folder / "medical_claim.csv").read_text().splitlines()
    (folder / "medical_claim.csv").write_text(text[0] + ",payer\n" + text[1] + ",other\n")


def _trailing_comma(folder: Path):
    _write_csv(folder / "medical_claim.csv", [_med("c1")])
    text = (folder / "medical_claim.csv").read_text().splitlines()
    (folder / "medical_claim.csv").write_text(text[0] + ",\n" + text[1] + ",\n")


def _parquet_input(folder: Path):
    import pandas as pd

    (folder / "medical_claim.csv").unlink()
    pd.DataFrame([_med("pq1", drg_code="003")]).to_parquet(folder / "medical_claim.parquet", index=False)


# (case id, make the bad input, expected error type or None, expected message / check)
TABLE_CASES = [
    ("blank_file", _blank, GateFailed, "medical_claim: medical_claim.csv is an empty file (not even a header row)"),
    ("header_only", _header_only, GateFailed, "medical_claim: no data rows (header only or empty)"),
    ("missing_required_column", _missing_column, GateFailed, "medical_claim: required column missing: paid_amount"),
    ("utf16_file", _utf16, GateFailed, "medical_claim: required columns missing: claim_id"),
    ("no_medical_table", _no_medical, InputError, "medical_claim: no medical_claim.csv"),
    ("error_rate_above_threshold", _error_rate, GateFailed,
     "medical_claim: 2 of 3 rows (67%) failed validation, above validation.max_error_rate 25%"),
    ("all_eligibility_bad", _all_rows_bad_eligibility, GateFailed, "eligibility: 1 of 1 rows (100%) failed validation"),
    ("not_parquet", _binary_garbage, GateFailed, "medical_claim: cannot read"),
    ("truncated_gzip", _truncated_gzip, GateFailed, "medical_claim: cannot read"),
    # Spark renames a repeated header name (payer -> payer<i>): kept as unknown columns, with a warning
    ("repeated_column", _repeated_column, None,
     {"medical_claim": {"read": 1, "accepted": 1, "quarantined": 0}, "_warning": "unknown column(s) kept and ignored: payer"}),
    ("trailing_comma_header", _trailing_comma, None, {"medical_claim": {"read": 1, "accepted": 1, "quarantined": 0}}),
    ("header_only_optional_table", _header_only_pharmacy, None, {"pharmacy_claim": {"read": 0, "accepted": 0, "quarantined": 0}}),
    ("parquet_input", _parquet_input, None, {"medical_claim": {"read": 1, "accepted": 1, "quarantined": 0}}),
]


@pytest.mark.parametrize("case,make,error,expected", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_table_case(spark, settings, tmp_path, case, make, error, expected):
    folder = tmp_path / "in"
    _write_clean(folder)
    make(folder)
    if error is None:
        result = run_gate(spark, str(folder), settings, as_of=AS_OF)
        for table, counts in expected.items():
            if table == "_warning":
                assert any(counts in w for w in result.warnings), result.warnings
            else:
                assert result.counts[table] == counts
        return
    with pytest.raises(error) as info:
        run_gate(spark, str(folder), settings, as_of=AS_OF)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(expected), message


# --- artifacts, checkpoint and CLI ----------------------------------------------------------------------


def test_artifacts_ge_results_and_data_docs(corpus, tmp_path, spark):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = write_gate_artifacts(corpus["result"], run_dir)
    q = spark.read.parquet(str(run_dir / "quarantine"))
    assert q.count() == summary["quarantined"] == len(corpus["quarantine"])
    assert set(q.columns) >= {"table", "row_content", "reason", "source_file"}
    results = json.loads((run_dir / "data_quality" / "validation_results.json").read_text())
    assert set(results) == {"medical_claim", "pharmacy_claim", "eligibility", "labels"}
    med = {r["expectation_config"]["type"]: r for r in results["medical_claim"]["results"]}
    assert med["expect_compound_columns_to_be_unique"]["success"] is False  # GE sees the duplicate too
    assert summary["suites"]["medical_claim"]["evaluated_expectations"] == len(suites.load_suite("medical_claim")["expectations"])
    page = (run_dir / "data_quality" / "data_docs.html").read_text()
    assert "<table>" in page and "medical_claim" in page
    assert (run_dir / "data_quality" / "data_docs" / "medical_claim.html").stat().st_size > 5000


def test_ge_report_is_the_same_on_one_partition_as_on_several(corpus, monkeypatch):
    """GE sees a small table as one cached partition (fewer Spark jobs); its results, down to the
    sample of unexpected values, are those of the same rows spread over several partitions."""
    from claimsentry.jobs import validate

    med = corpus["result"].checked["medical_claim"]
    spread = med.repartitionByRange(3, "claim_id", "claim_line_number")  # one map task: a fixed row order
    assert spread.rdd.getNumPartitions() == 3
    full, kept, per_type = suites.load_suite("medical_claim"), [], {}
    for exp in full["expectations"]:  # two of each kind: the comparison, not the whole suite, is the point
        per_type[exp["type"]] = per_type.get(exp["type"], 0) + 1
        if per_type[exp["type"]] <= 2:
            kept.append(exp)
    monkeypatch.setattr(validate.suites, "load_suite", lambda name: {**full, "expectations": kept})

    def report() -> list[dict]:
        results, _ = validate.ge_validate({"medical_claim": (spread, False)}, as_of=AS_OF)
        return [{k: r[k] for k in ("expectation_config", "success", "result")}
                for r in results["medical_claim"].to_json_dict()["results"]]

    one = report()
    monkeypatch.setattr(validate, "GE_ONE_PARTITION_ROWS", 0)
    several = report()
    assert one == several
    assert any(r["result"].get("partial_unexpected_list") for r in one)  # the samples were compared too


def test_ge_report_on_a_deterministic_sample_above_ge_max_rows(spark, settings, tmp_path):
    from claimsentry.jobs.validate import ge_sample

    folder = tmp_path / "in"
    _write_clean(folder, n_med=400)
    result = run_gate(spark, str(folder), settings, as_of=AS_OF, checkpoint_dir=tmp_path / "ckpt")
    med = result.checked["medical_claim"]
    first, sampled = ge_sample(med, 400, 100)
    again, _ = ge_sample(med, 400, 100)
    n = first.count()
    assert sampled and 40 < n < 200  # ~100 of 400, by a hash of each row
    assert sorted(r[0] for r in first.select("claim_id").collect()) == sorted(r[0] for r in again.select("claim_id").collect())
    assert ge_sample(med, 400, None) == (med, False) and ge_sample(med, 400, 400) == (med, False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = write_gate_artifacts(result, run_dir, ge_max_rows=100)
    assert summary["suites"]["medical_claim"]["sampled"] is True
    assert summary["suites"]["eligibility"]["sampled"] is False
    assert summary["counts"]["medical_claim"] == {"read": 400, "accepted": 400, "quarantined": 0}  # counts: every row
    results = json.loads((run_dir / "data_quality" / "validation_results.json").read_text())
    assert results["medical_claim"]["claimsentry_sampled"] is True
    assert "(on a sample)" in (run_dir / "data_quality" / "data_docs.html").read_text()


def test_ge_sample_of_a_large_table_reads_only_some_checkpoint_parts(spark, settings, tmp_path):
    """Above ge_max_rows, a checkpointed table's GE sample comes from evenly spaced part files of
    the checkpoint (its cost stays flat as the table grows); same sample on every call."""
    folder = tmp_path / "in"
    (folder / "medical_claim").mkdir(parents=True)
    _write_csv(folder / "eligibility.csv", [_elig("p1")])
    for part in range(8):  # 8 input files -> several checkpoint part files (Spark packs small files)
        _write_csv(folder / "medical_claim" / f"part-{part}.csv", [_med(f"p{part}_{i}") for i in range(50)])
    result = run_gate(spark, str(folder), settings, as_of=AS_OF, checkpoint_dir=tmp_path / "ckpt")
    parts = result.parts["medical_claim"]
    assert len(parts) >= 2
    sample, sampled = result.ge_frame("medical_claim", 100)
    files = {r[0].rsplit("/", 1)[1] for r in sample.select(F.input_file_name()).distinct().collect()}
    assert sampled and len(files) == -(-len(parts) * 100 // 400) < len(parts)  # only the parts ~100 rows need
    assert files <= {p.rsplit("/", 1)[1] for p in parts}
    ids = sorted(r[0] for r in sample.select("claim_id").collect())
    assert 30 < len(ids) <= 100
    assert ids == sorted(r[0] for r in result.ge_frame("medical_claim", 100)[0].select("claim_id").collect())
    assert set(sample.columns) == set(result.checked["medical_claim"].columns)
    whole, sampled = result.ge_frame("medical_claim", 1000)
    assert not sampled and whole.count() == 400


def test_checkpoint_dir_and_explicit_labels_file(spark, settings, tmp_path):
    folder = tmp_path / "in"
    _write_clean(folder, n_med=3)
    audits = tmp_path / "audits.csv"  # --labels FILE may have any name
    _write_csv(audits, [{"claim_id": "ok0", "claim_source": "medical", "label": "1", "recovered_amount": "80"},
                        {"claim_id": "ok1", "claim_source": "medical", "label": "0", "recovered_amount": ""}])
    result = run_gate(spark, str(folder), settings, as_of=AS_OF, checkpoint_dir=tmp_path / "ckpt", labels_path=str(audits))
    assert (tmp_path / "ckpt" / "medical_claim").is_dir()
    med = result.tables["medical_claim"]
    assert med.count() == 3 and dict(med.dtypes)["claim_start_date"] == "date"
    assert result.quarantine.count() == 0
    assert result.counts["labels"] == {"read": 2, "accepted": 2, "quarantined": 0}
    labels = {r.claim_id: (r.label, r.recovered_amount) for r in result.tables["labels"].collect()}
    assert labels == {"ok0": (1, 80.0), "ok1": (0, None)}  # unlisted claims stay unaudited, not 0


def test_row_json_is_built_only_for_quarantined_rows_and_shows_the_row_as_read(spark, settings, tmp_path):
    """The checkpoint copy of every row read carries no row JSON or row text (at 2M lines the copy
    was 3.4 times larger with it); the quarantine rebuilds the row as read from the raw shadows:
    the original case of enumerated values and the strings of values that did not parse."""
    folder = tmp_path / "in"
    folder.mkdir()
    _write_csv(folder / "medical_claim.csv", [
        *[_med(f"ok{i}") for i in range(8)],
        _med("bad_amount", claim_type="Professional", paid_amount="12,50"),
        _med("dup", claim_type="PROFESSIONAL"),
        _med("dup", claim_type="Professional"),
    ])
    _write_csv(folder / "eligibility.csv", [_elig("p1")])
    result = run_gate(spark, str(folder), settings, as_of=AS_OF, checkpoint_dir=tmp_path / "ckpt")
    written = spark.read.parquet(str(tmp_path / "ckpt" / "medical_claim")).columns
    assert "_row_content" not in written and "_row_text" not in written
    rows = {}
    for r in result.quarantine.collect():
        content = json.loads(r["row_content"])
        rows[content["claim_id"]] = (content, r["reason"])
    assert set(rows) == {"bad_amount", "dup"}
    bad, reason = rows["bad_amount"]
    assert bad["paid_amount"] == "12,50" and bad["claim_type"] == "Professional" and "12,50" in reason
    assert "admission_date" not in bad  # blank as read: left out, as before
    dup, reason = rows["dup"]
    # Of the two copies the first by row text is kept: '{"claim_id":"dup",..."claim_type":"PROFESSIONAL"' < '..."Professional"'
    assert dup["claim_type"] == "Professional" and reason.startswith("duplicate")
    assert result.counts["medical_claim"] == {"read": 11, "accepted": 9, "quarantined": 2}
    # What GE validates has the row text back (the UTF-8 rule's column), rebuilt from the copy.
    assert "_row_text" in result.checked["medical_claim"].columns


def test_typed_parquet_input_is_taken_as_typed_and_gives_what_its_text_gives(spark, settings, tmp_path):
    """A Parquet feed that stores dates as dates and amounts as doubles is not read as strings and
    parsed back: those columns are taken as they are, and their raw shadows (the values' strings)
    are derived, not stored in the gate's copy. Counts, accepted rows, quarantine (row as read,
    reasons) and GE's results are those of the same values given as text."""
    rows = [
        *[_med(f"ok{i}", paid_amount="80.0") for i in range(10)],
        _med("neg", paid_amount="-5.0"),
        _med("swap", paid_amount="80.0", claim_start_date="2025-03-09", claim_end_date="2025-03-01"),
        _med("dup", paid_amount="80.0"),
        _med("dup", paid_amount="81.5"),
    ]
    text, typed = tmp_path / "text", tmp_path / "typed"
    for folder in (text, typed):
        folder.mkdir()
        _write_csv(folder / "eligibility.csv", [_elig("p1")])
    _write_csv(text / "medical_claim.csv", rows)
    as_text = spark.read.option("header", True).csv(str(text / "medical_claim.csv"))
    types = {c: "date" for c in as_text.columns if c.endswith("_date")} | {"paid_amount": "double", "claim_line_number": "int"}
    as_text.select(*[F.col(c).cast(types.get(c, "string")).alias(c) for c in as_text.columns]).coalesce(1).write.parquet(
        str(typed / "medical_claim"))

    results = {}
    for name, folder in (("text", text), ("typed", typed)):
        gate = run_gate(spark, str(folder), settings, as_of=AS_OF, checkpoint_dir=tmp_path / f"ckpt_{name}")
        summary = write_gate_artifacts(gate, tmp_path / f"run_{name}")
        copy = spark.read.parquet(str(tmp_path / f"ckpt_{name}" / "medical_claim")).columns
        results[name] = (gate, summary, copy)
    (text_gate, text_summary, text_copy), (typed_gate, typed_summary, typed_copy) = results["text"], results["typed"]
    assert set(typed_gate.stored["medical_claim"]) == {"claim_line_number", "claim_start_date", "claim_end_date",
                                                       "admission_date", "discharge_date", "paid_amount", "paid_date"}
    assert "_raw_paid_amount" in text_copy and "_raw_paid_amount" not in typed_copy
    assert typed_gate.checked["medical_claim"].columns == text_gate.checked["medical_claim"].columns
    assert typed_gate.counts == text_gate.counts
    assert typed_gate.counts["medical_claim"] == {"read": 14, "accepted": 11, "quarantined": 3}
    assertDataFrameEqual(typed_gate.tables["medical_claim"], text_gate.tables["medical_claim"])
    assertDataFrameEqual(typed_gate.quarantine.drop("source_file"), text_gate.quarantine.drop("source_file"))
    assert typed_summary["suites"] == text_summary["suites"]


def test_cli_bad_input_exits_3_with_one_line(tmp_path):
    folder = tmp_path / "in"
    _write_clean(folder)
    _header_only(folder)
    out = tmp_path / "out"
    config = tmp_path / "claimsentry.yaml"  # no Spark console progress bars on stderr
    config.write_text('spark:\n  conf:\n    spark.ui.showConsoleProgress: "false"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "claimsentry.cli", "--config", str(config), "--data-dir", str(tmp_path / "data"), "validate",
         "--input", str(folder), "--output", str(out), "--as-of", "2026-01-01"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "WARN" not in ln and "log4j" not in ln
             and "setLogLevel" not in ln and "incubator" not in ln]
    assert lines == ["claimsentry validate: medical_claim: no data rows (header only or empty)"]
    assert not out.exists()  # nothing written


def test_a_saved_gate_is_reused_only_for_the_same_input_settings_and_date(tmp_path, settings):
    """``reusable_gate`` decides whether scoring may read the rows a validate task checked: only
    when nothing the gate depends on has changed since, and the rows are still there."""
    import os

    from claimsentry.jobs.validate import GATE_COPY, GATE_SUMMARY, gate_fingerprint, reusable_gate

    day = dt.date(2026, 1, 1)
    drop = tmp_path / "drop"
    (drop / "medical_claim").mkdir(parents=True)
    part = drop / "medical_claim" / "part-0.csv"
    part.write_text("claim_id,paid_amount\nC1,10\n", encoding="utf-8")
    (drop / "eligibility.csv").write_text("person_id\nP1\n", encoding="utf-8")
    fp = gate_fingerprint(str(drop), settings, day)
    assert fp == gate_fingerprint(str(drop), settings, day)
    assert gate_fingerprint("s3://bucket/claims/2026-01-01", settings, day) is None

    gate = tmp_path / "gate"
    for table in ("medical_claim", "eligibility"):
        (gate / GATE_COPY / table).mkdir(parents=True)
    saved = {"counts": {"medical_claim": {"read": 1}, "eligibility": {"read": 1}}, "fingerprint": fp,
             "data_quality": {"quarantined": 0}}
    (gate / GATE_SUMMARY).write_text(json.dumps(saved), encoding="utf-8")
    assert reusable_gate(str(gate), str(drop), settings, day) == saved
    assert reusable_gate(None, str(drop), settings, day) is None

    assert reusable_gate(str(gate), str(drop), settings, day + dt.timedelta(days=1)) is None  # another as-of date
    stricter = settings.with_overrides({"validation.max_error_rate": 0.01})
    assert reusable_gate(str(gate), str(drop), stricter, day) is None  # other gate settings

    st = part.stat()
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a file re-landed since
    assert reusable_gate(str(gate), str(drop), settings, day) is None
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))
    (drop / "medical_claim" / "part-1.csv").write_text("claim_id,paid_amount\nC2,5\n", encoding="utf-8")  # a late part
    assert reusable_gate(str(gate), str(drop), settings, day) is None
    (drop / "medical_claim" / "part-1.csv").unlink()
    assert reusable_gate(str(gate), str(drop), settings, day) == saved

    (gate / GATE_COPY / "eligibility").rmdir()  # the copy was already used and removed
    assert reusable_gate(str(gate), str(drop), settings, day) is None


@pytest.mark.parametrize("before", [None, "12345"])
def test_row_pass_setting_is_scoped_to_the_pass(spark, tmp_path, monkeypatch, before):
    """The gate's pass runs with its own codegen method limit and hands the session back as it
    found it, also when the input cannot be read: the feature plans run with the session's value."""
    from pyspark.sql import DataFrameWriter

    from claimsentry.jobs.validate import ROW_PASS_HUGE_METHOD_LIMIT, _materialise

    key = "spark.sql.codegen.hugeMethodLimit"
    during = []
    write = DataFrameWriter.parquet

    def spy(self, path, *args, **kwargs):  # the setting the pass is written with
        during.append(spark.conf.get(key, None))
        return write(self, path, *args, **kwargs)

    monkeypatch.setattr(DataFrameWriter, "parquet", spy)
    with session_conf(spark, {key: before}):
        rows = _materialise(spark, spark.range(3).withColumn("v", F.col("id") * 2), "t", tmp_path / "t")
        assert sorted(r.v for r in rows.collect()) == [0, 2, 4]
        assert during == [ROW_PASS_HUGE_METHOD_LIMIT]
        assert spark.conf.get(key, None) == before

        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "part-0.csv.gz").write_bytes(b"\x1f\x8b\x08not gzip")
        with pytest.raises(GateFailed, match="^t: cannot read the table"):
            _materialise(spark, spark.read.csv(str(tmp_path / "bad"), schema="a string"), "t", tmp_path / "t2")
        assert spark.conf.get(key, None) == before
