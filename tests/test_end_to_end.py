"""The spine end to end: generated claims -> gate -> features -> champion -> scores -> queues."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from claimsentry.jobs.score import run_score
from conftest import claimsentry_cli

RUN_DATE = dt.date(2026, 1, 1)
CLAIM_QUEUE_COLUMNS = ["rank", "claim_id", "claim_source", "score", "amount_at_risk", "expected_recovery", "reasons", "billing_npi", "person_id"]
PROVIDER_QUEUE_COLUMNS = ["rank", "npi", "score", "flagged_claims", "amount_at_risk", "reasons"]


def test_score_writes_every_contract_output(spark, generated_claims, trained_settings, tmp_path):
    """One scored run date. (Re-running a date and the case history across dates: tests/test_dags.py.)"""
    run_settings = trained_settings.with_overrides({"queue.history_dir": str(tmp_path / "cases")})
    summary = run_score(spark, str(generated_claims), str(tmp_path / "out"), RUN_DATE, run_settings)
    run_dir = tmp_path / "out" / RUN_DATE.isoformat()

    for name in ("claim_queue.parquet", "claim_queue.csv", "claim_queue.html", "provider_queue.parquet", "provider_queue.csv", "run_summary.json"):
        assert (run_dir / name).is_file(), name
    assert not list(tmp_path.joinpath("out").glob(".*staging*")), "staging folder left behind"

    queue = pd.read_parquet(run_dir / "claim_queue.parquet")
    assert list(queue.columns[: len(CLAIM_QUEUE_COLUMNS)]) == CLAIM_QUEUE_COLUMNS
    assert len(queue) > 0 and queue["rank"].tolist() == list(range(1, len(queue) + 1))
    assert queue["expected_recovery"].is_monotonic_decreasing
    assert queue["score"].between(0, 1).all()
    assert (queue["reasons"].str.len() > 0).all()
    assert queue["case_id"].str.startswith("CS-").all() and queue["model_version"].notna().all()
    csv = pd.read_csv(run_dir / "claim_queue.csv", dtype=str, encoding="utf-8-sig")
    assert csv["claim_id"].tolist() == queue["claim_id"].tolist()
    assert (run_dir / "claim_queue.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets

    scored = spark.read.parquet(str(run_dir / "scored_claims"))
    assert {"claim_id", "claim_source", "score", "model_version"} <= set(scored.columns)
    assert scored.count() == sum(summary["scored_claims"].values())
    feature_names = set(json.loads((run_dir / "run_summary.json").read_text())["features"].get("names", []))
    for reasons in queue["reasons"]:
        assert not any(name in reasons for name in feature_names if "_" in name), reasons

    providers = pd.read_parquet(run_dir / "provider_queue.parquet")
    assert list(providers.columns[: len(PROVIDER_QUEUE_COLUMNS)]) == PROVIDER_QUEUE_COLUMNS

    written = json.loads((run_dir / "run_summary.json").read_text())
    for table, counts in written["tables"].items():
        assert counts["read"] == counts["accepted"] + counts["quarantined"], table
    assert written["queues"]["claim_queue"] == len(queue)
    assert written["model"]["version"] == queue["model_version"].iloc[0]
    assert set(written["timings_seconds"]) >= {"validate", "features", "score", "queues"}


def test_cli_bad_input_is_one_line_and_non_zero(tmp_path, generated_claims):
    env = {"CLAIMSENTRY_DATA_DIR": str(tmp_path / "data")}
    missing = claimsentry_cli("score", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--run-date", "2026-01-01", env=env)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr

    bad_date = claimsentry_cli("score", "--input", str(generated_claims), "--output", str(tmp_path / "o"), "--run-date", "01/02/2026", env=env)
    assert bad_date.returncode != 0 and "YYYY-MM-DD" in bad_date.stderr and len(bad_date.stderr.strip().splitlines()) == 1

    no_model = claimsentry_cli("score", "--input", str(generated_claims), "--output", str(tmp_path / "o"), "--run-date", "2026-01-01", env=env)
    assert no_model.returncode != 0 and "champion" in no_model.stderr and len(no_model.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "2026-01-01").exists()
