"""The actuary report: PSI (given -> expect), plots (valid PNG), and write_report end to end against a
real MLflow sqlite store holding a registered xgboost champion and the training run's artifacts."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest

from claimsentry import report_plots as P
from claimsentry.drift import bin_shares, psi, psi_band, psi_table, quantile_cuts
from claimsentry.errors import ModelNotFound

FEATURES = ["paid_to_peer_median", "provider_claim_count", "los_days"]


# ---------------------------------------------------------------------------------------------
# drift.py
# ---------------------------------------------------------------------------------------------
def test_psi_identical_distribution_is_zero():
    values = pd.Series(np.arange(1000, dtype=float))
    assert psi(values, values.copy()) == pytest.approx(0.0, abs=1e-12)


def test_psi_same_distribution_different_sample_is_stable():
    rng = np.random.default_rng(1)
    ref, cur = pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(size=5000))
    value = psi(ref, cur)
    assert value < 0.02
    assert psi_band(value) == "stable"


def test_psi_shifted_distribution_is_significant():
    rng = np.random.default_rng(2)
    ref, cur = pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(loc=1.0, size=5000))
    value = psi(ref, cur)
    assert value > 0.25
    assert psi_band(value) == "significant"


def test_psi_hand_computed_two_bins():
    # reference 0,0,1,1 -> median cut at 0.5 -> shares (0.5, 0.5, null 0); current 0,1,1,1 -> (0.25, 0.75, 0)
    ref = pd.Series([0.0, 0.0, 1.0, 1.0])
    cur = pd.Series([0.0, 1.0, 1.0, 1.0])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(ref, cur, n_bins=2) == pytest.approx(expected, rel=1e-9)


def test_nulls_have_their_own_bin():
    ref = pd.Series([1.0, 2.0, 3.0, 4.0, None])
    cuts = quantile_cuts(ref, n_bins=2)
    assert cuts.tolist() == [2.5]
    assert bin_shares(ref, cuts).tolist() == pytest.approx([0.4, 0.4, 0.2])
    # Same values, but half the current rows null: only the null bin moved.
    cur = pd.Series([1.0, 2.0, 3.0, 4.0, None, None, None, None, None, None])
    assert bin_shares(cur, cuts).tolist() == pytest.approx([0.2, 0.2, 0.6])
    expected = 2 * (0.2 - 0.4) * np.log(0.2 / 0.4) + (0.6 - 0.2) * np.log(0.6 / 0.2)
    assert psi(ref, cur, n_bins=2) == pytest.approx(expected, rel=1e-9)


def test_psi_all_null_current_is_significant_and_empty_is_nan():
    ref = pd.Series(np.arange(100, dtype=float))
    assert psi(ref, pd.Series([np.nan] * 50)) > 0.25
    assert np.isnan(psi(ref, pd.Series([], dtype=float)))
    assert psi_band(float("nan")) == "n/a"


def test_psi_bands_at_edges():
    assert [psi_band(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501)] == [
        "stable", "stable", "moderate", "moderate", "significant"]


def test_psi_table_orders_by_psi_and_skips_absent_columns():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    cur = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(loc=2.0, size=2000)})
    table = psi_table(ref, cur, ["a", "b", "not_there"])
    assert table["feature"].tolist() == ["b", "a"]
    assert table["band"].tolist() == ["significant", "stable"]
    assert table.loc[0, "current_median"] == pytest.approx(2.0, abs=0.1)


# ---------------------------------------------------------------------------------------------
# report_plots.py
# ---------------------------------------------------------------------------------------------
def _is_png(data: bytes) -> bool:
    return data.startswith(P.PNG_SIGNATURE) and data.rstrip().endswith(b"IEND\xaeB`\x82") and len(data) > 2000


def test_gains_and_reliability_tables_given_expect():
    y = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    s = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    gains = P.gains_table(y, s, n_bins=5)
    assert gains["positives"].tolist() == [2, 1, 0, 0, 0]
    assert gains["lift"].tolist() == pytest.approx([1.0 / 0.3, 0.5 / 0.3, 0, 0, 0])
    assert gains["cum_share_positives"].tolist() == pytest.approx([2 / 3, 1, 1, 1, 1])
    rel = P.reliability_table([0, 1, 1, 0], [0.05, 0.15, 0.95, 0.91], n_bins=10)
    assert rel["claims"].tolist() == [1, 1, 2]
    assert rel["observed_rate"].tolist() == [0.0, 1.0, 0.5]
    assert P.brier_score([0, 1], [0.0, 0.5]) == pytest.approx(0.125)


def test_plots_are_valid_png():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=200)
    s = np.clip(y * 0.4 + rng.uniform(size=200) * 0.6, 0, 1)
    shap = pd.DataFrame({f: rng.normal(size=100) for f in FEATURES})
    values = pd.DataFrame({f: rng.normal(size=100) for f in FEATURES})
    values.loc[:10, "los_days"] = np.nan
    comp = pd.DataFrame({"claim_type": ["institutional", "pharmacy"], "claims": [3, 2], "amount_at_risk": [900.0, 50.0]})
    pngs = [
        P.roc_pr_png({"labels": (y, s)}),
        P.lift_gains_png(y, s),
        P.calibration_png(y, s),
        P.importance_png({"a": 3.0, "b": 1.0}),
        P.shap_summary_png(shap, values),
        P.score_distribution_png(s, s[::-1]),
        P.composition_png(comp, label_col="claim_type", count_col="claims", amount_col="amount_at_risk", title="t"),
        P.roc_pr_png({"only one class": ([0, 0, 0], [0.1, 0.2, 0.3])}),  # placeholder, still an image
    ]
    assert all(_is_png(p) for p in pngs)
    assert P.data_uri(pngs[0]).startswith("data:image/png;base64,iVBORw0KGgo")


# ---------------------------------------------------------------------------------------------
# write_report end to end: a real MLflow store, a registered xgboost champion, a tiny run dir
# ---------------------------------------------------------------------------------------------
def _test_predictions(n: int = 300, seed: int = 5) -> pd.DataFrame:
    """One row per held-out test claim. Every 3rd claim is audited (label known); truth from the
    'generator'; scores separate truth well but not perfectly."""
    rng = np.random.default_rng(seed)
    improper = rng.uniform(size=n) < 0.2
    score = np.clip(np.where(improper, 0.55, 0.15) + rng.normal(scale=0.15, size=n), 0.001, 0.999)
    label = np.where(np.arange(n) % 3 == 0, improper.astype(float), np.nan)
    schemes = np.where(improper, np.where(np.arange(n) % 2 == 0, "drg_upcoding", "early_refill"), None)
    return pd.DataFrame({
        "claim_id": [f"C{i:04d}" for i in range(n)],
        "claim_source": np.where(np.arange(n) % 4 == 0, "pharmacy", "medical"),
        "claim_type": np.where(np.arange(n) % 4 == 0, "pharmacy", "institutional"),
        "claim_date": pd.date_range("2025-01-01", periods=n, freq="D").date,
        "label": label,
        "truth_scheme": schemes,
        "score": score,
        "model_score": score,
        "anomaly_score": rng.uniform(size=n),
        "amount_paid": rng.uniform(100, 5000, size=n).round(2),
        "billing_npi": [f"{1000000000 + i % 17}" for i in range(n)],
        "never_labelled": improper & (np.arange(n) % 5 == 0),  # perpetrators nobody labelled
        "lookalike": np.where(~improper & (np.arange(n) % 7 == 0), "high_acuity_em", None),
    })


def _features_frame(n: int, seed: int, *, los_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    los = rng.normal(4.0, 1.5, size=n) + los_shift
    los[:: 10] = np.nan  # not computable for pharmacy claims
    return pd.DataFrame({
        "paid_to_peer_median": rng.lognormal(0.0, 0.4, size=n),
        "provider_claim_count": rng.poisson(40, size=n).astype(float),
        "los_days": los,
        "score": rng.beta(1, 8, size=n),
    })


@pytest.fixture()
def champion(settings, tmp_path, monkeypatch):
    """A training run with every contract artifact, its xgboost model registered as version 1 and
    aliased champion. Returns the logged metrics."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.tracking import MlflowClient
    from mlflow.tracking._tracking_service import utils as tracking_utils

    (settings.data_dir / "mlflow").mkdir(parents=True)
    uri = settings.mlflow_tracking_uri
    from mlflow.tracking._model_registry import utils as registry_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)  # restored after the test
    monkeypatch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier training in this session may have pointed it elsewhere
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("claimsentry", artifact_location=settings.mlflow_artifact_location)

    train = _features_frame(200, seed=6)
    y = (train["paid_to_peer_median"] > 1.2).astype(int)
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1)
    model.fit(train[FEATURES], y)

    from claimsentry.models.evaluate import held_out_metrics

    test_pdf = _test_predictions()
    # metrics.json exactly as the training job builds it (models/evaluate.py) plus its extra figures.
    metrics = held_out_metrics(test_pdf, capacity=40, has_truth=True)
    metrics.update({
        "evaluation_sample_fraction": 1.0, "model_kind": "xgboost", "best_iteration": 5,
        "blend": {"winner": "blend", "weight": 0.15},
        "promotion_metric": {"name": "pr_auc", "challenger": metrics["audit_labels"]["pr_auc"], "champion": None},
    })
    art = tmp_path / "artifacts"
    (art / "evaluation").mkdir(parents=True)
    (art / "data").mkdir()
    test_pdf.to_parquet(art / "evaluation" / "test_predictions.parquet", index=False)
    rng = np.random.default_rng(7)
    # shap_sample as the training job writes it: keys, SHAP per feature, the bias term, value__<feature>.
    shap = test_pdf[["claim_id", "claim_source"]].head(80).copy()
    for f in FEATURES:
        shap[f] = rng.normal(scale=0.5, size=80)
    shap["bias"] = -1.5
    for f in FEATURES:
        shap[f"value__{f}"] = train[f].iloc[:80].to_numpy()
    shap.to_parquet(art / "evaluation" / "shap_sample.parquet", index=False)
    train[FEATURES].to_parquet(art / "data" / "training_feature_sample.parquet", index=False)

    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_dict(metrics, "evaluation/metrics.json")
        mlflow.log_dict({"paid_to_peer_median": 12.5, "provider_claim_count": 3.25, "los_days": 7.0},
                        "evaluation/feature_importance.json")
        mlflow.log_dict({"feature_cols": FEATURES,
                         "descriptions": {"los_days": "length of stay in days",
                                          "paid_to_peer_median": "paid over the peer median",
                                          "provider_claim_count": "claims billed by the provider"}}, "features.json")
        mlflow.log_dict({"decision": "promoted", "promote": True, "reason": "no champion registered yet",
                         "metric": "pr_auc", "challenger_metric": metrics["audit_labels"]["pr_auc"],
                         "champion_metric": None, "margin": 0.005, "model_version": "claimsentry-fraud/1"},
                        "promotion.json")
        mlflow.log_artifacts(str(art / "evaluation"), artifact_path="evaluation")
        mlflow.log_artifacts(str(art / "data"), artifact_path="data")
        mlflow.xgboost.log_model(model, name="model", registered_model_name=settings.get("mlflow.model_name"),
                                 pip_requirements=["xgboost"])
    client.set_registered_model_alias(settings.get("mlflow.model_name"), "champion", "1")
    return {"metrics": metrics, "run_id": run.info.run_id}


