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

    c = MlflowClient(settings.mlflow_tracking_uri)
    top = {a.path for a in c.list_artifacts(result["run_id"])}
    assert {"features.json", "promotion.json", "evaluation", "data", "bundle"} <= top
    preds = pd.read_parquet(c.download_artifacts(result["run_id"], "evaluation/test_predictions.parquet"))
    assert len(preds) == m["n_test"] and preds["score"].between(0, 1).all()
    feats = json.loads(open(c.download_artifacts(result["run_id"], "features.json")).read())
    bundle = load_champion(settings)
    assert bundle.version == result["model_version"] and bundle.feature_cols == feats["feature_cols"]
