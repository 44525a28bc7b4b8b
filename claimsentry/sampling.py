"""Provider audits by sampling: a provider's claims for a period, a seeded random sample of them, and
the projection of the sample's overpayments onto all of them (``claimsentry audit-sample`` and
``claimsentry extrapolate``).

Pure functions on pandas: one provider's claims for a period fit on the driver. The Spark side
(``claimsentry.jobs.audit_sample``) only filters the gated claims to the provider and aggregates lines
to one row per claim before ``toPandas``.

Frames and their grain
----------------------
- *claims* / *universe*: one row per claim (claim_source, claim_id): ``claim_source`` (medical |
  pharmacy), ``claim_id``, ``paid_amount`` (sum of the claim's lines), ``claim_date``, ``person_id``.
  The universe is the claims with ``paid_amount > 0``, sorted by (claim_source, claim_id), so that the
  same input gives the same sample whatever order Spark returned its rows in.
- *sample*: one row per sampled claim, with its stratum, the stratum's size ``N_h``
  (``stratum_size``) and sample size ``n_h`` (``stratum_sample_size``), and an empty ``overpayment``
  that auditors fill in. Everything ``extrapolate`` needs is on its rows.

Drawing the sample
------------------
Every claim of the universe, in (claim_source, claim_id) order, gets one uniform random number from
numpy's PCG64 generator seeded with the audit's seed (``numpy.random.default_rng(seed).random(N)``);
in each stratum the ``n_h`` claims with the smallest numbers are sampled. That is simple random
sampling without replacement within each stratum, and anyone can check it from ``universe.csv``,
which carries each claim's number.

- Simple (``--strata`` absent or 1): one stratum, the whole universe.
- Stratified by paid amount (``--strata K``): stratum boundaries by the Dalenius–Hodges cumulative
  √f rule (Dalenius & Hodges, JASA 54:88–101, 1959; Cochran, *Sampling Techniques*, 3rd ed.,
  1977, ch. 5A): the paid amounts are put in
  ``max(20, 10·K)`` equal-width classes between the smallest and largest paid amount (inner class
  edges rounded to the cent), and the K−1 boundaries are the class edges whose cumulative √(class
  count) is nearest to 1/K, 2/K, … of its total (a tie goes to the lower edge). Stratum h holds the
  claims paid at least its lower boundary and less than its upper one. Paid amounts too concentrated
  to split give fewer strata than asked for; the audit records how many were formed.
- Allocation: Neyman, n_h ∝ N_h·S_h, with at least 2 claims per stratum (so that each stratum's
  variance can be estimated) and at most N_h: ``n_h = min(N_h, max(2, λ·N_h·S_h))`` with λ such that
  the n_h add up to the sample size, then rounded by largest remainder (a tie goes to the lower
  stratum). A stratum whose allocation reaches its size is taken whole: a *certainty stratum*, known
  exactly, with no sampling error. The overpayments are unknown when the sample is drawn, so S_h is
  the standard deviation the stratum's overpayments would have if each claim were overpaid in full or
  not at all with even odds: S_h² = ½·σ_h² + ¼·μ_h², from the mean μ_h and standard deviation σ_h
  of the stratum's paid amounts (Var(B·x) = p·σ² + p(1−p)·μ² for B ~ Bernoulli(p), at p = ½). A
  stratum of claims that all paid the same is then still sampled in proportion to its dollars, where
  the paid amounts' spread alone would leave it only its 2 claims.

Extrapolation (mean per unit)
-----------------------------
With y the audited overpayment of a sampled claim, ȳ_h and s_h² (divisor n_h − 1) per stratum:

- point estimate T̂ = Σ_h N_h·ȳ_h (simple: N·ȳ);
- standard error SE = √(Σ_h N_h²·(1 − n_h/N_h)·s_h²/n_h) (simple: N·√((1 − n/N)·s²/n)); the factor
  (1 − n_h/N_h) is the finite population correction, and a certainty stratum adds no variance;
- two-sided 90% confidence interval T̂ ± t·SE, with t the 95th percentile of Student's t:
  with n − 1 degrees of freedom for a simple sample, and for a stratified one with Satterthwaite's
  effective degrees of freedom (Satterthwaite 1946; Cochran 1977, §5.4)
  ν = (Σ a_h s_h²)² / Σ (a_h s_h²)²/(n_h − 1), a_h = N_h²(1 − n_h/N_h)/n_h, over the strata that
  add variance. ν lies between the smallest of their n_h − 1 and the sum of them, itself at most
  n − K, the fixed degrees of freedom that SAS's SURVEYMEANS uses for a stratified sample; ν is
  lower, and the interval wider, when one stratum carries most of the variance, as high-paid strata
  usually do. When no stratum adds variance the interval is the point itself and ν is reported as
  n − K.
- ``precision`` = half-width / point estimate (``precision_amount`` = the half-width itself): the
  relative precision of the estimate; null when the point estimate is 0.

Which bound a demand uses. The contract asks for the two-sided 90% interval. Its lower bound is the
lower limit of a one-sided 95% interval, below the actual overpayment 95% of the time: what the
HHS Office of Inspector General's audit reports recommend recovering. The CMS Medicare Program Integrity Manual
(ch. 8 §8.4.5.1, revised by CR 10067 / Transmittal 828, 2019) has contractors demand, in most
cases, the lower limit of a one-sided 90% interval, T̂ − t₀.₉₀·SE: a little higher. Both are reported:
``lower_90`` (two-sided, the contract's) and ``lower_90_one_sided`` (the PIM's). Neither is floored:
they are the figures any statistics package reproduces from the sample. The overpayment found in
the sample itself (``sample_overpayment``) is a sure minimum of the universe's overpayment, and the
result says so (``notes``) when a lower bound falls below it.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Sequence

import numpy as np
import pandas as pd

from claimsentry.errors import InputError

CONFIDENCE = 0.90  # two-sided
MIN_PER_STRATUM = 2  # fewer and a stratum's variance cannot be estimated (unless taken whole)
ALLOCATION_ERROR_RATE = 0.5  # p of the all-or-nothing overpayment model behind S_h (module docstring)
CLAIM_SOURCES = ("medical", "pharmacy")
CLAIM_COLUMNS = ["claim_source", "claim_id", "paid_amount", "claim_date", "person_id"]
SAMPLE_COLUMNS = [
    "claim_id",
    "claim_source",
    "paid_amount",
    "stratum",
    "stratum_size",
    "stratum_sample_size",
    "stratum_paid_amount",
    "sample_item",
    "claim_date",
    "person_id",
    "random_number",
    "overpayment",
]
UNIVERSE_COLUMNS = [
    "claim_id",
    "claim_source",
    "paid_amount",
    "stratum",
    "claim_date",
    "person_id",
    "random_number",
    "sampled",
]
# What ``extrapolate`` reads from a sample file; ``stratum_paid_amount`` is optional.
REQUIRED_SAMPLE_COLUMNS = ["claim_id", "claim_source", "paid_amount", "stratum", "stratum_size", "stratum_sample_size", "overpayment"]


# --- The universe ---------------------------------------------------------------------------------


def universe_of(claims: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The sampling frame: ``claims`` (one row per claim, ``CLAIM_COLUMNS``) with ``paid_amount > 0``,
    sorted by (claim_source, claim_id). Claims paid nothing or less (a zero-paid or reversed claim)
    have no overpayment to recover and are left out; the second value counts them
    (``{"claims": n, "paid_amount": total}``). Raises ValueError when a claim appears twice."""
    missing = [c for c in CLAIM_COLUMNS if c not in claims.columns]
    if missing:
        raise ValueError(f"claims frame lacks {missing}")
    if claims.duplicated(["claim_source", "claim_id"]).any():
        raise ValueError("claims frame is not one row per (claim_source, claim_id)")
    paid = pd.to_numeric(claims["paid_amount"], errors="coerce")
    keep = paid > 0
    excluded = {"claims": int((~keep).sum()), "paid_amount": round(float(paid[~keep].fillna(0).sum()), 2)}
    universe = claims.loc[keep, CLAIM_COLUMNS].copy()
    universe["paid_amount"] = paid[keep].astype(float)
    universe = universe.sort_values(["claim_source", "claim_id"], kind="mergesort").reset_index(drop=True)
    return universe, excluded


