"""Unsupervised anomaly score from the model's features: robust z-scores against peers, aggregated.

Works with no labels at all (a new payer): every claim is compared with the claims of its peer group
(same ``claim_source`` and ``peer_group``: DRG, costliest HCPCS code or NDC), or with all claims of its
claim source when the peer group is small. Per feature:

    z = (value - peer median) / peer scale,   scale = 1.4826 * MAD  (the normal-consistent MAD),
    falling back to 1.2533 * mean absolute deviation when the MAD is 0 (a mostly-constant feature such
    as a 0/1 rule flag; 1.2533 = sqrt(pi/2) makes it normal-consistent too); features constant in a
    group are skipped there.

With ``direction: upper`` only values above the peer median count (features are built so that higher
means more suspicious); z is capped at ``z_cap``. The claim's raw anomaly is the mean of its ``top_n``
largest z-scores, and the published ``anomaly_score`` is its percentile among training claims
(empirical CDF, ``quantiles`` points): 0.97 reads "more anomalous than 97 % of claims".

``exclude_features`` (optional list) leaves features out of the anomaly score, e.g. volume features
(``provider_claim_count``): a large hospital is far above its DRG peers on volume on every claim, which
is size, not anomaly (DE-SynPUF sample 1: the top volume decile got 94 % of its claims above 0.5).

The fitted model is plain JSON (medians, scales, quantiles): no pickled objects.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from claimsentry.exact import exact_avg

MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal distribution times this is its standard deviation
PERCENTILE_ACCURACY = 100  # percentile_approx accuracy: relative rank error 1/100, small per-group buffers
MEANAD_TO_SD = 1.2533  # sqrt(pi/2): mean absolute deviation of a normal times this is its standard deviation
GLOBAL = "__global__"  # peer-group key for the claim source's global statistics


def _group_stats(frame: DataFrame, group_cols: list[str], feature_cols: list[str]) -> list[dict]:
    """Median and robust scale per group and feature (two Spark aggregations). One row per group."""
    med_aggs = [F.percentile_approx(F.col(f).cast("double"), 0.5, PERCENTILE_ACCURACY).alias(f"m__{i}") for i, f in enumerate(feature_cols)]
    medians = frame.groupBy(*group_cols).agg(F.count(F.lit(1)).alias("n"), *med_aggs)
    dev = frame.join(medians, group_cols, "inner").select(
        *group_cols,
        *[F.abs(F.col(f).cast("double") - F.col(f"m__{i}")).alias(f"d__{i}") for i, f in enumerate(feature_cols)],
    )
    dev_aggs = []
    for i in range(len(feature_cols)):
        dev_aggs.append(F.percentile_approx(f"d__{i}", 0.5, PERCENTILE_ACCURACY).alias(f"mad__{i}"))
        dev_aggs.append(exact_avg(f"d__{i}").alias(f"mean__{i}"))
    scales = dev.groupBy(*group_cols).agg(*dev_aggs)
    out = []
    for row in medians.join(scales, group_cols, "inner").collect():  # one row per peer group
        stats = {}
        for i, f in enumerate(feature_cols):
            med, mad, mean_ad = row[f"m__{i}"], row[f"mad__{i}"], row[f"mean__{i}"]
            if med is None:
                continue
            scale = MAD_TO_SD * mad if mad else (MEANAD_TO_SD * mean_ad if mean_ad else 0.0)
            if scale > 0:
                stats[f] = [float(med), float(scale)]
        out.append({**{c: row[c] for c in group_cols}, "n": int(row["n"]), "stats": stats})
    return out


def fit_anomaly(frame: DataFrame, feature_cols: list[str], params: Mapping[str, Any]) -> dict:
    """Fit the peer statistics and the score's empirical CDF on ``frame`` (claim grain; needs
    claim_source, peer_group and the feature columns). Returns a JSON-serialisable dict."""
    min_peer = int(params.get("min_peer_claims", 20))
    excluded = set(params.get("exclude_features") or [])
    feature_cols = [f for f in feature_cols if f not in excluded]
    peers: dict[str, dict] = {}
    for g in _group_stats(frame, ["claim_source"], feature_cols):
        peers[f"{g['claim_source']}|{GLOBAL}"] = g["stats"]
    for g in _group_stats(frame.where(F.col("peer_group").isNotNull()), ["claim_source", "peer_group"], feature_cols):
        if g["n"] >= min_peer:
            peers[f"{g['claim_source']}|{g['peer_group']}"] = g["stats"]
    model = {
        "feature_cols": list(feature_cols),
        "z_cap": float(params.get("z_cap", 10.0)),
        "top_n": int(params.get("top_n", 3)),
        "direction": str(params.get("direction", "upper")),
        "min_peer_claims": min_peer,
        "peers": peers,
        "cdf": [0.0],
    }
    raw_schema = StructType([StructField("raw", DoubleType())])

    def _raw(batches):
        for pdf in batches:
            yield pd.DataFrame({"raw": anomaly_raw(pdf, model)[0]})

    raw = frame.select("claim_source", "peer_group", *feature_cols).mapInPandas(_raw, raw_schema)
    n_q = int(params.get("quantiles", 200))
    probs = [i / n_q for i in range(n_q + 1)]
    qs = raw.approxQuantile("raw", probs, 0.001)
    model["cdf"] = [float(q) for q in qs] if qs else [0.0]
    return model


def _stat_arrays(pdf: pd.DataFrame, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per row and feature: the peer median and scale to use (NaN where none).

    Vectorised: one (peer group x feature) table per call, then every row takes its group's row
    of it. The scoring UDF used to loop over groups x features in Python for every batch.
    """
    feats = model["feature_cols"]
    peers = model["peers"]
    n, k = len(pdf), len(feats)
    col = {f: j for j, f in enumerate(feats)}
    med_table = np.full((len(peers) + 1, k), np.nan)  # last row: no statistics
    scale_table = np.full((len(peers) + 1, k), np.nan)
    by_source: dict[str, dict[str, int]] = {}
    for i, (key, stats) in enumerate(peers.items()):
        source, _, group = key.partition("|")
        by_source.setdefault(source, {})[group] = i
        for f, (m, sc) in stats.items():
            if f in col:
                med_table[i, col[f]], scale_table[i, col[f]] = m, sc
    source = pdf["claim_source"].astype(str).reset_index(drop=True)
    group = pdf["peer_group"].reset_index(drop=True) if "peer_group" in pdf else pd.Series([None] * n, dtype=object)
    row = np.full(n, len(peers), dtype=np.int64)
    for s in source.unique():
        index = by_source.get(s, {})
        mask = (source == s).to_numpy()
        fallback = index.get(GLOBAL, len(peers))
        own = group[mask].map({g: i for g, i in index.items() if g != GLOBAL})
        row[mask] = own.fillna(fallback).to_numpy(dtype=np.int64)
    return med_table[row], scale_table[row]


def anomaly_raw(pdf: pd.DataFrame, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(raw anomaly per row, capped robust z per row and feature; 0 where not computable)."""
    feats = model["feature_cols"]
    x = pdf[feats].to_numpy(dtype="float64") if feats else np.zeros((len(pdf), 0))
    med, scale = _stat_arrays(pdf, model)  # positional: any index
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - med) / scale
    if model.get("direction", "upper") == "both":
        z = np.abs(z)
    z = np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), 0.0, float(model.get("z_cap", 10.0)))
    top_n = max(1, min(int(model.get("top_n", 3)), z.shape[1])) if z.shape[1] else 1
    if z.shape[1] == 0:
        return np.zeros(len(pdf)), z
    top = -np.sort(-z, axis=1)[:, :top_n]
    return top.mean(axis=1), z


def anomaly_score(pdf: pd.DataFrame, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(anomaly_score in [0, 1] = share of training claims strictly less anomalous, z matrix)."""
    raw, z = anomaly_raw(pdf, model)
    cdf = np.asarray(model.get("cdf") or [0.0], dtype="float64")
    score = np.searchsorted(cdf, raw, side="left") / len(cdf)
    return np.clip(score, 0.0, 1.0), z
