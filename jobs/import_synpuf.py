"""``claimsentry import-synpuf``: map CMS DE-SynPUF files to the contract's input tables.

DE-SynPUF (CMS 2008-2010 Data Entrepreneurs' Synthetic Public Use File) ships beneficiary summary files
(one row per beneficiary per calendar year, one file per year) and inpatient claims (one row per claim
segment; ICD-9 coded; 3-character DRGs; dates ``YYYYMMDD``). This job writes

- ``<output>/eligibility/``: one row per enrollment span of one person: one span per beneficiary per
  file year (Jan 1 .. Dec 31, cut at the death date). Adjacent years are NOT merged: each year keeps
  its own coverage-month counts, which say how many months of that year were covered, not which.
- ``<output>/medical_claim/``: one row per claim line; a SynPUF claim segment (``SEGMENT`` 1/2) is a
  claim line (``claim_line_number``). Header fields are taken from segment 1 and repeated on every line,
  as the contract requires; each line keeps its own amounts.
- ``<output>/import_report.json``: row counts that reconcile with the source, every oddity counted,
  every contract column the source does not carry (left null) with the reason, and the stand-ins.

Nothing is guessed silently and no row is dropped: a value the importer changes (a DRG placeholder set to
null, a header field taken from segment 1) is flagged on the row (``import_flags``) and counted; values the
gate will reject (a negative payment) are passed through unchanged so the gate quarantines them with its
reason. Extract (CSV, explicit all-string schemas) -> transform (the two pure functions below) -> load
(Parquet or CSV, the whole output folder swapped in atomically).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from claimsentry.errors import InputError
from claimsentry.io import atomic_dir
from claimsentry.schemas import ELIGIBILITY, MEDICAL_CLAIM, TableSpec

log = logging.getLogger(__name__)

DATA_SOURCE = "desynpuf"
PAYER = "medicare"  # DE-SynPUF is Medicare fee-for-service claims; payer is known, not guessed

BENEFICIARY_COLUMNS: tuple[str, ...] = (
    "DESYNPUF_ID", "BENE_BIRTH_DT", "BENE_DEATH_DT", "BENE_SEX_IDENT_CD", "BENE_RACE_CD",
    "BENE_ESRD_IND", "SP_STATE_CODE", "BENE_COUNTY_CD", "BENE_HI_CVRAGE_TOT_MONS",
    "BENE_SMI_CVRAGE_TOT_MONS", "BENE_HMO_CVRAGE_TOT_MONS", "PLAN_CVRG_MOS_NUM",
    "SP_ALZHDMTA", "SP_CHF", "SP_CHRNKIDN", "SP_CNCR", "SP_COPD", "SP_DEPRESSN", "SP_DIABETES",
    "SP_ISCHMCHT", "SP_OSTEOPRS", "SP_RA_OA", "SP_STRKETIA", "MEDREIMB_IP", "BENRES_IP", "PPPYMT_IP",
    "MEDREIMB_OP", "BENRES_OP", "PPPYMT_OP", "MEDREIMB_CAR", "BENRES_CAR", "PPPYMT_CAR",
)
BENEFICIARY_REQUIRED = ("DESYNPUF_ID", "BENE_BIRTH_DT")

DIAGNOSIS_SOURCE = tuple(f"ICD9_DGNS_CD_{i}" for i in range(1, 11))
PROCEDURE_SOURCE = tuple(f"ICD9_PRCDR_CD_{i}" for i in range(1, 7))
HCPCS_SOURCE = tuple(f"HCPCS_CD_{i}" for i in range(1, 46))
INPATIENT_COLUMNS: tuple[str, ...] = (
    "DESYNPUF_ID", "CLM_ID", "SEGMENT", "CLM_FROM_DT", "CLM_THRU_DT", "PRVDR_NUM", "CLM_PMT_AMT",
    "NCH_PRMRY_PYR_CLM_PD_AMT", "AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI", "CLM_ADMSN_DT",
    "ADMTNG_ICD9_DGNS_CD", "CLM_PASS_THRU_PER_DIEM_AMT", "NCH_BENE_IP_DDCTBL_AMT",
    "NCH_BENE_PTA_COINSRNC_LBLTY_AM", "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM", "CLM_UTLZTN_DAY_CNT",
    "NCH_BENE_DSCHRG_DT", "CLM_DRG_CD", *DIAGNOSIS_SOURCE, *PROCEDURE_SOURCE, *HCPCS_SOURCE,
)
INPATIENT_REQUIRED = ("DESYNPUF_ID", "CLM_ID", "SEGMENT", "CLM_FROM_DT", "CLM_THRU_DT", "PRVDR_NUM", "CLM_PMT_AMT")

# Claim-level fields: on a segment > 1 they are taken from segment 1 of the same claim (the segment
# that carries the claim's dates and DRG), so every line repeats its claim's header.
HEADER_SOURCE: tuple[str, ...] = (
    "CLM_FROM_DT", "CLM_THRU_DT", "CLM_ADMSN_DT", "NCH_BENE_DSCHRG_DT", "CLM_DRG_CD", "PRVDR_NUM",
    "AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI", "ADMTNG_ICD9_DGNS_CD", "CLM_UTLZTN_DAY_CNT",
    *DIAGNOSIS_SOURCE, *PROCEDURE_SOURCE,
)

# SSA state codes (SP_STATE_CODE in the DE-SynPUF codebook) -> USPS abbreviations. SSA skips 40 (Puerto
# Rico) and 48 (Virgin Islands) in SynPUF; 54 means "Others" and has no state: it maps to null.
SSA_STATE_CODES: dict[str, str] = {
    "01": "AL", "02": "AK", "03": "AZ", "04": "AR", "05": "CA", "06": "CO", "07": "CT", "08": "DE",
    "09": "DC", "10": "FL", "11": "GA", "12": "HI", "13": "ID", "14": "IL", "15": "IN", "16": "IA",
    "17": "KS", "18": "KY", "19": "LA", "20": "ME", "21": "MD", "22": "MA", "23": "MI", "24": "MN",
    "25": "MS", "26": "MO", "27": "MT", "28": "NE", "29": "NV", "30": "NH", "31": "NJ", "32": "NM",
    "33": "NY", "34": "NC", "35": "ND", "36": "OH", "37": "OK", "38": "OR", "39": "PA", "40": "PR",
    "41": "RI", "42": "SC", "43": "SD", "44": "TN", "45": "TX", "46": "UT", "47": "VT", "48": "VI",
    "49": "VA", "50": "WA", "51": "WV", "52": "WI", "53": "WY",
}

# Contract columns the source does not carry: left null, and the report says why.
ELIGIBILITY_NULL_REASONS: dict[str, str] = {
    "plan": "the beneficiary file names no plan (Part A/B/C/D coverage months are kept as extra columns)",
    "zip_code": "not in the source (only SSA state and county codes)",
}
MEDICAL_NULL_REASONS: dict[str, str] = {
    "plan": "not in the source",
    "admit_source_code": "not in the source",
    "admit_type_code": "not in the source",
    "discharge_disposition_code": "not in the source (DE-SynPUF has no PTNT_DSCHRG_STUS_CD)",
    "place_of_service_code": "institutional claims carry no place of service",
    "bill_type_code": "not in the source (every row is an inpatient claim, but the type-of-bill digits are not given)",
    "revenue_center_code": "not in the source (inpatient revenue-center lines are not released)",
    "service_unit_quantity": "not in the source (utilization days are kept as utilization_day_count)",
    "hcpcs_code": "HCPCS_CD_1..45 are empty on every inpatient row of DE-SynPUF (counted: hcpcs_rows_nonblank)",
    "hcpcs_modifier_1..5": "not in the source",
    "paid_date": "not in the source",
    "allowed_amount": "not in the source (not derived: Medicare allowed = payment + cost sharing + primary payer is an estimate)",
    "charge_amount": "not in the source",
    "copayment_amount": "Medicare Part A has no copayment field; cost sharing is deductible and coinsurance",
    "diagnosis_code_11..25": "DE-SynPUF carries 10 diagnosis codes",
    "diagnosis_poa_1..25": "not in the source",
    "procedure_code_7..25": "DE-SynPUF carries 6 procedure codes",
    "procedure_date_1..25": "not in the source",
}

STAND_INS: dict[str, str] = {
    "billing_npi": "PRVDR_NUM: a 6-character CMS Certification Number (CCN), not an NPI; it fails the NPI Luhn check",
    "facility_npi": "PRVDR_NUM: the same CCN as billing_npi",
    "rendering_npi": "AT_PHYSN_NPI (attending physician), OP_PHYSN_NPI (operating) when no attending; synthetic 10-digit "
    "numbers of which only ~10% pass the NPI Luhn check",
}

# DRG values that are not DRGs: 'OTH' (CMS suppressed/other) and '000' (ungroupable; SynPUF puts it on
# segment 2). They become null drg_code; the raw value stays in source_drg_code.
DRG_PATTERN = r"^[0-9]{3}$"
DRG_UNGROUPABLE = "000"

FLAG_NEGATIVE_PAYMENT = "negative_paid_amount"
FLAG_DRG_NOT_A_DRG = "drg_not_a_drg"
FLAG_HEADER_FROM_SEGMENT_1 = "header_from_segment_1"
FLAG_NO_SEGMENT_1 = "no_segment_1"
FLAG_RENDERING_FROM_OPERATING = "rendering_from_operating"


# --------------------------------------------------------------------------------------------------
# Transforms (pure: DataFrames in, DataFrames out)
# --------------------------------------------------------------------------------------------------


def _clean(column: str) -> Column:
    """A raw string cell: trimmed, blank -> null."""
    c = F.trim(F.col(column))
    return F.when(c == "", None).otherwise(c)


def _date(c: Column) -> Column:
    """``YYYYMMDD`` -> date (null when it does not parse; counted in the report)."""
    return F.to_date(c, "yyyyMMdd")


def _money(c: Column) -> Column:
    return c.cast("double")


def _ensure_columns(df: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """Add absent source columns as null strings (listed as missing in the report by the caller)."""
    missing = [c for c in columns if c not in df.columns]
    return df.select("*", *[F.lit(None).cast("string").alias(c) for c in missing]) if missing else df


def _conform(df: DataFrame, spec: TableSpec, extras: list[str]) -> DataFrame:
    """Every contract column of ``spec`` in contract order and type (absent ones as typed nulls), then extras."""
    cols = [
        (F.col(c) if c in df.columns else F.lit(None)).cast(t).alias(c) for c, t in spec.columns
    ]
    return df.select(*cols, *[F.col(e) for e in extras])


ELIGIBILITY_EXTRAS = [
    "file_year",
    "source_state_code",
    "source_county_code",
    "part_a_coverage_months",
    "part_b_coverage_months",
    "hmo_coverage_months",
    "part_d_coverage_months",
]


def beneficiaries_to_eligibility(df: DataFrame) -> DataFrame:
    """Beneficiary summary rows -> contract ``eligibility``.

    Input grain: one row per beneficiary per file year; all columns raw strings as in the CSV, plus
    ``file_year`` (``"2008"``, from the file name). Output grain: one row per enrollment span of one
    person, key (person_id, enrollment_start_date): one span per beneficiary per file year, from Jan 1
    to Dec 31 of that year, ending at the death date in the year of death. Spans of adjacent years are
    not merged (each keeps its year's coverage-month counts; they abut Dec 31 / Jan 1).

    Birth and death are person attributes: the death date (present only in the file of the year of
    death) is applied to every span of the person; when files disagree the earliest date is used
    (counted in the report as ``persons_with_conflicting_death_dates``).
    """
    df = _ensure_columns(df, BENEFICIARY_COLUMNS)
    c = {name: _clean(name) for name in (*BENEFICIARY_COLUMNS, "file_year")}
    state_map = F.create_map(*[F.lit(x) for kv in SSA_STATE_CODES.items() for x in kv])
    by_person = Window.partitionBy("person_id")
    year_start = F.make_date(F.col("file_year_int"), F.lit(1), F.lit(1))
    year_end = F.make_date(F.col("file_year_int"), F.lit(12), F.lit(31))
    out = (
        df.select(
            c["DESYNPUF_ID"].alias("person_id"),
            c["file_year"].alias("file_year"),
            c["file_year"].cast("int").alias("file_year_int"),
            _date(c["BENE_BIRTH_DT"]).alias("birth_date"),
            _date(c["BENE_DEATH_DT"]).alias("death_date_in_year"),
            # BENE_SEX_IDENT_CD: 1 = male, 2 = female (DE-SynPUF codebook)
            F.when(c["BENE_SEX_IDENT_CD"] == "1", "male")
            .when(c["BENE_SEX_IDENT_CD"] == "2", "female")
            .otherwise("unknown")
            .alias("gender"),
            c["SP_STATE_CODE"].alias("source_state_code"),
            state_map[c["SP_STATE_CODE"]].alias("state"),
            c["BENE_COUNTY_CD"].alias("source_county_code"),
            c["BENE_HI_CVRAGE_TOT_MONS"].cast("int").alias("part_a_coverage_months"),
            c["BENE_SMI_CVRAGE_TOT_MONS"].cast("int").alias("part_b_coverage_months"),
            c["BENE_HMO_CVRAGE_TOT_MONS"].cast("int").alias("hmo_coverage_months"),
            c["PLAN_CVRG_MOS_NUM"].cast("int").alias("part_d_coverage_months"),
        )
        .withColumn("death_date", F.min("death_date_in_year").over(by_person))
        .withColumn("member_id", F.col("person_id"))
        .withColumn("death_flag", F.when(F.col("death_date").isNotNull(), 1).otherwise(0))
        .withColumn("enrollment_start_date", year_start)
        .withColumn(
            "enrollment_end_date",
            F.when(
                F.col("death_date").isNotNull() & (F.col("death_date") < year_end), F.col("death_date")
            ).otherwise(year_end),
        )
        .withColumn("payer", F.lit(PAYER))
        .withColumn("payer_type", F.lit(PAYER))
        .withColumn("data_source", F.lit(DATA_SOURCE))
    )
    return _conform(out, ELIGIBILITY, ELIGIBILITY_EXTRAS)


MEDICAL_EXTRAS = [
    "source_segment",
    "source_drg_code",
    "segment_provider_num",
    "attending_npi",
    "operating_npi",
    "other_npi",
    "admitting_diagnosis_code",
    "utilization_day_count",
    "primary_payer_paid_amount",
    "pass_thru_per_diem_amount",
    "blood_deductible_amount",
    "import_flags",
]


def inpatient_to_medical_claim(df: DataFrame) -> DataFrame:
    """Inpatient claim segments -> contract ``medical_claim``.

    Input grain: one row per (CLM_ID, SEGMENT); all columns raw strings as in the CSV. Output grain: one
    row per claim line, key (claim_id, claim_line_number = SEGMENT): row counts are equal.

    - Header fields (dates, DRG, provider, physicians, diagnoses, procedures) come from segment 1 of the
      claim and are repeated on every segment; a segment > 1 whose own values differ keeps them in
      ``segment_provider_num`` / ``source_drg_code`` and is flagged ``header_from_segment_1``. A claim
      without a segment 1 keeps its own values (flag ``no_segment_1``).
    - Line fields (claim_line_start/end_date, amounts) are the segment's own.
    - ``drg_code``: the 3-digit DRG; ``OTH`` and ``000`` are not DRGs -> null (flag ``drg_not_a_drg``).
    - ``paid_amount`` = CLM_PMT_AMT unchanged; a negative one is flagged ``negative_paid_amount`` and left
      for the gate to quarantine. NCH_PRMRY_PYR_CLM_PD_AMT (another payer's payment) is not added: it is
      kept as ``primary_payer_paid_amount``.
    - billing_npi and facility_npi carry PRVDR_NUM, a CMS Certification Number: a declared stand-in.
    """
    df = _ensure_columns(df, INPATIENT_COLUMNS)
    segment = _clean("SEGMENT").cast("int")
    claim = Window.partitionBy("CLM_ID")
    has_segment_1 = F.max(F.when(segment == 1, 1).otherwise(0)).over(claim) == 1
    staged = df.select(
        *[_clean(c).alias(c) for c in INPATIENT_COLUMNS], segment.alias("segment_int")
    )
    header = {
        c: F.when(
            F.col("_has_segment_1") == 1,
            F.first(F.when(F.col("segment_int") == 1, F.col(c)), ignorenulls=True).over(claim),
        ).otherwise(F.col(c))
        for c in HEADER_SOURCE
    }
    staged = staged.withColumn("_has_segment_1", has_segment_1.cast("int")).select(
        "*", *[header[c].alias(f"h_{c}") for c in HEADER_SOURCE]
    )
    header_differs = F.lit(False)
    for c in HEADER_SOURCE:
        header_differs = header_differs | ~F.col(c).eqNullSafe(F.col(f"h_{c}"))

    def h(c: str) -> Column:  # the claim's header value of a source column
        return F.col(f"h_{c}")

    drg_raw = h("CLM_DRG_CD")
    drg_is_drg = drg_raw.rlike(DRG_PATTERN) & (drg_raw != DRG_UNGROUPABLE)
    paid = _money(F.col("CLM_PMT_AMT"))
    rendering_from_operating = h("AT_PHYSN_NPI").isNull() & h("OP_PHYSN_NPI").isNotNull()
    flags = F.concat_ws(
        ";",
        F.when(paid < 0, F.lit(FLAG_NEGATIVE_PAYMENT)),
        F.when(drg_raw.isNotNull() & ~drg_is_drg, F.lit(FLAG_DRG_NOT_A_DRG)),
        F.when((F.col("_has_segment_1") == 1) & (F.col("segment_int") != 1) & header_differs, F.lit(FLAG_HEADER_FROM_SEGMENT_1)),
        F.when(F.col("_has_segment_1") == 0, F.lit(FLAG_NO_SEGMENT_1)),
        F.when(rendering_from_operating, F.lit(FLAG_RENDERING_FROM_OPERATING)),
    )
    drg_code = F.when(drg_is_drg, drg_raw)
    out = staged.select(
        F.col("CLM_ID").alias("claim_id"),
        F.col("segment_int").alias("claim_line_number"),
        F.lit("institutional").alias("claim_type"),  # every DE-SynPUF inpatient row is a UB-04 claim
        F.col("DESYNPUF_ID").alias("person_id"),
        F.col("DESYNPUF_ID").alias("member_id"),
        F.lit(PAYER).alias("payer"),
        _date(h("CLM_FROM_DT")).alias("claim_start_date"),
        _date(h("CLM_THRU_DT")).alias("claim_end_date"),
        _date(F.col("CLM_FROM_DT")).alias("claim_line_start_date"),
        _date(F.col("CLM_THRU_DT")).alias("claim_line_end_date"),
        _date(h("CLM_ADMSN_DT")).alias("admission_date"),
        _date(h("NCH_BENE_DSCHRG_DT")).alias("discharge_date"),
        # 3-digit DRGs of FY2008-FY2011 (MS-DRG v25-v28; every claim starts after MS-DRGs began on 2007-10-01)
        F.when(drg_code.isNotNull(), F.lit("ms-drg")).alias("drg_code_type"),
        drg_code.alias("drg_code"),
        h("AT_PHYSN_NPI").alias("attending_npi"),
        F.coalesce(h("AT_PHYSN_NPI"), h("OP_PHYSN_NPI")).alias("rendering_npi"),
        h("PRVDR_NUM").alias("billing_npi"),  # stand-in: CMS Certification Number, not an NPI
        h("PRVDR_NUM").alias("facility_npi"),
        paid.alias("paid_amount"),
        _money(F.col("NCH_BENE_PTA_COINSRNC_LBLTY_AM")).alias("coinsurance_amount"),
        _money(F.col("NCH_BENE_IP_DDCTBL_AMT")).alias("deductible_amount"),
        F.lit("icd-9-cm").alias("diagnosis_code_type"),
        *[h(s).alias(f"diagnosis_code_{i}") for i, s in enumerate(DIAGNOSIS_SOURCE, start=1)],
        F.lit("icd-9-pcs").alias("procedure_code_type"),
        *[h(s).alias(f"procedure_code_{i}") for i, s in enumerate(PROCEDURE_SOURCE, start=1)],
        F.lit(DATA_SOURCE).alias("data_source"),
        F.col("SEGMENT").alias("source_segment"),
        F.col("CLM_DRG_CD").alias("source_drg_code"),
        F.col("PRVDR_NUM").alias("segment_provider_num"),
        h("OP_PHYSN_NPI").alias("operating_npi"),
        h("OT_PHYSN_NPI").alias("other_npi"),
        h("ADMTNG_ICD9_DGNS_CD").alias("admitting_diagnosis_code"),
        h("CLM_UTLZTN_DAY_CNT").cast("int").alias("utilization_day_count"),
        _money(F.col("NCH_PRMRY_PYR_CLM_PD_AMT")).alias("primary_payer_paid_amount"),
        _money(F.col("CLM_PASS_THRU_PER_DIEM_AMT")).alias("pass_thru_per_diem_amount"),
        _money(F.col("NCH_BENE_BLOOD_DDCTBL_LBLTY_AM")).alias("blood_deductible_amount"),
        F.when(flags != "", flags).alias("import_flags"),
    )
    return _conform(out, MEDICAL_CLAIM, MEDICAL_EXTRAS)


# --------------------------------------------------------------------------------------------------
# Measurements for the report (aggregations only; nothing claim-sized reaches the driver)
# --------------------------------------------------------------------------------------------------


def _n(cond: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0))


def npi_luhn_valid(npi: Column) -> Column:
    """True when ``npi`` is 10 digits and passes the NPI check digit (Luhn over the prefix 80840 + NPI)."""
    digits = [F.substring(npi, i, 1).cast("int") for i in range(1, 11)]
    total = F.lit(24)  # Luhn contribution of the constant prefix 80840
    for pos, d in enumerate(digits):  # pos 0..8 payload, 9 check digit; payload doubles at even pos
        if pos % 2 == 0:
            doubled = d * 2
            total = total + F.when(doubled > 9, doubled - 9).otherwise(doubled)
        else:
            total = total + d
    return F.coalesce(npi.rlike(r"^[0-9]{10}$") & (total % 10 == 0), F.lit(False))


def _row_dict(row) -> dict:
    """An aggregate Row (one per table, not per claim) as a plain dict for the report."""
    return row.asDict()


def measure_medical(raw: DataFrame, lines: DataFrame) -> dict:
    """Oddities of the inpatient source and of the mapped lines (one aggregation each)."""
    seg = F.trim(F.col("SEGMENT"))
    blank = lambda c: F.trim(F.col(c)).isNull() | (F.trim(F.col(c)) == "")  # noqa: E731
    hcpcs_any = F.lit(False)
    for c in HCPCS_SOURCE:
        hcpcs_any = hcpcs_any | ~blank(c)
    src = raw.agg(
        F.count(F.lit(1)).alias("source_rows"),
        F.countDistinct("CLM_ID").alias("source_claims"),
        _n(seg == "1").alias("segment_1_rows"),
        _n(seg != "1").alias("segment_2plus_rows"),
        _n(blank("CLM_FROM_DT")).alias("rows_blank_from_date"),
        _n(blank("CLM_THRU_DT")).alias("rows_blank_thru_date"),
        _n(blank("CLM_FROM_DT") & (seg == "1")).alias("segment_1_rows_blank_from_date"),
        _n(blank("CLM_DRG_CD")).alias("rows_blank_drg"),
        _n(F.trim(F.col("CLM_DRG_CD")) == "OTH").alias("rows_drg_OTH"),
        _n(F.trim(F.col("CLM_DRG_CD")) == DRG_UNGROUPABLE).alias("rows_drg_000"),
        _n(F.trim(F.col("CLM_PMT_AMT")).cast("double") < 0).alias("rows_negative_payment"),
        F.sum(F.when(F.trim(F.col("CLM_PMT_AMT")).cast("double") < 0, F.trim(F.col("CLM_PMT_AMT")).cast("double"))).alias("negative_payment_total"),
        _n(F.trim(F.col("CLM_PMT_AMT")).cast("double") == 0).alias("rows_zero_payment"),
        _n(F.trim(F.col("NCH_PRMRY_PYR_CLM_PD_AMT")).cast("double") > 0).alias("rows_primary_payer_paid"),
        _n(blank("AT_PHYSN_NPI")).alias("rows_blank_attending_npi"),
        _n(blank("ICD9_DGNS_CD_1")).alias("rows_blank_diagnosis_1"),
        _n(hcpcs_any).alias("hcpcs_rows_nonblank"),
    ).first()
    flag = lambda f: F.array_contains(F.split(F.coalesce(F.col("import_flags"), F.lit("")), ";"), f)  # noqa: E731
    out = lines.agg(
        F.count(F.lit(1)).alias("rows_written"),
        F.countDistinct("claim_id").alias("claims_written"),
        _n(flag(FLAG_NEGATIVE_PAYMENT)).alias("flag_" + FLAG_NEGATIVE_PAYMENT),
        _n(flag(FLAG_DRG_NOT_A_DRG)).alias("flag_" + FLAG_DRG_NOT_A_DRG),
        _n(flag(FLAG_HEADER_FROM_SEGMENT_1)).alias("flag_" + FLAG_HEADER_FROM_SEGMENT_1),
        _n(flag(FLAG_NO_SEGMENT_1)).alias("flag_" + FLAG_NO_SEGMENT_1),
        _n(flag(FLAG_RENDERING_FROM_OPERATING)).alias("flag_" + FLAG_RENDERING_FROM_OPERATING),
        _n(F.col("drg_code").isNull()).alias("rows_null_drg_code"),
        _n((F.col("claim_line_number") > 1) & (F.col("segment_provider_num") != F.col("billing_npi"))).alias(
            "segment_2plus_rows_other_provider"
        ),
        _n(F.col("claim_line_start_date").isNull()).alias("rows_null_line_dates"),
        _n(F.col("admission_date") < F.col("claim_start_date")).alias("rows_admission_before_claim_start"),
        _n(F.col("rendering_npi").isNull()).alias("rows_null_rendering_npi"),
        _n(npi_luhn_valid(F.col("rendering_npi"))).alias("rows_rendering_npi_luhn_valid"),
        _n(npi_luhn_valid(F.col("billing_npi"))).alias("rows_billing_npi_luhn_valid"),
        F.countDistinct("billing_npi").alias("distinct_billing_stand_ins"),
        # what the gate (CONTRACT.md required fields, date order, paid_amount >= 0) will reject
        *[_n(F.col(c).isNull()).alias(f"gate_null_{c}") for c in MEDICAL_CLAIM.required],
        _n(F.col("claim_end_date") < F.col("claim_start_date")).alias("gate_end_before_start"),
        _n(F.col("discharge_date") < F.col("admission_date")).alias("gate_discharge_before_admission"),
        _n(F.col("paid_amount") < 0).alias("gate_negative_paid_amount"),
        _n(
            F.greatest(*[F.col(c).isNull() for c in MEDICAL_CLAIM.required])
            | (F.col("claim_end_date") < F.col("claim_start_date"))
            | (F.col("paid_amount") < 0)
        ).alias("gate_rows_failing_contract_rules_excl_npi"),
    ).first()
    dup = lines.groupBy("claim_id", "claim_line_number").count().filter("count > 1").count()
    result = {**_row_dict(src), **_row_dict(out), "duplicate_keys": dup}
    if result["negative_payment_total"] is not None:
        result["negative_payment_total"] = round(float(result["negative_payment_total"]), 2)
    return result


def measure_eligibility(raw: DataFrame, spans: DataFrame, claims: DataFrame) -> dict:
    """Oddities of the beneficiary files, the spans, and claims that fall outside every span."""
    src = raw.agg(
        F.count(F.lit(1)).alias("source_rows"),
        F.countDistinct("DESYNPUF_ID").alias("source_persons"),
    ).first()
    by_year = {str(r["file_year"]): int(r["count"]) for r in raw.groupBy("file_year").count().collect()}
    persons = spans.groupBy("person_id").agg(
        F.count(F.lit(1)).alias("years"),
        F.countDistinct("birth_date").alias("births"),
        F.countDistinct("gender").alias("genders"),
        F.countDistinct("state").alias("states"),
    )
    years_hist = {
        f"persons_in_{r['years']}_years": int(r["count"])
        for r in persons.groupBy("years").count().collect()  # bounded: at most one row per file year
    }
    conflicts = persons.agg(
        _n(F.col("births") > 1).alias("persons_with_conflicting_birth_dates"),
        _n(F.col("genders") > 1).alias("persons_with_conflicting_gender"),
        _n(F.col("states") > 1).alias("persons_in_several_states"),
    ).first()
    death_conflicts = (
        raw.filter(F.trim(F.col("BENE_DEATH_DT")) != "")
        .groupBy("DESYNPUF_ID")
        .agg(F.countDistinct(F.trim(F.col("BENE_DEATH_DT"))).alias("n"))
        .filter("n > 1")
        .count()
    )
    out = spans.agg(
        F.count(F.lit(1)).alias("rows_written"),
        F.countDistinct("person_id").alias("persons_written"),
        _n(F.col("death_date").isNotNull()).alias("spans_of_persons_who_died"),
        _n(F.col("death_date").isNotNull() & (F.col("enrollment_end_date") == F.col("death_date"))).alias(
            "spans_cut_at_death"
        ),
        _n(F.col("death_date") < F.col("enrollment_start_date")).alias("spans_listed_after_death"),
        _n(F.col("gender") == "unknown").alias("rows_gender_unknown"),
        _n(F.col("state").isNull()).alias("rows_state_null"),
        _n(F.col("source_state_code") == "54").alias("rows_state_code_54_others"),
        _n(F.col("part_a_coverage_months") == 0).alias("spans_with_0_part_a_months"),
        _n(F.col("part_a_coverage_months").between(1, 11)).alias("spans_with_1_to_11_part_a_months"),
        _n(F.col("hmo_coverage_months") > 0).alias("spans_with_hmo_months"),
        *[_n(F.col(c).isNull()).alias(f"gate_null_{c}") for c in ELIGIBILITY.required],
        _n(F.col("enrollment_end_date") < F.col("enrollment_start_date")).alias("gate_end_before_start"),
    ).first()
    # claims (lines) whose claim_start_date lies in no span of the person: what an enrollment check sees
    heads = claims.select("claim_id", "claim_line_number", "person_id", "claim_start_date")
    inside = heads.join(
        spans.select("person_id", "enrollment_start_date", "enrollment_end_date"), "person_id"
    ).filter(F.col("claim_start_date").between(F.col("enrollment_start_date"), F.col("enrollment_end_date")))
    outside = heads.join(inside.select("claim_id", "claim_line_number"), ["claim_id", "claim_line_number"], "left_anti")
    first_span_start = spans.agg(F.min("enrollment_start_date")).first()[0]  # one scalar
    claims_outside = outside.agg(
        F.count(F.lit(1)).alias("claim_lines_outside_every_span"),
        _n(F.col("claim_start_date") < F.lit(first_span_start)).alias("claim_lines_outside_before_first_file_year"),
        _n(F.col("claim_start_date").isNull()).alias("claim_lines_outside_no_start_date"),
    ).first()
    after_death = (
        claims.join(spans.select("person_id", "death_date").dropDuplicates(["person_id"]), "person_id")
        .filter(F.col("claim_start_date") > F.col("death_date"))
        .count()
    )
    return {
        **_row_dict(src),
        "source_rows_by_year": dict(sorted(by_year.items())),
        **years_hist,
        **_row_dict(conflicts),
        "persons_with_conflicting_death_dates": death_conflicts,
        **_row_dict(out),
        **_row_dict(claims_outside),
        "claim_lines_starting_after_death": after_death,
    }


# --------------------------------------------------------------------------------------------------
# Extract / load (entry point only)
# --------------------------------------------------------------------------------------------------

_BENE_FILE = re.compile(r"(\d{4})_Beneficiary_Summary_File")
_INPATIENT_FILE = re.compile(r"Inpatient_Claims", re.IGNORECASE)


def find_source_files(input_dir: str | Path) -> tuple[dict[str, Path], list[Path]]:
    """({file_year: beneficiary CSV}, [inpatient CSVs]) in ``input_dir``; InputError if either is missing."""
    base = Path(input_dir)
    if not base.is_dir():
        raise InputError(f"input directory not found: {input_dir}")
    csvs = sorted(p for p in base.iterdir() if p.is_file() and p.name.lower().endswith((".csv", ".csv.gz")))
    beneficiaries: dict[str, Path] = {}
    for p in csvs:
        m = _BENE_FILE.search(p.name)
        if m:
            if m.group(1) in beneficiaries:
                raise InputError(f"two beneficiary summary files for {m.group(1)} in {input_dir}")
            beneficiaries[m.group(1)] = p
    inpatient = [p for p in csvs if _INPATIENT_FILE.search(p.name)]
    if not beneficiaries:
        raise InputError(f"no DE-SynPUF beneficiary summary files (*_<YYYY>_Beneficiary_Summary_File*.csv) in {input_dir}")
    if not inpatient:
        raise InputError(f"no DE-SynPUF inpatient claims file (*Inpatient_Claims*.csv) in {input_dir}")
    return beneficiaries, inpatient


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open  # CMS ships the files zipped or plain
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        line = fh.readline().strip()
    if not line:
        raise InputError(f"{path.name}: empty file (no header row)")
    return [c.strip().strip('"').strip() for c in line.split(",")]


def read_source_csv(spark: SparkSession, paths: list[Path], known: tuple[str, ...], required: tuple[str, ...]) -> tuple[DataFrame, dict]:
    """Read same-layout CSVs with an explicit all-string schema built from their header (codes keep leading
    zeros). Returns (DataFrame with ``_source_file``, {missing_columns, unknown_columns})."""
    headers = [_header(p) for p in paths]
    if any(h != headers[0] for h in headers[1:]):
        raise InputError(f"{paths[0].name} and the other files of its kind have different headers")
    names = headers[0]
    missing_required = [c for c in required if c not in names]
    if missing_required:
        raise InputError(f"{paths[0].name}: required column(s) missing: {', '.join(missing_required)}")
    # A line whose field count does not match the header is kept (missing fields null) and counted
    # (``rows_malformed_csv``, from a plain-text pass: Spark's corrupt-record column is unreliable
    # under CSV column pruning).
    schema = StructType([StructField(n, StringType()) for n in names])
    df = (
        spark.read.schema(schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("encoding", "UTF-8")
        .csv([str(p) for p in paths])
        .withColumn("_source_file", F.input_file_name())
    )
    df = _ensure_columns(df, known)  # documented columns absent from this release: null, and listed
    # DE-SynPUF data rows are unquoted (only the header is), so a field count is a comma count.
    text = spark.read.text([str(p) for p in paths])
    malformed = text.filter(
        ~F.col("value").startswith('"') & (F.trim("value") != "") & (F.size(F.split("value", ",")) != len(names))
    ).count()
    info = {
        "rows_malformed_csv": malformed,
        "missing_columns": [c for c in known if c not in names],
        "unknown_columns": [c for c in names if c not in known],
    }
    return df, info


def _write(df: DataFrame, path: Path, fmt: str) -> None:
    writer = df.write.mode("overwrite")
    if fmt == "csv":
        writer.option("header", True).option("dateFormat", "yyyy-MM-dd").csv(str(path))
    else:
        writer.parquet(str(path))


def import_synpuf(spark: SparkSession, input_dir: str, output_dir: str, *, fmt: str = "parquet") -> dict:
    """Read the DE-SynPUF CSVs of ``input_dir``, write the contract tables and ``import_report.json`` to
    ``output_dir`` (replaced as a whole, atomically). Returns the report."""
    if fmt not in ("parquet", "csv"):
        raise InputError(f"--format must be parquet or csv, got {fmt!r}")
    started = time.perf_counter()
    bene_files, ip_files = find_source_files(input_dir)
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and not (out / "import_report.json").exists():
        raise InputError(f"output folder {output_dir} is not empty and holds no earlier import; refusing to replace it")

    bene_raw, bene_info = read_source_csv(
        spark, [p for _, p in sorted(bene_files.items())], BENEFICIARY_COLUMNS, BENEFICIARY_REQUIRED
    )
    bene_raw = bene_raw.withColumn("file_year", F.regexp_extract("_source_file", _BENE_FILE.pattern, 1))
    ip_raw, ip_info = read_source_csv(spark, ip_files, INPATIENT_COLUMNS, INPATIENT_REQUIRED)

    eligibility = beneficiaries_to_eligibility(bene_raw)
    medical = inpatient_to_medical_claim(ip_raw)
    seconds: dict[str, float] = {}
    with atomic_dir(out) as staging:
        t = time.perf_counter()
        _write(eligibility, staging / "eligibility", fmt)
        _write(medical, staging / "medical_claim", fmt)
        seconds["transform_and_write"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        if fmt == "parquet":  # measure what was written: the counts reconcile the files themselves
            spans_w = spark.read.parquet(str(staging / "eligibility"))
            lines_w = spark.read.parquet(str(staging / "medical_claim"))
        else:  # CSV loses types on re-read; measure the typed frames that were written
            spans_w, lines_w = eligibility, medical
        med = measure_medical(ip_raw, lines_w)
        elig = measure_eligibility(bene_raw, spans_w, lines_w)
        seconds["measure"] = round(time.perf_counter() - t, 2)
        seconds["total"] = round(time.perf_counter() - started, 2)
        report = _report(input_dir, output_dir, fmt, bene_files, ip_files, bene_info, ip_info, med, elig, seconds)
        if med["rows_written"] != med["source_rows"] or elig["rows_written"] != elig["source_rows"]:
            raise InputError(
                f"row counts do not reconcile: medical_claim {med['rows_written']} written vs {med['source_rows']} read, "
                f"eligibility {elig['rows_written']} vs {elig['source_rows']}"
            )
        (staging / "import_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _report(input_dir, output_dir, fmt, bene_files, ip_files, bene_info, ip_info, med, elig, seconds) -> dict:
    return {
        "data_source": DATA_SOURCE,
        "input_dir": str(input_dir),
        "output_dir": str(output_dir),
        "format": fmt,
        "source_files": {
            "beneficiary": {y: p.name for y, p in sorted(bene_files.items())},
            "inpatient": [p.name for p in ip_files],
        },
        "seconds": seconds,
        "eligibility": {
            "grain": ELIGIBILITY.grain,
            "spans": "one per beneficiary per file year (Jan 1..Dec 31, cut at death); adjacent years NOT merged",
            "counts": elig,
            "source_columns": bene_info,
            "null_columns": ELIGIBILITY_NULL_REASONS,
        },
        "medical_claim": {
            "grain": MEDICAL_CLAIM.grain,
            "counts": med,
            "source_columns": ip_info,
            "null_columns": MEDICAL_NULL_REASONS,
            "stand_ins": STAND_INS,
        },
        "decisions": {
            "negative_paid_amount": "kept unchanged and flagged; the gate quarantines them (paid_amount >= 0), nothing dropped here",
            "two_segment_claims": "SEGMENT -> claim_line_number; header fields from segment 1 repeated on segment 2; "
            "each segment keeps its own amounts (the claim total is their sum)",
            "drg": "3-digit DRG kept as a string; OTH and 000 are not DRGs -> drg_code null, raw in source_drg_code",
            "primary_payer_paid_amount": "NCH_PRMRY_PYR_CLM_PD_AMT is another payer's payment; not added to paid_amount",
            "provider_stand_in": "billing_npi/facility_npi = PRVDR_NUM (CMS Certification Number); the NPI Luhn check will "
            "flag every row; proposed: validation.npi_check: warn for data_source desynpuf",
            "death_date": "person-level: the death date of the year of death applies to every span of the person",
        },
    }


def configure_parser(parser) -> None:
    parser.add_argument("--input", required=True, help="folder of DE-SynPUF CSVs (beneficiary summaries, inpatient claims)")
    parser.add_argument("--output", required=True, help="folder for eligibility/, medical_claim/ and import_report.json (replaced)")
    parser.add_argument("--format", default="parquet", choices=("parquet", "csv"), help="output format (default parquet)")


def run_from_cli(args, settings) -> int:
    from claimsentry.spark import get_spark

    find_source_files(args.input)  # fail fast, before starting Spark
    spark = get_spark(settings)
    report = import_synpuf(spark, args.input, args.output, fmt=args.format)
    med, elig = report["medical_claim"]["counts"], report["eligibility"]["counts"]
    print(
        f"imported {med['rows_written']:,} claim lines ({med['claims_written']:,} claims) and "
        f"{elig['rows_written']:,} eligibility spans ({elig['persons_written']:,} persons) in "
        f"{report['seconds']['total']:.0f}s; {med['gate_rows_failing_contract_rules_excl_npi']:,} lines break contract "
        f"rules (negative payments {med['rows_negative_payment']}); billing_npi is a CCN stand-in that fails NPI "
        f"checks (see import_report.json) -> {Path(args.output)}"
    )
    return 0
