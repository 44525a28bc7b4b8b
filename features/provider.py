"""Billing far above peers (scheme ``peer_outlier_billing``): claim and provider amounts vs their peers.

Peers are claims of the same ``peer_group`` (medical institutional: the billed DRG; professional:
the claim's costliest HCPCS code; pharmacy: the NDC) and providers of the same claim source and type.
Medians are ``percentile_approx`` aggregates, so nothing is collected to the driver.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry.exact import exact_avg

FEATURES: dict[str, str] = {
    "paid_to_peer_median": "claim paid amount / median paid of claims in the same peer group (DRG, HCPCS or NDC)",
    "provider_paid_per_claim_ratio": "billing provider's mean paid per claim / median of providers of the same claim type",
    "provider_claims_per_member": "billing provider's claims per distinct member in the input period",
    "provider_claim_count": "billing provider's claims in the input period",
}


def peer_billing_features(claims: DataFrame, *, min_peer_claims: int = 5) -> DataFrame:
    """One row per (claim_id, claim_source).

    ``claims`` needs claim_id, claim_source, claim_type, billing_npi, person_id, amount_paid and
    peer_group (string, may be null). Ratios are null where the peer group has fewer than
    ``min_peer_claims`` claims or a non-positive median.
    """
    group_w = Window.partitionBy("claim_source", "peer_group")
    with_peer = claims.withColumn("_peer_n", F.count(F.lit(1)).over(group_w)).withColumn(
        "_peer_median", F.percentile_approx("amount_paid", 0.5, 1000).over(group_w)
    )
    paid_ratio = F.when(
        F.col("peer_group").isNotNull()
        & (F.col("_peer_n") >= min_peer_claims)
        & (F.col("_peer_median") > 0),
        F.col("amount_paid") / F.col("_peer_median"),
    )

    providers = claims.groupBy("claim_source", "claim_type", "billing_npi").agg(
        exact_avg("amount_paid").alias("_prov_mean_paid"),
        F.count(F.lit(1)).cast("double").alias("provider_claim_count"),
        F.countDistinct("person_id").alias("_prov_members"),
    )
    type_w = Window.partitionBy("claim_source", "claim_type")
    providers = (
        providers.withColumn("_type_n", F.count(F.lit(1)).over(type_w))
        .withColumn("_type_median", F.percentile_approx("_prov_mean_paid", 0.5, 1000).over(type_w))
        .select(
            "claim_source",
            "claim_type",
            "billing_npi",
            "provider_claim_count",
            F.when(
                (F.col("_type_n") >= min_peer_claims) & (F.col("_type_median") > 0),
                F.col("_prov_mean_paid") / F.col("_type_median"),
            ).alias("provider_paid_per_claim_ratio"),
            (F.col("provider_claim_count") / F.col("_prov_members")).alias("provider_claims_per_member"),
        )
    )
    return (
        with_peer.select(
            "claim_id", "claim_source", "claim_type", "billing_npi", paid_ratio.alias("paid_to_peer_median")
        )
        .join(providers, ["claim_source", "claim_type", "billing_npi"], "left")
        .select("claim_id", "claim_source", *FEATURES)
    )


def build(ctx) -> tuple[DataFrame, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    return peer_billing_features(ctx.base, min_peer_claims=int(ctx.param("min_peer_claims", 5))), FEATURES
