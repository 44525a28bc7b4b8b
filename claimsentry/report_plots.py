"""Curves and charts of the actuary report: small pure computations and matplotlib figures as PNG bytes.

Every ``*_png`` function takes plain pandas / numpy inputs (bounded: a test set, a sample) and returns
the bytes of a PNG; ``data_uri`` turns them into a ``data:image/png;base64,...`` URI so the HTML page
is self-contained. matplotlib runs on the non-interactive Agg backend (no display needed).
Nothing here reads files or MLflow.
"""

from __future__ import annotations

import base64
import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: batch servers and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DPI = 100
_COLORS = ["#1f5f8b", "#d1495b", "#66a182", "#edae49", "#6c4f77"]


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _to_png(fig) -> bytes:
    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=_DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _clean(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0/1) and scores as arrays, rows with a null label or score dropped."""
    frame = pd.DataFrame({"y": pd.to_numeric(pd.Series(y_true), errors="coerce"),
                          "s": pd.to_numeric(pd.Series(scores), errors="coerce")}).dropna()
    return frame["y"].to_numpy(dtype=float), frame["s"].to_numpy(dtype=float)


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------------
# Pure computations (one row per bin / per rank), used by the plots and the page's tables.
# ---------------------------------------------------------------------------------------------
def gains_table(y_true, scores, *, n_bins: int = 10) -> pd.DataFrame:
    """Claims ranked by score (highest first) cut into ``n_bins`` equal-count groups.

    One row per group: group (1 = top scores), claims, positives, rate, lift (rate / overall rate),
    cum_share_claims, cum_share_positives (the cumulative gains curve). Ties in score keep input order.
    """
    y, s = _clean(y_true, scores)
    cols = ["group", "claims", "positives", "rate", "lift", "cum_share_claims", "cum_share_positives"]
    if y.size == 0:
        return pd.DataFrame(columns=cols)
    order = np.argsort(-s, kind="stable")
    y_sorted = y[order]
    groups = np.minimum((np.arange(y.size) * n_bins) // y.size, n_bins - 1) + 1
    base_rate = y.mean()
    total_pos = y.sum()
    out = (
        pd.DataFrame({"group": groups, "y": y_sorted})
        .groupby("group", as_index=False)
        .agg(claims=("y", "size"), positives=("y", "sum"))
    )
    out["rate"] = out["positives"] / out["claims"]
    out["lift"] = out["rate"] / base_rate if base_rate > 0 else np.nan
    out["cum_share_claims"] = out["claims"].cumsum() / y.size
    out["cum_share_positives"] = out["positives"].cumsum() / total_pos if total_pos > 0 else np.nan
    return out[cols]


def reliability_table(y_true, scores, *, n_bins: int = 10) -> pd.DataFrame:
    """Calibration: scores cut into ``n_bins`` equal-width bins on [0, 1]; one row per non-empty bin:
    bin_low, bin_high, claims, mean_score, observed_rate."""
    y, s = _clean(y_true, scores)
    cols = ["bin_low", "bin_high", "claims", "mean_score", "observed_rate"]
    if y.size == 0:
        return pd.DataFrame(columns=cols)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    frame = pd.DataFrame({"bin": idx, "y": y, "s": s})
    out = frame.groupby("bin", as_index=False).agg(claims=("y", "size"), mean_score=("s", "mean"), observed_rate=("y", "mean"))
    out["bin_low"] = edges[out["bin"]]
    out["bin_high"] = edges[out["bin"] + 1]
    return out[cols]


def brier_score(y_true, scores) -> float:
    """Mean squared gap between score and outcome (0 = perfect; 0.25 = always saying 50%)."""
    y, s = _clean(y_true, scores)
    return float(np.mean((s - y) ** 2)) if y.size else float("nan")


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def roc_pr_png(series: Mapping[str, tuple[Sequence, Sequence]]) -> bytes:
    """ROC curve (left) and precision-recall curve (right); one line per named (y_true, scores) pair,
    e.g. {"audited labels": (label, score), "synthetic truth": (truth, score)}."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    drawn = 0
    for i, (name, (y_true, scores)) in enumerate(series.items()):
        y, s = _clean(y_true, scores)
        if y.size == 0 or len(np.unique(y)) < 2:
            continue
        color = _COLORS[i % len(_COLORS)]
        fpr, tpr, _ = roc_curve(y, s)
        ax_roc.plot(fpr, tpr, color=color, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        prec, rec, _ = precision_recall_curve(y, s)
        ax_pr.plot(rec, prec, color=color, label=f"{name} (base rate {y.mean():.1%})")
        ax_pr.axhline(y.mean(), color=color, linestyle=":", linewidth=0.8)
        drawn += 1
    if drawn == 0:
        _placeholder(ax_roc, "needs both improper and clean claims")
        _placeholder(ax_pr, "needs both improper and clean claims")
    else:
        ax_roc.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8, label="random")
        ax_roc.set(xlabel="false positive rate (clean claims flagged)", ylabel="true positive rate (improper claims found)",
                   title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
        ax_pr.set(xlabel="recall (share of improper claims found)", ylabel="precision (share of flagged that are improper)",
                  title="Precision-recall curve", xlim=(0, 1), ylim=(0, 1.01))
        ax_roc.legend(loc="lower right", fontsize=8)
        ax_pr.legend(loc="upper right", fontsize=8)
    return _to_png(fig)


def lift_gains_png(y_true, scores, *, n_bins: int = 10) -> bytes:
    """Lift per score decile (left) and cumulative gains (right)."""
    table = gains_table(y_true, scores, n_bins=n_bins)
    fig, (ax_lift, ax_gain) = plt.subplots(1, 2, figsize=(10, 4.2))
    if table.empty or not np.isfinite(table["lift"].astype(float)).any():
        _placeholder(ax_lift, "needs improper claims among the labelled")
        _placeholder(ax_gain, "needs improper claims among the labelled")
        return _to_png(fig)
    ax_lift.bar(table["group"], table["lift"].astype(float), color=_COLORS[0])
    ax_lift.axhline(1.0, color="#999999", linestyle="--", linewidth=0.8)
    ax_lift.set(xlabel=f"score group (1 = top {100 // n_bins}% of scores)", ylabel="lift (rate / overall rate)",
                title="Lift by score group")
    ax_lift.set_xticks(table["group"])
    x = np.concatenate([[0.0], table["cum_share_claims"].astype(float)])
    y = np.concatenate([[0.0], table["cum_share_positives"].astype(float)])
    ax_gain.plot(x, y, marker="o", color=_COLORS[1], label="model")
    ax_gain.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8, label="random")
    ax_gain.set(xlabel="share of claims audited (highest scores first)", ylabel="share of improper claims found",
                title="Cumulative gains", xlim=(0, 1), ylim=(0, 1.01))
    ax_gain.legend(loc="lower right", fontsize=8)
    return _to_png(fig)


