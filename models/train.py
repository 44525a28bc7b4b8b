"""Fit the supervised model, its calibration and the blend with the anomaly score. Pure functions on
pandas/numpy; no files, sessions or MLflow.

Frames passed in are claim grain (one row per claim_id, claim_source) with the feature columns plus
``target`` (0/1) and ``sample_weight`` from ``claimsentry.models.dataset.training_frame``.
Calibration is stored as plain JSON numbers (isotonic breakpoints or Platt coefficients), never pickled.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xgboost as xgb

from claimsentry.models.evaluate import average_precision, roc_auc

BOOSTER_KEYS = {
    "objective",
    "eval_metric",
    "tree_method",
    "max_depth",
    "eta",
    "subsample",
    "colsample_bytree",
    "min_child_weight",
    "reg_lambda",
    "reg_alpha",
    "gamma",
    "seed",
    "nthread",
    "max_bin",
}


def matrix(pdf: pd.DataFrame, feature_cols: list[str], *, with_target: bool = True) -> xgb.DMatrix:
    """DMatrix of the feature columns (nulls are XGBoost's missing values)."""
    x = pdf[feature_cols].astype("float64").to_numpy() if len(feature_cols) else np.zeros((len(pdf), 0))
    kwargs: dict[str, Any] = {"feature_names": list(feature_cols), "missing": np.nan}
    if with_target:
        kwargs["label"] = pdf["target"].astype("float64").to_numpy()
        kwargs["weight"] = pdf["sample_weight"].astype("float64").to_numpy()
    return xgb.DMatrix(x, **kwargs)


def scale_pos_weight(target: np.ndarray, weight: np.ndarray, setting: Any = "auto") -> float:
    """``auto``: weighted negatives / weighted positives (imbalance handling); else the number given."""
    if setting not in (None, "auto"):
        return float(setting)
    pos = float(np.sum(weight[target == 1]))
    neg = float(np.sum(weight[target == 0]))
    return neg / pos if pos > 0 else 1.0


def fit_booster(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    feature_cols: list[str],
    params: Mapping[str, Any],
) -> tuple[xgb.Booster, dict]:
    """XGBoost with early stopping on the validation period. Returns (booster, info) where info holds
    the booster parameters used, best_iteration and the validation score at it."""
    dtrain = matrix(train, feature_cols)
    dvalid = matrix(valid, feature_cols)
    booster_params = {k: v for k, v in params.items() if k in BOOSTER_KEYS}
    booster_params["scale_pos_weight"] = scale_pos_weight(
        dtrain.get_label(), dtrain.get_weight(), params.get("scale_pos_weight", "auto")
    )
    booster_params.setdefault("verbosity", 0)
    has_valid = len(valid) > 0 and valid["target"].nunique() > 1
    evals = [(dvalid, "valid")] if has_valid else []
    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=int(params.get("num_boost_round", 400)),
        evals=evals,
        early_stopping_rounds=int(params.get("early_stopping_rounds", 30)) if has_valid else None,
        verbose_eval=False,
    )
    best_iteration = getattr(booster, "best_iteration", None)
    best_score = getattr(booster, "best_score", None)
    if has_valid and best_iteration is not None:
        booster = booster[: best_iteration + 1]  # keep only the trees up to the early-stopping point
    info = {
        "booster_params": booster_params,
        "best_iteration": int(best_iteration) if best_iteration is not None else booster.num_boosted_rounds() - 1,
        "best_valid_score": float(best_score) if has_valid and best_score is not None else None,
        "early_stopped_on_valid": has_valid,
    }
    return booster, info


def search_booster(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    feature_cols: list[str],
    params: Mapping[str, Any],
    grid: Mapping[str, list],
) -> tuple[xgb.Booster, dict, list[dict]]:
    """Grid search: each candidate early-stopped on validation, ranked by validation PR-AUC (weighted
    PU rows included, as in early stopping). Returns (best booster, its info, all results)."""
    names = sorted(grid)
    results, best = [], None
    for combo in itertools.product(*(grid[n] for n in names)):
        candidate = {**params, **dict(zip(names, combo))}
        booster, info = fit_booster(train, valid, feature_cols, candidate)
        p = predict_model_score(booster, valid, feature_cols, "classifier")
        score = average_precision(valid["target"].to_numpy(), p, valid["sample_weight"].to_numpy())
        results.append({**dict(zip(names, combo)), "valid_pr_auc": score, "best_iteration": info["best_iteration"]})
        if best is None or (score > best[0]):
            best = (score, booster, {**info, "search": dict(zip(names, combo))})
    return best[1], best[2], results


