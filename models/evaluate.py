"""Held-out metrics as plain functions of arrays (one element per claim of the evaluated period).

``label`` arrays use NaN for "unknown" (an unaudited claim): ranking metrics (ROC-AUC, PR-AUC) use the
known rows only; queue metrics rank *all* claims (the queue does not know who was audited) and count
hits among known rows. With generator truth every claim is known.

The queue at ``capacity`` is the ``capacity`` highest-scoring claims (ties broken by position, i.e. the
caller's stable order).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

LIFT_SHARES = {"lift_at_1pct": 0.01, "lift_at_2pct": 0.02, "lift_at_5pct": 0.05}


def _clean(label, score, weight=None):
    label = np.asarray(label, dtype="float64")
    score = np.asarray(score, dtype="float64")
    known = ~np.isnan(label)
    w = None if weight is None else np.asarray(weight, dtype="float64")[known]
    return label[known], np.nan_to_num(score[known], nan=0.0), w


def roc_auc(label, score, weight=None) -> float:
    """ROC-AUC over known labels; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s, w = _clean(label, score, weight)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s, sample_weight=w))


def average_precision(label, score, weight=None) -> float:
    """PR-AUC (average precision) over known labels; NaN without positives."""
    from sklearn.metrics import average_precision_score

    y, s, w = _clean(label, score, weight)
    if not np.any(y == 1):
        return float("nan")
    return float(average_precision_score(y, s, sample_weight=w))


def top_mask(score, n: int) -> np.ndarray:
    """Boolean mask of the ``n`` highest scores (stable: earlier rows win ties)."""
    score = np.nan_to_num(np.asarray(score, dtype="float64"), nan=-np.inf)
    order = np.argsort(-score, kind="stable")
    mask = np.zeros(len(score), dtype=bool)
    mask[order[: max(0, min(int(n), len(score)))]] = True
    return mask


def _precision(label: np.ndarray, mask: np.ndarray) -> float:
    known = mask & ~np.isnan(label)
    return float(np.mean(label[known] == 1)) if known.any() else float("nan")


def queue_metrics(score, label, amount, *, capacity: int) -> dict:
    """precision/recall at capacity, lift at 1/2/5 %, dollars at risk captured at capacity."""
    score = np.asarray(score, dtype="float64")
    label = np.asarray(label, dtype="float64")
    amount = np.nan_to_num(np.asarray(amount, dtype="float64"), nan=0.0)
    queued = top_mask(score, capacity)
    pos = label == 1
    n_pos = int(pos.sum())
    known = ~np.isnan(label)
    base_rate = float(np.mean(label[known] == 1)) if known.any() else float("nan")
    out = {
        "precision_at_capacity": _precision(label, queued),
        "recall_at_capacity": float((queued & pos).sum() / n_pos) if n_pos else float("nan"),
        "dollars_at_risk_captured_at_capacity": (
            float(amount[queued & pos].sum() / amount[pos].sum()) if n_pos and amount[pos].sum() > 0 else float("nan")
        ),
        "dollars_at_risk_in_queue": float(amount[queued & pos].sum()),
        "base_rate": base_rate,
    }
    for name, share in LIFT_SHARES.items():
        n_top = max(1, int(math.ceil(share * len(score)))) if len(score) else 0
        p = _precision(label, top_mask(score, n_top))
        out[name] = float(p / base_rate) if base_rate and not math.isnan(base_rate) and not math.isnan(p) else float("nan")
    return out


def per_scheme_recall(score, scheme, *, capacity: int) -> dict[str, float]:
    """Recall at capacity per fraud scheme (``scheme`` None/NaN for a clean claim)."""
    scheme = pd.Series(scheme, dtype="object")
    queued = top_mask(score, capacity)
    out = {}
    for name, idx in scheme[scheme.notna()].groupby(scheme[scheme.notna()]).groups.items():
        rows = np.asarray(list(idx))
        out[str(name)] = float(queued[rows].mean())
    return dict(sorted(out.items()))


def evaluate_scores(score, label, amount, *, capacity: int) -> dict:
    """Every metric for one ground truth: roc_auc, pr_auc and the queue metrics, plus counts."""
    label = np.asarray(label, dtype="float64")
    return {
        "roc_auc": roc_auc(label, score),
        "pr_auc": average_precision(label, score),
        **queue_metrics(score, label, amount, capacity=capacity),
        "n_known": int((~np.isnan(label)).sum()),
        "n_pos": int((label == 1).sum()),
    }


