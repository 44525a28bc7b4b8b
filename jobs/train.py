"""``claimsentry train``: gate -> claim features -> PU training frame -> XGBoost + anomaly + blend ->
held-out evaluation -> one MLflow run, registered model, champion alias moved only if it wins.

Extract: ``run_gate`` (typed tables, labels) and ``build_claim_features`` (one row per claim_id,
claim_source). Transform: ``claimsentry.models.*`` (pure). Load: MLflow via
``claimsentry.models.registry``. Artifacts logged in every run (the report reads them):
``evaluation/metrics.json``, ``evaluation/test_predictions.parquet``, ``evaluation/feature_importance.json``,
``evaluation/shap_sample.parquet``, ``data/training_feature_sample.parquet``, ``features.json``,
``promotion.json``, ``bundle/scoring.json`` and the model (XGBoost flavour).

With no labels at all (a new payer) the model is the anomaly score, distilled into a small XGBoost
regressor so the registered model, SHAP reasons and scoring path stay the same.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from claimsentry.errors import InputError
from claimsentry.models import anomaly as A
from claimsentry.models import dataset as D
from claimsentry.models import evaluate as E
from claimsentry.models import train as T
from claimsentry.models.scoring import ModelBundle, score_claims

log = logging.getLogger(__name__)

TEST_PREDICTION_COLUMNS = [
    "claim_id",
    "claim_source",
    "claim_type",
    "claim_date",
    "label",
    "truth_scheme",
    "score",
    "model_score",
    "anomaly_score",
    "amount_paid",
    "billing_npi",
    "never_labelled",
    "lookalike",
]


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _clean_json(value):
    """NaN/inf -> None so the JSON is valid for any reader."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def write_json(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean_json(payload), indent=2, default=_json_default), encoding="utf-8")


def read_truth(spark: SparkSession, input_dir: str) -> DataFrame | None:
    """Generator truth (evaluation only, never a training label): one row per (claim_id, claim_source)
    of an improper or look-alike claim, with ``truth_scheme`` (null for a look-alike), ``never_labelled``
    (the claim's perpetrator has no audit label at all) and ``lookalike`` (the kind of legitimate
    look-alike, else null). None when the input has no ``truth/claim_truth.parquet``."""
    root = Path(str(input_dir)) / "truth"
    path = root / "claim_truth.parquet"
    if "://" in str(input_dir) or not path.exists():
        return None
    raw = spark.read.parquet(str(path))
    unknown = (F.col("perpetrator_labelled") == "false") if "perpetrator_labelled" in raw.columns else F.lit(False)
    truth = raw.groupBy(*D.KEY).agg(
        F.min(F.col("scheme").cast("string")).alias("truth_scheme"), F.max(unknown).alias("never_labelled")
    )
    if (root / "lookalikes.parquet").exists():
        look = spark.read.parquet(str(root / "lookalikes.parquet")).groupBy(*D.KEY).agg(F.min("kind").alias("lookalike"))
        truth = truth.join(look, D.KEY, "full")
    else:
        truth = truth.withColumn("lookalike", F.lit(None).cast("string"))
    return truth.withColumn("never_labelled", F.coalesce(F.col("never_labelled"), F.lit(False)))


def _hash_sample(df: DataFrame, n_total: int, n_max: int, seed: int) -> tuple[DataFrame, float]:
    """Deterministic sample of at most ~``n_max`` rows (same rows on every call: key hash)."""
    if n_total <= n_max:
        return df, 1.0
    fraction = n_max / n_total
    return df.where(D.key_uniform(seed) < fraction), fraction


def _blend_on_validation(valid_pdf, booster, feature_cols, anomaly_model, params, model_cdf) -> tuple[dict, np.ndarray]:
    """The blend that ranks the validation claims best (held-out providers: module ``dataset``), and
    the raw blended score of those claims (calibration is fitted on it)."""
    model_score = T.predict_model_score(booster, valid_pdf, feature_cols, "classifier")
    anomaly, _ = A.anomaly_score(valid_pdf, anomaly_model)
    blend_cfg = params.get("blend", {})
    # audit labels only (unaudited NaN): drawn unaudited rows are not evidence of "clean"
    label = valid_pdf["label"].astype("float64").to_numpy()
    within = blend_cfg.get("prefer_max_within_se")
    choice = T.choose_blend(
        model_score, anomaly, label, weights=list(blend_cfg.get("weights", [0, 0.25, 0.5, 0.75, 1])),
        metric=blend_cfg.get("metric", "pr_auc"), model_cdf=model_cdf if blend_cfg.get("max", True) else None,
        prefer_max_within_se=None if within is None else float(within),
        groups=valid_pdf["billing_npi"].to_numpy() if "billing_npi" in valid_pdf else None,
        seed=int(params.get("seed", 0) or 0),
    )
    config = {"blend_method": choice["method"], "blend_weight": choice["weight"], "model_cdf": model_cdf}
    return choice, T.blend_scores(model_score, anomaly, config)


