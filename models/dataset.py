"""Training frame: claim_features joined with audit labels, split by time, unaudited claims handled as
positive-unlabelled (PU) data.

Grain of every frame here: one row per (claim_id, claim_source), the grain of ``claim_features``.

Why PU: ``labels`` lists audited claims only. A claim nobody audited is *unknown*, not clean; filling
its label with 0 (the classic mistake) teaches the model that everything auditors never looked at is
fine. Chosen approach (documented in ``conf/model.yaml`` ``model.pu``):

- every audited claim keeps its label (1 confirmed improper, 0 audited and clean) with weight 1;
- a deterministic random sample of unaudited claims (``unlabelled_sample_fraction``, hash of the key
  and a seed, capped at ``max_unlabelled_rows`` per period) enters as a *weighted* negative with weight
  ``unlabelled_weight`` (the "biased learning" form of PU learning: unlabelled data is mostly clean, so
  it anchors what ordinary claims look like, but one unaudited claim counts for a fraction of an
  audited-clean one); the ``label`` column stays null for them, only ``target``/``sample_weight`` say
  how training used them;
- provider labels (a target aid, never a feature): unaudited claims of a provider with a confirmed
  provider outcome (label 1) are never used as negatives; those of a provider cleared by an
  investigation (label 0) are sampled with the audited weight 1. Only provider labels dated before the
  validation period (or undated) are used, so the held-out periods never inform training.

The split holds out by time *and* by provider. Claims dated on or after ``test_start`` are the test
period. Before it, a deterministic share of billing providers (``split.provider_holdout_fraction``, a
hash of the NPI) is held out: their claims are the validation set and the other providers' claims are
trained on. Every model choice (early stopping, the blend, calibration) is then made on providers the
booster never saw, the way it will meet a perpetrator nobody has labelled yet; validating on the same
providers' later claims only rewards recognising known perpetrators. With
``provider_holdout_fraction: 0`` the split is by time alone: train < valid_start <= valid < test_start.
When labels exist the date boundaries are quantiles of the *audited* claims' dates, so validation and
test hold audit outcomes even though the newest months have none yet. Claims without a claim_date
form period ``undated`` (kept, counted, never trained or evaluated on).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from claimsentry.errors import InputError

KEY = ["claim_id", "claim_source"]
PERIODS = ("train", "valid", "test")
EPOCH = dt.date(1970, 1, 1)


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def model_params(settings) -> dict:
    """``model.*`` parameters: the shipped ``conf/model.yaml`` overridden key by key by settings."""
    from claimsentry.config import load_yaml_resource

    shipped = (load_yaml_resource("model.yaml") or {}).get("model", {})
    return _merge(shipped, settings.section("model") if settings is not None else {})


@dataclass(frozen=True)
class SplitDates:
    """Period boundaries: train < valid_start <= valid < test_start <= test."""

    valid_start: dt.date
    test_start: dt.date

    def as_dict(self) -> dict:
        return {"valid_start": self.valid_start.isoformat(), "test_start": self.test_start.isoformat()}


def _as_date(value: Any, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"model.split.{name} must be YYYY-MM-DD, got {value!r}") from None


def split_dates(
    features: DataFrame,
    *,
    valid_start: Any = None,
    test_start: Any = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> SplitDates:
    """Period boundaries from explicit dates, else from claim-date quantiles (``approxQuantile``:
    nothing claim-sized reaches the driver). The last ``test_fraction`` of claims is the test period."""
    vs, ts = _as_date(valid_start, "valid_start"), _as_date(test_start, "test_start")
    if vs is None or ts is None:
        if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
            raise InputError("model.split fractions must be in (0, 1) and sum to less than 1")
        days = features.where(F.col("claim_date").isNotNull()).select(
            F.datediff(F.col("claim_date"), F.lit(EPOCH.isoformat()).cast("date")).cast("double").alias("d")
        )
        q = days.approxQuantile("d", [1 - test_fraction - valid_fraction, 1 - test_fraction], 0.001)
        if len(q) < 2:
            raise InputError("no claim has a claim_date: a time-based split is impossible")
        vs = vs or EPOCH + dt.timedelta(days=int(q[0]))
        ts = ts or EPOCH + dt.timedelta(days=int(q[1]))
    if not vs < ts:
        raise InputError(
            f"validation period must start before the test period (valid_start {vs}, test_start {ts}); "
            "the claims span too few dates for a time split, or model.split dates are inverted"
        )
    return SplitDates(vs, ts)


def held_out_provider(fraction: float, seed: int) -> F.Column:
    """True for the billing providers held out for validation: a fixed hash of the NPI below
    ``fraction`` (the same providers on every run; a claim without a billing NPI is never held out)."""
    return F.coalesce(hash_uniform("billing_npi", seed=seed) < F.lit(float(fraction)), F.lit(False))


def assign_period(features: DataFrame, dates: SplitDates, *, provider_holdout_fraction: float = 0.0, seed: int = 7) -> DataFrame:
    """Add ``period`` (train | valid | test | undated) from claim_date and, when
    ``provider_holdout_fraction`` > 0, the held-out providers (module docstring); same grain."""
    d = F.col("claim_date")
    if provider_holdout_fraction > 0:
        before_test = F.when(held_out_provider(provider_holdout_fraction, seed), F.lit("valid")).otherwise(F.lit("train"))
    else:
        before_test = F.when(d < F.lit(dates.valid_start), F.lit("train")).otherwise(F.lit("valid"))
    return features.withColumn(
        "period",
        F.when(d.isNull(), F.lit("undated")).when(d >= F.lit(dates.test_start), F.lit("test")).otherwise(before_test),
    )


def hash_uniform(*columns: str, seed: int) -> F.Column:
    """A deterministic pseudo-random number in [0, 1) per value of ``columns`` (same draw on every re-run)."""
    return (F.abs(F.xxhash64(*[F.col(c) for c in columns], F.lit(int(seed)))) % 1_000_000) / 1_000_000.0


def key_uniform(seed: int) -> F.Column:
    """A deterministic pseudo-random number in [0, 1) per claim key (same draw on every re-run)."""
    return hash_uniform("claim_id", "claim_source", seed=seed)


def attach_labels(
    features: DataFrame,
    labels: DataFrame | None,
    provider_labels: DataFrame | None,
    *,
    provider_labels_before: dt.date | None = None,
) -> DataFrame:
    """Left-join claim labels (``label`` int, null = unaudited; ``is_audited``) and the billing
    provider's label (``provider_label``, null = none) onto claim features. Same grain as features."""
    out = features
    if labels is not None:
        lab = labels.select(*KEY, F.col("label").cast("int").alias("label"))
        out = out.drop("label").join(lab, KEY, "left")
    else:
        out = out.withColumn("label", F.lit(None).cast("int"))
    out = out.withColumn("is_audited", F.col("label").isNotNull())
    if provider_labels is not None:
        prov = provider_labels
        if provider_labels_before is not None and "label_date" in prov.columns:
            prov = prov.where(F.col("label_date").isNull() | (F.col("label_date") < F.lit(provider_labels_before)))
        # one row per npi: a provider with any confirmed outcome counts as confirmed
        prov = prov.groupBy(F.col("npi").alias("billing_npi")).agg(F.max(F.col("label").cast("int")).alias("provider_label"))
        out = out.drop("provider_label").join(prov, "billing_npi", "left")
    else:
        out = out.withColumn("provider_label", F.lit(None).cast("int"))
    return out


