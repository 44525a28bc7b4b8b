"""Unsupervised anomaly score from the model's features: how rare a claim's most unusual value is
among its peers. Works with no labels at all (a new payer).

1. **Against peers.** Every claim is compared with the claims of its peer group (same ``claim_source``
   and ``peer_group``: DRG, costliest HCPCS code or NDC), or with all claims of its claim source when
   the group has fewer than ``min_peer_claims``. Per feature::

       z = (value - peer median) / peer scale,   scale = 1.4826 * MAD  (the normal-consistent MAD),

   falling back to 1.2533 * mean absolute deviation when the MAD is 0 (a mostly-constant feature such
   as a 0/1 rule flag; 1.2533 = sqrt(pi/2)); features constant in a group are skipped there. With
   ``direction: upper`` only values above the peer median count (features are built so that higher
   means more suspicious).
2. **How rare.** z-scores are not comparable across features: a heavy-tailed ratio is often at z 10,
   a 0/1 flag that fires on 1 claim in 500 is either 0 or enormous. So each feature's z is turned into
   its *surprise*, -log10 of the share of training claims of the same source with a z at least as
   high (the stored distribution has a grid fine enough in the upper tail to tell 1 in 10,000 from 1
   in 100). A value 1 in 1,000 claims reach has surprise 3, whatever the feature.
3. **One extreme value is enough.** The claim's raw anomaly is its highest surprise plus
   ``second_weight`` x its second highest. A scheme shows in one or two features; the mean of the top
   three z-scores, used before, diluted it with ordinary values and let heavy-tailed features decide
   (what the whole model then finds is measured in docs/modeling.md, ``make holdout``).

The published ``anomaly_score`` is the raw anomaly's percentile among training claims (empirical CDF
on the same tail-fine grid, interpolated): 0.97 reads "more anomalous than 97 % of claims". The per-feature surprise
explains a claim when the anomaly decides its score.

``exclude_features`` (optional list) leaves features out of the anomaly score only;
``model.exclude_features`` leaves them out of every model.

The fitted model is plain JSON (medians, scales, quantile grids): no pickled objects.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark import StorageLevel
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

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


def tail_probs(n_points: int = 90, tail_points: int = 120, smallest: float = 1e-5) -> list[float]:
    """Probability grid of the stored z distributions: every 1% up to 0.9, then log-spaced up to
    ``1 - smallest``, so that a 1-in-10,000 value is told apart from a 1-in-100 one."""
    body = np.linspace(0.0, 0.9, n_points + 1)
    tail = 1.0 - np.logspace(np.log10(smallest), -1, tail_points)[::-1]
    return [float(p) for p in np.unique(np.r_[body, tail, 1.0])]


def fit_anomaly(frame: DataFrame, feature_cols: list[str], params: Mapping[str, Any]) -> dict:
    """Fit the peer statistics, each feature's z distribution per claim source and the score's
    empirical CDF on ``frame`` (claim grain; needs claim_source, peer_group and the feature columns).
    Returns a JSON-serialisable dict."""
    min_peer = int(params.get("min_peer_claims", 20))
    excluded = set(params.get("exclude_features") or [])
    feature_cols = [f for f in feature_cols if f not in excluded]
    peers: dict[str, dict] = {}
    for g in _group_stats(frame, ["claim_source"], feature_cols):
        peers[f"{g['claim_source']}|{GLOBAL}"] = g["stats"]
    for g in _group_stats(frame.where(F.col("peer_group").isNotNull()), ["claim_source", "peer_group"], feature_cols):
        if g["n"] >= min_peer:
            peers[f"{g['claim_source']}|{g['peer_group']}"] = g["stats"]
    probs = tail_probs()
    model = {
        "method": "tail",
        "feature_cols": list(feature_cols),
        "second_weight": float(params.get("second_weight", 0.5)),
        "direction": str(params.get("direction", "upper")),
        "min_peer_claims": min_peer,
        "peers": peers,
        "probs": probs,
        "tails": {},
        "cdf": [0.0],
    }
    z_schema = StructType([StructField("claim_source", StringType())] + [StructField(f"z{i}", DoubleType()) for i in range(len(feature_cols))])

    def _z(batches):
        for pdf in batches:
            z = peer_z(pdf, model)
            out = pd.DataFrame(z, columns=[f"z{i}" for i in range(len(feature_cols))])
            out.insert(0, "claim_source", pdf["claim_source"].astype(str).to_numpy())
            yield out

    zs = frame.select("claim_source", "peer_group", *feature_cols).mapInPandas(_z, z_schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r["claim_source"]: int(r["n"]) for r in zs.groupBy("claim_source").agg(F.count(F.lit(1)).alias("n")).collect()}
        cols = [f"z{i}" for i in range(len(feature_cols))]
        for source, n in sorted(counts.items()) if feature_cols else []:
            qs = zs.where(F.col("claim_source") == source).approxQuantile(cols, probs, float(params.get("relative_error", 1e-4)))
            model["tails"][source] = {"n": n, "q": {f: [float(v) for v in q] for f, q in zip(feature_cols, qs)}}
        raw_schema = StructType([StructField("raw", DoubleType())])

        def _raw(batches):
            for pdf in batches:
                surprise = surprise_from_z(pdf["claim_source"].astype(str).to_numpy(), pdf.drop(columns="claim_source").to_numpy(dtype="float64"), model)
                yield pd.DataFrame({"raw": combine(surprise, model["second_weight"])})

        cdf_probs = probs[:-1]  # up to 1 - 1e-5; above it anomaly_score extrapolates
        qs = zs.mapInPandas(_raw, raw_schema).approxQuantile("raw", cdf_probs, float(params.get("relative_error", 1e-4)))
        model["cdf"], model["cdf_probs"] = ([float(q) for q in qs], cdf_probs) if qs else ([0.0], [0.0])
    finally:
        zs.unpersist()
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


def peer_z(pdf: pd.DataFrame, model: Mapping[str, Any]) -> np.ndarray:
    """Robust z per row and feature against the row's peers (upper side only with ``direction:
    upper``; 0 where not computable). Not capped: the tails below judge how rare a value is."""
    feats = model["feature_cols"]
    x = pdf[feats].to_numpy(dtype="float64") if feats else np.zeros((len(pdf), 0))
    med, scale = _stat_arrays(pdf, model)  # positional: any index
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - med) / scale
    if model.get("direction", "upper") == "both":
        z = np.abs(z)
    return np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def surprise_from_z(source: np.ndarray, z: np.ndarray, model: Mapping[str, Any]) -> np.ndarray:
    """Per row and feature: -log10 of the share of training claims of the same source whose z is at
    least as high (the value's rarity). 0 at or below the peer median; at most log10 of the source's
    training claims (no value is rarer than one in all of them)."""
    out = np.zeros(z.shape)
    probs = np.asarray(model["probs"], dtype="float64")
    for s, tail in model.get("tails", {}).items():
        rows = source == s
        if not rows.any():
            continue
        floor = 1.0 / max(int(tail["n"]), 1)
        for j, f in enumerate(model["feature_cols"]):
            q = np.asarray(tail["q"].get(f) or [], dtype="float64")
            if not len(q):
                continue
            x = z[rows, j]
            k = np.searchsorted(q, x, side="left")  # values of the grid strictly below x
            p = np.where(k == 0, 1.0, 1.0 - probs[np.clip(k - 1, 0, len(probs) - 1)])
            p = np.where(x <= 0.0, 1.0, np.maximum(p, floor))
            out[rows, j] = -np.log10(p)
    return out


def combine(surprise: np.ndarray, second_weight: float) -> np.ndarray:
    """A claim's raw anomaly: its rarest feature's surprise plus ``second_weight`` x the second
    rarest (which orders claims that tie on the first). One extreme value is enough: a scheme
    usually shows in one or two features, and averaging with ordinary ones would hide it."""
    if surprise.shape[1] == 0:
        return np.zeros(surprise.shape[0])
    top = -np.sort(-surprise, axis=1)[:, :2]
    second = top[:, 1] if top.shape[1] > 1 else 0.0
    return top[:, 0] + float(second_weight) * second


def _legacy_raw(z: np.ndarray, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Models registered before the surprise score (no ``method``): the mean of the ``top_n``
    largest z-scores capped at ``z_cap``, so an older champion still scores and can be compared."""
    z = np.clip(z, 0.0, float(model.get("z_cap", 10.0)))
    if z.shape[1] == 0:
        return np.zeros(z.shape[0]), z
    top_n = max(1, min(int(model.get("top_n", 3)), z.shape[1]))
    return (-np.sort(-z, axis=1)[:, :top_n]).mean(axis=1), z


def anomaly_raw(pdf: pd.DataFrame, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(raw anomaly per row, surprise per row and feature: -log10 of how rare the value is)."""
    if model.get("method") != "tail":
        return _legacy_raw(peer_z(pdf, model), model)
    surprise = surprise_from_z(pdf["claim_source"].astype(str).to_numpy(), peer_z(pdf, model), model)
    return combine(surprise, model.get("second_weight", 0.5)), surprise


def anomaly_score(pdf: pd.DataFrame, model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(anomaly_score in [0, 1] = share of training claims less anomalous, surprise matrix).

    Interpolated on the stored CDF, whose grid is fine in the upper tail, so the claims at the top
    keep their order instead of tying at 1; above the most anomalous training claim the share left
    shrinks tenfold per unit of surprise (raw anomaly is in log10 units)."""
    raw, surprise = anomaly_raw(pdf, model)
    cdf = np.asarray(model.get("cdf") or [0.0], dtype="float64")
    if model.get("method") != "tail":  # legacy models: a plain empirical CDF
        return np.clip(np.searchsorted(cdf, raw, side="left") / len(cdf), 0.0, 1.0), surprise
    probs = np.asarray(model.get("cdf_probs") or np.linspace(0.0, 1.0, len(cdf)), dtype="float64")
    score = np.interp(raw, cdf, probs)
    above = raw > cdf[-1]
    score[above] = 1.0 - (1.0 - probs[-1]) * np.power(10.0, -(raw[above] - cdf[-1]))
    return np.clip(score, 0.0, 1.0), surprise
