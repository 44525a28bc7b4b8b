"""Reading the contract's input tables and writing run directories atomically.

Input tables are read *raw*: every column as a string, exactly as it stood in the file, plus
``_corrupt_record`` (a CSV line whose field count does not match the header) and ``_source_file``.
Typing is the data-quality gate's job (``claimsentry.jobs.validate``), because a value that does not
cast must become a quarantine row with a reason, not a silent null.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructField, StructType
from pyspark.errors import AnalysisException

from claimsentry.errors import InputError
from claimsentry.schemas import COLUMN_ALIASES

CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"


def is_uri(path: str) -> bool:
    """An object-store (or other non-local) path: not listed or stat-ed from this process."""
    return "://" in str(path) and not str(path).startswith("file://")


def _local(path: str) -> Path:
    return Path(path[len("file://"):] if path.startswith("file://") else path)


def locate_table(input_dir: str, name: str) -> tuple[str, str] | None:
    """Find ``name`` in ``input_dir``: ``name.csv``, ``name.csv.gz``, ``name.parquet`` or a folder
    ``name/`` of Parquet or CSV part files. Returns (path, format) or None."""
    if is_uri(input_dir):  # object stores: trust the caller's layout, Parquet folder first
        return f"{input_dir.rstrip('/')}/{name}", "parquet"
    base = _local(input_dir)
    for suffix, fmt in ((".parquet", "parquet"), (".csv", "csv"), (".csv.gz", "csv")):
        p = base / f"{name}{suffix}"
        if p.is_file() or (p.is_dir() and fmt == "parquet"):
            return str(p), fmt
    folder = base / name
    if folder.is_dir():
        files = [f for f in folder.iterdir() if not f.name.startswith((".", "_"))]
        if any(f.suffix == ".parquet" for f in files):
            return str(folder), "parquet"
        if any(f.name.endswith((".csv", ".csv.gz")) for f in files):
            return str(folder), "csv"
        raise InputError(f"{name}: folder {folder} holds no .parquet or .csv part files")
    return None


def _normalise_name(col: str) -> str:
    return col.replace("\ufeff", "").strip().lower()


def _csv_header(spark: SparkSession, path: str, name: str) -> list[str]:
    local = None if is_uri(path) else _local(path)
    if local is not None and local.is_file() and local.stat().st_size == 0:
        raise InputError(f"{name}: {local.name} is an empty file (not even a header row)")
    try:
        header = spark.read.option("header", True).option("encoding", "UTF-8").csv(path).columns
    except AnalysisException as exc:
        raise InputError(f"{name}: cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not header:
        raise InputError(f"{name}: {path} has no header row")
    return header


def read_raw(
    spark: SparkSession,
    input_dir: str,
    name: str,
    *,
    required: bool = True,
    typed: Mapping[str, DataType] | None = None,
) -> DataFrame | None:
    """One input table as strings, column names lower-cased, with ``_corrupt_record`` and ``_source_file``.

    ``typed``: contract types by column. A Parquet column stored in its contract type (a date as a
    date, an amount as a double) is returned as it is: there is nothing to parse, and its string
    would only be cast back. Every other column is a string, trimmed, blank as null.

    Returns None when the table is absent and not required; raises ``InputError`` (one line) when a
    required table is absent or unreadable.
    """
    if not is_uri(input_dir) and not _local(input_dir).is_dir():
        raise InputError(f"input directory not found: {input_dir}")
    found = locate_table(input_dir, name)
    if found is None:
        if required:
            raise InputError(f"{name}: no {name}.csv, {name}.parquet or {name}/ in {input_dir}")
        return None
    path, fmt = found
    aliases = COLUMN_ALIASES.get(name, {})
    try:
        if fmt == "csv":
            header = _csv_header(spark, path, name)
            names = [_normalise_name(c) for c in header]
            schema = StructType(
                [StructField(f"_c{i}", StringType()) for i in range(len(names))]
                + [StructField(CORRUPT, StringType())]
            )
            df = (
                spark.read.schema(schema)
                .option("header", True)
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT)
                .option("encoding", "UTF-8")
                .option("escape", '"')
                .csv(path)
            )
            df = df.select(
                *[F.col(f"_c{i}").alias(n) for i, n in enumerate(names)], F.col(CORRUPT)
            )
        else:
            df = spark.read.parquet(path)
            stored = {f.name: f.dataType for f in df.schema.fields}
            kept = {c for c in df.columns if typed and typed.get(_normalise_name(c)) == stored[c]}
            df = df.select(
                *[
                    (F.col(f"`{c}`") if c in kept else F.col(f"`{c}`").cast("string")).alias(_normalise_name(c))
                    for c in df.columns
                ]
            ).withColumn(CORRUPT, F.lit(None).cast("string"))
    except AnalysisException as exc:
        raise InputError(f"{name}: cannot read {path}: {str(exc).splitlines()[0]}") from None
    for old, new in aliases.items():
        if old in df.columns and new not in df.columns:
            df = df.withColumnRenamed(old, new)
    # Blank strings are missing values, as in every claims feed.
    strings = {c for c, t in df.dtypes if t == "string" and c != CORRUPT}
    df = df.select(
        *[
            F.when(F.trim(F.col(f"`{c}`")) == "", None).otherwise(F.trim(F.col(f"`{c}`"))).alias(c)
            if c in strings
            else F.col(f"`{c}`")
            for c in df.columns
        ]
    )
    return df.withColumn(SOURCE_FILE, F.input_file_name())


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Write a whole directory or nothing.

    Yields a fresh staging folder beside ``final``; on success the old ``final`` (if any) is swapped
    out and the staging folder renamed into place, so readers never see a half-written run. On any
    exception the staging folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    staging = final.parent / f".{final.name}.staging-{token}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{token}"
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def write_csv_for_spreadsheets(pdf, path: str | os.PathLike) -> None:
    """CSV that spreadsheets open correctly: UTF-8 with BOM, ISO dates. For bounded outputs (queues)."""
    pdf.to_csv(path, index=False, encoding="utf-8-sig", date_format="%Y-%m-%d")
