"""Distributed training with ``xgboost.spark`` (``model.distributed: true``).

Same inputs and outputs as ``claimsentry.models.train.fit_booster`` but the training rows stay in Spark:
the PU training frame (claim grain, ``target``/``sample_weight`` set for train and valid rows) is fed to
``SparkXGBClassifier`` with the validation period as its validation indicator (early stopping). The
fitted model's booster is returned for calibration, SHAP and MLflow exactly like a single-node one.
"""

from __future__ import annotations

from typing import Any, Mapping

import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# conf/model.yaml booster names -> XGBoost sklearn-API names (what SparkXGBClassifier takes)
SKLEARN_NAMES = {
    "max_depth": "max_depth",
    "eta": "learning_rate",
    "subsample": "subsample",
    "colsample_bytree": "colsample_bytree",
    "min_child_weight": "min_child_weight",
    "reg_lambda": "reg_lambda",
    "reg_alpha": "reg_alpha",
    "gamma": "gamma",
    "tree_method": "tree_method",
    "eval_metric": "eval_metric",
    "seed": "random_state",
    "max_bin": "max_bin",
}


def fit_spark(
    frame: DataFrame,
    feature_cols: list[str],
    params: Mapping[str, Any],
    *,
    scale_pos_weight: float,
    num_workers: int = 1,
) -> tuple[xgb.Booster, dict]:
    """Train on rows of periods ``train`` and ``valid`` with a non-null ``target``; early stopping on
    ``valid``. Returns (booster, info) like ``fit_booster``."""
    from xgboost.spark import SparkXGBClassifier

    rows = frame.where(F.col("period").isin("train", "valid") & F.col("target").isNotNull()).select(
        *[F.col(c).cast("double").alias(c) for c in feature_cols],
        F.col("target").cast("double").alias("target"),
        F.col("sample_weight").cast("double").alias("sample_weight"),
        (F.col("period") == "valid").alias("is_valid"),
    )
    kwargs = {SKLEARN_NAMES[k]: v for k, v in params.items() if k in SKLEARN_NAMES}
    # SparkXGBClassifier fixes the objective itself (binary:logistic for two classes)
    estimator = SparkXGBClassifier(
        features_col=list(feature_cols),
        label_col="target",
        weight_col="sample_weight",
        validation_indicator_col="is_valid",
        num_workers=int(num_workers),
        n_estimators=int(params.get("num_boost_round", 400)),
        early_stopping_rounds=int(params.get("early_stopping_rounds", 30)),
        scale_pos_weight=float(scale_pos_weight),
        missing=float("nan"),
        **kwargs,
    )
    model = estimator.fit(rows)
    booster = model.get_booster()
    booster.feature_names = list(feature_cols)
    best = getattr(booster, "best_iteration", None)
    info = {
        "booster_params": {**kwargs, "scale_pos_weight": scale_pos_weight, "num_workers": num_workers},
        "best_iteration": int(best) if best is not None else booster.num_boosted_rounds() - 1,
        "best_valid_score": None,
        "early_stopped_on_valid": True,
        "distributed": True,
    }
    return booster, info


def weighted_scale_pos_weight(frame: DataFrame, setting: Any = "auto") -> float:
    """``auto``: weighted negatives / weighted positives over the train period (one aggregation)."""
    if setting not in (None, "auto"):
        return float(setting)
    row = (
        frame.where((F.col("period") == "train") & F.col("target").isNotNull())
        .agg(
            F.sum(F.when(F.col("target") == 1, F.col("sample_weight"))).alias("pos"),
            F.sum(F.when(F.col("target") == 0, F.col("sample_weight"))).alias("neg"),
        )
        .first()
    )
    pos, neg = (row["pos"] or 0.0), (row["neg"] or 0.0)
    return neg / pos if pos > 0 else 1.0
