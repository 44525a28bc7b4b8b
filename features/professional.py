"""Professional claim features: E/M level mix, units and charges against the code's distribution,
same-day repeated codes (schemes ``em_upcoding``, ``excessive_units``, ``peer_outlier_billing``,
``duplicate_billing``).

Input: lines of ``medical_claim`` whose claim is professional (``ctx.header.claim_type``). Output
grain: one row per professional medical claim (claim_id, claim_source='medical'); line values are
aggregated to the claim by their maximum. Institutional claims get no row (left join: null).

Peers: the contract carries no provider specialty, so a provider's E/M mix is compared with all
other providers' pooled E/M lines; a code's units and charges with all lines of the same HCPCS code.
Code distributions are ``percentile_approx`` aggregates; nothing is collected to the driver except
one row saying which input columns are populated.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry.features.pharmacy import populated_columns

# Office/outpatient E/M visits (CPT): new patient 99201-99205 (99201 deleted in 2021, still in
# older feeds), established patient 99211-99215. The highest levels: 99205 (new), 99215 (established).
EM_CODES: tuple[str, ...] = ("99201", "99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215")
EM_HIGH_CODES: tuple[str, ...] = ("99205", "99215")

FEATURES: dict[str, str] = {
    "provider_em_high_share": "share of the provider's office E/M lines billed at the highest level (99205/99215)",
    "provider_em_high_share_to_peers": "provider's highest-level E/M share / the same share over its peers' E/M lines (same specialty, and state where enough, with the provider table; else all other providers)",
    "em_billed_top_level": "1 if the claim bills an office E/M visit at the highest level (99205/99215), 0 if at a lower one",
    "provider_em_high_share_90d_to_peers": (
        "on a top-level visit coded with at most 2 diagnoses: the provider's share of such visits over the 90 days up"
        " to the claim / the pooled share of all other providers (a level its coded complexity does not support)"
    ),
    "provider_em_high_share_rise": (
        "on a top-level visit coded with at most 2 diagnoses: the provider's share of such visits over the 90 days up"
        " to the claim minus its share over all its visits (a practice that starts upcoding)"
    ),
    "units_to_code_p99": "highest units on a line of the claim / 99th percentile of units on lines of the same HCPCS code",
    "charge_to_code_median": "highest charge per unit on a line of the claim / median charge per unit of the same HCPCS code",
    "same_day_repeat_count": "most extra lines of one HCPCS code for the member on one service day (0 = no repeat)",
}
CONTEXT_COLUMNS: tuple[str, ...] = (
    "peer_em_high_share",
    "peer_em_basis",  # who the E/M peers are: "cardiology in NY", "cardiology", "all providers (...)"
    "units_line_code",
    "units_line_units",
    "units_code_p99",
    "charge_line_code",
    "charge_per_unit",
    "charge_code_median",
    "repeat_code",
)
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "hcpcs_code": tuple(FEATURES),
    "service_unit_quantity": ("units_to_code_p99",),
    "charge_amount": ("charge_to_code_median",),
}


def professional_lines(lines: DataFrame, header: DataFrame) -> DataFrame:
    """One row per line of a professional claim: claim_id, person_id, dx_count (diagnosis codes on
    the line), provider_npi (rendering, else billing), service_date (line start, else claim start),
    hcpcs_code, units, charge_amount."""
    prof = header.where(F.col("claim_type") == "professional").select("claim_id")
    service_date = F.coalesce(
        *[F.col(c) for c in ("claim_line_start_date", "claim_start_date") if c in lines.columns]
    )
    dx = [F.col(c) for c in lines.columns if c.startswith("diagnosis_code_") and c[len("diagnosis_code_"):].isdigit()]
    dx_count = F.size(F.array_compact(F.array(*dx))).cast("double") if dx else F.lit(None).cast("double")
    return lines.join(prof, "claim_id", "left_semi").select(
        "claim_id",
        "person_id",
        dx_count.alias("dx_count"),
        F.coalesce(F.col("rendering_npi"), F.col("billing_npi")).alias("provider_npi"),
        service_date.alias("service_date"),
        F.upper(F.trim("hcpcs_code")).alias("hcpcs_code"),
        F.col("service_unit_quantity").cast("double").alias("units"),
        F.col("charge_amount").cast("double").alias("charge_amount"),
    )


def em_mix(lines: DataFrame, *, min_provider_em_lines: int = 20, providers: DataFrame | None = None,
           min_specialty_peers: int = 5) -> DataFrame:
    """One row per provider_npi with at least ``min_provider_em_lines`` office E/M lines: share at
    the highest level, the share of its peers' lines, their ratio, and ``peer_em_basis`` (who the
    peers are, in words).

    Peers: with ``providers`` (the contract's ``provider`` table: npi, specialty, state), the other
    providers of the same specialty and state when that group has at least ``min_specialty_peers``
    other providers with enough E/M lines, else of the same specialty, else all providers (the
    basis says why). Without it, all other providers pooled: a cardiologist is then measured
    against family doctors."""
    em = lines.where(F.col("hcpcs_code").isin(*EM_CODES) & F.col("provider_npi").isNotNull())
    per = em.groupBy("provider_npi").agg(
        F.count(F.lit(1)).alias("_em"), F.sum(F.col("hcpcs_code").isin(*EM_HIGH_CODES).cast("int")).alias("_high")
    )
    if providers is not None:
        info = providers.select(F.col("npi").alias("provider_npi"), F.lower(F.trim("specialty")).alias("_spec"),
                                F.upper(F.trim("state")).alias("_state")).dropDuplicates(["provider_npi"])
        per = per.join(F.broadcast(info), "provider_npi", "left")
    else:
        per = per.select("*", F.lit(None).cast("string").alias("_spec"), F.lit(None).cast("string").alias("_state"))
    enough = (F.col("_em") >= min_provider_em_lines).cast("int")
    levels = {"_all": [], "_sp": ["_spec"], "_st": ["_spec", "_state"]}
    for name, keys in levels.items():
        group = per.groupBy(*keys).agg(F.sum("_em").alias(f"{name}_em"), F.sum("_high").alias(f"{name}_high"),
                                       F.sum(enough).alias(f"{name}_n"))
        per = per.join(F.broadcast(group), keys, "left") if keys else per.crossJoin(F.broadcast(group))
    per = per.where(F.col("_em") >= min_provider_em_lines)
    use_st = F.col("_state").isNotNull() & F.col("_spec").isNotNull() & (F.col("_st_n") - 1 >= min_specialty_peers)
    use_sp = F.col("_spec").isNotNull() & (F.col("_sp_n") - 1 >= min_specialty_peers)
    level = F.when(use_st, "_st").when(use_sp, "_sp").otherwise("_all")
    pick = lambda what: F.when(level == "_st", F.col(f"_st_{what}")).when(level == "_sp", F.col(f"_sp_{what}")).otherwise(F.col(f"_all_{what}"))  # noqa: E731
    g_em, g_high = pick("em"), pick("high")
    share = F.col("_high") / F.col("_em")
    peer = F.when(g_em > F.col("_em"), (g_high - F.col("_high")) / (g_em - F.col("_em")))
    basis = (
        F.when(use_st, F.concat(F.col("_spec"), F.lit(" in "), F.col("_state")))
        .when(use_sp, F.col("_spec"))
        .when(F.lit(providers is None), F.lit("all providers (no provider table)"))
        .when(F.col("_spec").isNull(), F.lit("all providers (specialty unknown)"))
        .otherwise(F.concat(F.lit("all providers ("), F.col("_spec"), F.lit(" has "), (F.col("_sp_n") - 1).cast("string"),
                            F.lit(f" peers with enough E/M visits, fewer than {min_specialty_peers})")))
    )
    return per.select(
        "provider_npi",
        share.alias("provider_em_high_share"),
        peer.alias("peer_em_high_share"),
        F.when(peer > 0, share / peer).alias("provider_em_high_share_to_peers"),
        basis.alias("peer_em_basis"),
    )


LOW_COMPLEXITY_MAX_DX = 2  # a top-level visit coded with this many diagnoses or fewer is "simple"


def em_recent_share(
    lines: DataFrame, *, window_days: int = 90, min_window_em_lines: int = 10, min_provider_em_lines: int = 20
) -> DataFrame:
    """One row per office E/M line: claim_id, ``_high`` (billed at the highest level), ``_simple``
    (highest level on a claim coded with at most ``LOW_COMPLEXITY_MAX_DX`` diagnoses: a level the
    coded complexity does not support), ``simple_share_recent`` (the provider's share of such lines
    among its E/M lines in the ``window_days`` up to this line; null below ``min_window_em_lines``;
    earlier and same-day lines only, so a claim's value never depends on later claims),
    ``simple_share`` (the provider's share over all its lines) and ``peer_simple_share`` (the pooled
    share of all other providers; null for a provider below ``min_provider_em_lines``)."""
    em = lines.where(F.col("hcpcs_code").isin(*EM_CODES) & F.col("provider_npi").isNotNull() & F.col("service_date").isNotNull())
    day = F.datediff(F.col("service_date"), F.lit("1970-01-01").cast("date"))
    high = F.col("hcpcs_code").isin(*EM_HIGH_CODES).cast("double")
    simple = (F.col("hcpcs_code").isin(*EM_HIGH_CODES) & (F.coalesce(F.col("dx_count"), F.lit(0)) <= LOW_COMPLEXITY_MAX_DX)).cast("double")
    em = em.withColumn("_day", day).withColumn("_high", high).withColumn("_simple", simple)
    w = Window.partitionBy("provider_npi").orderBy("_day").rangeBetween(-int(window_days), 0)
    n, k = F.count(F.lit(1)).over(w), F.sum("_simple").over(w)
    per = em.groupBy("provider_npi").agg(F.count(F.lit(1)).alias("_em"), F.sum("_simple").alias("_s"))
    totals = per.agg(F.sum("_em").alias("_tot_em"), F.sum("_s").alias("_tot_s"))
    per = per.crossJoin(F.broadcast(totals)).where(F.col("_em") >= min_provider_em_lines).select(
        "provider_npi",
        (F.col("_s") / F.col("_em")).alias("simple_share"),
        F.when(F.col("_tot_em") > F.col("_em"), (F.col("_tot_s") - F.col("_s")) / (F.col("_tot_em") - F.col("_em"))).alias("peer_simple_share"),
    )
    return em.select(
        "claim_id", "provider_npi", "_high", "_simple", F.when(n >= int(min_window_em_lines), k / n).alias("simple_share_recent")
    ).join(per, "provider_npi", "left")


def code_ratios(lines: DataFrame, *, min_code_lines: int = 20) -> DataFrame:
    """Per line: units / p99 of the code's units and charge per unit / the code's median charge
    per unit; null for codes with fewer than ``min_code_lines`` lines."""
    per_unit = F.col("charge_amount") / F.when(F.col("units") > 0, F.col("units")).otherwise(F.lit(1.0))
    lines = lines.withColumn("charge_per_unit", per_unit)
    codes = lines.where(F.col("hcpcs_code").isNotNull()).groupBy("hcpcs_code").agg(
        F.count(F.lit(1)).alias("_n"),
        F.percentile_approx("units", 0.99, 10000).alias("_p99"),
        F.percentile_approx("charge_per_unit", 0.5, 10000).alias("_median"),
    )
    enough = F.col("_n") >= min_code_lines
    out = lines.join(codes, "hcpcs_code", "left")
    return out.withColumn("units_code_p99", F.when(enough, F.col("_p99"))).withColumn(
        "charge_code_median", F.when(enough, F.col("_median"))
    ).select(
        "*",
        F.when(F.col("units_code_p99") > 0, F.col("units") / F.col("units_code_p99")).alias("_units_ratio"),
        F.when(F.col("charge_code_median") > 0, F.col("charge_per_unit") / F.col("charge_code_median")).alias(
            "_charge_ratio"
        ),
    )


def professional_features(
    lines: DataFrame,
    header: DataFrame,
    *,
    unavailable: list[str] | tuple[str, ...] = (),
    min_provider_em_lines: int = 20,
    min_code_lines: int = 20,
    em_window_days: int = 90,
    min_window_em_lines: int = 10,
    providers: DataFrame | None = None,
    min_specialty_peers: int = 5,
) -> DataFrame:
    """One row per professional medical claim_id (claim_source 'medical'): ``FEATURES`` (doubles;
    those in ``unavailable`` null) and ``CONTEXT_COLUMNS`` for reasons. ``providers``: the
    contract's optional ``provider`` table (E/M mix peers by specialty, see ``em_mix``)."""
    prof = professional_lines(lines, header)
    prof = code_ratios(prof, min_code_lines=min_code_lines)
    mix = em_mix(prof, min_provider_em_lines=min_provider_em_lines, providers=providers, min_specialty_peers=min_specialty_peers)
    repeat_w = Window.partitionBy("person_id", "service_date", "hcpcs_code")
    prof = prof.withColumn(
        "_repeats", F.when(F.col("hcpcs_code").isNotNull(), F.count(F.lit(1)).over(repeat_w) - 1)
    ).join(mix, "provider_npi", "left")
    has_em = F.col("hcpcs_code").isin(*EM_CODES)
    recent = (
        em_recent_share(
            prof, window_days=em_window_days, min_window_em_lines=min_window_em_lines, min_provider_em_lines=min_provider_em_lines
        )
        .groupBy("claim_id")
        .agg(
            F.max("_high").alias("em_billed_top_level"),
            # on such visits only: the provider's recent mix weighs on the visits that show it
            F.max(F.when((F.col("_simple") == 1.0) & (F.col("peer_simple_share") > 0), F.col("simple_share_recent") / F.col("peer_simple_share"))).alias(
                "provider_em_high_share_90d_to_peers"
            ),
            F.max(F.when(F.col("_simple") == 1.0, F.col("simple_share_recent") - F.col("simple_share"))).alias(
                "provider_em_high_share_rise"
            ),
        )
    )
    claims = prof.groupBy("claim_id").agg(
        F.max(F.when(has_em, F.col("provider_em_high_share"))).alias("provider_em_high_share"),
        F.max(F.when(has_em, F.col("provider_em_high_share_to_peers"))).alias("provider_em_high_share_to_peers"),
        F.max(F.when(has_em, F.col("peer_em_high_share"))).alias("peer_em_high_share"),
        F.max(F.when(has_em, F.col("peer_em_basis"))).alias("peer_em_basis"),
        F.max_by(F.struct("_units_ratio", "hcpcs_code", "units", "units_code_p99"), F.col("_units_ratio")).alias("_u"),
        F.max_by(F.struct("_charge_ratio", "hcpcs_code", "charge_per_unit", "charge_code_median"), F.col("_charge_ratio")).alias("_c"),
        F.max_by(F.struct(F.col("_repeats").cast("double").alias("n"), "hcpcs_code"), F.struct("_repeats", "hcpcs_code")).alias("_r"),
    ).join(recent, "claim_id", "left")
    cols = {
        "em_billed_top_level": F.col("em_billed_top_level"),
        "provider_em_high_share_90d_to_peers": F.col("provider_em_high_share_90d_to_peers"),
        "provider_em_high_share_rise": F.col("provider_em_high_share_rise"),
        "provider_em_high_share": F.col("provider_em_high_share"),
        "provider_em_high_share_to_peers": F.col("provider_em_high_share_to_peers"),
        "units_to_code_p99": F.col("_u._units_ratio"),
        "charge_to_code_median": F.col("_c._charge_ratio"),
        "same_day_repeat_count": F.col("_r.n"),
    }
    return claims.select(
        "claim_id",
        F.lit("medical").alias("claim_source"),
        *[(F.lit(None).cast("double") if f in unavailable else cols[f].cast("double")).alias(f) for f in FEATURES],
        "peer_em_high_share",
        "peer_em_basis",
        F.col("_u.hcpcs_code").alias("units_line_code"),
        F.col("_u.units").alias("units_line_units"),
        F.col("_u.units_code_p99").alias("units_code_p99"),
        F.col("_c.hcpcs_code").alias("charge_line_code"),
        F.col("_c.charge_per_unit").alias("charge_per_unit"),
        F.col("_c.charge_code_median").alias("charge_code_median"),
        F.when(F.col("_r.n") > 0, F.col("_r.hcpcs_code")).alias("repeat_code"),
    )


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    lines = ctx.tables.get("medical_claim")
    if lines is None or ctx.header is None:
        return None, FEATURES
    populated = populated_columns(lines, list(DEPENDS_ON))
    missing: list[str] = []
    for column, feats in DEPENDS_ON.items():
        if column not in populated:
            missing += [f for f in feats if f not in missing]
    ctx.unavailable.extend(f for f in missing if f not in ctx.unavailable)
    frame = professional_features(
        lines,
        ctx.header,
        unavailable=missing,
        min_provider_em_lines=int(ctx.param("min_provider_em_lines", 20)),
        min_code_lines=int(ctx.param("min_code_lines", 20)),
        em_window_days=int(ctx.param("em_window_days", 90)),
        min_window_em_lines=int(ctx.param("min_window_em_lines", 10)),
        providers=ctx.tables.get("provider"),
        min_specialty_peers=int(ctx.param("min_specialty_peers", 5)),
    )
    return frame, FEATURES
