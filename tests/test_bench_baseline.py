"""bench/baseline.py and the metrics of bench/versus_baseline.py keep working (a tiny generated set,
in this process, no Spark; the side-by-side figures come from running versus_baseline.py itself)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from conftest import bench_module


def test_baseline_scores_every_claim_of_the_last_quarter_and_metrics_have_their_shape(generated_claims):
    baseline, versus = bench_module("baseline"), bench_module("versus_baseline")
    scores, info = baseline.run(generated_claims, seed=1)

    claims, start, last = versus.evaluation_claims(generated_claims)
    assert start == pd.Timestamp(last.year, 3 * ((last.month - 1) // 3) + 1, 1)  # first day of the last quarter
    # per claim: one row per (claim_id, claim_source) of the evaluation period, every one scored
    assert not scores.duplicated(["claim_id", "claim_source"]).any()
    assert set(map(tuple, scores[["claim_id", "claim_source"]].to_numpy())) == set(
        map(tuple, claims[["claim_id", "claim_source"]].to_numpy()))
    assert (scores.date >= start).all()
    assert np.isfinite(scores.score).all() and scores.score.between(0, 1).all()
    assert info["train_rows"] > 0 and 0 < info["train_positives"] < info["train_rows"]
    assert info["seconds"]["total"] > 0 and info["features"]

    metrics = versus.rank_metrics(generated_claims, scores, claims)
    assert metrics["n_claims"] == len(claims) and metrics["n_unscored"] == 0
    assert metrics["n_improper"] > 0
    for key in ("pr_auc", "precision_top1", "recall_top5"):
        assert 0 <= metrics[key] <= 1
    for key in ("recall_top5_never_labelled_by_scheme", "recall_top5_labelled_by_scheme"):
        assert all(0 <= r <= 1 for r in metrics[key].values())
    assert sum(metrics["never_labelled_claims_by_scheme"].values()) == metrics["n_improper_never_labelled"]
    assert metrics["n_improper_never_labelled"] + sum(metrics["labelled_claims_by_scheme"].values()) == metrics["n_improper"]
    assert "lookalike_share_top5" in metrics  # NaN when the generator writes no look-alikes
    if metrics["n_lookalike"]:
        assert 0 <= metrics["lookalike_share_top5"] <= 1

    # a ranking that misses claims ranks them last and says how many
    partial = versus.rank_metrics(generated_claims, scores.iloc[: len(scores) // 2], claims)
    assert partial["n_unscored"] == len(scores) - len(scores) // 2

    # the report renders from these dicts (the time figures are made up here)
    fake = {"claimsentry": {"metrics": metrics, "seconds": {"train": 1.0, "score": 2.0, "total": 3.0},
                            "cpu_seconds": {"total": 4.0}},
            "baseline": {"metrics": metrics, "seconds": {"total": 0.5, "wall_with_startup": 1.0},
                         "cpu_seconds": {"total": 1.0}},
            "evaluation": {"start": str(start.date()), "last_claim_date": str(last.date())},
            "time_ratio": 3.0, "time_ratio_in_script": 6.0, "cpu_ratio": 4.0}
    text = versus.render(fake)
    assert "| PR-AUC |" in text and "3.0x" in text
    safe = versus._json_safe({"a": float("nan"), "b": np.float64(0.5), "c": [np.int64(2)]})
    assert safe == {"a": None, "b": 0.5, "c": [2]} and not any(isinstance(v, float) and math.isnan(v) for v in safe.values())