def pu_sample_fractions(labelled: DataFrame, pu: Mapping[str, Any]) -> dict[str, float]:
    """Per-period share of unaudited claims to draw: ``unlabelled_sample_fraction``, lowered where
    that would exceed ``max_unlabelled_rows`` (one small aggregation; returns at most 4 numbers)."""
    fraction = float(pu.get("unlabelled_sample_fraction", 0.25))
    cap = int(pu.get("max_unlabelled_rows", 200_000))
    counts = {
        r["period"]: r["n"]
        for r in labelled.where(~F.col("is_audited")).groupBy("period").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    return {p: (min(fraction, cap / n) if n else fraction) for p, n in counts.items()}


def training_frame(labelled: DataFrame, pu: Mapping[str, Any], fractions: Mapping[str, float]) -> DataFrame:
    """Add the PU training columns to a labelled, period-assigned frame (same grain):

    - ``pu_role``: ``audited`` | ``unlabelled_negative`` (drawn unaudited claim) | ``unused``
    - ``target`` (double): the audit label for audited claims, 0.0 for drawn unaudited claims, null otherwise
    - ``sample_weight`` (double): 1.0 audited; ``unlabelled_weight`` drawn (1.0 if the provider was
      cleared by an investigation); null otherwise
    """
    weight_u = float(pu.get("unlabelled_weight", 0.2))
    frac = F.lit(0.0)
    for period, value in fractions.items():
        frac = F.when(F.col("period") == period, F.lit(float(value))).otherwise(frac)
    drawn = (
        ~F.col("is_audited")
        & F.col("period").isin(*PERIODS)
        & (F.coalesce(F.col("provider_label"), F.lit(0)) != 1)
        & (key_uniform(int(pu.get("seed", 7))) < frac)
    )
    role = F.when(F.col("is_audited"), F.lit("audited")).when(drawn, F.lit("unlabelled_negative")).otherwise(F.lit("unused"))
    return (
        labelled.withColumn("pu_role", role)
        .withColumn(
            "target",
            F.when(F.col("pu_role") == "audited", F.col("label").cast("double")).when(
                F.col("pu_role") == "unlabelled_negative", F.lit(0.0)
            ),
        )
        .withColumn(
            "sample_weight",
            F.when(F.col("pu_role") == "audited", F.lit(1.0)).when(
                F.col("pu_role") == "unlabelled_negative",
                F.when(F.col("provider_label") == 0, F.lit(1.0)).otherwise(F.lit(weight_u)),
            ),
        )
    )


@dataclass
class TrainingData:
    """The labelled, split frame (Spark, claim grain) and what was decided to build it."""

    frame: DataFrame
    dates: SplitDates
    sample_fractions: dict[str, float]
    has_labels: bool
    split_info: dict = field(default_factory=dict)


def build_training_data(
    features: DataFrame,
    labels: DataFrame | None,
    provider_labels: DataFrame | None,
    params: Mapping[str, Any],
) -> TrainingData:
    """claim_features + labels -> period-assigned PU training frame (see module docstring)."""
    split = params.get("split", {})
    audited = features.join(labels.select(*KEY).distinct(), KEY, "left_semi") if labels is not None else None
    basis = "audited claims" if audited is not None and not audited.isEmpty() else "all claims"
    dates = split_dates(
        audited if basis == "audited claims" else features,
        valid_start=split.get("valid_start"),
        test_start=split.get("test_start"),
        valid_fraction=float(split.get("valid_fraction", 0.15)),
        test_fraction=float(split.get("test_fraction", 0.2)),
    )
    holdout = float(split.get("provider_holdout_fraction", 0.0))
    labelled = assign_period(
        attach_labels(features, labels, provider_labels, provider_labels_before=dates.test_start),
        dates,
        provider_holdout_fraction=holdout,
        seed=int(split.get("seed", 7)),
    )
    pu = params.get("pu", {})
    fractions = pu_sample_fractions(labelled, pu)
    return TrainingData(
        frame=training_frame(labelled, pu, fractions),
        dates=dates,
        sample_fractions=fractions,
        has_labels=labels is not None,
        split_info={"dates_from": basis, "provider_holdout_fraction": holdout,
                    "validation": "held-out providers before test_start" if holdout > 0 else "time window [valid_start, test_start)"},
    )


def period_counts(frame: DataFrame) -> dict:
    """{period: {claims, audited, positives, unlabelled_negative}} (one small aggregation)."""
    rows = (
        frame.groupBy("period")
        .agg(
            F.count(F.lit(1)).alias("claims"),
            F.sum(F.col("is_audited").cast("int")).alias("audited"),
            F.sum(F.when(F.col("label") == 1, 1).otherwise(0)).alias("positives"),
            F.sum(F.when(F.col("pu_role") == "unlabelled_negative", 1).otherwise(0)).alias("unlabelled_negative"),
        )
        .collect()
    )
    return {r["period"]: {k: int(r[k] or 0) for k in ("claims", "audited", "positives", "unlabelled_negative")} for r in rows}


def to_driver(frame: DataFrame, period: str, columns: list[str], *, max_rows: int, seed: int = 7):
    """Training rows of one period as pandas (audited + drawn unaudited only: bounded by audit volume
    and ``max_unlabelled_rows``). Raises when the period holds more than ``max_rows`` rows, since
    silently truncating training data would change the model; use ``model.distributed`` instead."""
    rows = frame.where((F.col("period") == period) & F.col("target").isNotNull())
    pdf = rows.select(*columns).limit(max_rows + 1).toPandas()
    if len(pdf) > max_rows:
        raise InputError(
            f"{period} period has more than {max_rows:,} training rows; raise model.max_train_rows or set "
            "model.distributed: true"
        )
    return pdf.sort_values(KEY).reset_index(drop=True)