def audit_id(npi: str, start: str, end: str, size: int, strata: int | None, seed: int, universe: pd.DataFrame) -> str:
    """Deterministic id of an audit: ``AU-`` + 12 hex of sha256 over its arguments and the universe's
    content (each claim's source, id, paid amount and date). Same arguments and claims, same id."""
    h = hashlib.sha256(f"{npi}|{start}|{end}|{size}|{strata or 1}|{seed}\n".encode("utf-8"))
    for rec in universe[["claim_source", "claim_id", "paid_amount", "claim_date"]].itertuples(index=False):
        h.update(f"{rec.claim_source}\t{rec.claim_id}\t{rec.paid_amount:.6f}\t{rec.claim_date}\n".encode("utf-8"))
    return "AU-" + h.hexdigest()[:12].upper()


# --- Strata and allocation ------------------------------------------------------------------------


def dalenius_hodges_classes(k: int) -> int:
    """Number of equal-width paid-amount classes the cumulative √f rule uses for ``k`` strata."""
    return max(20, 10 * k)


def strata_bounds(paid: Sequence[float] | np.ndarray, k: int, *, classes: int | None = None) -> list[float]:
    """Stratum boundaries on paid amount by the Dalenius–Hodges cumulative √f rule (module docstring):
    at most ``k - 1`` increasing cut points; stratum h holds ``cuts[h-2] <= paid < cuts[h-1]``.
    Fewer cuts when the paid amounts cannot be split into ``k`` non-empty strata. ``classes``:
    number of equal-width classes (default ``dalenius_hodges_classes(k)``)."""
    x = np.asarray(paid, dtype=float)
    if k < 1:
        raise ValueError("k must be at least 1")
    if k == 1 or x.size == 0 or x.min() == x.max():
        return []
    j = classes or dalenius_hodges_classes(k)
    lo, hi = float(x.min()), float(x.max())
    edges = sorted({round(lo + i * (hi - lo) / j, 2) for i in range(1, j)} - {round(lo, 2)})
    edges = [e for e in edges if lo < e <= hi]
    if not edges:
        return []
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    cum = np.cumsum(np.sqrt(counts))
    total = cum[-1]
    cuts: list[float] = []
    for h in range(1, k):
        target = total * h / k
        # the cut after class i is edges[i]; nearest cumulative wins, the lower edge on a tie
        i = min(range(len(edges)), key=lambda i: (abs(cum[i] - target), i))
        cuts.append(edges[i])
    cuts = sorted(set(cuts))
    # drop cuts that would leave a stratum empty
    kept: list[float] = []
    for c in cuts:
        lower = kept[-1] if kept else -math.inf
        if ((x >= lower) & (x < c)).any() and (x >= c).any():
            kept.append(c)
    return kept