def fit_bundle(
    td: D.TrainingData,
    feature_cols: list[str],
    params: Mapping[str, Any],
    counts: Mapping[str, Mapping[str, int]],
    certain_rules: list[str] = (),
) -> tuple[ModelBundle, dict, pd.DataFrame]:
    """Anomaly model, booster, blend and calibration. Returns (bundle, training info, input example).
    ``certain_rules``: the rule columns whose hit ranks a claim above every other (scoring's tier)."""
    frame = td.frame
    anomaly_model = A.fit_anomaly(frame.where(F.col("period") == "train"), feature_cols, params.get("anomaly", {}))
    train_counts, valid_counts = counts.get("train", {}), counts.get("valid", {})
    supervised = (
        td.has_labels
        and train_counts.get("positives", 0) > 0
        and train_counts.get("audited", 0) + train_counts.get("unlabelled_negative", 0) > train_counts.get("positives", 0)
    )
    xgb_params = dict(params.get("xgboost", {}))
    groups = ["billing_npi"] if "billing_npi" in frame.columns else []  # the blend's bootstrap resamples providers
    cols = D.KEY + ["peer_group", *groups, "label", "target", "sample_weight"] + feature_cols
    max_rows = int(params.get("max_train_rows", 1_000_000))
    info: dict = {"supervised": bool(supervised)}
    if supervised:
        valid_pdf = D.to_driver(frame, "valid", cols, max_rows=max_rows)
        if params.get("distributed"):
            from claimsentry.models.distributed import fit_spark, weighted_scale_pos_weight

            spw = weighted_scale_pos_weight(frame, xgb_params.get("scale_pos_weight", "auto"))
            booster, fit_info = fit_spark(frame, feature_cols, xgb_params, scale_pos_weight=spw, num_workers=int(params.get("num_workers", 1)))
            example = valid_pdf[feature_cols].head(5)
        else:
            train_pdf = D.to_driver(frame, "train", cols, max_rows=max_rows)
            search = params.get("search", {})
            if search.get("enabled") and search.get("grid"):
                booster, fit_info, results = T.search_booster(train_pdf, valid_pdf, feature_cols, xgb_params, search["grid"])
                info["search_results"] = results
            else:
                booster, fit_info = T.fit_booster(train_pdf, valid_pdf, feature_cols, xgb_params)
            example = train_pdf[feature_cols].head(5)
        info.update(fit_info)
        # the model score's distribution over ordinary claims: the drawn unaudited ones, a uniform sample
        drawn = valid_pdf["label"].isna().to_numpy()
        model_cdf = T.score_cdf(T.predict_model_score(booster, valid_pdf[drawn], feature_cols, "classifier"))
        choice, raw = _blend_on_validation(valid_pdf, booster, feature_cols, anomaly_model, params, model_cdf)
        cal = params.get("calibration", {})
        calibration = T.fit_calibration(
            raw,
            valid_pdf["target"].to_numpy(dtype="float64"),
            valid_pdf["sample_weight"].to_numpy(dtype="float64"),
            method=cal.get("method", "isotonic"),
            min_positives=int(cal.get("min_validation_positives", 5)),
        )
        model_kind = "classifier"
    else:
        # No labels: distil the anomaly score into a small XGBoost regressor (see module docstring).
        n_train = train_counts.get("claims", 0)
        sample, _ = _hash_sample(frame.where(F.col("period") == "train"), n_train, 50_000, int(params.get("pu", {}).get("seed", 7)))
        pdf = sample.select(*D.KEY, "peer_group", *feature_cols).toPandas().sort_values(D.KEY).reset_index(drop=True)
        target, _ = A.anomaly_score(pdf, anomaly_model)
        booster = T.fit_distilled(pdf, feature_cols, target, xgb_params)
        choice = {
            "weight": 1.0,
            "winner": "anomaly_only",
            "metric": None,
            "note": "no audit labels: score is the anomaly score (distilled into XGBoost for SHAP reasons)",
        }
        calibration = {"method": "identity", "reason": "no labels: the score is a percentile, not a probability"}
        model_kind = "anomaly_distilled"
        model_cdf = None
        example = pdf[feature_cols].head(5)
        info.update({"best_iteration": booster.num_boosted_rounds() - 1, "booster_params": {"objective": "reg:squarederror"}})
    bundle = ModelBundle(
        booster=booster,
        feature_cols=list(feature_cols),
        calibration=calibration,
        anomaly=anomaly_model,
        blend_weight=float(choice["weight"]),
        version="candidate",
        model_kind=model_kind,
        extra={
            "blend_choice": choice,
            "blend_method": choice.get("method", "linear"),
            "model_cdf": model_cdf,
            "split": td.dates.as_dict(),
            "certain_rules": list(certain_rules),
        },
    )
    info["blend"] = choice
    return bundle, info, example.astype("float64")


