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
    assert (result["rows"], result["accepted"], result["rejected"], result["closed_cases"]) == (5, 3, 2, 2)
    reasons = {r["source_row"]: r["reason"] for r in result["rejections"]}
    assert reasons[5] == "unknown case_id 'CS-NOPE'"
    assert "outcome 'fraud!'" in reasons[6] and "not YYYY-MM-DD" in reasons[6] and "negative" in reasons[6]
    assert "give claim_source" in reasons[6]

    status = cases.case_status(root).set_index("claim_id")["status"].to_dict()
    assert status == {"c1": "confirmed", "c2": "cleared"}
    labels = cases.feedback_labels(root).set_index("claim_id")
    assert labels.loc["c1", "label"] == 1 and labels.loc["c2", "label"] == 0 and labels.loc["c9", "label"] == 1
    assert labels.loc["c1", "recovered_amount"] == pytest.approx(1200.50)

    again = ingest_feedback(settings, file, today=dt.date(2026, 3, 1))  # idempotent re-import
    assert again["accepted"] == 3 and len(cases.feedback_labels(root)) == 3


def test_feedback_file_errors_are_one_line(settings, tmp_path):
    with pytest.raises(InputError, match="not found"):
        ingest_feedback(settings, tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        ingest_feedback(settings, tmp_path / "empty.csv")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="needs columns"):
        ingest_feedback(settings, tmp_path / "cols.csv")