def assign_strata(paid: Sequence[float] | np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Stratum (1-based) of each paid amount: 1 + the number of cuts at or below it."""
    return np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(paid, dtype=float), side="right") + 1


def neyman_weight(paid: Sequence[float] | np.ndarray, *, error_rate: float = ALLOCATION_ERROR_RATE) -> float:
    """N_h·S_h for one stratum's paid amounts, with S_h² = p·σ² + p(1−p)·μ² (σ, μ: the paid amounts'
    population standard deviation and mean; p = ``error_rate``): the standard deviation of the
    overpayments if each claim were overpaid in full with probability p (module docstring)."""
    x = np.asarray(paid, dtype=float)
    mu, var = float(x.mean()), float(x.var())  # the whole stratum: population moments
    return x.size * math.sqrt(error_rate * var + error_rate * (1 - error_rate) * mu * mu)


def allocate(sizes: Sequence[int], weights: Sequence[float], size: int, *, minimum: int = MIN_PER_STRATUM) -> list[int]:
    """Neyman allocation of ``size`` sampled claims over strata of ``sizes`` claims with Neyman
    ``weights`` (N_h·S_h, all > 0): ``n_h = min(N_h, max(min(minimum, N_h), λ·w_h))`` with Σ n_h =
    ``size``, rounded by largest remainder (ties to the lower stratum). A stratum given all its claims
    is a certainty stratum. Raises InputError when ``size`` exceeds the claims or cannot give each
    stratum its minimum."""
    sizes = [int(s) for s in sizes]
    weights = [float(w) for w in weights]
    if len(sizes) != len(weights) or not sizes or min(sizes) < 1 or min(weights) <= 0:
        raise ValueError("allocate needs one size >= 1 and one weight > 0 per stratum")
    floors = [min(minimum, n) for n in sizes]
    if size > sum(sizes):
        raise InputError(f"--size {size} is larger than the universe ({sum(sizes)} claims)")
    if size < sum(floors):
        raise InputError(
            f"--size {size} is too small for {len(sizes)} strata: each needs at least {minimum} claims "
            f"(at least {sum(floors)} in all); ask for fewer strata or a larger sample"
        )

    def shares(lam: float) -> list[float]:
        return [min(n, max(m, lam * w)) for n, m, w in zip(sizes, floors, weights)]

    lo, hi = 0.0, max(n / w for n, w in zip(sizes, weights))
    for _ in range(200):  # sum(shares) is continuous and non-decreasing in λ
        mid = (lo + hi) / 2
        if sum(shares(mid)) < size:
            lo = mid
        else:
            hi = mid
    exact = [round(s, 9) for s in shares(hi)]
    alloc = [int(math.floor(s)) for s in exact]
    order = sorted(
        (i for i in range(len(sizes)) if alloc[i] < sizes[i]), key=lambda i: (-round(exact[i] - alloc[i], 9), i)
    )
    for i in order[: size - sum(alloc)]:
        alloc[i] += 1
    return alloc


# --- Drawing --------------------------------------------------------------------------------------


def draw_sample(universe: pd.DataFrame, size: int, *, strata: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Draw the audit sample from ``universe`` (``universe_of``; one row per claim).

    Returns (frame, sample, design): ``frame`` is the universe (one row per claim, sorted by
    claim_source, claim_id) with ``stratum``, ``random_number`` and ``sampled``; ``sample`` is one row
    per sampled claim (``SAMPLE_COLUMNS``; ordered by stratum, then the order of selection, numbered
    by ``sample_item``; ``overpayment`` empty); ``design`` names the method and rules, the stratum
    boundaries (``bounds``: the cut points) and, per stratum, its claims, dollars and sample size
    (``allocation``). ``strata`` None or 1 is a simple random sample. Raises InputError for a sample size
    or stratum count that cannot be drawn.
    """
    n_universe = len(universe)
    k = 1 if strata is None else int(strata)
    if n_universe == 0:
        raise InputError("the universe is empty: no claims to sample")
    if size < 1:
        raise InputError(f"--size must be at least 1, got {size}")
    if size > n_universe:
        raise InputError(f"--size {size} is larger than the universe ({n_universe} claims)")
    if size < MIN_PER_STRATUM and size < n_universe:
        raise InputError(
            f"--size must be at least {MIN_PER_STRATUM}: a sample of one claim cannot estimate its own variance"
        )
    if k < 1:
        raise InputError(f"--strata must be at least 1, got {k}")
    if int(seed) < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    if universe.duplicated(["claim_source", "claim_id"]).any():
        raise ValueError("universe is not one row per (claim_source, claim_id)")

    frame = universe.sort_values(["claim_source", "claim_id"], kind="mergesort").reset_index(drop=True)
    paid = frame["paid_amount"].to_numpy(dtype=float)
    cuts = strata_bounds(paid, k)
    frame["stratum"] = assign_strata(paid, cuts)
    frame["random_number"] = np.random.default_rng(int(seed)).random(n_universe)

    labels = sorted(frame["stratum"].unique())
    groups = {h: frame.index[frame["stratum"] == h] for h in labels}
    sizes = [len(groups[h]) for h in labels]
    weights = [neyman_weight(paid[groups[h]]) for h in labels]
    alloc = [size] if len(labels) == 1 else allocate(sizes, weights, size)

    chosen: list[pd.DataFrame] = []
    details = []
    for h, n_h, w in zip(labels, alloc, weights):
        members = frame.loc[groups[h]].assign(_pos=groups[h])
        picked = members.sort_values(["random_number", "_pos"], kind="mergesort").head(n_h)
        chosen.append(picked)
        i = labels.index(h)
        details.append(
            {
                "stratum": int(h),
                "paid_at_least": cuts[i - 1] if i > 0 else None,
                "paid_below": cuts[i] if i < len(cuts) else None,
                "claims": int(len(members)),
                "paid_amount": round(float(members["paid_amount"].sum()), 2),
                "min_paid": round(float(members["paid_amount"].min()), 2),
                "max_paid": round(float(members["paid_amount"].max()), 2),
                "neyman_weight": round(float(w), 6),
                "sample_size": int(n_h),
                "certainty": bool(n_h == len(members)),
            }
        )
    picked = pd.concat(chosen)
    frame["sampled"] = False
    frame.loc[picked["_pos"], "sampled"] = True

    by_stratum = {d["stratum"]: d for d in details}
    sample = picked.drop(columns="_pos").reset_index(drop=True)
    sample["stratum_size"] = sample["stratum"].map(lambda h: by_stratum[h]["claims"])
    sample["stratum_sample_size"] = sample["stratum"].map(lambda h: by_stratum[h]["sample_size"])
    sample["stratum_paid_amount"] = sample["stratum"].map(lambda h: by_stratum[h]["paid_amount"])
    sample["sample_item"] = np.arange(1, len(sample) + 1)
    sample["overpayment"] = np.nan
    stratified = len(labels) > 1
    design = {
        "method": "stratified random sampling" if stratified else "simple random sampling",
        "strata_requested": k,
        "strata_formed": len(labels),
        "stratification": (
            f"Dalenius-Hodges cumulative sqrt(f) on {dalenius_hodges_classes(k)} equal-width paid-amount classes"
            if k > 1 else None
        ),
        "allocation_rule": (
            "Neyman on S_h^2 = 1/2 var(paid) + 1/4 mean(paid)^2, at least "
            f"{MIN_PER_STRATUM} per stratum, a stratum given all its claims taken whole"
            if stratified else None
        ),
        "selection": (
            "numpy PCG64 default_rng(seed).random(N) over the universe in (claim_source, claim_id) "
            "order; per stratum the n_h smallest numbers, without replacement"
        ),
        "bounds": cuts,
        "allocation": details,
    }
    frame = frame[UNIVERSE_COLUMNS]
    return frame, sample[SAMPLE_COLUMNS], design


