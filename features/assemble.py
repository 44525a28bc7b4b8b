"""Wiring of the feature blocks into ``claim_features``: one row per (claim_id, claim_source).

Key and context columns: claim_id, claim_source (``medical`` | ``pharmacy``), claim_type
(institutional | professional | pharmacy), claim_date, service_end_date, person_id, billing_npi
(pharmacy: the dispensing pharmacy), prescriber_npi, amount_paid; then every block's FEATURES
(doubles, null where not computable), string context columns used by reasons, and one
``rule_<ID>`` column per knowledge-base rule.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from claimsentry.exact import exact_sum
from claimsentry.features.header import medical_claim_header

JOIN_KEY = "_claim_key"
BASE_COLUMNS = [
    "claim_id",
    "claim_source",
    "claim_type",
    "claim_date",
    "service_end_date",
    "person_id",
    "billing_npi",
    "prescriber_npi",
    "amount_paid",
    "peer_group",
]


@dataclass
class FeatureSet:
    """What ``build_claim_features`` returns: the frame, the model's feature names and what was missing."""

    frame: DataFrame
    feature_cols: list[str]
    descriptions: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    header: DataFrame | None = None
    cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        """Drop the shared intermediates from Spark's cache once the features have been written."""
        for df in self.cached:
            df.unpersist()
        self.cached.clear()


def medical_base(header: DataFrame) -> DataFrame:
    """Claim-level base rows for medical claims; peer group is the DRG (institutional) or the
    costliest HCPCS code on the claim (professional; the header's ``top_hcpcs_code``)."""
    base = header if "top_hcpcs_code" in header.columns else header.withColumn("top_hcpcs_code", F.lit(None).cast("string"))
    drg = F.col("drg_code") if "drg_code" in header.columns else F.lit(None).cast("string")
    return base.select(
        "claim_id",
        F.lit("medical").alias("claim_source"),
        F.coalesce(F.col("claim_type"), F.lit("unknown")).alias("claim_type"),
        F.coalesce(*[F.col(c) for c in ("admission_date", "claim_start_date") if c in header.columns]).alias("claim_date"),
        F.coalesce(*[F.col(c) for c in ("discharge_date", "claim_end_date") if c in header.columns]).alias("service_end_date"),
        "person_id",
        "billing_npi",
        F.lit(None).cast("string").alias("prescriber_npi"),
        F.col("paid_amount").alias("amount_paid"),
        F.when(F.col("claim_type") == "institutional", F.concat(F.lit("drg:"), drg))
        .otherwise(F.concat(F.lit("hcpcs:"), F.col("top_hcpcs_code")))
        .alias("peer_group"),
    )


def pharmacy_base(rx: DataFrame) -> DataFrame:
    """Claim-level base rows for pharmacy claims (one row per claim_id; lines summed)."""
    return rx.groupBy("claim_id").agg(
        F.lit("pharmacy").alias("claim_source"),
        F.lit("pharmacy").alias("claim_type"),
        F.min("dispensing_date").alias("claim_date"),
        F.max(F.date_add("dispensing_date", F.greatest(F.coalesce("days_supply", F.lit(1)) - 1, F.lit(0)))).alias(
            "service_end_date"
        ),
        # min, not first(): lines that disagree must give the same value on every run
        F.min("person_id").alias("person_id"),
        F.min("dispensing_provider_npi").alias("billing_npi"),
        F.min("prescribing_provider_npi").alias("prescriber_npi"),
        exact_sum("paid_amount").alias("amount_paid"),
        F.concat(F.lit("ndc:"), F.min("ndc_code")).alias("peer_group"),
    ).select(*BASE_COLUMNS)


def _join_key():
    """``<claim_source>:<claim_id>``: one column that names a claim (null when either part is)."""
    return F.concat(F.col("claim_source"), F.lit(":"), F.col("claim_id"))


def join_blocks(base: DataFrame, blocks: list[DataFrame]) -> DataFrame:
    """Left-join feature blocks onto the base on (claim_id, claim_source).

    The join is on one column built from both (``_join_key``), so that every join needs the wide
    frame hashed the same way and only the blocks are shuffled. Joined on the two columns, a
    single-source block (pharmacy, professional: ``claim_source`` a literal) lost its
    ``claim_source`` key to constant folding: Spark joined it on claim_id alone, with the literal
    as a filter, and re-shuffled and sorted the whole wide frame by claim_id for it (at 10M lines
    a 3.5 GiB exchange, BENCHMARKS.md's history in git, 2026-12-03)."""
    out = base.withColumn(JOIN_KEY, _join_key())
    for block in blocks:
        key = JOIN_KEY if "claim_source" in block.columns else "claim_id"  # claim_id alone: either source
        if key == JOIN_KEY:
            block = block.withColumn(JOIN_KEY, _join_key())
        dupes = [c for c in block.columns if c in out.columns and c != key]
        out = out.join(block.drop(*dupes), key, "left")
    return out.drop(JOIN_KEY)


