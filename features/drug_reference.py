"""Shipped drug reference (``claimsentry/reference/drug_reference.csv.gz``) and NDC normalisation.

The reference has one row per 11-digit NDC (built by ``tools/build_drug_reference.py`` from the FDA
NDC Directory and the CDC opioid/benzodiazepine NDC lists; sources and counts in
``claimsentry/reference/DRUG_REFERENCE.md``). It is small (~160k rows, a dozen bytes a column), so it
is joined with ``F.broadcast``.

Grain: one row per ``ndc_11``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

RESOURCE = "drug_reference.csv.gz"
SCHEMA = StructType(
    [
        StructField("ndc_11", StringType()),
        StructField("generic_name", StringType()),
        StructField("product_group", IntegerType()),
        StructField("is_brand", IntegerType()),
        StructField("generic_available", IntegerType()),
        StructField("dea_schedule", IntegerType()),
        StructField("is_opioid", IntegerType()),
        StructField("is_benzodiazepine", IntegerType()),
        StructField("strength_per_unit", DoubleType()),
        StructField("mme_conversion_factor", DoubleType()),
    ]
)


def normalise_ndc(col: Column | str) -> Column:
    """11-digit (5-4-2) NDC from the forms claims carry; null when the text is not an NDC.

    - hyphenated 10-digit package codes: 4-4-2 -> 0+4-4-2, 5-3-2 -> 5-0+3-2, 5-4-1 -> 5-4-0+1;
      hyphenated 5-4-2 loses its hyphens;
    - a digit string of 11 digits is kept; shorter digit strings (a numeric column that lost its
      leading zeros, as in CDC's ``NDC_Numeric``) are left-padded with zeros.
    Twin of ``tools/build_drug_reference.normalise_ndc``.
    """
    c = F.trim(F.col(col) if isinstance(col, str) else col)
    seg = lambda i: F.regexp_extract(c, r"^(\d{4,5})-(\d{3,4})-(\d{1,2})$", i)  # noqa: E731
    a, b, d = seg(1), seg(2), seg(3)
    shape = F.concat(F.length(a), F.length(b), F.length(d))
    hyphenated = (
        F.when(shape == "442", F.concat(F.lit("0"), a, b, d))
        .when(shape == "532", F.concat(a, F.lit("0"), b, d))
        .when(shape == "541", F.concat(a, b, F.lit("0"), d))
        .when(shape == "542", F.concat(a, b, d))
    )
    return (
        F.when(c.rlike(r"^\d{4,5}-\d{3,4}-\d{1,2}$"), hyphenated)
        .when(c.rlike(r"^\d{1,11}$"), F.lpad(c, 11, "0"))
    )


def load_drug_reference(spark) -> DataFrame:
    """The shipped reference as a Spark DataFrame: one row per ``ndc_11`` (see ``SCHEMA``).

    Read by Spark's CSV reader straight from the installed package file (a file scan keeps query
    plans small; a 160k-row in-memory relation would be copied into every plan that uses it).
    When the package is not on a file system (zipped), it is read with pandas instead. Join it
    with ``F.broadcast(...)``: ~160k narrow rows.
    """
    resource = resources.files("claimsentry.reference").joinpath(RESOURCE)
    if isinstance(resource, Path) and resource.is_file():
        return spark.read.csv(str(resource), schema=SCHEMA, header=True, mode="FAILFAST")
    return spark.createDataFrame(_reference_pandas(), schema=SCHEMA)


@lru_cache(maxsize=1)
def _reference_pandas():
    import pandas as pd

    dtypes = {
        f.name: "string" if f.dataType == StringType() else "Int32" if f.dataType == IntegerType() else "Float64"
        for f in SCHEMA.fields
    }
    with resources.files("claimsentry.reference").joinpath(RESOURCE).open("rb") as fh:
        pdf = pd.read_csv(fh, compression="gzip", dtype=dtypes, keep_default_na=False, na_values=[""])
    return pdf[[f.name for f in SCHEMA.fields]]