# --- Reading an audited sample --------------------------------------------------------------------

_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")


def _number(text: str) -> float | None:
    """A finite number as auditors type it (``12.5``, ``1,234.50``, ``$12``, ``(3.00)`` for -3);
    None when it is not one. A comma is read only as a thousands separator: ``12,50`` is not a number."""
    t = text.strip().lstrip("'").replace("$", "").strip()
    negative = t.startswith("(") and t.endswith(")")
    if negative:
        t = t[1:-1].strip()
    if "," in t:
        if not _THOUSANDS.fullmatch(t.lstrip("+-")):
            return None
        t = t.replace(",", "")
    try:
        value = float(t)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return -value if negative else value


def _lines(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"


def check_sample(raw: pd.DataFrame, *, name: str = "sample", first_line: int = 2) -> pd.DataFrame:
    """The audited sample, typed: one row per sampled claim with ``stratum`` (text),
    ``stratum_size``, ``stratum_sample_size`` (int), ``paid_amount``, ``overpayment`` (float) and
    ``line`` (its line in the file). ``raw`` is the file as text (every cell a string, rows in file
    order starting at line ``first_line``). Raises InputError, one line naming the lines at fault,
    for a missing column, a missing, non-numeric or negative overpayment or one above the claim's
    paid amount, a duplicated claim, or strata whose sizes disagree with each other or with the rows.
    Nothing is dropped, except rows with every cell empty (a spreadsheet's trailing rows)."""
    frame = raw.copy()
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_SAMPLE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}")
    frame = frame.fillna("").astype(str).apply(lambda s: s.str.strip())
    frame["line"] = np.arange(first_line, first_line + len(frame))
    frame = frame[(frame.drop(columns="line") != "").any(axis=1)].reset_index(drop=True)
    if frame.empty:
        raise InputError(f"{name}: no sampled claims in the file")

    problems: list[str] = []
    absent, not_number, negative, above, bad_paid = [], [], [], [], []
    paid_values, over_values = [], []
    for rec in frame.to_dict("records"):
        paid = _number(rec["paid_amount"])
        if paid is None or paid <= 0:
            bad_paid.append(rec["line"])
        over = None
        if rec["overpayment"] == "":
            absent.append(rec["line"])
        else:
            over = _number(rec["overpayment"])
            if over is None:
                not_number.append(f"{rec['line']} ({rec['overpayment']!r})")
            elif over < 0:
                negative.append(f"{rec['line']} ({rec['overpayment']})")
            elif paid is not None and round(over, 2) > round(paid, 2):
                above.append(f"{rec['line']} ({over:.2f} > {paid:.2f})")
        paid_values.append(paid)
        over_values.append(over)
    if absent:
        problems.append(f"overpayment missing on {_lines(absent)} (record 0 for a claim with no overpayment)")
    if not_number:
        problems.append(f"overpayment not a number on {_lines(not_number)}")
    if negative:
        problems.append(f"overpayment negative on {_lines(negative)}")
    if above:
        problems.append(f"overpayment above the claim's paid amount on {_lines(above)}")
    if bad_paid:
        problems.append(f"paid_amount not a positive number on {_lines(bad_paid)}")
    blank = frame.loc[frame["stratum"] == "", "line"].tolist()
    if blank:
        problems.append(f"stratum missing on {_lines(blank)}")
    dup = frame.duplicated(["claim_source", "claim_id"], keep="first")
    if dup.any():
        problems.append(f"claim listed twice on {_lines(frame.loc[dup, 'line'].tolist())}")
    if problems:
        raise InputError(f"{name}: " + "; ".join(problems))

    frame["paid_amount"] = [float(v) for v in paid_values]
    frame["overpayment"] = [float(v) for v in over_values]
    for col in ("stratum_size", "stratum_sample_size"):
        bad = [rec["line"] for rec in frame[["line", col]].to_dict("records") if not re.fullmatch(r"\d+", rec[col])]
        if bad:
            raise InputError(f"{name}: {col} not a whole number on {_lines(bad)}")
        frame[col] = frame[col].astype(int)
    if "stratum_paid_amount" in frame.columns:
        frame["stratum_paid_amount"] = [_number(v) for v in frame["stratum_paid_amount"]]
    for stratum, rows in frame.groupby("stratum", sort=False):
        label = f"stratum {stratum}"
        for col in ("stratum_size", "stratum_sample_size"):
            if rows[col].nunique() > 1:
                raise InputError(f"{name}: {label} has more than one {col} ({_lines(rows['line'].tolist())})")
        big_n, small_n = int(rows["stratum_size"].iloc[0]), int(rows["stratum_sample_size"].iloc[0])
        if len(rows) != small_n:
            raise InputError(
                f"{name}: {label} has {len(rows)} rows but stratum_sample_size {small_n}: every sampled claim "
                "needs its row (a claim with no overpayment records 0)"
            )
        if not 1 <= small_n <= big_n:
            raise InputError(f"{name}: {label} samples {small_n} of stratum_size {big_n} claims")
        if small_n < 2 and small_n < big_n:
            raise InputError(f"{name}: {label} samples 1 of {big_n} claims: its variance cannot be estimated")
    return frame


