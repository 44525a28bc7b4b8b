"""Data-quality transforms used by the gate (``claimsentry.jobs.validate``): pure DataFrame functions.

Frames (all at the grain of the input table: one row per row read):

- *raw*: every column a string as read (``claimsentry.io.read_raw``), plus ``_corrupt_record`` and
  ``_source_file``; a Parquet column stored in its contract type is kept in it (``stored_typed``).
- *checked* (``type_table``): the contract columns cast to their types (absent optional columns as
  typed nulls), unknown extra columns kept as strings, ``_raw_<col>`` (the string as read) beside
  every non-string or lower-cased contract column (for a stored-typed column, its value's string:
  derived, so not stored by the gate), ``_row_text`` (every raw value, tab-joined: what
  the UTF-8 rule searches) and the two raw extras. The raw row can be rebuilt from these columns,
  so its JSON (``row_json``) is built only where it is shown or ordered by: quarantined rows and
  the copies of a repeated key. It is never written for an accepted row.
- *flagged* (``flag_rows``): checked + ``_row_id`` + ``_reason`` (null = accepted; else every failing
  rule, ``; ``-joined). The gate builds it in two steps so that the wide rows are never shuffled:
  ``flag_row_rules`` (a projection, written once) and then ``group_failures`` /
  ``apply_group_failures`` (duplicate keys, one value per key, overlapping spans) on narrow columns.
"""

from __future__ import annotations

from functools import reduce
from typing import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType

from claimsentry.expectations.suites import GroupCheck, RowCheck
from claimsentry.io import CORRUPT, SOURCE_FILE
from claimsentry.schemas import TableSpec

ROW_CONTENT = "_row_content"
ROW_TEXT = "_row_text"
REASON = "_reason"
ROW_ID = "_row_id"
GROUP_REASON = "_group_reason"
RAW_PREFIX = "_raw_"
# Up to this many rows (rows of a repeated key, keys with mixed values, rows breaking a group rule)
# are broadcast to the wide rows; more (a badly broken feed) take a shuffle join instead.
BROADCAST_ROWS = 1_000_000

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


def stored_typed(raw: DataFrame, spec: TableSpec) -> list[str]:
    """The non-string contract columns that ``raw`` holds in their contract type already (typed
    Parquet input, ``read_raw(typed=...)``). Their raw shadows are the values' strings, which is
    what reading them as strings gave: derived, so the gate does not store them
    (``with_derived_shadows`` adds them back to what it reads)."""
    types = {f.name: f.dataType for f in raw.schema.fields}
    return [c for c, t in spec.columns if not isinstance(t, StringType) and types.get(c) == t]


def _derived_shadow(col: str):
    """The raw shadow of a stored-typed column: its value as a string (what ``read_raw`` gave for it
    as text, and what it derives again on read)."""
    return F.col(f"`{col}`").cast("string")


def with_derived_shadows(frame: DataFrame, stored: list[str], order: list[str]) -> DataFrame:
    """``frame`` with the raw shadow of each stored-typed column (``stored_typed``) that it lacks,
    the value as a string, and its columns in ``order`` (the frame as the gate built it)."""
    derived = {RAW_PREFIX + c: _derived_shadow(c) for c in stored if RAW_PREFIX + c not in frame.columns}
    if not derived:
        return frame
    return frame.select(*[derived[c].alias(c) if c in derived else F.col(f"`{c}`") for c in order])


def type_table(raw: DataFrame, spec: TableSpec) -> DataFrame:
    """Checked frame (one row per raw row): typed contract columns, extras, raw shadows, row text.
    A column ``raw`` holds in its contract type already is taken as it is (``stored_typed``)."""
    present = set(raw.columns)
    extras = [c for c in raw.columns if c not in spec.column_names and c not in (CORRUPT, SOURCE_FILE)]
    stored = set(stored_typed(raw, spec))
    typed = []
    shadows = []
    for col, dtype in spec.columns:
        shadowed = not isinstance(dtype, StringType) or col in ENUM_COLUMNS
        if col in stored:
            typed.append(F.col(f"`{col}`").alias(col))
            shadows.append(_derived_shadow(col).alias(RAW_PREFIX + col))
        elif col in present:
            typed.append(_cast(col, dtype).alias(col))
            if shadowed:
                shadows.append(F.col(f"`{col}`").alias(RAW_PREFIX + col))
        else:
            typed.append(F.lit(None).cast(dtype).alias(col))
            if shadowed:
                shadows.append(F.lit(None).cast("string").alias(RAW_PREFIX + col))
    checked = raw.select(*typed, *[F.col(f"`{c}`") for c in extras], *shadows, F.col(CORRUPT), F.col(SOURCE_FILE))
    return checked.withColumn(ROW_TEXT, row_text(checked.columns))


