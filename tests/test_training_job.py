"""``claimsentry train`` end to end on generator output: gate -> features -> train -> MLflow -> champion."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    gen = pytest.importorskip("claimsentry.generate")
    pytest.importorskip("claimsentry.jobs.validate")
    out = tmp_path_factory.mktemp("gen") / "input"
    gen.generate(str(out), members=300, seed=1)
    return out


@pytest.mark.slow
def test_train_from_input_registers_a_champion_and_logs_the_report_contract(spark, settings, generated):
    from mlflow import MlflowClient

    from claimsentry.jobs.train import train_from_input
    from claimsentry.models.registry import load_champion

    result = train_from_input(spark, str(generated), settings, as_of=dt.date(2026, 1, 1))
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

    # a second run on the same data is compared with the champion on the same held-out rows
    again = train_from_input(spark, str(generated), settings, as_of=dt.date(2026, 1, 1))
    p = again["promotion"]
    assert again["model_version"] == "claimsentry-fraud/2"
    assert p["champion_metric"] is not None and p["decision"] in ("promoted", "kept_champion")
    if p["challenger_metric"] < p["champion_metric"] + p["margin"]:
        assert p["decision"] == "kept_champion" and load_champion(settings).version == "claimsentry-fraud/1"
