"""Given -> expect tests for the Tuva-style claim header vote."""

import datetime as dt

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from claimsentry.features.header import medical_claim_header

LINE_SCHEMA = T.StructType(
    [
        T.StructField("claim_id", T.StringType()),
        T.StructField("claim_line_number", T.IntegerType()),
        T.StructField("claim_type", T.StringType()),
        T.StructField("person_id", T.StringType()),
        T.StructField("billing_npi", T.StringType()),
        T.StructField("claim_start_date", T.DateType()),
        T.StructField("drg_code", T.StringType()),
        T.StructField("bill_type_code", T.StringType()),
        T.StructField("place_of_service_code", T.StringType()),
        T.StructField("revenue_center_code", T.StringType()),
        T.StructField("paid_amount", T.DoubleType()),
    ]
)
D1, D2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)


@pytest.fixture(scope="module")
def header(spark):
    given = [
        # c1: lines agree -> header is the common value; amounts sum
        ("c1", 1, "institutional", "p1", "1234567893", D1, "291", "111", None, "0120", 100.0),
        ("c1", 2, "institutional", "p1", "1234567893", D1, "291", "111", None, "0250", 50.0),
        # c2: DRG 2 votes to 1 -> strict winner 291; one null line does not vote
        ("c2", 1, "institutional", "p2", "1234567893", D1, "291", "111", None, None, 10.0),
        ("c2", 2, "institutional", "p2", "1234567893", D1, "291", "111", None, None, 10.0),
        ("c2", 3, "institutional", "p2", "1234567893", D2, "292", None, None, None, 10.0),
        # c3: a 1-1 tie on DRG and start date -> null, never an arbitrary first()
        ("c3", 1, "institutional", "p3", "1234567893", D1, "291", "111", None, None, 5.0),
        ("c3", 2, "institutional", "p3", "1234567893", D2, "292", "111", None, None, 5.0),
        # c4: claim_type missing; place of service only -> professional
        ("c4", 1, None, "p4", "1234567893", D1, None, None, "11", None, 75.0),
        # c5: claim_type missing; a revenue code marks it institutional
        ("c5", 1, None, "p5", "1234567893", D1, None, None, None, "0450", 20.0),
    ]
    return medical_claim_header(spark.createDataFrame(given, LINE_SCHEMA))


def test_header_is_one_row_per_claim(header):
    assert header.count() == header.select("claim_id").distinct().count() == 5


def test_strict_vote_and_ties(spark, header):
    got = header.select("claim_id", "drg_code", "claim_start_date", "bill_type_code", "paid_amount", "line_count")
    expect = spark.createDataFrame(
        [
            ("c1", "291", D1, "111", 150.0, 2),
            ("c2", "291", D1, "111", 30.0, 3),
            ("c3", None, None, "111", 10.0, 2),
            ("c4", None, D1, None, 75.0, 1),
            ("c5", None, D1, None, 20.0, 1),
        ],
        "claim_id string, drg_code string, claim_start_date date, bill_type_code string, paid_amount double, line_count long",
    )
    assertDataFrameEqual(got, expect)


def test_claim_type_derived_tuva_rule(header):
    types = {r.claim_id: r.claim_type for r in header.select("claim_id", "claim_type").collect()}
    assert types == {"c1": "institutional", "c2": "institutional", "c3": "institutional", "c4": "professional", "c5": "institutional"}


def test_date_column_keeps_its_type(header):
    assert dict(header.dtypes)["claim_start_date"] == "date"
