"""Data-quality transforms used by the gate (``claimsentry.jobs.validate``): pure DataFrame functions.

Frames (all at the grain of the input table: one row per row read):

- *raw*: every column a string as read (``claimsentry.io.read_raw``), plus ``_corrupt_record`` and
  ``_source_file``.
- *checked* (``type_table``): the contract columns cast to their types (absent optional columns as
  typed nulls), unknown extra columns kept as strings, ``_raw_<col>`` (the string as read) beside
  every non-string contract column, ``_row_content`` (JSON of the raw row) and the two raw extras.
- *flagged* (``flag_rows``): checked + ``_reason`` (null = accepted; else every failing rule, ``; ``-joined).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType

from claimsentry.expectations.suites import GroupCheck, RowCheck
from claimsentry.io import CORRUPT, SOURCE_FILE
from claimsentry.schemas import TableSpec

ROW_CONTENT = "_row_content"
REASONS = "_reasons"
REASON = "_reason"
CLEAN = "_passes_row_rules"
RAW_PREFIX = "_raw_"

# Enumerated contract values are compared lower-case ("Institutional" is "institutional").
ENUM_COLUMNS = frozenset(
    {"claim_type", "drg_code_type", "diagnosis_code_type", "procedure_code_type", "gender", "claim_source"}
)

QUARANTINE_COLUMNS = ("table", "row_content", "reason", "source_file")


def _cast(col: str, dtype: DataType):
    c = F.col(f"`{col}`")
    if isinstance(dtype, StringType):
        return F.lower(c) if col in ENUM_COLUMNS else c
    if dtype.simpleString() == "int":
        # "30" and "30.0" are whole numbers; the suite's parse rule rejects "30.5" and overflow.
        return c.try_cast("double").try_cast("int")
    return c.try_cast(dtype)


def type_table(raw: DataFrame, spec: TableSpec) -> DataFrame:
    """Checked frame (one row per raw row): typed contract columns, extras, raw shadows, row JSON."""
    present = set(raw.columns)
    extras = [c for c in raw.columns if c not in spec.column_names and c not in (CORRUPT, SOURCE_FILE)]
    content_cols = [c for c in raw.columns if c not in (SOURCE_FILE,)]
    typed = []
    shadows = []
    for col, dtype in spec.columns:
        if col in present:
            typed.append(_cast(col, dtype).alias(col))
            if not isinstance(dtype, StringType):
                shadows.append(F.col(f"`{col}`").alias(RAW_PREFIX + col))
        else:
            typed.append(F.lit(None).cast(dtype).alias(col))
            if not isinstance(dtype, StringType):
                shadows.append(F.lit(None).cast("string").alias(RAW_PREFIX + col))
    row_content = F.to_json(F.struct(*[F.col(f"`{c}`") for c in content_cols]), {"ignoreNullFields": "true"})
    return raw.select(
        *typed,
        *[F.col(f"`{c}`") for c in extras],
        *shadows,
        row_content.alias(ROW_CONTENT),
        F.col(CORRUPT),
        F.col(SOURCE_FILE),
    )


def extra_columns(raw_columns: list[str], spec: TableSpec) -> list[str]:
    return [c for c in raw_columns if c not in spec.column_names and c not in (CORRUPT, SOURCE_FILE)]


def flag_rows(checked: DataFrame, row_checks: list[RowCheck], group_checks: list[GroupCheck]) -> DataFrame:
    """Checked frame + ``_reason``: every failing row-level rule; then, among rows passing those,
    group rules (duplicate key, one value per key, overlapping spans). Same grain as ``checked``.

    Group windows are partitioned by the key *and* whether the row passed the row rules, so a
    broken row never makes a good one a duplicate; the input is scanned once."""
    errors = [c for c in row_checks if c.severity == "row"]
    reasons = (
        F.array_compact(F.array(*[F.when(c.fails, c.reason) for c in errors]))
        if errors
        else F.array().cast("array<string>")
    )
    df = checked.withColumn(REASONS, reasons).withColumn(CLEAN, F.size(REASONS) == 0)
    unique_key = next((c.params["key"] for c in group_checks if c.kind == "unique_key"), None)
    for check in group_checks:
        df = _apply_group(df, check, unique_key=unique_key)
    return df.withColumn(REASON, F.when(F.size(REASONS) > 0, F.concat_ws("; ", REASONS))).drop(REASONS, CLEAN)


def _add_reason(df: DataFrame, fails, reason) -> DataFrame:
    hit = F.col(CLEAN) & F.coalesce(fails, F.lit(False))
    return df.withColumn(REASONS, F.when(hit, F.concat(REASONS, F.array(reason))).otherwise(F.col(REASONS)))


def _apply_group(df: DataFrame, check: GroupCheck, *, unique_key: list[str] | None = None) -> DataFrame:
    """Add ``check``'s reason to the failing clean rows. ``unique_key``: the table's unique_key
    columns, if it has that check (see one_value_per_key below)."""
    p = check.params
    key = [F.col(CLEAN)] + [F.col(f"`{k}`") for k in p.get("key", [])]
    if check.kind == "unique_key":
        # Deterministic: of rows sharing a key, the first by source file, then row text, is kept.
        w = Window.partitionBy(*key).orderBy(F.col(SOURCE_FILE), F.col(ROW_CONTENT))
        values = F.concat_ws(", ", *[F.coalesce(F.col(f"`{k}`").cast("string"), F.lit("null")) for k in p["key"]])
        df = df.withColumn("_rn", F.row_number().over(w))
        return _add_reason(df, F.col("_rn") > 1, F.concat(F.lit(check.reason + ": "), values)).drop("_rn")
    if check.kind == "one_value_per_key":
        w = Window.partitionBy(*key)
        if unique_key and unique_key[: len(p["key"])] == p["key"]:
            # The set is order-free, so this window takes the unique_key window's full sort order
            # (rest of that key, source file, row text): Spark then sorts the wide rows once for
            # both windows instead of twice (medical lines at 10M: BENCHMARKS.md, 2026-11-25 (b)).
            rest = [F.col(f"`{k}`") for k in unique_key[len(p["key"]) :]]
            w = w.orderBy(*rest, F.col(SOURCE_FILE), F.col(ROW_CONTENT)).rowsBetween(
                Window.unboundedPreceding, Window.unboundedFollowing
            )
        n = F.size(F.collect_set(F.col(f"`{p['column']}`")).over(w))
        df = df.withColumn("_n_values", n)
        return _add_reason(df, F.col("_n_values") > 1, F.lit(check.reason)).drop("_n_values")
    if check.kind == "no_overlapping_spans":
        start, end = F.col(f"`{p['start']}`"), F.col(f"`{p['end']}`")
        w = Window.partitionBy(*key).orderBy(start, end).rowsBetween(Window.unboundedPreceding, -1)
        df = df.withColumn("_prev_end", F.max(end).over(w))
        head, _, tail = check.reason.partition("{value}")
        text = F.concat(F.lit(head), F.col("_prev_end").cast("string"), F.lit(tail)) if _ else F.lit(head)
        return _add_reason(df, F.col("_prev_end") >= start, text).drop("_prev_end")
    raise ValueError(f"unknown group check kind {check.kind!r}")


def accepted_rows(flagged: DataFrame, spec: TableSpec, extras: list[str]) -> DataFrame:
    """Accepted rows, typed per the contract (grain of the input table), unknown columns kept."""
    return flagged.filter(F.col(REASON).isNull()).select(*spec.column_names, *[f"`{c}`" for c in extras])


def quarantine_rows(flagged: DataFrame, table: str) -> DataFrame:
    """One row per rejected input row: table, row_content (JSON of the raw row), reason, source_file."""
    return flagged.filter(F.col(REASON).isNotNull()).select(
        F.lit(table).alias("table"),
        F.col(ROW_CONTENT).alias("row_content"),
        F.col(REASON).alias("reason"),
        F.col(SOURCE_FILE).alias("source_file"),
    )


def table_counts(flagged: DataFrame, warning_checks: list[RowCheck]) -> dict:
    """One aggregate pass: rows read, quarantined, and the failing count of each warning rule."""
    aggs = [F.count(F.lit(1)).alias("read"), F.sum(F.col(REASON).isNotNull().cast("long")).alias("quarantined")]
    aggs += [F.sum(c.fails.cast("long")).alias(f"w{i}") for i, c in enumerate(warning_checks)]
    row = flagged.agg(*aggs).first()
    read = int(row["read"] or 0)
    quarantined = int(row["quarantined"] or 0)
    warn = [int(row[f"w{i}"] or 0) for i in range(len(warning_checks))]
    return {"read": read, "accepted": read - quarantined, "quarantined": quarantined, "_warning_counts": warn}