def _test_frame(td: D.TrainingData, truth: DataFrame | None) -> DataFrame:
    test = td.frame.where(F.col("period") == "test")
    if truth is not None:
        for name, kind in (("never_labelled", "boolean"), ("lookalike", "string")):
            if name not in truth.columns:  # truth from an older generator
                truth = truth.withColumn(name, F.lit(None).cast(kind))
        test = test.join(truth, D.KEY, "left").withColumn("never_labelled", F.coalesce(F.col("never_labelled"), F.lit(False)))
    else:
        test = (
            test.withColumn("truth_scheme", F.lit(None).cast("string"))
            .withColumn("never_labelled", F.lit(None).cast("boolean"))
            .withColumn("lookalike", F.lit(None).cast("string"))
        )
    return test


def test_predictions(scored: DataFrame, n_test: int, max_rows: int, seed: int) -> tuple[pd.DataFrame, float]:
    """Test-period predictions for metrics (bounded: a deterministic key-hash sample above ``max_rows``)."""
    sample, fraction = _hash_sample(scored, n_test, max_rows, seed)
    pdf = sample.select(*TEST_PREDICTION_COLUMNS).toPandas()
    pdf["label"] = pdf["label"].astype("float64")
    return pdf.sort_values(D.KEY).reset_index(drop=True), fraction


def write_artifacts(
    out: Path,
    *,
    bundle: ModelBundle,
    td: D.TrainingData,
    test: DataFrame,
    test_pdf: pd.DataFrame,
    metrics: dict,
    descriptions: Mapping[str, str],
    params: Mapping[str, Any],
) -> None:
    """The report contract's files under ``out`` (bounded samples only)."""
    ev = params.get("evaluation", {})
    seed = int(params.get("pu", {}).get("seed", 7))
    write_json(out / "evaluation" / "metrics.json", metrics)
    test_pdf.to_parquet(out / "evaluation" / "test_predictions.parquet", index=False)
    write_json(out / "evaluation" / "feature_importance.json", bundle.booster.get_score(importance_type="gain"))
    feats = bundle.feature_cols
    n_shap = int(ev.get("shap_sample_rows", 2000))
    shap_rows = test.where(D.key_uniform(seed + 1) < 0.5).select(*D.KEY, *feats).limit(n_shap).toPandas()
    if len(shap_rows) < n_shap:
        shap_rows = test.select(*D.KEY, *feats).limit(n_shap).toPandas()
    if len(shap_rows):
        contribs = bundle.booster.predict(T.matrix(shap_rows, feats, with_target=False), pred_contribs=True)
        shap = pd.DataFrame(contribs[:, :-1], columns=feats)
        shap["bias"] = contribs[:, -1]
        values = shap_rows[feats].astype("float64").add_prefix("value__")
        shap = pd.concat([shap_rows[D.KEY].reset_index(drop=True), shap, values.reset_index(drop=True)], axis=1)
    else:
        shap = pd.DataFrame(columns=D.KEY + feats + ["bias"] + [f"value__{f}" for f in feats])
    (out / "evaluation").mkdir(parents=True, exist_ok=True)
    shap.to_parquet(out / "evaluation" / "shap_sample.parquet", index=False)
    n_drift = int(ev.get("drift_sample_rows", 20000))
    train_rows = td.frame.where(F.col("period") == "train")
    drift = train_rows.where(D.key_uniform(seed + 2) < 0.5).select(*feats).limit(n_drift).toPandas()
    if len(drift) < n_drift:
        drift = train_rows.select(*feats).limit(n_drift).toPandas()
    (out / "data").mkdir(parents=True, exist_ok=True)
    drift.astype("float64").to_parquet(out / "data" / "training_feature_sample.parquet", index=False)
    write_json(out / "features.json", {"feature_cols": feats, "descriptions": {f: descriptions.get(f, "") for f in feats}})


