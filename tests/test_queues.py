"""Queues, case history and auditor feedback (issue 7): capacity, ordering, exclusion, dispositions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from claimsentry import cases
from claimsentry.errors import InputError
from claimsentry.jobs.feedback import ingest_feedback
from claimsentry.queue_page import render_queue_page
from claimsentry.queues import QueueParams, render_claim_queue, select_claims

SCORED_SCHEMA = "claim_id string, claim_source string, score double, amount_paid double, billing_npi string, rule_hits array<string>"


def scored_frame(spark, rows):
    return spark.createDataFrame(rows, SCORED_SCHEMA)


ROWS = [
    # claim, source, score, paid -> expected recovery = score * paid
    ("c1", "medical", 0.90, 1000.0, "1111111112", []),  # 900
    ("c2", "medical", 0.50, 4000.0, "1111111112", []),  # 2000
    ("c3", "pharmacy", 0.80, 500.0, "2222222223", []),  # 400
    ("c4", "pharmacy", 0.04, 90000.0, "2222222223", []),  # below min_score: never queued
    ("c5", "medical", 0.60, 1500.0, "3333333334", []),  # 900, ties c1 on recovery, lower score
    ("c6", "pharmacy", 0.70, 2000.0, "2222222223", []),  # 1400
]


def test_claims_rank_by_expected_recovery_within_capacity_and_min_score(spark):
    params = QueueParams(claim_capacity=4, min_score=0.05)
    out = select_claims(scored_frame(spark, ROWS), params).orderBy("rank").toPandas()
    assert out["claim_id"].tolist() == ["c2", "c6", "c1", "c5"]
    assert out["rank"].tolist() == [1, 2, 3, 4]
    assert out["expected_recovery"].tolist() == [2000.0, 1400.0, 900.0, 900.0]


def test_claims_that_break_a_certain_rule_come_first_whatever_their_amount(spark):
    from claimsentry.models.scoring import CERTAIN_SCORE

    rows = ROWS + [("c7", "medical", CERTAIN_SCORE, 20.0, "4444444445", ["MB001"]),  # after death, $20
                   ("c8", "pharmacy", 1.0, 10.0, "4444444445", ["MB002"])]  # outside enrollment, $10
    out = select_claims(scored_frame(spark, rows), QueueParams(claim_capacity=4, min_score=0.05)).orderBy("rank").toPandas()
    assert out["claim_id"].tolist() == ["c7", "c8", "c2", "c6"]  # 19.90 before 10.00, then by recovery


def test_segment_capacity_limits_each_team(spark):
    params = QueueParams(claim_capacity=10, min_score=0.05, segment_by="claim_source", segment_capacity=(("pharmacy", 1),))
    out = select_claims(scored_frame(spark, ROWS), params).orderBy("rank").toPandas()
    assert out["claim_id"].tolist() == ["c2", "c6", "c1", "c5"]  # only the best pharmacy claim (c6)
    assert (out["claim_source"] == "pharmacy").sum() == 1


def test_claims_already_cased_are_excluded(spark):
    exclude = spark.createDataFrame([("c2", "medical"), ("c6", "medical")], "claim_id string, claim_source string")
    out = select_claims(scored_frame(spark, ROWS), QueueParams(claim_capacity=3), exclude=exclude).orderBy("rank").toPandas()
    # c6 is a pharmacy claim: a medical claim with the same id does not exclude it
    assert out["claim_id"].tolist() == ["c6", "c1", "c5"]


def test_queue_rows_carry_reasons_with_values_and_no_raw_feature_names():
    queued = pd.DataFrame(
        [
            {
                "rank": 1,
                "claim_id": "c1",
                "claim_source": "medical",
                "score": 0.9,
                "amount_at_risk": 1000.0,
                "expected_recovery": 900.0,
                "billing_npi": "1111111112",
                "person_id": "p1",
                "amount_paid": 1000.0,
                "paid_to_peer_median": 3.2,
                "rule_hits": [],
                "contributions": [
                    {"feature": "paid_to_peer_median", "contribution": 1.2},
                    {"feature": "feature_without_template", "contribution": 0.8},
                ],
                "case_id": cases.case_id("medical", "c1"),
            }
        ]
    )
    out = render_claim_queue(queued, [], QueueParams())
    reasons = out.loc[0, "reasons"]
    assert "3.2x the median" in reasons and "$1,000" in reasons
    assert "feature_without_template" not in reasons and "paid_to_peer_median" not in reasons
    page = render_queue_page(out, run_date="2026-01-01")
    assert cases.case_id("medical", "c1") in page and "3.2x the median" in page


FORMULA = '=HYPERLINK("http://x","click")P1'


def _csv_cells(path):
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def test_queue_csvs_cannot_start_a_formula_but_keep_numbers(spark, tmp_path):
    """Input values reach the queues as they came (person_id, NPIs); the CSVs auditors open in a
    spreadsheet must not run them (OWASP CSV injection), while the Parquet keeps them unchanged."""
    from claimsentry.features.rules import load_rules
    from claimsentry.jobs.score import write_queue
    from claimsentry.queues import render_provider_queue, select_providers

    base = {"claim_source": "medical", "score": 0.9, "billing_npi": "1111111112", "claim_type": "institutional",
            "claim_date": dt.date(2025, 12, 1), "rule_hits": [], "contributions": [], "model_version": "claimsentry-fraud/1"}
    queued = pd.DataFrame(
        [
            {**base, "rank": 1, "claim_id": "c1", "person_id": FORMULA, "amount_at_risk": 1000.0,
             "expected_recovery": 900.0, "amount_paid": 1000.0},
            {**base, "rank": 2, "claim_id": "-2+3", "person_id": "\t=cmd|' /C calc'!A0", "amount_at_risk": 0.0,
             "expected_recovery": 0.0, "amount_paid": -12.5, "billing_npi": "@SUM(1+1)"},
            {**base, "rank": 3, "claim_id": "c3", "person_id": "-12.5", "amount_at_risk": 10.0,
             "expected_recovery": 9.0, "amount_paid": 10.0, "billing_npi": "\r+1"},
        ]
    )
    queued["case_id"] = [cases.case_id("medical", c) for c in queued["claim_id"]]
    claim_pdf = render_claim_queue(queued, [], QueueParams())
    write_queue(claim_pdf, tmp_path, "claim_queue")
    rows = _csv_cells(tmp_path / "claim_queue.csv")
    assert [r["person_id"] for r in rows] == ["'" + FORMULA, "'\t=cmd|' /C calc'!A0", "-12.5"]
    assert [r["claim_id"] for r in rows] == ["c1", "'-2+3", "c3"]
    assert [r["billing_npi"] for r in rows] == ["1111111112", "'@SUM(1+1)", "'\r+1"]
    assert [r["amount_paid"] for r in rows] == ["1000.0", "-12.5", "10.0"]  # numbers stay numbers
    assert pd.read_parquet(tmp_path / "claim_queue.parquet")["person_id"].tolist() == queued["person_id"].tolist()

    scored = scored_frame(spark, [("p1", "medical", 0.9, 500.0, "=1+2", []), ("p2", "medical", 0.8, -40.0, "+1555-1234", [])])
    provider_pdf = render_provider_queue(select_providers(scored, QueueParams()).toPandas(), load_rules())
    write_queue(provider_pdf, tmp_path, "provider_queue")
    providers = _csv_cells(tmp_path / "provider_queue.csv")
    assert sorted(r["npi"] for r in providers) == ["'+1555-1234", "'=1+2"]
    assert sorted(r["amount_paid"] for r in providers) == ["-40.0", "500.0"]
    for row in rows + providers:  # no cell of either CSV can start a formula, unless it is a plain number
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")) or float(value) == float(value), value


def test_case_ids_are_stable_and_distinct_per_source():
    assert cases.case_id("medical", "c1") == cases.case_id("medical", "c1")
    assert cases.case_id("medical", "c1") != cases.case_id("pharmacy", "c1")
    assert cases.case_id("medical", "c1").startswith("CS-")


def _record(root, run_date, claims):
    queue = pd.DataFrame(
        [
            {"case_id": cases.case_id(s, c), "claim_id": c, "claim_source": s, "rank": i + 1, "score": 0.9}
            for i, (c, s) in enumerate(claims)
        ]
    )
    cases.record_queue(root, run_date, queue)


def test_history_only_counts_earlier_runs_and_rerun_replaces(tmp_path):
    _record(tmp_path, dt.date(2026, 1, 1), [("c1", "medical")])
    _record(tmp_path, dt.date(2026, 1, 2), [("c2", "medical")])
    assert cases.queued_before(tmp_path, dt.date(2026, 1, 2))["claim_id"].tolist() == ["c1"]
    _record(tmp_path, dt.date(2026, 1, 2), [("c3", "pharmacy")])  # re-run of the same date
    assert sorted(cases.queued_before(tmp_path, dt.date(2026, 1, 3))["claim_id"]) == ["c1", "c3"]


def write_feedback(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_feedback_accepts_good_rows_reports_bad_ones_and_closes_cases(settings, tmp_path):
    root = cases.history_dir(settings)
    _record(root, dt.date(2026, 1, 1), [("c1", "medical"), ("c2", "pharmacy")])
    file = write_feedback(
        tmp_path / "dispositions.csv",
        [
            {"case_id": cases.case_id("medical", "c1"), "claim_id": "", "claim_source": "", "outcome": "confirmed", "recovered_amount": "1200.50", "outcome_date": "2026-02-01", "note": "upcoded"},
            {"case_id": "", "claim_id": "c2", "claim_source": "", "outcome": "Cleared", "recovered_amount": "", "outcome_date": "2026-02-02", "note": ""},
            {"case_id": "", "claim_id": "c9", "claim_source": "pharmacy", "outcome": "partial", "recovered_amount": "10", "outcome_date": "2026-02-03", "note": ""},
            {"case_id": "CS-NOPE", "claim_id": "", "claim_source": "", "outcome": "confirmed", "recovered_amount": "", "outcome_date": "2026-02-01", "note": ""},
            {"case_id": "", "claim_id": "c7", "claim_source": "", "outcome": "fraud!", "recovered_amount": "-5", "outcome_date": "01/02/2026", "note": ""},
        ],
    )
    result = ingest_feedback(settings, file, today=dt.date(2026, 3, 1))
    assert (result["rows"], result["accepted"], result["rejected"], result["closed_cases"]) == (5, 2, 3, 2)
    reasons = {r["source_row"]: r["reason"] for r in result["rejections"]}
    assert reasons[4] == "claim_id not found in any queued case"  # a claim no queue ever opened
    assert reasons[5] == "unknown case_id 'CS-NOPE'"
    assert "outcome 'fraud!'" in reasons[6] and "not YYYY-MM-DD" in reasons[6] and "negative" in reasons[6]
    assert "claim_id not found in any queued case" in reasons[6]

    status = cases.case_status(root).set_index("claim_id")["status"].to_dict()
    assert status == {"c1": "confirmed", "c2": "cleared"}
    labels = cases.feedback_labels(root).set_index("claim_id")
    assert labels.loc["c1", "label"] == 1 and labels.loc["c2", "label"] == 0 and "c9" not in labels.index
    assert labels.loc["c1", "recovered_amount"] == pytest.approx(1200.50)

    again = ingest_feedback(settings, file, today=dt.date(2026, 3, 1))  # idempotent re-import
    assert again["accepted"] == 2 and len(cases.feedback_labels(root)) == 2


def test_feedback_rejects_impossible_recoveries_and_unknown_claims_and_loses_no_row(settings, tmp_path):
    root = cases.history_dir(settings)
    queue = pd.DataFrame(
        [  # as a score run records its queue: the claim's paid amount is kept with its case
            {"case_id": cases.case_id(s, c), "claim_id": c, "claim_source": s, "rank": i + 1, "score": 0.9,
             "amount_at_risk": risk, "amount_paid": paid}
            for i, (c, s, risk, paid) in enumerate(
                [("c1", "medical", 300.0, 1200.0), ("c3", "medical", 50.0, 50.0), ("c3", "pharmacy", 80.0, 80.0)]
            )
        ]
    )
    cases.record_queue(root, dt.date(2026, 1, 1), queue)
    c1 = cases.case_id("medical", "c1")
    rows = [  # (case_id, claim_id, claim_source, outcome, recovered_amount) -> expected reason, None = accepted
        ((c1, "", "", "confirmed", "inf"), "recovered_amount 'inf' is not a finite number"),
        ((c1, "", "", "confirmed", "-Infinity"), "recovered_amount '-Infinity' is not a finite number"),
        ((c1, "", "", "partial", "nan"), "recovered_amount 'nan' is not a finite number"),
        ((c1, "", "", "confirmed", "1e308"), "recovered_amount 1e308 exceeds the claim's paid amount (1200.00)"),
        ((c1, "", "", "partial", "1200.01"), "recovered_amount 1200.01 exceeds the claim's paid amount (1200.00)"),
        (("", "ghost", "medical", "confirmed", ""), "claim_id not found in any queued case"),
        (("", "c3", "", "confirmed", ""), "claim_id was queued as both medical and pharmacy: give claim_source"),
        (("", "c1", "pharmacy", "confirmed", ""), "claim_id not found in any queued case"),
        ((c1, "", "", "partial", "$1,200.00"), None),  # at most what the claim paid, above its amount at risk
        (("", "c3", "pharmacy", "confirmed", "80"), None),
    ]
    file = write_feedback(
        tmp_path / "dispositions.csv",
        [
            {"case_id": case, "claim_id": claim, "claim_source": source, "outcome": outcome,
             "recovered_amount": amount, "outcome_date": "2026-02-01", "note": ""}
            for (case, claim, source, outcome, amount), _ in rows
        ],
    )
    result = ingest_feedback(settings, file, today=dt.date(2026, 3, 1))

    reasons = {r["source_row"]: r["reason"] for r in result["rejections"]}
    assert reasons == {i: reason for i, (_, reason) in enumerate(rows, start=2) if reason is not None}
    assert result["accepted"] + result["rejected"] == result["rows"] == len(rows)  # every row accounted for
    stored = pd.read_parquet(result["accepted_path"])
    assert stored["source_row"].tolist() == [10, 11]
    assert stored["recovered_amount"].tolist() == [1200.0, 80.0]
    assert stored["case_id"].tolist() == [c1, cases.case_id("pharmacy", "c3")]
    kept = pd.read_csv(result["rejected_path"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert kept["source_row"].astype(int).tolist() == sorted(reasons) and kept["reason"].tolist() == list(reasons.values())


def test_feedback_without_a_recorded_paid_amount_accepts_a_recovery(settings, tmp_path):
    """History written before the paid amount was kept with a case: no cap to check against."""
    root = cases.history_dir(settings)
    _record(root, dt.date(2026, 1, 1), [("c1", "medical")])  # no amount_paid recorded
    (root / "queued" / "run_date=2026-01-01.parquet").write_bytes(
        pd.read_parquet(root / "queued" / "run_date=2026-01-01.parquet").drop(columns="amount_paid").to_parquet(index=False)
    )
    file = write_feedback(tmp_path / "d.csv", [{"claim_id": "c1", "outcome": "confirmed", "recovered_amount": "900", "outcome_date": "2026-02-01"}])
    assert ingest_feedback(settings, file, today=dt.date(2026, 3, 1))["accepted"] == 1


def test_rejected_feedback_rows_cannot_start_a_formula(settings, tmp_path):
    root = cases.history_dir(settings)
    _record(root, dt.date(2026, 1, 1), [("c1", "medical")])
    file = write_feedback(
        tmp_path / "d.csv",
        [{"case_id": '=HYPERLINK("http://x","click")', "outcome": "confirmed", "recovered_amount": "-5",
          "outcome_date": "2026-02-01", "note": "@SUM(A1:A9)"}],
    )
    result = ingest_feedback(settings, file, today=dt.date(2026, 3, 1))
    kept = pd.read_csv(result["rejected_path"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert kept.loc[0, "case_id"] == """'=HYPERLINK("http://x","click")"""
    assert kept.loc[0, "note"] == "'@SUM(A1:A9)"
    assert kept.loc[0, "recovered_amount"] == "-5"  # a number stays a number


def test_feedback_file_errors_are_one_line(settings, tmp_path):
    with pytest.raises(InputError, match="not found"):
        ingest_feedback(settings, tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        ingest_feedback(settings, tmp_path / "empty.csv")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="needs columns"):
        ingest_feedback(settings, tmp_path / "cols.csv")
