"""Score claims with a model bundle, in Spark (an iterator pandas UDF): nothing claim-sized reaches the driver.

Per claim (grain unchanged: one row per claim_id, claim_source):

- ``model_score``: the XGBoost booster's score in [0, 1] (a probability for a classifier; for a
  no-labels model, the distilled anomaly score);
- ``anomaly_score``: the unsupervised peer score (``claimsentry.models.anomaly``);
- ``score``: ``calibration(w * model_score + (1 - w) * anomaly_score)``, ``w`` the blend weight chosen on
  validation; with labels it reads as a probability that an audit confirms the claim improper;
- ``contributions`` (null when ``top_k`` = 0; ``explain_pandas`` adds them to a bounded frame,
  e.g. the queued claims): the ``top_k`` largest positive per-feature contributions, as
  array<struct<feature, contribution>>: SHAP values in log-odds from
  ``booster.predict(DMatrix, pred_contribs=True)`` when the booster is in the score (w > 0), else the
  anomaly's capped robust z-scores.

The booster travels to executors as its raw JSON bytes (``save_raw("json")``), the rest as JSON-able
dicts: no pickled model objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    StringType,
    StructField,
    StructType,
)

from claimsentry.errors import InputError
from claimsentry.models.anomaly import anomaly_score
from claimsentry.models.train import apply_calibration, blend_scores, percentile_of

CONTRIBUTION_TYPE = ArrayType(
    StructType([StructField("feature", StringType()), StructField("contribution", DoubleType())])
)
CERTAIN_SCORE = 0.995  # lowest score of a claim that breaks a certain rule
UNCERTAIN_CAP = 0.99  # any other claim's score is scaled into [0, this]
SCORE_FIELDS = [
    StructField("score", DoubleType()),
    StructField("model_score", DoubleType()),
    StructField("anomaly_score", DoubleType()),
    StructField("model_version", StringType()),
    StructField("contributions", CONTRIBUTION_TYPE),
]


@dataclass
class ModelBundle:
    """Everything scoring needs. ``config`` is plain JSON (logged as ``bundle/scoring.json``)."""

    booster: xgb.Booster
    feature_cols: list[str]
    calibration: dict
    anomaly: dict
    blend_weight: float
    version: str
    run_id: str | None = None
    model_kind: str = "classifier"  # classifier | anomaly_distilled (no labels)
    extra: dict = field(default_factory=dict)

    @property
    def contribution_source(self) -> str:
        if self.extra.get("blend_method") == "max":
            return "booster or anomaly, whichever gave the score"
        return "booster" if self.blend_weight > 0 else "anomaly"

    def scoring_config(self) -> dict:
        return {
            "feature_cols": list(self.feature_cols),
            "calibration": self.calibration,
            "anomaly": self.anomaly,
            "blend_weight": float(self.blend_weight),
            "model_kind": self.model_kind,
            "contribution_source": self.contribution_source,
            **self.extra,
        }

    @classmethod
    def from_config(cls, booster: xgb.Booster, config: dict, *, version: str, run_id: str | None) -> "ModelBundle":
        known = {"feature_cols", "calibration", "anomaly", "blend_weight", "model_kind", "contribution_source"}
        return cls(
            booster=booster,
            feature_cols=list(config["feature_cols"]),
            calibration=config["calibration"],
            anomaly=config["anomaly"],
            blend_weight=float(config["blend_weight"]),
            version=version,
            run_id=run_id,
            model_kind=config.get("model_kind", "classifier"),
            extra={k: v for k, v in config.items() if k not in known},
        )


def _top_positive(values: np.ndarray, names: list[str], top_k: int) -> list[list[dict]]:
    """Per row: up to ``top_k`` (feature, value) with value > 0, largest first."""
    if values.shape[1] == 0 or top_k <= 0:
        return [[] for _ in range(values.shape[0])]
    k = min(top_k, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    out = []
    for i in range(values.shape[0]):
        row = []
        for j in order[i]:
            v = float(values[i, j])
            if v > 0:
                row.append({"feature": names[j], "contribution": v})
        out.append(row)
    return out


def _contributions(
    booster: xgb.Booster, dm: xgb.DMatrix, z: np.ndarray, config: dict, top_k: int, anomaly_decides: np.ndarray | None = None
) -> list[list[dict]]:
    """Per claim, what decided its score: the booster's top positive SHAP contributions, or the
    anomaly's most surprising features (``z``). Linear blend: the booster when it is in the score
    at all; ``max`` blend: whichever side gave the claim its score (``anomaly_decides``)."""
    anomaly = _top_positive(z, config["anomaly"]["feature_cols"], top_k)
    if config.get("blend_method") != "max" and float(config["blend_weight"]) <= 0:
        return anomaly
    contribs = booster.predict(dm, pred_contribs=True)[:, :-1]  # last column is the bias
    shap = _top_positive(contribs, config["feature_cols"], top_k)
    if config.get("blend_method") == "max" and anomaly_decides is not None:
        return [a if decide else s for a, s, decide in zip(anomaly, shap, anomaly_decides)]
    return shap


def _anomaly_decides(model_score: np.ndarray, anomaly: np.ndarray, config: dict) -> np.ndarray:
    """Rows whose ``max`` blend score came from the anomaly side."""
    return np.asarray(anomaly) >= percentile_of(model_score, config.get("model_cdf") or [0.0])


def _matrix(pdf: pd.DataFrame, feats: list[str]) -> xgb.DMatrix:
    x = pdf[feats].astype("float64").to_numpy() if feats else np.zeros((len(pdf), 0))
    return xgb.DMatrix(x, feature_names=list(feats), missing=np.nan)


def score_arrays(pdf: pd.DataFrame, booster: xgb.Booster, config: dict) -> dict[str, np.ndarray]:
    """score, model_score and anomaly_score of a pandas batch (claim grain), plus the anomaly's z
    matrix. The booster predicts in place on a dense float matrix (no DMatrix): the same trees on
    the same values, a third of the batch's cost in the UDF."""
    feats = config["feature_cols"]
    x = pdf[feats].to_numpy(dtype="float64") if feats else np.zeros((len(pdf), 0))
    pred = booster.inplace_predict(x, missing=np.nan).astype("float64")
    model_score = pred if config.get("model_kind", "classifier") == "classifier" else np.clip(pred, 0.0, 1.0)
    anomaly, z = anomaly_score(pdf, config["anomaly"])
    score = apply_calibration(blend_scores(model_score, anomaly, config), config["calibration"])
    score = certain_tier(score, pdf, config.get("certain_rules") or [])
    return {"score": score, "model_score": model_score, "anomaly_score": anomaly, "z": z}


