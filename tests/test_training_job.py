"""``claimsentry train`` end to end on generator output: gate -> features -> train -> MLflow -> champion."""

from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.mark.slow
def test_train_from_input_registers_a_champion_and_logs_the_report_contract(trained_run):
    """The session's training run (``trained_run``: the model_training DAG's train task, i.e.
    ``train_from_input`` on generated claims into a fresh store; its summary is what the job
    returned). A second run meeting a champion: tests/test_models.py (``train_from_features``)."""
    from mlflow import MlflowClient

    from claimsentry.jobs import train
    from claimsentry.models.registry import load_champion

    result, settings = trained_run["result"], trained_run["settings"]
    assert set(result) >= {"model_version", "run_id", "decision", "metrics"}
    assert result["model_version"] == "claimsentry-fraud/1" and result["decision"] == "promoted"
    m = result["metrics"]
    for key in ("roc_auc", "pr_auc", "precision_at_capacity", "recall_at_capacity", "lift_at_1pct", "lift_at_2pct",
                "lift_at_5pct", "dollars_at_risk_captured_at_capacity", "per_scheme_recall", "capacity", "n_test",
                "n_pos_test", "blend"):
        assert key in m, key
    assert m["ground_truth"] == "generator_truth" and m["per_scheme_recall"]
    assert m["n_test"] > 0 and m["roc_auc"] > 0.5
    # issue 34: the split says where it went, validation held out providers, and the figures for
    # perpetrators nobody labelled are there beside the rest
    assert m["split"]["dates_from"] == "audited claims" and m["split"]["validation"] == "held-out providers before test_start"
    assert m["periods"]["test"]["audited"] > 0
    u = m["unknown_perpetrators"]
    assert u["n_improper_never_labelled"] > 0 and u["recall_top5_never_labelled_by_scheme"]
    assert set(u["recall_top5_never_labelled_by_scheme"]) <= set(m["per_scheme_recall"])
    assert "recall in the top 5%" in train.training_summary(result)
    assert json.loads(open(MlflowClient(settings.mlflow_tracking_uri).download_artifacts(
        result["run_id"], "promotion.json")).read())["challenger_unknown_perpetrators"]["pr_auc"] == pytest.approx(u["pr_auc"])
    run = MlflowClient(settings.mlflow_tracking_uri).get_run(result["run_id"])
    assert "unknown_perpetrators.min_recall_top5_never_labelled" in run.data.metrics

    c = MlflowClient(settings.mlflow_tracking_uri)
    top = {a.path for a in c.list_artifacts(result["run_id"])}
    assert {"features.json", "promotion.json", "evaluation", "data", "bundle"} <= top
    preds = pd.read_parquet(c.download_artifacts(result["run_id"], "evaluation/test_predictions.parquet"))
    assert len(preds) == m["n_test"] and preds["score"].between(0, 1).all()
    feats = json.loads(open(c.download_artifacts(result["run_id"], "features.json")).read())
    bundle = load_champion(settings)
    assert bundle.version == result["model_version"] and bundle.feature_cols == feats["feature_cols"]