def _champion_metric(champion: ModelBundle | None, test: DataFrame, n_test: int, params, top_k: int) -> float | None:
    """The champion's promotion metric on the same held-out rows (audit labels), None if it cannot score."""
    if champion is None:
        return None
    if any(c not in test.columns for c in champion.feature_cols):
        log.warning("champion %s needs features absent from this feed; it cannot be compared", champion.version)
        return None
    ev = params.get("evaluation", {})
    scored = score_claims(test, champion, top_k=0)
    pdf, _ = test_predictions(scored, n_test, int(ev.get("max_driver_rows", 2_000_000)), int(params.get("pu", {}).get("seed", 7)))
    metric = params.get("promotion", {}).get("metric", "pr_auc")
    fn = E.roc_auc if metric == "roc_auc" else E.average_precision
    return fn(pdf["label"].to_numpy(dtype="float64"), pdf["score"].to_numpy(dtype="float64"))


def train_from_features(
    spark: SparkSession,
    features: DataFrame,
    feature_cols: list[str],
    settings,
    *,
    labels: DataFrame | None = None,
    provider_labels: DataFrame | None = None,
    truth: DataFrame | None = None,
    descriptions: Mapping[str, str] | None = None,
    run_params: Mapping[str, Any] | None = None,
) -> dict:
    """Train, evaluate on the held-out period, log/register, decide promotion (see module docstring).
    ``features``: claim_features, one row per (claim_id, claim_source)."""
    from claimsentry.models import registry as R

    params = D.model_params(settings)
    top_k = int(params.get("top_k", 5))
    seed = int(params.get("pu", {}).get("seed", 7))
    excluded = set(params.get("exclude_features") or [])
    feature_cols = [f for f in feature_cols if f not in excluded]
    if not feature_cols:
        raise InputError("no model features were built from this input")
    champion_version = R.champion_version(settings)
    champion = R.load_version(settings, champion_version) if champion_version else None

    tmp_root = settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        tmp_path = Path(tmp)
        # Materialise the features once: the rest reads them several times.
        features.write.mode("overwrite").parquet(str(tmp_path / "claim_features"))
        features = spark.read.parquet(str(tmp_path / "claim_features"))
        td = D.build_training_data(features, labels, provider_labels, params)
        td.frame.write.mode("overwrite").parquet(str(tmp_path / "training_frame"))
        td = D.TrainingData(spark.read.parquet(str(tmp_path / "training_frame")), td.dates, td.sample_fractions, td.has_labels, td.split_info)
        counts = D.period_counts(td.frame)
        n_test = counts.get("test", {}).get("claims", 0)
        if counts.get("train", {}).get("claims", 0) == 0 or n_test == 0:
            raise InputError(f"time split left an empty period: {counts}")

        from claimsentry.features.rules import certain_rule_columns, load_rules

        certain = [c for c in certain_rule_columns(load_rules()) if c in feature_cols]
        bundle, info, example = fit_bundle(td, feature_cols, params, counts, certain)

        test = _test_frame(td, truth)
        scored = score_claims(test, bundle, top_k=top_k)
        scored.select(*TEST_PREDICTION_COLUMNS).write.mode("overwrite").parquet(str(tmp_path / "test_scored"))
        scored = spark.read.parquet(str(tmp_path / "test_scored"))
        ev = params.get("evaluation", {})
        test_pdf, fraction = test_predictions(scored, n_test, int(ev.get("max_driver_rows", 2_000_000)), seed)
        capacity = int(ev.get("capacity") or settings.get("queue.claim_capacity", 200))
        if fraction < 1.0:
            capacity = max(1, int(round(capacity * fraction)))
        metrics = E.held_out_metrics(test_pdf, capacity=capacity, has_truth=truth is not None)
        metrics.update(
            {
                "evaluation_sample_fraction": fraction,
                "periods": counts,
                "split": {**td.dates.as_dict(), **td.split_info},
                "pu_sample_fractions": td.sample_fractions,
                "blend": info["blend"],
                "model_kind": bundle.model_kind,
                "best_iteration": info.get("best_iteration"),
            }
        )
        promo = params.get("promotion", {})
        metric_name = promo.get("metric", "pr_auc")
        challenger_metric = metrics["audit_labels"].get(metric_name)
        champion_metric = _champion_metric(champion, test, n_test, params, top_k)
        metrics["promotion_metric"] = {"name": metric_name, "challenger": challenger_metric, "champion": champion_metric}
        if not counts.get("test", {}).get("audited"):
            metrics["audit_labels"]["note"] = "no audited claim in the test period: audit-label figures cannot be computed"

        art = tmp_path / "artifacts"
        write_artifacts(
            art, bundle=bundle, td=td, test=test, test_pdf=test_pdf, metrics=metrics,
            descriptions=descriptions or {}, params=params,
        )
        logged_params = {
            "feature_count": len(feature_cols),
            "valid_start": td.dates.valid_start.isoformat(),
            "test_start": td.dates.test_start.isoformat(),
            "model_kind": bundle.model_kind,
            "blend_weight": bundle.blend_weight,
            "blend_winner": info["blend"].get("winner"),
            "calibration": bundle.calibration.get("method"),
            "best_iteration": info.get("best_iteration"),
            "capacity": capacity,
            "champion_before": f"{R.model_name(settings)}/{champion_version}" if champion_version else "none",
            **{f"xgb.{k}": v for k, v in (info.get("booster_params") or {}).items()},
            **{f"pu.{k}": v for k, v in params.get("pu", {}).items()},
            **{f"split.{k}": v for k, v in params.get("split", {}).items()},
            "promotion.metric": metric_name,
            "promotion.margin": promo.get("margin", 0.0),
            **(run_params or {}),
        }
        log_metrics = E.flat_numeric({k: v for k, v in metrics.items() if k not in ("periods",)})
        log_metrics.update(E.flat_numeric({"periods": counts}))
        for key in ("xgb_only", "anomaly_only", "blend", "max"):
            value = info["blend"].get(key)
            if isinstance(value, float) and math.isfinite(value):
                log_metrics[f"valid.{key}.{info['blend'].get('metric')}"] = value

        def decide() -> dict:
            decision = R.promotion_decision(
                challenger_metric,
                champion_metric,
                champion_exists=champion is not None,
                margin=float(promo.get("margin", 0.0)),
                metric=metric_name,
            )
            if "unknown_perpetrators" in metrics:  # generator truth: shown beside the decision, not deciding it
                decision["challenger_unknown_perpetrators"] = _clean_json(metrics["unknown_perpetrators"])
            return decision

        decision = R.log_and_register(
            settings,
            bundle=bundle,
            params=logged_params,
            metrics=log_metrics,
            artifacts_dir=art,
            input_example=example,
            decide=decide,
            tags={"claimsentry.model_kind": bundle.model_kind},
        )
    return {
        "model_version": decision["model_version"],
        "run_id": decision["run_id"],
        "decision": decision["decision"],
        "promotion": decision,
        "metrics": _clean_json(metrics),
    }