def certain_tier(score: np.ndarray, pdf: pd.DataFrame, certain_rules: list[str]) -> np.ndarray:
    """A claim that breaks a ``certain`` rule (service after death, outside enrollment, the later copy
    of an exact duplicate) is an improper
    payment on its face: it scores in [CERTAIN_SCORE, 1], above every other claim, whose score is
    scaled into [0, UNCERTAIN_CAP] (scaled, not capped: a cap made every claim above it tie, and the
    queue then ordered them by claim id). Within each tier the order of ``score`` is kept, strictly."""
    cols = [c for c in certain_rules if c in pdf]
    if not cols:
        return score
    hit = (np.nan_to_num(pdf[cols].to_numpy(dtype="float64"), nan=0.0) > 0).any(axis=1)
    return np.where(hit, CERTAIN_SCORE + (1.0 - CERTAIN_SCORE) * score, UNCERTAIN_CAP * score)


def _score_fields(pdf: pd.DataFrame, booster: xgb.Booster, config: dict, *, version: str, top_k: int) -> pd.DataFrame:
    """The ``SCORE_FIELDS`` of a pandas batch, on its index; contributions only when ``top_k`` > 0."""
    scores = score_arrays(pdf, booster, config)
    contributions = None
    if top_k > 0:
        decides = _anomaly_decides(scores["model_score"], scores["anomaly_score"], config)
        contributions = _contributions(booster, _matrix(pdf, config["feature_cols"]), scores["z"], config, top_k, decides)
    return pd.DataFrame(
        {
            "score": scores["score"],
            "model_score": scores["model_score"],
            "anomaly_score": scores["anomaly_score"],
            "model_version": version,
            "contributions": contributions,
        },
        index=pdf.index,
    )


