"""Models: PU time split, XGBoost + calibration, anomaly score, registry/champion, Spark scoring."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

FEATURES = ["f_signal", "f_noise"]


def synthetic_claims(n: int = 600, seed: int = 0, signal: float = 3.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Claim-grain features with a planted signal (fraud odds rise with f_signal) over 2024-2025;
    half the claims audited (labels), the rest unaudited."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 730, n)
    f_signal = rng.normal(0, 1, n)
    fraud = rng.random(n) < 1 / (1 + np.exp(-(-2.5 + signal * f_signal)))
    pdf = pd.DataFrame(
        {
            "claim_id": [f"C{i:05d}" for i in range(n)],
            "claim_source": np.where(rng.random(n) < 0.7, "medical", "pharmacy"),
            "claim_date": [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in days],
            "billing_npi": [f"{1000000000 + int(k)}" for k in rng.integers(0, 30, n)],
            "amount_paid": np.round(rng.gamma(2.0, 500.0, n), 2),
            "peer_group": [f"drg:{int(k):03d}" for k in rng.integers(0, 3, n)],
            "f_signal": f_signal,
            "f_noise": rng.normal(0, 1, n),
        }
    )
    pdf["claim_type"] = np.where(pdf["claim_source"] == "pharmacy", "pharmacy", "institutional")
    pdf["fraud"] = fraud.astype(int)
    audited = rng.random(n) < 0.5
    labels = pdf.loc[audited, ["claim_id", "claim_source"]].assign(label=pdf.loc[audited, "fraud"].astype("int32"))
    return pdf, labels.reset_index(drop=True)


def _params(**over):
    from claimsentry.models.dataset import model_params

    p = model_params(None)
    for k, v in over.items():
        p[k] = {**p.get(k, {}), **v} if isinstance(v, dict) else v
    return p


# --- dataset: time split + PU -------------------------------------------------------------------


def test_time_split_has_no_overlap_and_unaudited_never_becomes_clean(spark):
    from pyspark.sql import functions as F

    from claimsentry.models.dataset import build_training_data

    pdf, labels = synthetic_claims(300, seed=1)
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    prov = spark.createDataFrame(
        pd.DataFrame({"npi": ["1000000001", "1000000002"], "label": [1, 0], "label_date": [None, None]}),
        "npi string, label int, label_date date",
    )
    params = _params(split={"valid_start": "2025-01-01", "test_start": "2025-07-01", "provider_holdout_fraction": 0},
                     pu={"unlabelled_sample_fraction": 0.5, "unlabelled_weight": 0.2})
    td = build_training_data(features, spark.createDataFrame(labels), prov, params)
    out = td.frame.toPandas()
    assert len(out) == len(pdf) and out.set_index(["claim_id", "claim_source"]).index.is_unique
    spans = out.groupby("period")["claim_date"].agg(["min", "max"])
    assert spans.loc["train", "max"] < dt.date(2025, 1, 1) <= spans.loc["valid", "min"]
    assert spans.loc["valid", "max"] < dt.date(2025, 7, 1) <= spans.loc["test", "min"]
    # labels only where given
    merged = out.merge(labels, on=["claim_id", "claim_source"], how="left", suffixes=("", "_given"))
    assert (merged["label"].isna() == merged["label_given"].isna()).all()
    audited = merged[merged["label_given"].notna()]
    assert (audited["target"] == audited["label_given"]).all() and (audited["sample_weight"] == 1.0).all()
    # unaudited: never label 0; drawn ones are target 0 with the documented weight, the rest unused
    unaudited = out[out["label"].isna()]
    drawn = unaudited[unaudited["pu_role"] == "unlabelled_negative"]
    assert 0 < len(drawn) < len(unaudited)
    assert (drawn["target"] == 0.0).all()
    cleared = drawn["billing_npi"] == "1000000002"
    assert (drawn.loc[~cleared, "sample_weight"] == 0.2).all() and (drawn.loc[cleared, "sample_weight"] == 1.0).all()
    assert unaudited.loc[unaudited["pu_role"] == "unused", "target"].isna().all()
    # a provider with a confirmed outcome never contributes unaudited negatives
    assert not (drawn["billing_npi"] == "1000000001").any()
    # deterministic draw
    again = build_training_data(features, spark.createDataFrame(labels), prov, params).frame
    assert again.where(F.col("pu_role") == "unlabelled_negative").count() == len(drawn)


def test_validation_holds_out_providers_and_test_holds_out_time(spark):
    from claimsentry.models.dataset import build_training_data

    pdf, labels = synthetic_claims(600, seed=3)
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    params = _params(split={"test_start": "2025-07-01", "valid_start": "2025-01-01", "provider_holdout_fraction": 0.3})
    td = build_training_data(features, spark.createDataFrame(labels), None, params)
    out = td.frame.toPandas()
    before = out[out.claim_date < dt.date(2025, 7, 1)]
    # every claim from test_start is test, whoever billed it
    assert (out.loc[out.claim_date >= dt.date(2025, 7, 1), "period"] == "test").all()
    # before it: validation and training share no billing provider, over the whole time range
    valid, train = before[before.period == "valid"], before[before.period == "train"]
    assert len(valid) and len(train) and not (set(valid.billing_npi) & set(train.billing_npi))
    assert valid.claim_date.min() < dt.date(2024, 3, 1) and train.claim_date.max() > dt.date(2025, 5, 1)
    share = valid.billing_npi.nunique() / before.billing_npi.nunique()
    assert 0.1 < share < 0.5
    assert td.split_info == {"dates_from": "audited claims", "provider_holdout_fraction": 0.3,
                             "validation": "held-out providers before test_start"}
    # the same providers are held out on every run
    again = build_training_data(features, spark.createDataFrame(labels), None, params).frame.toPandas()
    assert set(again.billing_npi[again.period == "valid"]) == set(valid.billing_npi)


def test_split_dates_come_from_audited_claims_when_the_newest_months_have_none(spark):
    from claimsentry.models.dataset import build_training_data

    pdf, labels = synthetic_claims(800, seed=4)
    # audit outcomes lag: no label on a claim of the last six months
    dated = labels.merge(pdf[["claim_id", "claim_source", "claim_date"]], on=["claim_id", "claim_source"])
    labels = dated[dated.claim_date < dt.date(2025, 7, 1)].drop(columns="claim_date")
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    td = build_training_data(features, spark.createDataFrame(labels), None, _params())
    out = td.frame.toPandas()
    test = out[out.period == "test"]
    assert test.is_audited.sum() > 20  # the test period starts where audits still exist
    assert td.dates.test_start < dt.date(2025, 7, 1) and test.claim_date.max() > dt.date(2025, 12, 1)


def test_split_by_fractions_and_degenerate_dates(spark):
    from claimsentry.errors import InputError
    from claimsentry.models.dataset import split_dates

    pdf, _ = synthetic_claims(200, seed=2)
    dates = split_dates(spark.createDataFrame(pdf.drop(columns=["fraud"])), valid_fraction=0.2, test_fraction=0.2)
    share_test = (pdf["claim_date"] >= dates.test_start).mean()
    assert 0.12 < share_test < 0.28 and dates.valid_start < dates.test_start
    same_day = spark.createDataFrame(pd.DataFrame({"claim_date": [dt.date(2024, 1, 1)] * 5}))
    with pytest.raises(InputError, match="validation period must start before"):
        split_dates(same_day)


# --- train / calibration / evaluate -------------------------------------------------------------


def _pandas_split(pdf, labels):
    df = pdf.merge(labels, on=["claim_id", "claim_source"], how="left")
    df["target"] = df["label"].astype("float64")
    df["sample_weight"] = 1.0
    period = np.where(df["claim_date"] < dt.date(2025, 1, 1), "train", np.where(df["claim_date"] < dt.date(2025, 7, 1), "valid", "test"))
    return {p: df[(period == p)].reset_index(drop=True) for p in ("train", "valid", "test")}


def test_xgboost_learns_planted_signal_and_calibration_is_monotone():
    from claimsentry.models import evaluate as E
    from claimsentry.models import train as T

    pdf, labels = synthetic_claims(1200, seed=3)
    parts = _pandas_split(pdf, labels)
    tr, va = (parts[p][parts[p]["target"].notna()] for p in ("train", "valid"))
    booster, info = T.fit_booster(tr, va, FEATURES, _params()["xgboost"])
    assert info["early_stopped_on_valid"] and info["best_iteration"] < 400
    assert info["booster_params"]["scale_pos_weight"] > 1  # imbalance handled
    test = parts["test"]
    p_test = T.predict_model_score(booster, test, FEATURES, "classifier")
    assert E.roc_auc(test["label"].to_numpy(dtype="float64"), p_test) > 0.8

    p_valid = T.predict_model_score(booster, va, FEATURES, "classifier")
    for method in ("isotonic", "platt"):
        cal = T.fit_calibration(p_valid, va["target"].to_numpy(), method=method)
        assert cal["method"] == method
        grid = np.linspace(-0.5, 1.5, 501)
        out = T.apply_calibration(grid, cal)
        assert np.all(np.diff(out) >= -1e-12) and out.min() >= 0.0 and out.max() <= 1.0
    assert T.fit_calibration(p_valid, np.zeros(len(p_valid)))["method"] == "identity"


def test_queue_metrics_on_hand_computed_example():
    from claimsentry.models.evaluate import held_out_metrics

    # 10 claims, scores descending; truth positives at ranks 1, 2, 5; rank 3 unaudited
    pdf = pd.DataFrame(
        {
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05],
            "label": [1, 1, np.nan, 0, 1, 0, 0, np.nan, 0, 0],
            "amount_paid": [100.0, 200.0, 50.0, 10.0, 700.0, 1, 1, 1, 1, 1],
            "truth_scheme": ["a", "a", None, None, "b", None, None, None, None, None],
        }
    )
    m = held_out_metrics(pdf, capacity=3, has_truth=False)
    assert m["ground_truth"] == "audit_labels" and m["n_test"] == 10 and m["n_pos_test"] == 3
    assert m["precision_at_capacity"] == 1.0  # 2 known in the top 3, both positive
    assert m["recall_at_capacity"] == pytest.approx(2 / 3)
    assert m["dollars_at_risk_captured_at_capacity"] == pytest.approx(300 / 1000)
    assert m["lift_at_1pct"] == pytest.approx(1.0 / (3 / 8))
    assert m["roc_auc"] == pytest.approx(14 / 15)  # one (positive, negative) pair of 15 misordered
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    t = held_out_metrics(pdf, capacity=3, has_truth=True)
    assert t["ground_truth"] == "generator_truth" and t["per_scheme_recall"] == {"a": 1.0, "b": 0.0}
    assert t["precision_at_capacity"] == pytest.approx(2 / 3)


def test_blend_choice_reports_all_three_and_prefers_the_better():
    from claimsentry.models.train import choose_blend

    label = np.array([1, 0, 1, 0, np.nan, 0])
    good = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.3])
    bad = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.7])
    c = choose_blend(good, bad, label, weights=[0, 0.5, 1])
    assert c["winner"] == "xgb_only" and c["weight"] == 1.0 and c["xgb_only"] == 1.0 and c["anomaly_only"] < 0.6
    c = choose_blend(bad, good, label, weights=[0, 0.5, 1])
    assert c["winner"] == "anomaly_only" and c["weight"] == 0.0 and c["blend"] is not None


# --- anomaly ------------------------------------------------------------------------------------


def test_anomaly_score_ranks_planted_outliers_high_without_labels(spark):
    from claimsentry.models.anomaly import anomaly_score, fit_anomaly

    rng = np.random.default_rng(4)
    n = 400
    pdf = pd.DataFrame(
        {
            "claim_id": [f"A{i}" for i in range(n)],
            "claim_source": "medical",
            "peer_group": np.where(np.arange(n) % 2 == 0, "drg:470", "drg:871"),
            # peers differ in level: 871 claims cost 10x more, so only a peer comparison is fair
            "paid_ratio": rng.normal(1.0, 0.1, n) * np.where(np.arange(n) % 2 == 0, 1.0, 10.0),
            "rule_flag": 0.0,
        }
    )
    outliers = [0, 2, 4]  # drg:470 claims billed like drg:871 ones, plus a rule hit
    pdf.loc[outliers, "paid_ratio"] = 5.0
    pdf.loc[outliers, "rule_flag"] = 1.0
    # a few ordinary flags in the same peer group keep the flag's scale non-zero (a lone flag among
    # drg:871's claims would be the rarest value of the set, and rank first on its own)
    pdf.loc[10, "rule_flag"] = 1.0
    pdf.loc[12, "rule_flag"] = 1.0
    model = fit_anomaly(spark.createDataFrame(pdf), ["paid_ratio", "rule_flag"], {"min_peer_claims": 20})
    import json

    json.dumps(model)  # plain JSON
    assert "medical|drg:470" in model["peers"]
    score, z = anomaly_score(pdf, model)
    assert ((score >= 0) & (score <= 1)).all()
    top = set(np.argsort(-score, kind="stable")[:3])
    assert top == set(outliers)
    assert score[outliers].min() > 0.98 and np.median(score) < 0.7

    # an excluded feature is left out of the model entirely: the outliers' paid_ratio no longer counts
    lean = fit_anomaly(spark.createDataFrame(pdf), ["paid_ratio", "rule_flag"],
                       {"min_peer_claims": 20, "exclude_features": ["paid_ratio"]})
    assert lean["feature_cols"] == ["rule_flag"]
    assert all("paid_ratio" not in stats for stats in lean["peers"].values())
    lean_score, lean_z = anomaly_score(pdf, lean)
    assert lean_z.shape == (n, 1)
    assert lean_score[outliers].min() == lean_score[10]  # same rule flag, nothing else to tell them apart
    # the score keeps the order at the very top instead of tying there: rarer is higher
    assert len(set(np.round(score[outliers + [10, 12]], 12))) >= 2


def test_peer_statistics_per_row_follow_the_peer_group_then_the_source_global():
    """Each row takes its peer group's median and scale where the model has them, else its claim
    source's global ones, else none (NaN); a feature missing from a group's stats stays NaN. Any
    index: the UDF's batches are positional."""
    from claimsentry.models.anomaly import GLOBAL, _stat_arrays

    model = {
        "feature_cols": ["a", "b"],
        "peers": {
            f"medical|{GLOBAL}": {"a": [1.0, 2.0], "b": [3.0, 4.0]},
            "medical|drg:470": {"a": [10.0, 20.0]},
            f"pharmacy|{GLOBAL}": {"b": [7.0, 8.0]},
            "pharmacy|ndc:1|x": {"a": [5.0, 6.0], "b": [9.0, 9.5]},
        },
    }
    pdf = pd.DataFrame(
        {
            "claim_source": ["medical", "medical", "medical", "pharmacy", "pharmacy", "dental"],
            "peer_group": ["drg:470", "drg:999", None, "ndc:1|x", GLOBAL, "drg:470"],
        },
        index=[50, 7, 3, 99, 0, 12],
    )
    med, scale = _stat_arrays(pdf, model)
    nan = np.nan
    np.testing.assert_array_equal(med, [[10, nan], [1, 3], [1, 3], [5, 9], [nan, 7], [nan, nan]])
    np.testing.assert_array_equal(scale, [[20, nan], [2, 4], [2, 4], [6, 9.5], [nan, 8], [nan, nan]])