def fit_distilled(pdf: pd.DataFrame, feature_cols: list[str], target: np.ndarray, params: Mapping[str, Any]) -> xgb.Booster:
    """No labels: a small XGBoost regressor that reproduces the anomaly score from the features, so the
    registered model is still an XGBoost model and its SHAP contributions explain the queue."""
    booster_params = {k: v for k, v in params.items() if k in BOOSTER_KEYS and k not in ("objective", "eval_metric")}
    booster_params.update({"objective": "reg:squarederror", "eval_metric": "rmse", "verbosity": 0})
    d = xgb.DMatrix(pdf[feature_cols].astype("float64").to_numpy(), label=target, feature_names=list(feature_cols), missing=np.nan)
    return xgb.train(booster_params, d, num_boost_round=min(int(params.get("num_boost_round", 400)), 200))


def predict_model_score(booster: xgb.Booster, pdf: pd.DataFrame, feature_cols: list[str], model_kind: str) -> np.ndarray:
    """The booster's own score in [0, 1]: probability (classifier) or the distilled anomaly, clipped."""
    pred = booster.predict(matrix(pdf, feature_cols, with_target=False))
    return np.clip(pred.astype("float64"), 0.0, 1.0) if model_kind != "classifier" else pred.astype("float64")


# --- calibration --------------------------------------------------------------------------------


def fit_calibration(
    raw: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    method: str = "isotonic",
    min_positives: int = 5,
) -> dict:
    """Map a raw score in [0, 1] to a probability, fitted on the validation period. Returns JSON:
    ``{"method": "isotonic", "x": [...], "y": [...]}`` (non-decreasing breakpoints, linear between)
    or ``{"method": "platt", "a": .., "b": ..}`` (p = 1 / (1 + exp(-(a * logit(raw) + b))))
    or ``{"method": "identity"}`` when there is nothing to fit on (no labels or one class)."""
    raw = np.asarray(raw, dtype="float64")
    target = np.asarray(target, dtype="float64")
    weight = np.ones_like(raw) if weight is None else np.asarray(weight, dtype="float64")
    n_pos = int(np.sum(target == 1))
    if len(raw) == 0 or n_pos == 0 or n_pos == len(raw):
        return {"method": "identity", "reason": "validation period has a single class"}
    if method == "isotonic" and n_pos >= min_positives:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(raw, target, sample_weight=weight)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(_logit(raw).reshape(-1, 1), target.astype(int), sample_weight=weight)
    return {"method": "platt", "a": float(lr.coef_[0][0]), "b": float(lr.intercept_[0])}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def apply_calibration(raw: np.ndarray, calibration: Mapping[str, Any]) -> np.ndarray:
    """Calibrated probability in [0, 1]; monotone non-decreasing in ``raw``."""
    raw = np.asarray(raw, dtype="float64")
    method = calibration.get("method", "identity")
    if method == "isotonic":
        out = np.interp(raw, np.asarray(calibration["x"]), np.asarray(calibration["y"]))
    elif method == "platt":
        a, b = float(calibration["a"]), float(calibration["b"])
        if a < 0:  # a decreasing fit would invert the ranking; keep it monotone
            a = 0.0
        out = 1.0 / (1.0 + np.exp(-(a * _logit(raw) + b)))
    else:
        out = raw
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


# --- blend --------------------------------------------------------------------------------------


def blend(model_score: np.ndarray, anomaly: np.ndarray, weight: float) -> np.ndarray:
    """Raw blended score: ``weight * model_score + (1 - weight) * anomaly_score``."""
    return float(weight) * np.asarray(model_score, dtype="float64") + (1.0 - float(weight)) * np.asarray(anomaly, dtype="float64")


CDF_TOP = 0.995  # the stored CDF of a model score ends at this quantile; above it percentile_of extrapolates


def score_cdf(values: np.ndarray, points: int = 200) -> list[float]:
    """Empirical CDF of a score in [0, 1]: its quantiles at ``points + 1`` probabilities evenly from 0
    to ``CDF_TOP`` (plain JSON numbers)."""
    values = np.asarray(values, dtype="float64")
    values = values[~np.isnan(values)]
    if not len(values):
        return [0.0]
    return [float(q) for q in np.quantile(values, np.linspace(0.0, CDF_TOP, points + 1))]