@pytest.mark.slow
def test_training_reads_auditor_dispositions_as_labels(spark, generated_claims, tmp_path, capsys):
    """Dispositions imported with the real feedback job are labels of the next ``claimsentry train``
    (run as the CLI does): the latest outcome per case wins and replaces the input's label, and
    the output says how many labels came from dispositions. The test period's labels (logged with
    the run) show them used: a claim nobody had audited becomes improper, input labels flip, and a
    finding overturned on appeal (``cases event``) is a clean label."""
    import argparse
    import datetime as dt

    from mlflow import MlflowClient

    from claimsentry import cases
    from claimsentry.config import load_settings
    from claimsentry.jobs import train
    from claimsentry.jobs.feedback import ingest_feedback

    test_start = dt.date(2025, 7, 1)  # a fixed split, so the picked claims are known to be test-period rows
    settings = load_settings(environ={}, overrides={
        "data_dir": str(tmp_path / "data"), "model.split.valid_start": "2025-03-01", "model.split.test_start": test_start.isoformat(),
    })
    lines = pd.read_parquet(generated_claims / "medical_claim")
    lines["claim_date"] = lines["admission_date"].fillna(lines["claim_start_date"])
    claims = lines.groupby("claim_id").agg(claim_date=("claim_date", "min"), amount_paid=("paid_amount", "sum"))
    labels = pd.read_csv(generated_claims / "labels.csv", dtype={"claim_id": str})
    input_label = labels[labels["claim_source"] == "medical"].set_index("claim_id")["label"]
    late = claims[claims["claim_date"] >= test_start + dt.timedelta(days=14)].join(input_label, how="left").sort_index()
    unaudited, later_one = late[late["label"].isna()].index[:2]
    was_improper = late[late["label"] == 1].index[0]
    was_clean = late[late["label"] == 0].index[0]
    picked = [unaudited, was_improper, was_clean, later_one]

    history = cases.history_dir(settings)
    queue = pd.DataFrame(  # as the score run that queued them recorded them
        {"case_id": [cases.case_id("medical", c) for c in picked], "claim_id": picked, "claim_source": "medical",
         "rank": range(1, 5), "score": 0.9, "amount_at_risk": claims.loc[picked, "amount_paid"].to_numpy(),
         "amount_paid": claims.loc[picked, "amount_paid"].to_numpy()}
    )
    cases.record_queue(history, dt.date(2026, 1, 1), queue)
    file = tmp_path / "dispositions.csv"
    pd.DataFrame(
        [
            {"claim_id": unaudited, "outcome": "cleared", "recovered_amount": "", "outcome_date": "2026-01-20"},
            {"claim_id": unaudited, "outcome": "confirmed", "recovered_amount": "10", "outcome_date": "2026-02-10"},
            {"claim_id": was_improper, "outcome": "cleared", "recovered_amount": "", "outcome_date": "2026-02-01"},
            {"claim_id": was_clean, "outcome": "partial", "recovered_amount": "", "outcome_date": "2026-02-01"},
            {"claim_id": later_one, "outcome": "confirmed", "recovered_amount": "", "outcome_date": "2026-04-01"},
        ]
    ).to_csv(file, index=False)
    imported = ingest_feedback(settings, file, today=dt.date(2026, 5, 1))
    assert (imported["accepted"], imported["rejected"]) == (5, 0)
    # the partial finding on was_clean is appealed and overturned: the claim was proper after all
    from claimsentry.jobs.cases import record

    walked = record(settings, pd.DataFrame([
        {"case_id": cases.case_id("medical", was_clean), "state": "appealed", "event_date": "2026-02-05"},
        {"case_id": cases.case_id("medical", was_clean), "state": "appeal_overturned", "event_date": "2026-02-20"},
    ]), key="appeal", source="test", today=dt.date(2026, 5, 1), actor="auditor")
    assert walked["accepted"] == 2

    # as of 2026-03-01: the outcome dated 2026-04-01 did not exist yet (a re-run trains on the same view)
    args = argparse.Namespace(input=str(generated_claims), labels=None, provider_labels=None, as_of="2026-03-01")
    assert train.run_from_cli(args, settings) == 0
    out = capsys.readouterr().out
    assert "; 3 labels from audit cases (findings and dispositions); " in out
    run_id = out.split("(run ", 1)[1].split(")", 1)[0]

    client = MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_run(run_id).data.params["labels_from_dispositions"] == "3"
    preds = pd.read_parquet(client.download_artifacts(run_id, "evaluation/test_predictions.parquet"))
    used = preds[preds["claim_source"] == "medical"].set_index("claim_id")["label"]
    assert used[unaudited] == 1  # unaudited in the input; the latest of its two outcomes: confirmed
    assert used[was_improper] == 0  # the auditor cleared what the input called improper
    assert used[was_clean] == 0  # partial finding, overturned on appeal: proper (the input said clean too)
    assert pd.isna(used[later_one])  # its outcome came after the as-of date
    others = input_label[input_label.index.isin(used.index) & ~input_label.index.isin(picked)]
    assert len(others) > 0 and (used[others.index] == others).all()  # every other input label kept