def train_from_input(
    spark: SparkSession,
    input_dir: str,
    settings,
    *,
    labels_path: str | None = None,
    provider_labels_path: str | None = None,
    as_of: dt.date | None = None,
) -> dict:
    """Gate -> features -> train/evaluate/register. Returns model_version, run_id, decision, metrics,
    and labels_from_dispositions: how many labels came from audit cases — findings recorded with
    ``claimsentry cases event`` or dispositions imported by ``claimsentry feedback`` — which replace
    the input's label of the same claim."""
    from claimsentry import cases
    from claimsentry.features.assemble import build_claim_features
    from claimsentry.policy import store as policy_store
    from claimsentry.jobs.validate import run_gate

    as_of = as_of or dt.date.today()  # entry point: the run's as-of date
    tmp_root = settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="gate-") as checkpoint:
        # Accepted tables checkpointed as Parquet: features read typed rows, not the gate's lineage.
        gate = run_gate(
            spark,
            input_dir,
            settings,
            as_of=as_of,
            checkpoint_dir=checkpoint,
            labels_path=labels_path,
            provider_labels_path=provider_labels_path,
        )
        feedback = cases.feedback_labels(cases.history_dir(settings), as_of)
        labels = cases.with_feedback_labels(spark, gate.tables.get("labels"), feedback)
        fs = build_claim_features(spark, gate.tables, settings, quarantine=gate.quarantine,
                                  references=policy_store.load_current(spark, settings))
        try:
            result = train_from_features(
                spark,
                fs.frame,
                fs.feature_cols,
                settings,
                labels=labels,
                provider_labels=gate.tables.get("provider_labels"),
                truth=read_truth(spark, input_dir),
                descriptions=fs.descriptions,
                run_params={
                    "input_dir": str(input_dir),
                    "features_unavailable": ",".join(fs.unavailable) or "none",
                    "labels_from_dispositions": len(feedback),
                },
            )
        finally:
            fs.release()
            gate.release()  # the small group-rule frames it persisted over the checkpoint
    return {**result, "labels_from_dispositions": len(feedback)}


