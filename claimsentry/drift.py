"""Population stability (PSI) between a reference sample (training) and a current sample (a scored run).

Pure functions on pandas / numpy; nothing here reads files. Both samples are bounded (the report reads
at most tens of thousands of rows of each), so pandas is the right tool.

PSI of one variable: cut the *reference* sample into quantile bins (deciles by default), add one bin
for nulls, take each bin's share of rows in the reference (r) and current (c) sample, and sum
``(c - r) * ln(c / r)`` over the bins. Shares are floored at ``epsilon`` so an empty bin does not give
an infinite PSI. Usual reading (the bands of credit-risk model monitoring):

- PSI < 0.1: stable
- 0.1 <= PSI <= 0.25: moderate shift, worth a look
- PSI > 0.25: significant shift, the model sees a population it was not trained on
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

STABLE_BELOW = 0.1
SIGNIFICANT_ABOVE = 0.25
DEFAULT_BINS = 10
DEFAULT_EPSILON = 1e-4


def quantile_cuts(reference: pd.Series, *, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior cut points (sorted, unique) at the reference's quantiles 1/n .. (n-1)/n, nulls ignored.

    A discrete variable (a 0/1 rule flag) gives fewer unique cuts, hence fewer bins: that is intended.
    An all-null reference gives no cuts (one value bin plus the null bin).
    """
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    values = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype=float)
    if values.size == 0:
        return np.array([], dtype=float)
    probs = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(values, probs))


def bin_shares(values: pd.Series, cuts: np.ndarray) -> np.ndarray:
    """Share of rows per bin: ``len(cuts) + 1`` value bins (bin i holds cuts[i-1] < x <= cuts[i]),
    then the null bin last. Shares sum to 1; an empty sample gives all zeros."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    n = numeric.size
    shares = np.zeros(len(cuts) + 2, dtype=float)
    if n == 0:
        return shares
    is_null = np.isnan(numeric)
    idx = np.searchsorted(cuts, numeric[~is_null], side="left")
    counts = np.bincount(idx, minlength=len(cuts) + 1).astype(float)
    shares[:-1] = counts / n
    shares[-1] = is_null.sum() / n
    return shares


def psi_from_shares(reference_shares: np.ndarray, current_shares: np.ndarray, *, epsilon: float = DEFAULT_EPSILON) -> float:
    """PSI of two share vectors over the same bins (each summing to 1)."""
    r = np.maximum(np.asarray(reference_shares, dtype=float), epsilon)
    c = np.maximum(np.asarray(current_shares, dtype=float), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def psi(
    reference: pd.Series,
    current: pd.Series,
    *,
    n_bins: int = DEFAULT_BINS,
    epsilon: float = DEFAULT_EPSILON,
) -> float:
    """PSI of one variable, bins from the reference's quantiles plus a null bin. NaN when either
    sample is empty (nothing to compare)."""
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    cuts = quantile_cuts(reference, n_bins=n_bins)
    return psi_from_shares(bin_shares(reference, cuts), bin_shares(current, cuts), epsilon=epsilon)


def psi_band(value: float, *, stable_below: float = STABLE_BELOW, significant_above: float = SIGNIFICANT_ABOVE) -> str:
    """``stable`` | ``moderate`` | ``significant`` (or ``n/a`` for NaN)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if value < stable_below:
        return "stable"
    if value <= significant_above:
        return "moderate"
    return "significant"


def psi_table(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Iterable[str],
    *,
    n_bins: int = DEFAULT_BINS,
    epsilon: float = DEFAULT_EPSILON,
    stable_below: float = STABLE_BELOW,
    significant_above: float = SIGNIFICANT_ABOVE,
) -> pd.DataFrame:
    """One row per variable present in both frames, largest PSI first.

    Columns: feature, psi, band, reference_rows, current_rows, reference_null_share,
    current_null_share, reference_median, current_median. Variables missing from either frame are
    skipped (the caller lists them as not comparable).
    """
    rows = []
    for col in columns:
        if col not in reference.columns or col not in current.columns:
            continue
        ref = pd.to_numeric(reference[col], errors="coerce")
        cur = pd.to_numeric(current[col], errors="coerce")
        value = psi(ref, cur, n_bins=n_bins, epsilon=epsilon)
        rows.append(
            {
                "feature": col,
                "psi": value,
                "band": psi_band(value, stable_below=stable_below, significant_above=significant_above),
                "reference_rows": int(len(ref)),
                "current_rows": int(len(cur)),
                "reference_null_share": float(ref.isna().mean()) if len(ref) else float("nan"),
                "current_null_share": float(cur.isna().mean()) if len(cur) else float("nan"),
                "reference_median": float(ref.median()) if ref.notna().any() else float("nan"),
                "current_median": float(cur.median()) if cur.notna().any() else float("nan"),
            }
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "psi",
            "band",
            "reference_rows",
            "current_rows",
            "reference_null_share",
            "current_null_share",
            "reference_median",
            "current_median",
        ],
    )
    return out.sort_values(["psi", "feature"], ascending=[False, True], na_position="last").reset_index(drop=True)