# --- Extrapolation --------------------------------------------------------------------------------


def _natural(label) -> tuple:
    """Sort key putting stratum "2" before "10"."""
    text = str(label)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def _t(prob: float, df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(prob, df))


def extrapolate(sample: pd.DataFrame) -> dict:
    """Project a typed audited sample (``check_sample``; one row per sampled claim) onto its universe:
    the mean-per-unit estimate of the universe's total overpayment and its two-sided 90% confidence
    interval with the finite population correction (module docstring for the formulas and the
    degrees of freedom). Money is rounded to the cent, ``precision`` to 6 places."""
    strata = []
    for stratum in sorted(sample["stratum"].unique(), key=_natural):
        rows = sample[sample["stratum"] == stratum]
        y = rows["overpayment"].to_numpy(dtype=float)
        big_n, n = int(rows["stratum_size"].iloc[0]), len(y)
        var = float(y.var(ddof=1)) if n > 1 else 0.0
        fpc = 1.0 - n / big_n
        contribution = big_n * big_n * fpc * var / n  # N_h² (1 − n_h/N_h) s_h² / n_h
        paid = rows["stratum_paid_amount"].iloc[0] if "stratum_paid_amount" in rows.columns else None
        strata.append(
            {
                "stratum": str(stratum),
                "stratum_size": big_n,
                "sample_size": n,
                "certainty": n == big_n,
                "stratum_paid_amount": None if paid is None or pd.isna(paid) else round(float(paid), 2),
                "sample_overpayment": float(y.sum()),
                "mean_overpayment": float(y.mean()),
                "sd_overpayment": math.sqrt(var),
                "estimate": big_n * float(y.mean()),
                "variance": contribution,
            }
        )
    k = len(strata)
    n_total = sum(s["sample_size"] for s in strata)
    point = sum(s["estimate"] for s in strata)
    variance = sum(s["variance"] for s in strata)
    se = math.sqrt(variance)
    if k == 1:
        df: float = n_total - 1
    else:
        denominator = sum(s["variance"] ** 2 / (s["sample_size"] - 1) for s in strata if s["variance"] > 0)
        df = variance * variance / denominator if denominator > 0 else n_total - k
    if se > 0:
        t_two, t_one = _t(1 - (1 - CONFIDENCE) / 2, df), _t(CONFIDENCE, df)
    else:
        t_two = t_one = None
    half = (t_two or 0.0) * se
    lower, upper = point - half, point + half
    lower_one = point - (t_one or 0.0) * se
    sample_over = sum(s["sample_overpayment"] for s in strata)
    notes = []
    if lower < sample_over:
        notes.append(
            f"lower_90 ({lower:.2f}) is below the overpayment found in the sample itself ({sample_over:.2f}), "
            "a sure minimum of the universe's overpayment"
        )
    if se == 0:
        notes.append("no sampling error: every stratum was taken whole or its overpayments do not vary")
    universe_paid = None
    if all(s["stratum_paid_amount"] is not None for s in strata):
        universe_paid = round(sum(s["stratum_paid_amount"] for s in strata), 2)
    return {
        "universe_size": sum(s["stratum_size"] for s in strata),
        "sample_size": n_total,
        "point_estimate": round(point, 2),
        "lower_90": round(lower, 2),
        "upper_90": round(upper, 2),
        "precision": round(half / point, 6) if point > 0 else None,
        "precision_amount": round(half, 2),
        "confidence": "two-sided 90%",
        "lower_90_one_sided": round(lower_one, 2),
        "standard_error": round(se, 2),
        "degrees_of_freedom": round(df, 4),
        "degrees_of_freedom_rule": "n - 1" if k == 1 else "Satterthwaite (Cochran 1977, 5.4)",
        "t_value": None if t_two is None else round(t_two, 6),
        "finite_population_correction": True,
        "method": "stratified" if k > 1 else "simple",
        "estimator": "mean per unit",
        "strata": k,
        "sample_overpayment": round(sample_over, 2),
        "sample_paid_amount": round(float(sample["paid_amount"].sum()), 2),
        "universe_paid_amount": universe_paid,
        "notes": notes,
        "by_stratum": [
            {
                "stratum": s["stratum"],
                "stratum_size": s["stratum_size"],
                "sample_size": s["sample_size"],
                "certainty": s["certainty"],
                "sample_overpayment": round(s["sample_overpayment"], 2),
                "mean_overpayment": round(s["mean_overpayment"], 6),
                "sd_overpayment": round(s["sd_overpayment"], 6),
                "estimate": round(s["estimate"], 2),
                "standard_error": round(math.sqrt(s["variance"]), 2),
            }
            for s in strata
        ],
    }