def percentile_of(values: np.ndarray, cdf: list[float]) -> np.ndarray:
    """Share of the CDF's population below each value, in [0, 1]: interpolated on the grid, and above
    its top quantile rising on to 1 as the score approaches 1, so the highest scores keep their order."""
    grid = np.asarray(cdf or [0.0], dtype="float64")
    values = np.asarray(values, dtype="float64")
    if len(grid) < 2:
        return np.clip((values > grid[0]).astype("float64"), 0.0, 1.0)
    probs = np.linspace(0.0, CDF_TOP, len(grid))
    out = np.interp(values, grid, probs)
    top = values > grid[-1]
    room = max(1.0 - grid[-1], 1e-12)
    out[top] = CDF_TOP + (1.0 - CDF_TOP) * np.clip((values[top] - grid[-1]) / room, 0.0, 1.0)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def blend_scores(model_score: np.ndarray, anomaly: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """The raw score the chosen blend gives: ``linear`` (weight ``blend_weight`` on the model; on the
    model's percentile when its ``model_cdf`` is known, else on its probability), or ``max``: the
    higher of the model's percentile and the anomaly percentile, so a claim either model puts at its
    extreme comes first, whatever the other says."""
    if config.get("blend_method") == "max":
        return np.maximum(percentile_of(model_score, config.get("model_cdf") or [0.0]), np.asarray(anomaly, dtype="float64"))
    if config.get("model_cdf"):  # both sides as percentiles: a weight means the same on each
        model_score = percentile_of(model_score, config["model_cdf"])
    return blend(model_score, anomaly, float(config.get("blend_weight", 1.0)))


def _paired_bootstrap_se(label: np.ndarray, a: np.ndarray, b: np.ndarray, fn, groups: np.ndarray | None,
                         rounds: int, seed: int) -> float:
    """Standard error of ``fn(label, a) - fn(label, b)`` over ``rounds`` bootstrap resamples of the
    groups (whole groups drawn with replacement) or, without groups, of the rows. Resamples without
    both classes are skipped."""
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.array([i]) for i in range(len(label))]
    else:
        _, inverse = np.unique(groups.astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    diffs = []
    for _ in range(rounds):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        y = label[pick]
        if y.min() == y.max():
            continue
        diffs.append(fn(y, a[pick]) - fn(y, b[pick]))
    return float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("inf")


def choose_blend(
    model_score: np.ndarray,
    anomaly: np.ndarray,
    label: np.ndarray,
    *,
    weights: list[float],
    metric: str = "pr_auc",
    model_cdf: list[float] | None = None,
    prefer_max_within_se: float | None = None,
    groups: np.ndarray | None = None,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict:
    """Compare xgb-only (w=1), anomaly-only (w=0), the best intermediate linear blend and, given the
    model score's ``model_cdf``, the maximum of the two percentiles, on audited validation claims
    (``label`` NaN = unaudited, ignored). Ties go to the linear blend with the higher model weight.

    ``prefer_max_within_se``: keep the max of percentiles unless the best candidate beats it by
    more than this many standard errors of their difference, from a paired bootstrap over
    ``groups`` (the claims' billing providers: validation holds out whole providers, and few of
    them carry most of the positives) or over claims without groups. The one-standard-error rule:
    with few perpetrators in validation, a candidate that wins by less than its noise is not better,
    and the max keeps what either side finds at its extreme — the labelled schemes the model learnt
    and the never-labelled ones only the anomaly score sees.

    Returns {"method", "weight", "winner", "metric", "by_weight": {w: value}, "xgb_only",
    "anomaly_only", "blend", "max", "max_kept": {...} when the rule decided}."""
    label = np.asarray(label, dtype="float64")
    known = ~np.isnan(label)
    fn = roc_auc if metric == "roc_auc" else average_precision
    ws = sorted({float(w) for w in weights} | {0.0, 1.0})
    by_weight = {}
    for w in ws:
        combined = blend_scores(model_score, anomaly, {"blend_method": "linear", "blend_weight": w, "model_cdf": model_cdf})
        by_weight[w] = fn(label[known], combined[known]) if known.any() else float("nan")
    finite = {w: v for w, v in by_weight.items() if not math.isnan(v)}
    if not finite:
        best_w = 1.0
    else:
        best_w = max(finite, key=lambda w: (round(finite[w], 12), w))
    mids = {w: v for w, v in by_weight.items() if 0.0 < w < 1.0 and not math.isnan(v)}
    best_mid = max(mids, key=lambda w: (round(mids[w], 12), w)) if mids else None
    winner = "xgb_only" if best_w == 1.0 else "anomaly_only" if best_w == 0.0 else "blend"
    method, max_value, kept = "linear", None, None
    if model_cdf is not None:
        combined = blend_scores(model_score, anomaly, {"blend_method": "max", "model_cdf": model_cdf})
        max_value = fn(label[known], combined[known]) if known.any() else float("nan")
        if not math.isnan(max_value) and (not finite or round(max_value, 12) > round(finite[best_w], 12)):
            method, winner = "max", "max_of_percentiles"
        elif not math.isnan(max_value) and prefer_max_within_se is not None and finite:
            best = blend_scores(model_score, anomaly, {"blend_method": "linear", "blend_weight": best_w, "model_cdf": model_cdf})
            se = _paired_bootstrap_se(label[known], best[known], combined[known], fn,
                                      None if groups is None else np.asarray(groups)[known], bootstrap, seed)
            gap = finite[best_w] - max_value
            kept = {"gap": gap, "se": se, "within": bool(gap <= prefer_max_within_se * se), "beaten_by": winner}
            if kept["within"]:
                method, winner = "max", "max_of_percentiles"
    return {
        "max_kept": kept,
        "method": method,
        "max": max_value,
        "weight": best_w,
        "winner": winner,
        "metric": metric,
        "by_weight": {str(w): v for w, v in by_weight.items()},
        "xgb_only": by_weight[1.0],
        "anomaly_only": by_weight[0.0],
        "blend": by_weight[best_mid] if best_mid is not None else None,
        "blend_weight": best_mid,
    }