@pytest.fixture()
def run_dir(tmp_path):
    """A scoring run: 500 scored claims whose los_days moved by +3 days (drift), a 6-claim queue."""
    rd = tmp_path / "output" / "2026-01-01"
    (rd / "scored_claims").mkdir(parents=True)
    scored = _features_frame(500, seed=8, los_shift=3.0)
    scored.insert(0, "claim_id", [f"S{i:04d}" for i in range(500)])
    scored["claim_source"] = "medical"
    scored["claim_type"] = "institutional"
    scored["model_version"] = "claimsentry-fraud/1"
    scored["claim_date"] = pd.date_range("2025-06-01", periods=500, freq="h").date
    scored["amount_paid"] = 100.0
    scored.iloc[:250].to_parquet(rd / "scored_claims" / "part-00000.parquet", index=False)
    scored.iloc[250:].to_parquet(rd / "scored_claims" / "part-00001.parquet", index=False)
    (rd / "scored_claims" / "_SUCCESS").write_text("")
    queue = pd.DataFrame({
        "rank": [1, 2, 3, 4, 5, 6],
        "claim_id": ["S0001", "S0002", "S0003", "S0004", "S0005", "S0006"],
        "claim_source": ["medical"] * 4 + ["pharmacy"] * 2,
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        "amount_at_risk": [1000.0, 2000.0, 500.0, 250.0, 125.0, 125.0],
        "expected_recovery": [900.0, 1600.0, 350.0, 150.0, 62.5, 50.0],
        "reasons": ["r"] * 6,
        "billing_npi": ["1000000001"] * 6,
        "person_id": ["P1"] * 6,
        "claim_type": ["institutional", "institutional", "professional", "professional", "pharmacy", "pharmacy"],
        "schemes": ["drg_upcoding", "drg_upcoding, inflated_los", "", "em_upcoding", "early_refill", None],
    })
    queue.to_parquet(rd / "claim_queue.parquet", index=False)
    pd.DataFrame({
        "rank": [1, 2], "npi": ["1000000001", "1999999999"], "npi_role": ["billing", "prescriber"],
        "score": [0.8, 0.6], "flagged_claims": [4, 2], "total_claims": [10, 5],
        "amount_at_risk": [3750.0, 250.0], "expected_recovery": [3000.0, 112.5], "amount_paid": [5000.0, 900.0],
        "reasons": ["x", "y"],
    }).to_parquet(rd / "provider_queue.parquet", index=False)
    (rd / "run_summary.json").write_text(json.dumps({
        "run_date": "2026-01-01", "scored_claims": {"medical": 500},
        "queues": {"claim_queue": 6, "provider_queue": 2}, "model": {"name": "claimsentry-fraud", "version": "claimsentry-fraud/1"},
    }))
    return rd


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start: html.index("</section>", start)]


