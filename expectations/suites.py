"""The data-quality suites: Great Expectations 1.x suites stored as JSON, one per contract table.

The JSON files beside this module are the single source of truth for what a valid row is. Each is a
plain GE ``ExpectationSuite`` (``name``, ``expectations: [{type, kwargs, meta}]``); every expectation's
``meta.claimsentry`` says how the gate uses it:

- ``severity``: ``table`` (a break: the run stops), ``row`` (a failing row goes to quarantine) or
  ``warning`` (reported, never blocking);
- ``reason``: plain-language text for the quarantine ``reason`` / the warning. ``{value}`` is the
  offending value (the raw string as read, or the ``value`` Spark SQL expression below); ``{col}``
  is that column's value;
- ``value`` (optional): Spark SQL expression rendering the offending value(s);
- ``check`` (optional, on ``unexpected_rows_expectation``): a group rule evaluated natively with
  Spark windows (``one_value_per_key``, ``no_overlapping_spans``); its GE query says the same in SQL.

The same suite is used twice, on the same Spark DataFrame (never a pandas copy):

1. ``compile_checks`` translates each row-level expectation into a Spark ``Column`` predicate
   (true = the row breaks the rule), so quarantine is computed natively at any scale;
2. ``to_ge_suite`` builds the GE suite that ``batch.validate`` runs for the table-level report and
   Data Docs.

The validated frame is the gate's *checked* frame (see ``claimsentry.quality.type_table``): typed
contract columns, ``_raw_<col>`` (the string as read) for every non-string or lower-cased contract
column, ``_row_text`` (every value as read, tab-joined), ``_corrupt_record`` and ``_source_file``. ``{as_of}`` in a query is the run's
as-of date.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources

from pyspark.sql import Column
from pyspark.sql import functions as F

from claimsentry.errors import ClaimSentryError

SUITE_TABLES = ("medical_claim", "pharmacy_claim", "eligibility", "labels", "provider_labels", "provider")
SEVERITIES = ("table", "row", "warning")
_QUERY_PREFIX = "SELECT * FROM {batch} WHERE "
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def load_suite(table: str) -> dict:
    """The suite of one contract table as the JSON dict stored in ``expectations/<table>.json``."""
    if table not in SUITE_TABLES:
        raise ClaimSentryError(f"no expectation suite for table {table!r}")
    text = resources.files("claimsentry.expectations").joinpath(f"{table}.json").read_text(encoding="utf-8")
    suite = json.loads(text)
    for i, exp in enumerate(suite.get("expectations", [])):
        sev = exp.get("meta", {}).get("claimsentry", {}).get("severity")
        if sev not in SEVERITIES:
            raise ClaimSentryError(f"expectations/{table}.json: expectation {i} ({exp.get('type')}) has no valid severity")
    return suite


def with_as_of(suite: dict, as_of: date) -> dict:
    """A copy of ``suite`` with ``{as_of}`` in queries and expressions replaced by the ISO date."""
    text = json.dumps(suite).replace("{as_of}", as_of.isoformat())
    return json.loads(text)


def meta_of(exp: dict) -> dict:
    return exp.get("meta", {}).get("claimsentry", {})


def required_columns(suite: dict) -> list[str]:
    """Columns the table must carry (``expect_column_to_exist`` at table severity)."""
    return [
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_to_exist" and meta_of(e).get("severity") == "table"
    ]


def min_row_count(suite: dict) -> int:
    counts = [
        int(e["kwargs"].get("min_value") or 0)
        for e in suite["expectations"]
        if e["type"] == "expect_table_row_count_to_be_between"
    ]
    return max(counts, default=0)


def to_ge_suite(suite: dict, *, as_of: date):
    """The GE 1.x ``ExpectationSuite`` object for ``suite`` (as-of date filled in)."""
    from great_expectations.core import ExpectationSuite

    d = with_as_of(suite, as_of)
    return ExpectationSuite(name=d["name"], expectations=d["expectations"], meta=d.get("meta"))


# --- Translation to Spark predicates -------------------------------------------------------------


@dataclass(frozen=True)
class RowCheck:
    """One row-level rule: ``fails`` is true on rows that break it; ``reason`` is its text for a row."""

    name: str
    severity: str  # row | warning
    fails: Column
    reason: Column
    mostly: float = 1.0  # warnings: allowed share of passing rows below which it is reported
    text: str = ""  # the reason template, for warnings
    rule: str = ""  # meta.claimsentry.rule tag, e.g. npi_luhn


@dataclass(frozen=True)
class GroupCheck:
    """A rule over several rows: duplicate key, one value per key, overlapping spans."""

    kind: str  # unique_key | one_value_per_key | no_overlapping_spans
    reason: str
    params: dict = field(default_factory=dict)


def _raw_or(col: str, columns: set[str]) -> Column:
    raw = f"_raw_{col}"
    return F.col(f"`{raw}`") if raw in columns else F.col(f"`{col}`")


def render_reason(template: str, value: Column | None) -> Column:
    """``template`` with ``{value}`` and ``{column}`` placeholders filled per row (values cut at 60 chars)."""
    parts: list[Column] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            parts.append(F.lit(template[pos : m.start()]))
        name = m.group(1)
        expr = value if name == "value" and value is not None else F.col(f"`{name}`")
        parts.append(F.coalesce(F.substring(expr.cast("string"), 1, 60), F.lit("")))
        pos = m.end()
    if pos < len(template):
        parts.append(F.lit(template[pos:]))
    return F.concat(*parts) if parts else F.lit(template)


def _where(query: str) -> str:
    if not query.startswith(_QUERY_PREFIX):
        raise ClaimSentryError(f"unexpected_rows_query must start with {_QUERY_PREFIX!r}: {query[:80]}")
    # GE fills the query with str.format, so literal braces (regex quantifiers) are doubled in it.
    return query[len(_QUERY_PREFIX) :].replace("{{", "{").replace("}}", "}")


def _row_predicate(exp: dict, columns: set[str]) -> tuple[Column, Column | None]:
    """(fails, value) for a row-level expectation; null-safe (null ``fails`` counts as passing)."""
    kind, kw = exp["type"], exp["kwargs"]
    col = kw.get("column")
    c = F.col(f"`{col}`") if col else None
    if kind == "expect_column_values_to_not_be_null":
        return _raw_or(col, columns).isNull(), None
    if kind == "expect_column_values_to_match_regex":
        return c.isNotNull() & ~c.rlike(kw["regex"]), c
    if kind == "expect_column_values_to_be_in_set":
        return c.isNotNull() & ~c.isin(list(kw["value_set"])), _raw_or(col, columns)
    if kind == "expect_column_values_to_be_between":
        fails = F.lit(False)
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is not None:
            fails = fails | ((c <= F.lit(lo)) if kw.get("strict_min") else (c < F.lit(lo)))
        if hi is not None:
            fails = fails | ((c >= F.lit(hi)) if kw.get("strict_max") else (c > F.lit(hi)))
        if not col.endswith("_date"):
            fails = fails | F.isnan(c)  # "NaN" parses as a double but is no amount
        return c.isNotNull() & fails, _raw_or(col, columns)
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = F.col(f"`{kw['column_A']}`"), F.col(f"`{kw['column_B']}`")
        fails = (a < b) if kw.get("or_equal") else (a <= b)
        return a.isNotNull() & b.isNotNull() & fails, None
    if kind == "unexpected_rows_expectation":
        return F.expr(_where(kw["unexpected_rows_query"])), None
    raise ClaimSentryError(f"expectation type {kind} has no row-level translation")


TABLE_ONLY = {
    "expect_column_to_exist",
    "expect_table_row_count_to_be_between",
    "expect_column_values_to_be_of_type",
    "expect_table_columns_to_match_set",
}


def compile_checks(
    suite: dict, columns: list[str], *, as_of: date, npi_stand_in_sources: tuple[str, ...] = ()
) -> tuple[list[RowCheck], list[GroupCheck]]:
    """Translate the row-level and warning expectations of ``suite`` into Spark checks over a
    checked frame whose columns are ``columns``. Rules tagged ``npi_luhn`` do not apply to rows
    whose ``data_source`` is one of ``npi_stand_in_sources`` (declared non-NPI provider ids)."""
    suite = with_as_of(suite, as_of)
    cols = set(columns)
    rows: list[RowCheck] = []
    groups: list[GroupCheck] = []
    for exp in suite["expectations"]:
        meta = meta_of(exp)
        severity = meta["severity"]
        kind, kw = exp["type"], exp["kwargs"]
        if severity == "table" or kind in TABLE_ONLY:
            continue
        text = meta.get("reason") or kind
        if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
            key = kw.get("column_list") or [kw["column"]]
            groups.append(GroupCheck("unique_key", text, {"key": list(key)}))
            continue
        if meta.get("check"):
            params = dict(meta["check"])
            groups.append(GroupCheck(params.pop("kind"), text, params))
            continue
        fails, value = _row_predicate(exp, cols)
        if kw.get("row_condition"):  # GE's condition_parser "spark": a Spark SQL boolean
            fails = F.expr(kw["row_condition"]) & fails
        if meta.get("rule") == "npi_luhn" and npi_stand_in_sources and "data_source" in cols:
            fails = fails & ~F.coalesce(F.col("data_source").isin(list(npi_stand_in_sources)), F.lit(False))
        if meta.get("value"):
            value = F.expr(meta["value"])
        name = kw.get("column") or kind
        rows.append(
            RowCheck(
                name=name,
                severity=severity,
                fails=F.coalesce(fails, F.lit(False)),
                reason=render_reason(text, value),
                mostly=float(kw.get("mostly", 1.0)),
                text=text,
                rule=meta.get("rule", ""),
            )
        )
    return rows, groups


def describe(suite: dict) -> list[dict]:
    """One line per expectation (type, column, severity, reason) — for docs and tests."""
    out = []
    for exp in suite["expectations"]:
        m = meta_of(exp)
        out.append(
            {
                "type": exp["type"],
                "column": exp["kwargs"].get("column") or exp["kwargs"].get("column_list"),
                "severity": m.get("severity"),
                "reason": m.get("reason"),
            }
        )
    return copy.deepcopy(out)