# --- scoring ------------------------------------------------------------------------------------


def _tiny_bundle(pdf, labels, version="claimsentry-fraud/1", weight=1.0):
    from claimsentry.models import train as T
    from claimsentry.models.scoring import ModelBundle

    df = pdf.merge(labels, on=["claim_id", "claim_source"], how="inner")
    df["target"], df["sample_weight"] = df["label"].astype(float), 1.0
    booster, _ = T.fit_booster(df, df.iloc[:0], FEATURES, {**_params()["xgboost"], "num_boost_round": 20})
    anomaly = {
        "feature_cols": FEATURES,
        "peers": {"medical|__global__": {"f_signal": [0.0, 1.0], "f_noise": [0.0, 1.0]},
                  "pharmacy|__global__": {"f_signal": [0.0, 1.0], "f_noise": [0.0, 1.0]}},
        "method": "tail", "second_weight": 0.5, "direction": "upper", "probs": [0.0, 0.5, 0.9, 0.99],
        "tails": {s: {"n": 100, "q": {"f_signal": [0.0, 0.7, 1.3, 2.3], "f_noise": [0.0, 0.7, 1.3, 2.3]}}
                  for s in ("medical", "pharmacy")},
        "cdf": [0.0, 0.5, 1.0, 2.0], "cdf_probs": [0.0, 0.5, 0.9, 0.99],
    }
    cal = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, 0.3, 1.0]}
    return ModelBundle(booster, FEATURES, cal, anomaly, weight, version)