def test_write_report_end_to_end(settings, champion, run_dir):
    from claimsentry import cases
    from claimsentry.jobs.cases import record
    from claimsentry.jobs.report import write_report

    # two worked cases of version 1's queue: one recovered in two installments, one cleared
    root = cases.history_dir(settings)
    cases.record_queue(root, dt.date(2025, 6, 1), pd.DataFrame([
        {"case_id": cases.case_id("medical", c), "claim_id": c, "claim_source": "medical", "rank": i + 1, "score": 0.9,
         "amount_paid": 900.0, "billing_npi": "1234567893", "schemes": schemes, "model_version": "1"}
        for i, (c, schemes) in enumerate([("m1", "drg_upcoding"), ("m2", None)])
    ]))
    m1, m2 = cases.case_id("medical", "m1"), cases.case_id("medical", "m2")
    record(settings, pd.DataFrame([
        {"case_id": m1, "state": "findings_issued", "event_date": "2025-07-01", "outcome": "confirmed", "amount": "700"},
        {"case_id": m1, "state": "recovered", "event_date": "2025-08-01", "amount": "400"},
        {"case_id": m1, "state": "recovered", "event_date": "2025-09-01", "amount": "300"},
        {"case_id": m2, "state": "findings_issued", "event_date": "2025-07-01", "outcome": "cleared"},
    ]), key="t", source="test", actor="auditor")

    out = write_report(settings, run_dir / "model_report.html", run_dir=run_dir)
    assert out == run_dir / "model_report.html"
    html = out.read_text(encoding="utf-8")
    for sid in ("summary", "metrics", "curves", "lift", "calibration", "explain", "drift", "queue", "dollars"):
        assert "Not available" not in _section(html, sid), sid
    # Every plot is a real embedded PNG: ROC/PR, lift, calibration, importance, SHAP, score, 2 queue charts.
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 8
    import base64
    assert all(base64.b64decode(i).startswith(P.PNG_SIGNATURE) for i in images)

    summary = _section(html, "summary")
    assert "claimsentry-fraud version 1 (champion)" in summary
    assert champion["run_id"] in summary
    assert "2025-01-01 to 2025-10-27" in summary  # test claim dates (300 days)
    assert "2025-06-01 to 2025-06-21" in summary  # scored claim dates, from Parquet statistics
    assert "decision: promoted; reason: no champion registered yet; metric: pr_auc" in summary
    assert 'class="warn"' not in summary  # the run was scored by this very version
    metrics = _section(html, "metrics")
    audit, truth = champion["metrics"]["audit_labels"], champion["metrics"]["truth"]
    for shown in (f"{audit['roc_auc']:.4f}", f"{truth['roc_auc']:.4f}", f"{audit['pr_auc']:.4f}",
                  f"{truth['precision_at_capacity']:.1%}", f"{truth['lift_at_1pct']:.2f}×",
                  f"${truth['dollars_at_risk_in_queue']:,.0f}", "blend.winner", "promotion_metric.champion"):
        assert shown in metrics, shown
    for scheme, recall in champion["metrics"]["per_scheme_recall"].items():
        assert re.search(rf"<td>{scheme}</td><td class=\"num\">{recall:.1%}</td>", metrics), scheme
    unknown = champion["metrics"]["unknown_perpetrators"]
    assert "Perpetrators nobody has labelled" in metrics
    for scheme, recall in unknown["recall_top5_never_labelled_by_scheme"].items():
        n = unknown["never_labelled_claims_by_scheme"][scheme]
        assert re.search(rf"<td>{scheme}</td><td class=\"num\">{recall:.1%}</td><td class=\"num\">{n:,}</td>", metrics), scheme
    assert f"<td>legitimate look-alikes in the top 5%</td><td class=\"num\">{unknown['lookalike_share_top5']:.1%}</td>" in metrics
    assert "unaudited claims are left out" in metrics
    assert "Synthetic truth." in metrics
    drift = _section(html, "drift")
    rows = dict(re.findall(r'<tr class="band-(\w+)"><td>(\w+)</td>', drift)[i][::-1] for i in range(3))
    assert rows == {"los_days": "significant", "paid_to_peer_median": "stable", "provider_claim_count": "stable"}
    assert "Score PSI" in drift and "reference: test period scores" in drift
    assert "bias" not in _section(html, "explain")

    queue = _section(html, "queue")
    # institutional: 2 claims, $3,000 at risk; scheme drg_upcoding counts the 2-scheme claim too.
    assert re.search(r"<td>institutional</td><td class=\"num\">2</td><td class=\"num\">\$3,000</td>", queue)
    assert re.search(r"<td>drg_upcoding</td><td class=\"num\">2</td><td class=\"num\">\$3,000</td>", queue)
    assert re.search(r"<td>\(no rule hit: model score only\)</td><td class=\"num\">2</td>", queue)
    assert "prescriber" in queue
    dollars = _section(html, "dollars")
    assert "$4,000" in dollars and "$3,112" in dollars
    assert f"${audit['dollars_at_risk_in_queue']:,.0f}" in dollars and f"${truth['dollars_at_risk_in_queue']:,.0f}" in dollars
    recovered = _section(html, "recoveries")
    assert "<tr><td>1</td><td class=\"num\">$700</td></tr>" in recovered  # by model version
    assert "<td>1234567893</td><td>drg_upcoding</td><td>1</td><td>1</td><td>1</td><td>$700</td>" in recovered
    assert "<td>1234567893</td><td>(none)</td><td>1</td><td>1</td><td>0</td><td>$0</td>" in recovered


