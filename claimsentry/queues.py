"""Audit queues: which claims and providers an audit team opens first, and why.

Claims that break a certain rule (service after death, outside enrollment, the later copy of an exact
duplicate: ``certain: true`` in the rules knowledge base) come first; then ranking is by expected recovery (score x amount at risk x
recovery rate) among claims scoring at least ``min_score``; ties break on claim_id so a re-run of the
same date gives the same queue.
Queues are bounded by capacity, so only the queued rows (never the scored claims) reach the driver
to have their reasons rendered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry import reasons as R
from claimsentry.exact import exact_avg, exact_sum
from claimsentry.models.scoring import CERTAIN_SCORE

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class QueueParams:
    claim_capacity: int = 200
    provider_capacity: int = 50
    min_score: float = 0.05
    recovery_rate: float = 1.0
    flag_score: float = 0.5
    max_reasons: int = 5
    segment_by: str | None = None  # e.g. claim_source, payer, plan or a region column
    segment_capacity: tuple[tuple[str, int], ...] = ()  # per segment value; others share claim_capacity

    @classmethod
    def from_settings(cls, settings) -> "QueueParams":
        section = settings.section("queue")
        known = {k: section[k] for k in cls.__dataclass_fields__ if k in section and section[k] is not None}
        if "segment_capacity" in known:
            known["segment_capacity"] = tuple(sorted((str(k), int(v)) for k, v in dict(known["segment_capacity"]).items()))
        return cls(**known)


def with_money(scored: DataFrame, params: QueueParams) -> DataFrame:
    """Add ``amount_at_risk`` and ``expected_recovery`` to scored claims.

    The amount at risk is the paid amount unless a feature block states a narrower one
    (``amount_at_risk_hint``, e.g. the payment difference between billed and regrouped DRG).
    """
    at_risk = F.col("amount_paid")
    if "amount_at_risk_hint" in scored.columns:
        at_risk = F.coalesce(F.col("amount_at_risk_hint"), at_risk)
    at_risk = F.greatest(F.coalesce(at_risk, F.lit(0.0)), F.lit(0.0))
    return scored.withColumn("amount_at_risk", F.round(at_risk, 2)).withColumn(
        "expected_recovery", F.round(F.col("score") * F.col("amount_at_risk") * F.lit(params.recovery_rate), 2)
    )


def select_claims(scored: DataFrame, params: QueueParams, *, exclude: DataFrame | None = None) -> DataFrame:
    """The queued claims, best first, with ``rank`` 1..N (Spark; at most ``claim_capacity`` rows).

    ``exclude`` (claim_id, claim_source) removes claims already opened as cases by earlier runs.
    With ``segment_by`` set, each listed segment value gets at most its own capacity (e.g. the
    pharmacy team audits 50 a day, the hospital team 150); the queue as a whole stays within
    ``claim_capacity``.
    """
    # claims that break a certain rule first (models.scoring.certain_tier), then by money expected back
    certain = (F.col("score") >= F.lit(CERTAIN_SCORE)).desc()
    order = [certain, F.col("expected_recovery").desc(), F.col("score").desc(), F.col("claim_id"), F.col("claim_source")]
    candidates = with_money(scored, params).where(F.col("score") >= params.min_score)
    if exclude is not None:
        candidates = candidates.join(exclude.select("claim_id", "claim_source"), ["claim_id", "claim_source"], "left_anti")
    if params.segment_by and params.segment_capacity:
        caps = F.create_map(*[x for k, v in params.segment_capacity for x in (F.lit(k), F.lit(v))])
        seg = F.coalesce(F.col(params.segment_by).cast("string"), F.lit(""))
        in_segment = F.row_number().over(Window.partitionBy(seg).orderBy(*order))
        limit = F.coalesce(caps[seg], F.lit(params.claim_capacity))
        candidates = candidates.withColumn("_seg_rank", in_segment).where(F.col("_seg_rank") <= limit).drop("_seg_rank")
    top = candidates.orderBy(*order).limit(params.claim_capacity)
    return top.withColumn("rank", F.row_number().over(Window.orderBy(*order)))


def _items(value) -> list:
    """An array cell from pandas (None, list or numpy array) as a list."""
    return [] if value is None else list(value)


def claim_reasons(
    row: Mapping[str, Any],
    rules: Mapping[str, Mapping[str, Any]],
    templates: Mapping[str, str],
    *,
    max_reasons: int = 5,
) -> list[str]:
    """Reasons for one claim: its rule hits (most severe first), then the model's top positive
    contributions rendered from per-feature templates. Features without a template are skipped,
    never shown by their raw name."""
    out: list[str] = []
    hits = [rules[h] for h in _items(row.get("rule_hits")) if h in rules]
    explained: set[str] = set()  # features a fired rule already states: no second sentence for them
    for rule in sorted(hits, key=lambda r: (SEVERITY_ORDER.get(r.get("severity"), 9), r["id"])):
        out.append(R.render(rule["reason"], row))
        explained.update(rule.get("reads") or [])
    for contrib in _items(row.get("contributions")):
        feature = contrib["feature"] if isinstance(contrib, Mapping) else contrib[0]
        value = contrib["contribution"] if isinstance(contrib, Mapping) else contrib[1]
        if feature.startswith("rule_") or feature in explained or feature not in templates or not value > 0:
            continue
        if not R.renderable(templates[feature], row):  # a missing value is no checkable reason
            continue
        out.append(R.render(templates[feature], row))
    seen, unique = set(), []
    for text in out:
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique[:max_reasons]


def render_claim_queue(
    queued: pd.DataFrame, rules: Iterable[Mapping[str, Any]], params: QueueParams
) -> pd.DataFrame:
    """Turn queued rows (pandas, bounded) into the contract's claim_queue columns plus context."""
    by_id = {r["id"]: r for r in rules}
    templates = R.feature_templates()
    records = queued.to_dict("records")
    queued = queued.copy()
    queued["reasons"] = [
        "; ".join(claim_reasons(rec, by_id, templates, max_reasons=params.max_reasons)) or "model score"
        for rec in records
    ]
    queued["schemes"] = [
        ", ".join(sorted({by_id[h]["scheme"] for h in _items(rec.get("rule_hits")) if h in by_id}))
        for rec in records
    ]
    first = [
        "rank",
        "claim_id",
        "claim_source",
        "score",
        "amount_at_risk",
        "expected_recovery",
        "reasons",
        "billing_npi",
        "person_id",
        "claim_type",
        "claim_date",
        "amount_paid",
        "prescriber_npi",
        "schemes",
        "citations",
        "model_version",
        "case_id",
        "run_date",
        "rules_version",
    ]
    cols = [c for c in first if c in queued.columns]
    return queued[cols].sort_values("rank").reset_index(drop=True)