def score_pandas(pdf: pd.DataFrame, booster: xgb.Booster, config: dict, *, version: str, top_k: int = 5) -> pd.DataFrame:
    """Add the score columns to a pandas batch (claim grain). Pure; ``score_claims``' UDF returns
    the score columns alone. ``top_k`` = 0: no contributions (null), the per-claim SHAP pass is skipped."""
    out = pdf.copy()
    for name, column in _score_fields(pdf, booster, config, version=version, top_k=top_k).items():
        out[name] = column
    return out


def explain_pandas(pdf: pd.DataFrame, bundle: "ModelBundle", top_k: int = 5) -> pd.DataFrame:
    """``pdf`` (claims already scored, with the bundle's feature columns) with ``contributions``
    computed: the queue explains only the claims it shows (bounded rows), so the SHAP pass never
    runs over every scored claim."""
    config = bundle.scoring_config()
    out = pdf.copy()
    if out.empty:
        out["contributions"] = pd.Series([], dtype=object)
        return out
    dm = _matrix(out, config["feature_cols"])
    anomaly, z = anomaly_score(out.reset_index(drop=True), config["anomaly"])
    decides = _anomaly_decides(out["model_score"].to_numpy(dtype="float64"), anomaly, config) if "model_score" in out else None
    out["contributions"] = _contributions(bundle.booster, dm, z, config, top_k, decides)
    return out


def score_claims(features_df: DataFrame, bundle: ModelBundle, top_k: int = 5) -> DataFrame:
    """``features_df`` (one row per claim_id, claim_source; the bundle's feature columns plus
    claim_source and peer_group) with score, model_score, anomaly_score, model_version and
    contributions added. Lazy: runs where the caller writes the result."""
    # What the model reads: the only columns sent to Python (peer_group may be absent: null below).
    inputs = list(dict.fromkeys([*bundle.feature_cols, *bundle.anomaly.get("feature_cols", []), "claim_source", "peer_group"]))
    missing = [c for c in inputs if c != "peer_group" and c not in features_df.columns]
    if missing:
        raise InputError(
            f"model {bundle.version} needs columns missing from the claim features: {', '.join(missing[:10])}"
            + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        )
    df = features_df
    if "peer_group" not in df.columns:
        df = df.withColumn("peer_group", F.lit(None).cast("string"))
    drop = [f.name for f in SCORE_FIELDS if f.name in df.columns]
    df = df.drop(*drop)
    raw = bytes(bundle.booster.save_raw("json"))
    config_json = json.dumps(bundle.scoring_config())
    version = bundle.version
    try:
        shared = df.sparkSession.sparkContext.broadcast((raw, config_json))
        get = lambda: shared.value  # noqa: E731
    except Exception:  # Spark Connect has no SparkContext: ship the bytes in the closure
        payload = (raw, config_json)
        get = lambda: payload  # noqa: E731
    # Only the inputs cross to Python and only the score fields come back; the claim's other columns
    # stay in the JVM (measured at 1M lines: mapInPandas over every column, 10 s).
    names = [f.name for f in SCORE_FIELDS]

    def _score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        booster_bytes, cfg_json = get()
        booster = xgb.Booster()
        booster.load_model(bytearray(booster_bytes))
        cfg = json.loads(cfg_json)
        for pdf in batches:  # only the score columns go back: no copy of the inputs
            yield _score_fields(pdf, booster, cfg, version=version, top_k=top_k)[names]

    # Non-deterministic in Spark's eyes only, so the optimizer never inlines one call per field.
    udf = F.pandas_udf(_score, StructType(SCORE_FIELDS)).asNondeterministic()
    scored = df.withColumn("_scored", udf(F.struct(*[F.col(f"`{c}`") for c in inputs])))
    return scored.select(*[F.col(f"`{c}`") for c in df.columns], *[F.col(f"_scored.{n}").alias(n) for n in names])