def test_missing_artifacts_say_not_available(settings, champion):
    """Version 2 comes from a run that logged only the model; no run dir given. Every section that
    needs a missing input says "not available"; the report is still written."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.tracking import MlflowClient

    from claimsentry.jobs.report import write_report

    frame = _features_frame(50, seed=9)
    model = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(frame[FEATURES], (frame["score"] > 0.1).astype(int))
    exp_id = MlflowClient(settings.mlflow_tracking_uri).get_experiment_by_name("claimsentry").experiment_id
    with mlflow.start_run(experiment_id=exp_id):
        mlflow.xgboost.log_model(model, name="model", registered_model_name=settings.get("mlflow.model_name"),
                                 pip_requirements=["xgboost"])

    out = write_report(settings, None, model_version=2)
    assert out == settings.data_dir / "reports" / "model_report_2.html"
    html = out.read_text(encoding="utf-8")
    assert "claimsentry-fraud version 2" in _section(html, "summary")
    assert "evaluation/metrics.json, evaluation/test_predictions.parquet" in _section(html, "summary")
    for sid in ("metrics", "curves", "lift", "calibration", "explain", "drift", "queue", "dollars"):
        assert "Not available" in _section(html, sid), sid
    assert "data/training_feature_sample.parquet is missing" in _section(html, "drift")
    assert "data:image/png" not in html

    # The champion without a run dir: its own sections are there, the run's sections are not.
    html = write_report(settings, None).read_text(encoding="utf-8")
    assert "Not available" not in _section(html, "metrics")
    assert "Not available: no scored run given" in _section(html, "drift")
    assert "Not available: no scoring run given" in _section(html, "queue")


def test_flat_metrics_are_read_as_audit_labels():
    """A flat metrics.json (no audit_labels / truth nesting) fills the audit-label column only."""
    from claimsentry.jobs.report import metrics_section

    section = metrics_section({"metrics": {"roc_auc": 0.8765, "precision_at_capacity": 0.5, "capacity": 40,
                                           "per_scheme_recall": {}}}, default_capacity=200)
    assert section["has_truth"] is False and section["capacity"] == 40
    assert section["rows"][0][:3] == ["roc_auc", "0.8765", "–"]
    assert section["rows"][1][:2] == ["precision_at_capacity", "50.0%"]
    assert section["general_rows"][0][:2] == ["capacity", "40"]


def test_metrics_recomputed_when_metrics_json_is_missing():
    from claimsentry.jobs.report import metrics_section
    from claimsentry.models.evaluate import held_out_metrics

    test = _test_predictions()
    section = metrics_section({"test_predictions": test}, default_capacity=40)
    expected = held_out_metrics(test, capacity=40, has_truth=True)
    assert "recomputed" in section["note"] and section["has_truth"] is True
    assert section["rows"][0][:3] == ["roc_auc", f"{expected['audit_labels']['roc_auc']:.4f}",
                                      f"{expected['truth']['roc_auc']:.4f}"]


def test_summary_warns_when_run_was_scored_by_another_version(tmp_path):
    from claimsentry.jobs.report import ModelRef, RunData, summary_section

    model = ModelRef(name="claimsentry-fraud", version="3", run_id="abc", aliases=["champion"])
    test = pd.DataFrame({"label": [1.0, 0.0, None, None], "score": [0.9, 0.1, 0.5, 0.2]})
    other = RunData(run_dir=tmp_path, summary={"run_date": "2026-01-01", "model": {"version": "claimsentry-fraud/2"}})
    same = RunData(run_dir=tmp_path, summary={"run_date": "2026-01-01", "model": {"version": "3"}})
    section = summary_section(model, {"test_predictions": test}, other)
    assert section["warnings"] == [
        "The run was scored with model version claimsentry-fraud/2, but this report describes version 3; "
        "pass --model-version to report on the model that scored the run."
    ]
    rows = dict(section["rows"])
    assert (rows["Test claims"], rows["… of which labelled (audited)"], rows["… of which confirmed improper"]) == ("4", "2", "1")
    assert summary_section(model, {}, same)["warnings"] == []


def test_sample_parquet_is_bounded(tmp_path):
    """Reads only the asked columns and at most max_rows, with the full row count from metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from claimsentry.jobs.report import date_range_from_metadata, sample_parquet

    folder = tmp_path / "scored_claims"
    folder.mkdir()
    for part in range(3):
        n = 4000
        table = pa.table({
            "score": np.linspace(0, 1, n),
            "los_days": np.arange(n, dtype=float),
            "unused": ["x"] * n,
            "claim_date": pd.date_range(f"2025-0{part + 1}-01", periods=n, freq="min").date,
        })
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=1000)
    sample, total = sample_parquet(folder, ["score", "los_days", "not_there", "claim_date"], max_rows=2500, seed=1)
    assert total == 12000
    assert len(sample) == 2500
    assert list(sample.columns) == ["score", "los_days", "claim_date"]
    assert date_range_from_metadata(folder, "claim_date") == ("2025-01-01", "2025-03-03")


def test_no_model_is_a_one_line_error(settings):
    from claimsentry.jobs.report import write_report

    with pytest.raises(ModelNotFound, match="run `claimsentry train` first"):
        write_report(settings, None)
    assert not (settings.data_dir / "mlflow" / "mlflow.db").exists()  # no empty store created


def test_cli_report(settings, champion, run_dir, capsys):
    from claimsentry.cli import main

    assert main(["--data-dir", str(settings.data_dir), "report", "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "model_report.html").is_file()
    assert f"model report -> {run_dir / 'model_report.html'}" in capsys.readouterr().out

    code = main(["--data-dir", str(settings.data_dir), "report", "--model-version", "99"])
    err = capsys.readouterr().err.strip()
    assert code == ModelNotFound.exit_code
    assert err.count("\n") == 0 and "has no version 99" in err