def _as_read(columns: list[str]) -> list:
    """The row as read, from a checked (or flagged) frame's ``columns``: every contract column
    (its raw shadow where the gate typed or lower-cased it), the unknown extras and
    ``_corrupt_record``, named as in the input. Absent optional columns are null."""
    internal = {SOURCE_FILE, ROW_ID, REASON, ROW_TEXT, GROUP_REASON}
    row = [c for c in columns if not c.startswith(RAW_PREFIX) and c not in internal]
    return [F.col(f"`{RAW_PREFIX + c}`" if RAW_PREFIX + c in columns else f"`{c}`").alias(c) for c in row]


def row_text(columns: list[str]):
    """Every value of the row as read, tab-joined (what the UTF-8 rule searches; cheap to build)."""
    return F.concat_ws("\t", *_as_read(columns))


def row_json(columns: list[str]):
    """The row as read, as JSON with its null fields left out: quarantine's ``row_content``."""
    return F.to_json(F.struct(*_as_read(columns)), {"ignoreNullFields": "true"})


def extra_columns(raw_columns: list[str], spec: TableSpec) -> list[str]:
    return [c for c in raw_columns if c not in spec.column_names and c not in (CORRUPT, SOURCE_FILE)]


def flag_row_rules(checked: DataFrame, row_checks: list[RowCheck]) -> DataFrame:
    """Checked frame + ``_row_id`` (unique within one evaluation of the frame: materialise it before
    joining on it) + ``_reason``: every failing row-level rule, ``; ``-joined in suite order (null =
    passes them). A projection: no shuffle, no sort, one pass over the input."""
    errors = [c for c in row_checks if c.severity == "row"]
    # concat_ws skips the nulls of passing rules; no failing rule leaves "" -> null.
    reason = (
        F.nullif(F.concat_ws("; ", *[F.when(c.fails, c.reason) for c in errors]), F.lit(""))
        if errors
        else F.lit(None).cast("string")
    )
    kept = [F.col(f"`{c}`") for c in checked.columns if c != ROW_TEXT]  # rebuilt where needed, never written
    return checked.select(*kept, F.monotonically_increasing_id().alias(ROW_ID), reason.alias(REASON))


def group_failures(
    rows: DataFrame,
    group_checks: list[GroupCheck],
    *,
    cache: Callable[[DataFrame], DataFrame] = lambda df: df,
    broadcast_rows: int = BROADCAST_ROWS,
) -> DataFrame | None:
    """One row per ``_row_id`` of ``rows`` (``flag_row_rules`` output, materialised) that passes the
    row rules but breaks a group rule: ``_group_reason``, every group rule it breaks in suite order.
    None when no row can break one (the table has no group rules, or no key repeats, no key has
    mixed values and no span overlaps).

    Only narrow columns (keys, the checked column, ``_row_id``) are shuffled; the wide rows never
    are. The row text is read only for rows whose key is duplicated, to pick the copy that is kept.
    Group rules see only rows passing the row rules, so a broken row never makes a good one a
    duplicate. ``cache`` persists the small intermediate frames that are counted and then joined."""
    if not group_checks:
        return None
    clean = rows.where(F.col(REASON).isNull())
    parts = [
        (i, part)
        for i, check in enumerate(group_checks)
        if (part := _group_check_failures(clean, check, cache=cache, broadcast_rows=broadcast_rows)) is not None
    ]
    if not parts:
        return None
    failures = reduce(DataFrame.unionByName, [p.select(ROW_ID, F.lit(i).alias("_check"), "_text") for i, p in parts])
    in_order = F.array_sort(F.collect_list(F.struct("_check", "_text")))
    return failures.groupBy(ROW_ID).agg(F.concat_ws("; ", in_order["_text"]).alias(GROUP_REASON))


def apply_group_failures(
    rows: DataFrame,
    failures: DataFrame | None,
    *,
    cache: Callable[[DataFrame], DataFrame] = lambda df: df,
    broadcast_rows: int = BROADCAST_ROWS,
) -> DataFrame:
    """``rows`` with the group reasons of ``failures`` (``group_failures``) in ``_reason``. When no row
    breaks a group rule (the usual feed) ``rows`` is returned as it is; when up to ``broadcast_rows``
    do, their reasons are broadcast, so the wide rows are still not shuffled."""
    if failures is None:
        return rows
    failures, n = _smaller_side(failures, cache, broadcast_rows)
    if n == 0:
        return rows
    joined = rows.join(failures, ROW_ID, "left")
    return joined.withColumn(REASON, F.coalesce(F.col(REASON), F.col(GROUP_REASON))).drop(GROUP_REASON)