def nulls_to_zero_for_counts(df: DataFrame, columns: list[str]) -> DataFrame:
    """Count-like features that are absent because nothing was found are 0, not unknown."""
    return df.fillna(0.0, subset=[c for c in columns if c in df.columns])


@dataclass
class BlockContext:
    """What a feature block may read: typed tables, the medical header, the base rows and
    parameters (``features.*`` settings). A block that cannot compute a feature on this feed
    (e.g. no days_supply) leaves it null and names it in ``unavailable``."""

    spark: object
    tables: dict[str, DataFrame]
    header: DataFrame | None
    base: DataFrame
    params: dict
    unavailable: list[str] = field(default_factory=list)
    quarantine: DataFrame | None = None  # the gate's rejected rows (table, row_content, reason), when known
    # policy reference tables (claimsentry.policy.store.load_current), keyed 'ncci-ptp/practitioner', 'leie', ...
    references: dict = field(default_factory=dict)

    cached: list[DataFrame] = field(default_factory=list)

    def param(self, name: str, default):
        return self.params.get(name, default)

    def cache(self, df: DataFrame) -> DataFrame:
        """Persist an intermediate a block reads several times; released with the FeatureSet."""
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self.cached.append(df)
        return df


# Feature blocks, in join order: each module ``claimsentry.features.<name>`` exposes
# ``build(ctx: BlockContext) -> (frame keyed by claim_id + claim_source | None, {feature: description})``.
BLOCKS: tuple[str, ...] = ("provider", "drg", "member", "duplicates", "pharmacy", "professional", "policy")


def build_claim_features(spark, tables: dict[str, DataFrame], settings, *, quarantine: DataFrame | None = None,
                         references: dict | None = None) -> FeatureSet:
    """Build ``claim_features`` from the gate's typed tables (medical_claim, eligibility, and
    pharmacy_claim when present), then apply the rules knowledge base. ``quarantine``: the gate's
    rejected rows; a member whose enrollment row was rejected has unknown enrollment.
    ``references``: the policy reference tables the edits read (none: their features are null)."""
    from claimsentry.features import rules as kb

    params = settings.section("features") if hasattr(settings, "section") else {}
    lines = tables["medical_claim"]
    # Every block reads the header and the base: computed once and cached (measured at 1M lines:
    # features 154 s when each block re-derived them, 52 s cached; BENCHMARKS.md's history in git).
    cached: list[DataFrame] = []

    def cache(df: DataFrame) -> DataFrame:
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return cached[-1]

    header = medical_claim_header(lines, cache=cache)
    base = medical_base(header)
    if tables.get("pharmacy_claim") is not None:
        base = base.unionByName(pharmacy_base(tables["pharmacy_claim"]))
    base = cache(base)
    ctx = BlockContext(spark=spark, tables=tables, header=header, base=base, params=params, quarantine=quarantine,
                       references=dict(references or {}))
    frames, descriptions, context = [], {}, {}
    for name in BLOCKS:
        module = importlib.import_module(f"claimsentry.features.{name}")
        context.update(dict.fromkeys(getattr(module, "CONTEXT_COLUMNS", ())))
        frame, feats = module.build(ctx)
        descriptions.update(feats)
        if frame is not None:
            frames.append(frame)
        else:  # the feed lacks the block's table: same model inputs, all unknown
            ctx.unavailable.extend(feats)
    features = join_blocks(base, frames)
    absent = [f for f in descriptions if f not in features.columns]
    if absent:
        features = features.select("*", *[F.lit(None).cast("double").alias(f) for f in absent])
    no_context = [c for c in context if c not in features.columns]  # a block that returned None
    if no_context:
        features = features.select("*", *[F.lit(None).cast("string").alias(c) for c in no_context])
    features, rule_cols, rule_desc = kb.apply_rules(features, kb.load_rules())
    return FeatureSet(
        frame=features,
        feature_cols=list(descriptions) + rule_cols,
        descriptions={**descriptions, **rule_desc},
        unavailable=sorted(set(ctx.unavailable)),
        header=header,
        cached=[*cached, *ctx.cached],
    )