def calibration_png(y_true, scores, *, n_bins: int = 10) -> bytes:
    """Reliability diagram: observed rate of improper claims against the mean score per score bin,
    with the count of claims per bin beneath."""
    table = reliability_table(y_true, scores, n_bins=n_bins)
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(6, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    if table.empty:
        _placeholder(ax, "no labelled claims")
        return _to_png(fig)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    ax.plot(table["mean_score"], table["observed_rate"], marker="o", color=_COLORS[0], label="model")
    ax.set(ylabel="observed share improper", title=f"Calibration (Brier {brier_score(y_true, scores):.4f})",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left", fontsize=8)
    width = float(table["bin_high"].iloc[0] - table["bin_low"].iloc[0])
    ax_n.bar(table["bin_low"] + width / 2, table["claims"], width=width * 0.9, color=_COLORS[2])
    ax_n.set(xlabel="score", ylabel="claims")
    return _to_png(fig)


def importance_png(importance: Mapping[str, float], *, top_n: int = 20) -> bytes:
    """Horizontal bars of the ``top_n`` features by gain, largest on top."""
    items = sorted(((k, float(v)) for k, v in importance.items() if v is not None), key=lambda kv: kv[1], reverse=True)[:top_n]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(items) + 1)))
    if not items:
        _placeholder(ax, "no feature importance logged")
        return _to_png(fig)
    names = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(names, values, color=_COLORS[0])
    ax.set(xlabel="gain (average improvement in the training loss from splits on the feature)",
           title=f"Feature importance (top {len(items)} by gain)")
    ax.tick_params(axis="y", labelsize=8)
    return _to_png(fig)