def flag_rows(checked: DataFrame, row_checks: list[RowCheck], group_checks: list[GroupCheck]) -> DataFrame:
    """Checked frame + ``_row_id`` + ``_reason`` (null = accepted; else every failing row rule, or
    else every failing group rule). The gate materialises ``flag_row_rules`` before the group rules
    read it (``jobs.validate.run_gate``); this composition is for small frames."""
    rows = flag_row_rules(checked, row_checks)
    return apply_group_failures(rows, group_failures(rows, group_checks))


def _smaller_side(frame: DataFrame, cache, broadcast_rows: int) -> tuple[DataFrame, int]:
    """``frame`` persisted and counted, marked for broadcast when it has at most ``broadcast_rows`` rows."""
    frame = cache(frame)
    n = frame.count()
    return (F.broadcast(frame) if n <= broadcast_rows else frame), n


def _group_check_failures(clean: DataFrame, check: GroupCheck, *, cache, broadcast_rows: int) -> DataFrame | None:
    """(``_row_id``, ``_text``) of the clean rows breaking ``check``; None when none can."""
    p = check.params
    key = [F.col(f"`{k}`") for k in p.get("key", [])]
    if check.kind == "unique_key":
        # Rows whose key is repeated, found on (key, row id) alone.
        repeated = clean.select(*key, ROW_ID).withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy(*key)))
        repeated, n = _smaller_side(repeated.where("_n > 1").drop("_n"), cache, broadcast_rows)
        if n == 0:
            return None
        # Deterministic: of rows sharing a key, the first by source file, then row text, is kept
        # (the row id only orders byte-identical copies, where either choice gives the same output).
        copies = clean.join(repeated, ROW_ID, "left_semi")  # only the copies of a repeated key
        copies = copies.select(ROW_ID, *key, SOURCE_FILE, row_json(clean.columns).alias(ROW_CONTENT))
        w = Window.partitionBy(*key).orderBy(F.col(SOURCE_FILE), F.col(ROW_CONTENT), F.col(ROW_ID))
        values = F.concat_ws(", ", *[F.coalesce(F.col(f"`{k}`").cast("string"), F.lit("null")) for k in p["key"]])
        ranked = copies.select(ROW_ID, F.row_number().over(w).alias("_rn"), F.concat(F.lit(check.reason + ": "), values).alias("_text"))
        return ranked.where("_rn > 1").drop("_rn")
    if check.kind == "one_value_per_key":
        mixed = clean.groupBy(*key).agg(F.countDistinct(F.col(f"`{p['column']}`")).alias("_n")).where("_n > 1").drop("_n")
        mixed, n = _smaller_side(mixed, cache, broadcast_rows)
        if n == 0:
            return None
        return clean.select(*key, ROW_ID).join(mixed, p["key"], "left_semi").select(ROW_ID, F.lit(check.reason).alias("_text"))
    if check.kind == "no_overlapping_spans":
        start, end = F.col(f"`{p['start']}`"), F.col(f"`{p['end']}`")
        w = Window.partitionBy(*key).orderBy(start, end).rowsBetween(Window.unboundedPreceding, -1)
        spans = clean.select(ROW_ID, start.alias("_start"), F.max(end).over(w).alias("_prev_end"))
        head, _, tail = check.reason.partition("{value}")
        text = F.concat(F.lit(head), F.col("_prev_end").cast("string"), F.lit(tail)) if _ else F.lit(head)
        return spans.where(F.col("_prev_end") >= F.col("_start")).select(ROW_ID, text.alias("_text"))
    raise ValueError(f"unknown group check kind {check.kind!r}")


def accepted_rows(flagged: DataFrame, spec: TableSpec, extras: list[str]) -> DataFrame:
    """Accepted rows, typed per the contract (grain of the input table), unknown columns kept."""
    return flagged.filter(F.col(REASON).isNull()).select(*spec.column_names, *[f"`{c}`" for c in extras])


def quarantine_rows(flagged: DataFrame, table: str) -> DataFrame:
    """One row per rejected input row: table, row_content (JSON of the raw row), reason, source_file."""
    return flagged.filter(F.col(REASON).isNotNull()).select(
        F.lit(table).alias("table"),
        row_json(flagged.columns).alias("row_content"),
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