def configure_parser(parser) -> None:
    parser.add_argument("--input", required=True, help="claims directory (medical_claim, pharmacy_claim, eligibility[, labels])")
    parser.add_argument("--labels", help="audit labels file (default: labels in the input directory, if any)")
    parser.add_argument("--provider-labels", help="provider labels file (default: provider_labels in the input directory)")
    parser.add_argument("--as-of", help="YYYY-MM-DD as-of date for the data-quality gate (default: today)")


def run_from_cli(args, settings) -> int:
    from claimsentry.spark import get_spark

    if not Path(args.input).is_dir() and "://" not in args.input:
        raise InputError(f"input directory not found: {args.input}")
    as_of = None
    if getattr(args, "as_of", None):
        try:
            as_of = dt.date.fromisoformat(args.as_of)
        except ValueError:
            raise InputError(f"--as-of must be YYYY-MM-DD, got {args.as_of!r}") from None
    spark = get_spark(settings)
    result = train_from_input(
        spark, args.input, settings, labels_path=args.labels, provider_labels_path=args.provider_labels, as_of=as_of
    )
    print(training_summary(result))
    return 0


def training_summary(result: Mapping[str, Any]) -> str:
    """The lines ``claimsentry train`` prints: the decision, the held-out figures, where the split put
    the periods and, with generator truth, the recall for perpetrators nobody labelled, per scheme."""
    m = result["metrics"]
    p = result.get("promotion") or {"decision": result.get("decision"), "reason": result.get("reason", "")}
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    split = m.get("split") or {}
    test = (m.get("periods") or {}).get("test", {})
    lines = [
        f"trained {result['model_version']} (run {result['run_id']}): {p['decision']}: {p['reason']}; "
        f"{result.get('labels_from_dispositions', 0)} labels from audit cases (findings and dispositions); "
        f"test roc_auc {fmt(m.get('roc_auc'))}, pr_auc {fmt(m.get('pr_auc'))}, "
        f"recall@{m.get('capacity')} {fmt(m.get('recall_at_capacity'))} ({m.get('ground_truth')})",
        f"split: test from {split.get('test_start')} ({test.get('claims', 0)} claims, {test.get('audited', 0)} audited; "
        f"dates from {split.get('dates_from', 'all claims')}); validation: {split.get('validation', 'time window')}",
    ]
    if m.get("audit_labels", {}).get("note"):
        lines.append(f"audit labels: {m['audit_labels']['note']}")
    u = m.get("unknown_perpetrators")
    if u:
        lines.append(
            f"perpetrators never labelled ({u['n_improper_never_labelled']} improper claims in the test period): "
            f"recall in the top 5% {fmt(u.get('recall_top5_never_labelled'))}, lowest scheme "
            f"{fmt(u.get('min_recall_top5_never_labelled'))}; precision top 1% {fmt(u.get('precision_top1'))}; "
            f"look-alikes in the top 5% {fmt(u.get('lookalike_share_top5'))}"
        )
        lines.append("  by scheme: " + ", ".join(f"{k} {v:.2f}" for k, v in u["recall_top5_never_labelled_by_scheme"].items()))
    return "\n".join(lines)