def select_providers(scored: DataFrame, params: QueueParams) -> DataFrame:
    """Providers to review, best first: billing providers (and prescribers of pharmacy claims)
    rolled up from their claims. Score is the mean of the provider's five highest claim scores;
    flagged claims are those at or above ``flag_score``."""
    money = with_money(scored, params)
    roles = [money.select(F.col("billing_npi").alias("npi"), F.lit("billing").alias("npi_role"), "*")]
    if "prescriber_npi" in money.columns:
        roles.append(
            money.where(F.col("prescriber_npi").isNotNull()).select(
                F.col("prescriber_npi").alias("npi"), F.lit("prescriber").alias("npi_role"), "*"
            )
        )
    claims = roles[0]
    for extra in roles[1:]:
        claims = claims.unionByName(extra)
    claims = claims.where(F.col("npi").isNotNull())
    w = Window.partitionBy("npi", "npi_role").orderBy(F.col("score").desc(), F.col("claim_id"))
    flagged = F.col("score") >= params.flag_score
    rolled = (
        claims.withColumn("_rn", F.row_number().over(w))
        .groupBy("npi", "npi_role")
        .agg(
            exact_avg(F.when(F.col("_rn") <= 5, F.col("score")), scale=12).alias("score"),
            F.sum(flagged.cast("int")).alias("flagged_claims"),
            F.count(F.lit(1)).alias("total_claims"),
            F.round(exact_sum(F.when(flagged, F.col("amount_at_risk")).otherwise(0.0)), 2).alias("amount_at_risk"),
            F.round(exact_sum(F.when(flagged, F.col("expected_recovery")).otherwise(0.0)), 2).alias("expected_recovery"),
            F.round(exact_sum("amount_paid"), 2).alias("amount_paid"),
            F.flatten(F.collect_list(F.when(flagged, F.col("rule_hits")))).alias("_hits")
            if "rule_hits" in claims.columns
            else F.array().cast("array<string>").alias("_hits"),
        )
        .where(F.col("flagged_claims") > 0)
    )
    order = [F.col("expected_recovery").desc(), F.col("score").desc(), F.col("npi"), F.col("npi_role")]
    top = rolled.orderBy(*order).limit(params.provider_capacity)
    return top.withColumn("rank", F.row_number().over(Window.orderBy(*order)))


def render_provider_queue(providers: pd.DataFrame, rules: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    by_id = {r["id"]: r for r in rules}
    reasons = []
    for rec in providers.to_dict("records"):
        parts = [
            f"{rec['flagged_claims']} of {rec['total_claims']} claims flagged "
            f"(${rec['amount_at_risk']:,.0f} at risk)"
        ]
        # The hits arrive in Spark's collect order, which varies run to run: rank rules by count,
        # then severity, then id, so a re-run of the date writes the same reasons.
        counts = Counter(h for h in _items(rec.get("_hits")) if h in by_id)
        top = sorted(counts.items(), key=lambda kv: (-kv[1], SEVERITY_ORDER.get(by_id[kv[0]].get("severity"), 9), kv[0]))
        for rule_id, n in top[:3]:
            parts.append(f"{by_id[rule_id]['name']} on {n} claim{'s' if n != 1 else ''}")
        reasons.append("; ".join(parts))
    out = providers.drop(columns=["_hits"]).copy()
    out["reasons"] = reasons
    # contract columns first, in the contract's order; then context
    cols = ["rank", "npi", "score", "flagged_claims", "amount_at_risk", "reasons", "npi_role", "total_claims", "expected_recovery", "amount_paid"]
    return out[cols].sort_values("rank").reset_index(drop=True)