def test_score_claims_adds_columns_and_contributions_sum_to_margin(spark):
    import xgboost as xgb

    from claimsentry.models.scoring import score_claims

    pdf, labels = synthetic_claims(200, seed=5)
    bundle = _tiny_bundle(pdf, labels)
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    scored = score_claims(features, bundle, top_k=5)
    assert scored.schema["contributions"].dataType.simpleString() == "array<struct<feature:string,contribution:double>>"
    out = scored.toPandas().sort_values("claim_id").reset_index(drop=True)
    assert len(out) == 200 and (out["model_version"] == "claimsentry-fraud/1").all()
    assert out["score"].between(0, 1).all() and out["anomaly_score"].between(0, 1).all()
    x = pdf.sort_values("claim_id").reset_index(drop=True)
    dm = xgb.DMatrix(x[FEATURES].to_numpy(), feature_names=FEATURES)
    margin = bundle.booster.predict(dm, output_margin=True)
    full = bundle.booster.predict(dm, pred_contribs=True)
    np.testing.assert_allclose(full.sum(axis=1), margin, rtol=1e-4, atol=1e-4)  # SHAP + bias = margin
    for i in range(len(out)):
        got = {c["feature"]: c["contribution"] for c in out.loc[i, "contributions"]}
        want = {f: float(full[i, j]) for j, f in enumerate(FEATURES) if full[i, j] > 0}
        assert got.keys() == want.keys()
        for f in got:
            assert got[f] == pytest.approx(want[f], rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(out["model_score"], bundle.booster.predict(dm), rtol=1e-5)


def test_explaining_only_queued_claims_matches_explaining_all(spark):
    """run_score scores every claim without SHAP and explains only the queued ones: same reasons."""
    from claimsentry.models.scoring import explain_pandas, score_claims

    pdf, labels = synthetic_claims(200, seed=6)
    bundle = _tiny_bundle(pdf, labels)
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    full = score_claims(features, bundle, top_k=5).toPandas().sort_values("claim_id").reset_index(drop=True)
    bare = score_claims(features, bundle, top_k=0).toPandas().sort_values("claim_id").reset_index(drop=True)
    assert bare["contributions"].isna().all()
    np.testing.assert_allclose(bare["score"], full["score"])
    top = bare.nlargest(20, "score").drop(columns=["contributions"])
    explained = explain_pandas(top, bundle)
    want = full.set_index("claim_id").loc[top["claim_id"], "contributions"]
    def norm(items):
        return [(c["feature"], round(c["contribution"], 9)) for c in items]

    assert [norm(x) for x in explained["contributions"]] == [norm(x) for x in want]
    assert any(len(x) for x in explained["contributions"])
    assert explain_pandas(top.iloc[:0], bundle).empty


def test_score_claims_missing_feature_is_one_line_error(spark):
    from claimsentry.errors import InputError
    from claimsentry.models.scoring import score_claims

    pdf, labels = synthetic_claims(50, seed=6)
    bundle = _tiny_bundle(pdf, labels)
    with pytest.raises(InputError, match="missing from the claim features: f_noise"):
        score_claims(spark.createDataFrame(pdf.drop(columns=["fraud", "f_noise"])), bundle)


# --- registry -----------------------------------------------------------------------------------


def test_load_champion_on_empty_store_raises_model_not_found(settings):
    from claimsentry.errors import ModelNotFound
    from claimsentry.models.registry import load_champion

    with pytest.raises(ModelNotFound) as err:
        load_champion(settings)
    msg = str(err.value)
    assert "\n" not in msg and "no champion model registered under 'claimsentry-fraud'" in msg
    assert msg.endswith("run `claimsentry train` first") and settings.mlflow_tracking_uri in msg


def test_champion_alias_moves_only_for_a_better_challenger(settings, tmp_path):
    from claimsentry.models import registry as R

    pdf, labels = synthetic_claims(120, seed=7)
    art = tmp_path / "art"
    (art / "evaluation").mkdir(parents=True)
    (art / "evaluation" / "metrics.json").write_text("{}")

    def register(challenger, champion_metric):
        bundle = _tiny_bundle(pdf, labels)
        exists = R.champion_version(settings) is not None
        return R.log_and_register(
            settings, bundle=bundle, params={"n": 1}, metrics={"pr_auc": challenger}, artifacts_dir=art,
            input_example=pdf[FEATURES].head(3),
            decide=lambda: R.promotion_decision(challenger, champion_metric, champion_exists=exists, margin=0.01, metric="pr_auc"),
        )

    first = register(0.50, None)
    assert first["decision"] == "promoted" and R.champion_version(settings) == "1"
    worse = register(0.505, 0.50)  # better, but by less than the margin
    assert worse["decision"] == "kept_champion" and R.champion_version(settings) == "1"
    assert worse["challenger_metric"] == 0.505 and worse["champion_metric"] == 0.50
    better = register(0.60, 0.50)
    assert better["decision"] == "promoted" and R.champion_version(settings) == "3"
    champ = R.load_champion(settings)
    assert champ.version == "claimsentry-fraud/3" and champ.feature_cols == FEATURES and champ.run_id == better["run_id"]
    assert champ.calibration["method"] == "isotonic"

    from mlflow import MlflowClient

    c = MlflowClient(settings.mlflow_tracking_uri)
    files = {a.path for a in c.list_artifacts(worse["run_id"])}
    assert {"promotion.json", "evaluation", "bundle"} <= files


def test_promotion_without_labels_never_replaces_a_champion():
    from claimsentry.models.registry import promotion_decision

    d = promotion_decision(float("nan"), 0.4, champion_exists=True, margin=0.0, metric="pr_auc")
    assert d["decision"] == "kept_champion" and d["challenger_metric"] is None
    assert promotion_decision(None, None, champion_exists=False, margin=0.1, metric="pr_auc")["promote"]


# --- end to end on a synthetic feature frame -----------------------------------------------------


@pytest.mark.slow
def test_train_from_features_end_to_end_logs_the_report_contract(spark, settings):
    import json

    from mlflow import MlflowClient

    from claimsentry.jobs.train import train_from_features
    from claimsentry.models.registry import load_champion
    from claimsentry.models.scoring import score_claims

    pdf, labels = synthetic_claims(800, seed=8)
    features = spark.createDataFrame(pdf.drop(columns=["fraud"]))
    truth = spark.createDataFrame(pdf.loc[pdf.fraud == 1, ["claim_id", "claim_source"]].assign(scheme="drg_upcoding"))
    truth = truth.withColumnRenamed("scheme", "truth_scheme")
    result = train_from_features(spark, features, FEATURES, settings, labels=spark.createDataFrame(labels), truth=truth)
    assert result["decision"] == "promoted" and result["model_version"] == "claimsentry-fraud/1"
    m = result["metrics"]
    assert m["audit_labels"]["roc_auc"] > 0.8 and m["roc_auc"] > 0.8 and m["ground_truth"] == "generator_truth"
    assert set(m["blend"]) >= {"xgb_only", "anomaly_only", "blend", "winner"}
    assert "drg_upcoding" in m["per_scheme_recall"]
    c = MlflowClient(settings.mlflow_tracking_uri)
    run_files = {a.path for a in c.list_artifacts(result["run_id"], "evaluation")}
    assert {f"evaluation/{n}" for n in ("metrics.json", "test_predictions.parquet", "feature_importance.json", "shap_sample.parquet")} <= run_files
    assert {"features.json", "promotion.json", "data", "bundle"} <= {a.path for a in c.list_artifacts(result["run_id"])}
    local = c.download_artifacts(result["run_id"], "evaluation/test_predictions.parquet")
    preds = pd.read_parquet(local)
    assert list(preds.columns) == ["claim_id", "claim_source", "claim_type", "claim_date", "label", "truth_scheme", "score", "model_score", "anomaly_score", "amount_paid", "billing_npi", "never_labelled", "lookalike"]
    assert json.loads(open(c.download_artifacts(result["run_id"], "promotion.json")).read())["decision"] == "promoted"
    bundle = load_champion(settings)
    assert bundle.version == "claimsentry-fraud/1"
    from importlib.metadata import version  # the model's environment: pinned, and what it loads with

    requirements = set(open(c.download_artifacts(result["run_id"], "model/requirements.txt")).read().split())
    assert {f"xgboost-cpu=={version('xgboost-cpu')}", f"mlflow=={version('mlflow')}"} <= requirements
    assert score_claims(features, bundle).where("score < 0 or score > 1").count() == 0

    # a second run on the same data is compared with the champion on the same held-out rows
    again = train_from_features(spark, features, FEATURES, settings, labels=spark.createDataFrame(labels), truth=truth)
    p = again["promotion"]
    assert again["model_version"] == "claimsentry-fraud/2"
    assert p["champion_metric"] is not None and p["decision"] in ("promoted", "kept_champion")
    if p["challenger_metric"] < p["champion_metric"] + p["margin"]:
        assert p["decision"] == "kept_champion" and load_champion(settings).version == "claimsentry-fraud/1"

    # no labels at all: the anomaly score still produces a model; same scoring path
    nolab = train_from_features(spark, features, FEATURES, settings)
    assert nolab["metrics"]["model_kind"] == "anomaly_distilled"
    assert nolab["decision"] == "kept_champion"  # its figure on audit labels is absent: never replaces


@pytest.mark.slow
def test_xgboost_spark_trains_in_local_mode(spark):
    from claimsentry.models.dataset import build_training_data
    from claimsentry.models.distributed import fit_spark

    pdf, labels = synthetic_claims(300, seed=9)
    td = build_training_data(spark.createDataFrame(pdf.drop(columns=["fraud"])), spark.createDataFrame(labels), None, _params())
    booster, info = fit_spark(td.frame, FEATURES, {**_params()["xgboost"], "num_boost_round": 30}, scale_pos_weight=2.0)
    assert info["distributed"] and booster.num_boosted_rounds() >= 1
    assert booster.feature_names == FEATURES


def test_a_certain_rule_hit_ranks_above_every_claim_that_is_only_unusual():
    from claimsentry.models.scoring import CERTAIN_SCORE, certain_tier

    pdf = pd.DataFrame({"rule_MB001": [0.0, 1.0, 0.0, np.nan, 0.0], "rule_MB002": [0.0, 0.0, 1.0, 0.0, 0.0]})
    score = np.array([1.0, 0.0, 0.3, 0.999, 0.5])
    out = certain_tier(score, pdf, ["rule_MB001", "rule_MB002", "rule_ABSENT"])
    certain = np.array([False, True, True, False, False])
    assert out[certain].min() >= CERTAIN_SCORE > out[~certain].max()
    # within each tier the model's order is kept, and scores stay in [0, 1]
    assert out[2] > out[1] and out[0] > out[3] > out[4] and ((0 <= out) & (out <= 1)).all()  # no ties at a cap
    assert (certain_tier(score, pdf, []) == score).all()  # no certain rule: unchanged


def test_rules_marked_certain_are_face_value_breaks_and_the_key_is_checked(tmp_path):
    """Certain: later copies of exact duplicates, death, enrollment, and the payment-policy edits
    that deny a line outright (PTP pairs, MUEs, excluded providers); not the add-on code edit,
    whose type 3 primaries the contractor may widen."""
    from claimsentry.errors import InputError
    from claimsentry.features.rules import certain_rule_columns, load_rules

    assert certain_rule_columns(load_rules()) == [
        "rule_DUP004", "rule_MB001", "rule_MB002", "rule_NCC001", "rule_NCC002", "rule_OIG001"]
    bad = tmp_path / "rules_x.yaml"
    bad.write_text(
        "rules:\n  - {id: XX001, name: n, scheme: duplicate_billing, severity: high, description: d,\n"
        "     reads: [exact_duplicate], when: 'exact_duplicate = 1', reason: r, certain: 'yes'}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="certain must be true or false"):
        load_rules([bad], packaged=False)


def test_unknown_perpetrator_metrics_by_hand():
    from claimsentry.models.evaluate import unknown_perpetrator_metrics

    score = np.arange(200, dtype=float)[::-1]  # row 0 ranks first; top 5% = rows 0-9, top 1% = rows 0-1
    scheme = [None] * 200
    scheme[0], scheme[1], scheme[5], scheme[150] = "a", "b", "a", "a"
    unknown = np.zeros(200, dtype=bool)
    unknown[[5, 150, 1]] = True
    look = [None] * 200
    look[3], look[100] = "high_acuity_em", "high_acuity_em"
    m = unknown_perpetrator_metrics(score, scheme, unknown, look)
    assert m["recall_top5_never_labelled_by_scheme"] == {"a": 0.5, "b": 1.0}
    assert m["recall_top5_labelled_by_scheme"] == {"a": 1.0}
    assert m["min_recall_top5_never_labelled"] == 0.5 and m["recall_top5_never_labelled"] == pytest.approx(2 / 3)
    assert m["precision_top1"] == 1.0 and m["recall_top5"] == 0.75 and m["lookalike_share_top5"] == 0.5
    assert m["never_labelled_claims_by_scheme"] == {"a": 2, "b": 1} and m["n_improper"] == 4


def test_blends_on_percentiles_and_the_max_is_chosen_when_it_ranks_best():
    from claimsentry.models import train as T

    cdf = T.score_cdf(np.linspace(0.0, 0.5, 1001))
    pct = T.percentile_of(np.array([0.0, 0.25, 0.5, 0.75, 1.0]), cdf)
    assert pct[0] == 0.0 and pct[1] == pytest.approx(0.5, abs=0.01) and 0.99 < pct[2] < pct[3] < pct[4] == 1.0
    # two kinds of improper claims: ones only the model sees, ones only the anomaly sees
    n = 400
    rng = np.random.default_rng(1)
    model, anomaly = rng.uniform(0, 0.5, n), rng.uniform(0, 0.9, n)
    label = np.zeros(n)
    label[:10], label[10:20] = 1, 1
    model[:10], anomaly[10:20] = 0.9, 0.999
    choice = T.choose_blend(model, anomaly, label, weights=[0, 0.5, 1], model_cdf=T.score_cdf(model[20:]))
    assert choice["method"] == "max" and choice["winner"] == "max_of_percentiles"
    assert choice["max"] == pytest.approx(1.0) and choice["max"] > max(choice["by_weight"].values())
    raw = T.blend_scores(model, anomaly, {"blend_method": "max", "model_cdf": T.score_cdf(model[20:])})
    assert set(np.argsort(-raw)[:20]) == set(range(20))
    # without a model CDF (an older bundle) the linear blend reads the probability, as before
    assert T.blend_scores(model, anomaly, {"blend_weight": 0.5}) == pytest.approx(0.5 * model + 0.5 * anomaly)


def test_max_blend_is_kept_unless_beaten_by_more_than_its_bootstrap_noise():
    """One-standard-error rule: a linear blend that wins on validation by less than the paired
    bootstrap SE of the difference (over providers) does not replace the max of percentiles; one
    that wins by far does."""
    from claimsentry.models import train as T

    rng = np.random.default_rng(6)
    n = 600
    label = np.zeros(n)
    label[:30] = 1
    groups = np.array([f"P{i % 40}" for i in range(n)])
    model = rng.uniform(0, 0.6, n)
    anomaly = rng.uniform(0, 0.9, n)
    model[:30] = rng.uniform(0.3, 0.95, 30)  # both sides rank the positives fairly well,
    anomaly[:30] = rng.uniform(0.6, 0.95, 30)  # the model a little better on this sample
    cdf = T.score_cdf(model[30:])
    plain = T.choose_blend(model, anomaly, label, weights=[0, 0.5, 1], model_cdf=cdf)
    kept = T.choose_blend(model, anomaly, label, weights=[0, 0.5, 1], model_cdf=cdf, prefer_max_within_se=1.0, groups=groups)
    assert plain["winner"] == "xgb_only" and plain["max_kept"] is None
    gap = plain["xgb_only"] - plain["max"]
    assert kept["max_kept"]["gap"] == pytest.approx(gap)
    assert 0 < gap < kept["max_kept"]["se"]  # a win smaller than its noise
    assert kept["max_kept"]["within"] and kept["winner"] == "max_of_percentiles" and kept["method"] == "max"
    # a model that ranks every positive first beats the max by far more than its noise
    model[:30] = 0.99
    anomaly[30:60] = 1.0  # the anomaly side puts clean claims at its very top: the max pays for it
    far = T.choose_blend(model, anomaly, label, weights=[0, 0.5, 1], model_cdf=T.score_cdf(model[30:]),
                         prefer_max_within_se=1.0, groups=groups)
    assert far["winner"] == "xgb_only" and not far["max_kept"]["within"]


def test_a_model_registered_before_the_surprise_score_still_scores():
    """Older champions' anomaly models (no ``method``): the capped mean of the top z-scores."""
    from claimsentry.models.anomaly import anomaly_score

    legacy = {"feature_cols": ["a", "b"], "peers": {"medical|__global__": {"a": [0.0, 1.0], "b": [0.0, 1.0]}},
              "z_cap": 10.0, "top_n": 2, "direction": "upper", "cdf": [0.0, 1.0, 2.0, 5.0]}
    pdf = pd.DataFrame({"claim_source": "medical", "peer_group": None, "a": [0.0, 3.0, 30.0], "b": [0.0, 1.0, 0.0]})
    score, z = anomaly_score(pdf, legacy)
    np.testing.assert_allclose(z, [[0, 0], [3, 1], [10, 0]])  # capped at z_cap
    np.testing.assert_allclose(score, [0.0, 0.5, 0.75])  # raw 0, 2, 5 on the plain CDF


def test_with_the_max_blend_reasons_come_from_the_side_that_decided_the_claim():
    from claimsentry.models import train as T
    from claimsentry.models.scoring import _anomaly_decides, _contributions, _matrix

    pdf, labels = synthetic_claims(200, seed=6)
    bundle = _tiny_bundle(pdf, labels)
    config = {**bundle.scoring_config(), "blend_method": "max", "model_cdf": T.score_cdf(np.linspace(0, 1, 101))}
    model_score = np.array([0.9, 0.1])
    anomaly = np.array([0.2, 0.95])
    decides = _anomaly_decides(model_score, anomaly, config)
    assert decides.tolist() == [False, True]
    rows = pdf.head(2).reset_index(drop=True)
    z = np.array([[0.0, 2.5], [0.0, 2.5]])  # the anomaly's surprise per feature
    got = _contributions(bundle.booster, _matrix(rows, config["feature_cols"]), z, config, 5, decides)
    shap = bundle.booster.predict(_matrix(rows, config["feature_cols"]), pred_contribs=True)[0, :-1]
    assert got[1] == [{"feature": config["anomaly"]["feature_cols"][1], "contribution": 2.5}]
    assert {c["feature"] for c in got[0]} == {f for f, v in zip(config["feature_cols"], shap) if v > 0}
