"""Given -> expect tests for the Tuva-style claim header vote."""

import datetime as dt

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from claimsentry.features.header import CODING_COLUMNS, VOTE_BROADCAST_LIMIT, claim_coding, medical_claim_header

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


@pytest.fixture(scope="module", params=["broadcast vote", "shuffled vote"])
def header(spark, request):
    """The same lines through both vote paths: few disagreeing claims (vote broadcast to the header)
    and more than ``broadcast_votes_up_to`` (shuffle join); both must give the same header."""
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
    limit = VOTE_BROADCAST_LIMIT if request.param == "broadcast vote" else 0
    return medical_claim_header(spark.createDataFrame(given, LINE_SCHEMA), broadcast_votes_up_to=limit)


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


def test_top_hcpcs_code_is_the_code_of_the_line_paid_most(spark):
    schema = "claim_id string, claim_line_number int, hcpcs_code string, paid_amount double"
    given = [
        ("h1", 1, "99213", 50.0),
        ("h1", 2, "99214", 80.0),
        ("h1", 3, None, 500.0),  # a line without a code never names the claim's code
        ("h2", 1, "A0425", 30.0),
        ("h2", 2, "A0428", 30.0),  # a tie on paid goes to the higher code, on every run
        ("h3", 1, "99213", None),  # unpaid counts as 0
        ("h3", 2, None, 10.0),
        ("h4", 1, None, 10.0),
    ]
    got = medical_claim_header(spark.createDataFrame(given, schema)).select("claim_id", "top_hcpcs_code")
    expect = spark.createDataFrame(
        [("h1", "99214"), ("h2", "A0428"), ("h3", "99213"), ("h4", None)], "claim_id string, top_hcpcs_code string"
    )
    assertDataFrameEqual(got, expect)


def _operators(df):
    """Physical operator names of ``df``'s plan, not descending into cached relations."""
    names, todo = [], [df._jdf.queryExecution().executedPlan()]
    while todo:
        node = todo.pop()
        if node.nodeName() == "AdaptiveSparkPlan":
            node = node.inputPlan()
        names.append(node.nodeName())
        children = node.children()
        todo += [children.apply(i) for i in range(children.size())]
    return names


def test_a_header_without_disagreement_reads_the_cached_aggregate(spark):
    """The usual feed (every line of a claim repeats the header) pays one aggregate of the lines;
    reading the header afterwards neither re-aggregates nor shuffles (BENCHMARKS.md's history in git, 2026-11-25 (c))."""
    lines = spark.createDataFrame(
        [("a", 1, "professional", "p1", "1234567893", D1, None, None, "11", None, 10.0),
         ("a", 2, "professional", "p1", "1234567893", D1, None, None, "11", None, 20.0),
         ("b", 1, "institutional", "p2", "1234567893", D2, "291", "111", None, "0120", 5.0)],
        LINE_SCHEMA,
    )
    cached = []

    def cache(df):
        cached.append(df.persist())
        return cached[-1]

    header = medical_claim_header(lines, cache=cache)
    try:
        assert len(cached) == 1  # the claim aggregate only: no vote, no second copy of the header
        operators = _operators(header)
        assert "InMemoryTableScan" in operators, operators
        assert not [o for o in operators if "Aggregate" in o or "Exchange" in o or "Join" in o], operators
        assert {r.claim_id: r.paid_amount for r in header.collect()} == {"a": 30.0, "b": 5.0}
    finally:
        for df in cached:
            df.unpersist()


@pytest.mark.parametrize("limit", [VOTE_BROADCAST_LIMIT, 0], ids=["broadcast vote", "shuffled vote"])
def test_coding_is_voted_for_the_claims_asked_and_left_out_of_the_header(spark, limit):
    """Diagnosis, POA and procedure codes are voted like the header's fields, but only for the
    claims asked for (the grouper's stays), over their lines alone; the header has none of them."""
    schema = "claim_id string, claim_line_number int, claim_type string, diagnosis_code_1 string, diagnosis_poa_1 string, diagnosis_code_2 string, procedure_code_1 string"
    given = [
        ("s1", 1, "institutional", "I5023", "Y", "N179", "02H633Z"),
        ("s1", 2, "institutional", "I5023", "Y", None, None),  # a line without codes does not vote
        ("s2", 1, "institutional", "I5023", "Y", "N179", None),
        ("s2", 2, "institutional", "I5023", "Y", "E119", None),  # 1-1 tie on the second code -> null
        ("s2", 3, "institutional", "I509", "N", None, None),  # 2-1 on the first code and its POA
        ("p1", 1, "professional", "M545", None, None, None),  # not asked for
    ]
    lines = spark.createDataFrame(given, schema)
    cached = []

    def cache(df):
        cached.append(df.persist())
        return cached[-1]

    header = medical_claim_header(lines)
    assert not set(header.columns) & set(CODING_COLUMNS)
    asked = spark.createDataFrame([("s1",), ("s2",), ("s2",), ("gone",)], "claim_id string")
    try:
        got = claim_coding(lines, asked, cache=cache, broadcast_votes_up_to=limit)
        expect = spark.createDataFrame(
            [("s1", "I5023", "N179", "Y", "02H633Z"), ("s2", "I5023", None, "Y", None)],
            "claim_id string, diagnosis_code_1 string, diagnosis_code_2 string, diagnosis_poa_1 string, procedure_code_1 string",
        )
        assertDataFrameEqual(got, expect)
    finally:
        for df in cached:
            df.unpersist()