def shap_summary_png(shap_values: pd.DataFrame, feature_values: pd.DataFrame | None = None, *,
                     top_n: int = 15, seed: int = 0) -> bytes:
    """Beeswarm-like SHAP summary without the ``shap`` package.

    ``shap_values``: one row per sampled claim, one column per feature (its SHAP value, in the model's
    log-odds). ``feature_values``: same rows, same column names, the feature's value (colours the
    dots from low = blue to high = red by rank within the feature; null values grey). Features are
    ordered by mean |SHAP|, the top ``top_n`` shown.
    """
    numeric = shap_values.apply(pd.to_numeric, errors="coerce")
    ranking = numeric.abs().mean().dropna().sort_values(ascending=False).head(top_n)
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.4 * len(ranking) + 1.2)))
    if ranking.empty:
        _placeholder(ax, "no SHAP sample logged")
        return _to_png(fig)
    rng = np.random.default_rng(seed)
    cmap = plt.get_cmap("coolwarm")
    features = list(ranking.index)[::-1]  # bottom to top: the most important feature on top
    scatter = None
    for row, feat in enumerate(features):
        x = numeric[feat].to_numpy(dtype=float)
        keep = ~np.isnan(x)
        jitter = rng.uniform(-0.3, 0.3, size=x.size)
        colors: np.ndarray | str = "#999999"
        if feature_values is not None and feat in feature_values.columns:
            vals = pd.to_numeric(feature_values[feat], errors="coerce")
            pct = vals.rank(pct=True).to_numpy(dtype=float)
            null = np.isnan(pct)
            if null.any():
                ax.scatter(x[keep & null], row + jitter[keep & null], s=6, color="#bbbbbb", alpha=0.7)
            sel = keep & ~null
            scatter = ax.scatter(x[sel], row + jitter[sel], s=6, c=pct[sel], cmap=cmap, vmin=0, vmax=1, alpha=0.8)
        else:
            ax.scatter(x[keep], row + jitter[keep], s=6, color=colors, alpha=0.7)
    ax.axvline(0.0, color="#666666", linewidth=0.8)
    ax.set_yticks(range(len(features)))
    ax.set_yticklabels(features, fontsize=8)
    ax.set(xlabel="SHAP value (push on the model's log-odds; > 0 raises the score)",
           title="SHAP summary: each dot is one sampled claim")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, fraction=0.03, pad=0.02)
        bar.set_label("feature value (low → high)")
        bar.set_ticks([0, 1])
        bar.set_ticklabels(["low", "high"])
    return _to_png(fig)


def score_distribution_png(reference_scores, current_scores, *, reference_name: str = "training",
                           current_name: str = "latest run", bins: int = 40) -> bytes:
    """Overlaid density histograms of the score in the reference and current samples."""
    ref = pd.to_numeric(pd.Series(reference_scores), errors="coerce").dropna()
    cur = pd.to_numeric(pd.Series(current_scores), errors="coerce").dropna()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if ref.empty and cur.empty:
        _placeholder(ax, "no scores")
        return _to_png(fig)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, (name, s) in enumerate(((reference_name, ref), (current_name, cur))):
        if not s.empty:
            ax.hist(s, bins=edges, density=True, histtype="step", linewidth=1.6, color=_COLORS[i],
                    label=f"{name} ({len(s):,} claims)")
    ax.set(xlabel="score", ylabel="density", title="Score distribution", yscale="log")
    ax.legend(fontsize=8)
    return _to_png(fig)


def composition_png(table: pd.DataFrame, *, label_col: str, count_col: str, amount_col: str | None,
                    title: str) -> bytes:
    """Two horizontal bar panels: claims per group and (when given) dollars per group."""
    panels = 2 if amount_col and amount_col in table.columns else 1
    fig, axes = plt.subplots(1, panels, figsize=(10 if panels == 2 else 6, max(2.5, 0.35 * len(table) + 1.2)))
    axes = np.atleast_1d(axes)
    if table.empty:
        for ax in axes:
            _placeholder(ax, "empty queue")
        return _to_png(fig)
    ordered = table.iloc[::-1]
    labels = ordered[label_col].astype(str)
    axes[0].barh(labels, ordered[count_col].astype(float), color=_COLORS[0])
    axes[0].set(xlabel="claims in queue", title=title)
    axes[0].tick_params(axis="y", labelsize=8)
    if panels == 2:
        axes[1].barh(labels, ordered[amount_col].astype(float), color=_COLORS[3])
        axes[1].set(xlabel="dollars at risk", title="dollars at risk")
        axes[1].tick_params(axis="y", labelsize=8)
    return _to_png(fig)