def held_out_metrics(pdf: pd.DataFrame, *, capacity: int, has_truth: bool = False, score_col: str = "score") -> dict:
    """Metrics for a test-period frame (claim grain: score, label (NaN unaudited), amount_paid, and
    optionally truth_scheme; ``has_truth`` says generator truth covers every claim: null scheme = clean).

    Top-level figures use the best ground truth available: generator truth when present (every claim
    known; ``ground_truth: generator_truth``), else audit labels. ``audit_labels`` always holds the
    audit-label figures (what a real payer can measure, and what promotion compares)."""
    score = pdf[score_col].to_numpy(dtype="float64")
    amount = pdf["amount_paid"].to_numpy(dtype="float64")
    audit = evaluate_scores(score, pdf["label"].to_numpy(dtype="float64"), amount, capacity=capacity)
    out: dict = {"capacity": int(capacity), "n_test": int(len(pdf)), "audit_labels": audit}
    if has_truth and "truth_scheme" in pdf:
        truth_label = pdf["truth_scheme"].notna().astype("float64").to_numpy()
        truth = evaluate_scores(score, truth_label, amount, capacity=capacity)
        out.update({k: v for k, v in truth.items() if k not in ("n_known", "n_pos")})
        out["ground_truth"] = "generator_truth"
        out["n_pos_test"] = truth["n_pos"]
        out["per_scheme_recall"] = per_scheme_recall(score, pdf["truth_scheme"].to_numpy(), capacity=capacity)
        out["truth"] = truth
        if "never_labelled" in pdf:
            out["unknown_perpetrators"] = unknown_perpetrator_metrics(
                score, pdf["truth_scheme"].to_numpy(), pdf["never_labelled"].fillna(False).to_numpy(dtype=bool),
                pdf["lookalike"].to_numpy() if "lookalike" in pdf else None,
            )
    else:
        out.update({k: v for k, v in audit.items() if k not in ("n_known", "n_pos")})
        out["ground_truth"] = "audit_labels"
        out["n_pos_test"] = audit["n_pos"]
        out["per_scheme_recall"] = {}
    return out


def flat_numeric(metrics: Mapping, prefix: str = "") -> dict[str, float]:
    """Flatten nested metrics to ``a.b`` keys with finite float values (for MLflow log_metrics)."""
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_numeric(value, f"{name}."))
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                out[name] = float(value)
    return out


# --- the held-out-perpetrator evaluation ---------------------------------------------------------

HOLDOUT_SHARES = {"top1": 0.01, "top5": 0.05}


def top_share_mask(score, share: float) -> np.ndarray:
    """The top ``share`` of rows by score (at least one row when there are any)."""
    n = len(np.asarray(score))
    return top_mask(score, max(1, int(math.ceil(share * n))) if n else 0)


def unknown_perpetrator_metrics(score, truth_scheme, never_labelled, lookalike=None) -> dict:
    """How a ranking finds improper claims, above all those of perpetrators nobody has labelled.

    One element per scored claim of the evaluated period (generator truth covers every claim):
    ``truth_scheme`` the injected scheme (None/NaN = proper claim), ``never_labelled`` True for an
    improper claim whose responsible party (provider, or member for the shopping schemes) has no audit
    label at all, ``lookalike`` the kind of legitimate look-alike (None = not one).

    Returns ``pr_auc``, ``precision_top1``, ``recall_top5`` (all improper claims),
    ``recall_top5_never_labelled_by_scheme`` / ``recall_top5_labelled_by_scheme`` (scheme ->
    recall; a scheme with no such claims is absent), their minimum over schemes, the counts behind
    them, and ``lookalike_share_top5`` (share of look-alike claims ranked in the top 5%)."""
    score = np.asarray(score, dtype="float64")
    scheme = pd.Series(truth_scheme, dtype="object").where(lambda s: s.notna(), None).reset_index(drop=True)
    improper = scheme.notna().to_numpy()
    unknown = np.asarray(never_labelled, dtype=bool) & improper
    top1, top5 = top_share_mask(score, HOLDOUT_SHARES["top1"]), top_share_mask(score, HOLDOUT_SHARES["top5"])

    def by_scheme(rows: np.ndarray) -> tuple[dict, dict]:
        recall, counts = {}, {}
        for name in sorted(set(scheme[rows])):
            hit = rows & (scheme == name).to_numpy()
            recall[str(name)] = float(top5[hit].mean())
            counts[str(name)] = int(hit.sum())
        return recall, counts

    unknown_recall, unknown_n = by_scheme(unknown)
    known_recall, known_n = by_scheme(improper & ~unknown)
    out = {
        "n_claims": int(len(score)),
        "n_improper": int(improper.sum()),
        "n_improper_never_labelled": int(unknown.sum()),
        "pr_auc": average_precision(improper.astype("float64"), score),
        "precision_top1": float(improper[top1].mean()) if top1.any() else float("nan"),
        "recall_top5": float(top5[improper].mean()) if improper.any() else float("nan"),
        "recall_top5_never_labelled": float(top5[unknown].mean()) if unknown.any() else float("nan"),
        "recall_top5_never_labelled_by_scheme": unknown_recall,
        "min_recall_top5_never_labelled": min(unknown_recall.values()) if unknown_recall else float("nan"),
        "never_labelled_claims_by_scheme": unknown_n,
        "recall_top5_labelled_by_scheme": known_recall,
        "labelled_claims_by_scheme": known_n,
    }
    if lookalike is not None:
        look = pd.Series(lookalike, dtype="object").notna().to_numpy()
        out["n_lookalike"] = int(look.sum())
        out["lookalike_share_top5"] = float(top5[look].mean()) if look.any() else float("nan")
    return out
