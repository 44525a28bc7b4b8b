"""Reading the contract's input tables and writing run directories atomically.

Input tables are read *raw*: every column as a string, exactly as it stood in the file, plus
``_corrupt_record`` (a CSV line whose field count does not match the header) and ``_source_file``.
Typing is the data-quality gate's job (``claimsentry.jobs.validate``), because a value that does not
cast must become a quarantine row with a reason, not a silent null.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import re
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

log = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"
# OWASP CSV injection: a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


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


def _lock_folder(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on folder ``path``; None when another live
    process holds it or the folder is gone. The lock dies with its process, even a killed one.
    Raises OSError where the file system has no locks (e.g. NFS without its lock service)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    except OSError:
        os.close(fd)
        raise
    os.close(fd)  # held by a live run, or removed (and maybe re-made) while we opened it
    return None


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Remove what killed writers of ``final`` left beside it; returns the removed folders.

    A live ``atomic_dir`` holds its staging folder locked, so only the folders of dead runs are
    taken: their ``.<name>.staging-*`` (a partial output, for a score run a typed copy of its whole
    input) and ``.<name>.old-*`` (the output they were replacing). A run killed between its two
    renames left no ``final`` but its ``old``: that previous output is put back, not removed.
    """
    final = Path(final)
    prefix = glob.escape(f".{final.name}.")
    removed = []
    for staging in sorted(final.parent.glob(f"{prefix}staging-*")):
        try:
            fd = _lock_folder(staging)
        except OSError as exc:  # live and dead runs cannot be told apart: leave them all
            log.warning("cannot lock %s (%s): folders left by killed runs are not removed", staging, exc)
            return removed
        if fd is None:
            continue
        try:
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
        finally:
            os.close(fd)
    for old in sorted(final.parent.glob(f"{prefix}old-*")):
        token = old.name.rsplit("-", 1)[-1]
        if (final.parent / f".{final.name}.staging-{token}").exists():
            continue  # its run is alive: between its two renames
        if not final.exists():
            old.rename(final)
            log.warning("restored %s from %s, left by a killed run", final, old.name)
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    if removed:
        log.warning("removed %d folder(s) left beside %s by killed runs: %s", len(removed), final,
                    ", ".join(p.name for p in removed))
    return removed


def _new_staging(final: Path) -> tuple[Path, int | None]:
    """A fresh staging folder beside ``final``, locked by this process (see ``remove_stale_staging``);
    unlocked (None) where the file system has no locks."""
    for _ in range(5):  # another run's cleanup may take a folder between its mkdir and its lock
        staging = final.parent / f".{final.name}.staging-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            fd = _lock_folder(staging)
        except OSError:
            return staging, None  # remove_stale_staging cannot lock it either, so leaves it alone
        if fd is not None:
            return staging, fd
    raise RuntimeError(f"could not lock a staging folder beside {final}")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Write a whole directory or nothing.

    Yields a fresh staging folder beside ``final``; on success the old ``final`` (if any) is swapped
    out and the staging folder renamed into place, so readers never see a half-written run. On any
    exception the staging folder is removed and ``final`` is left as it was. A killed process cannot
    clean up: the next writer of ``final`` removes what it left (``remove_stale_staging``), while
    the staging folder of a live writer, locked for the whole write, is never touched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(final)
    staging, lock = _new_staging(final)
    token = staging.name.rsplit("-", 1)[-1]
    try:
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
    finally:
        if lock is not None:
            os.close(lock)


def neutralise_formulas(pdf):
    """A copy of ``pdf`` (same grain) that a spreadsheet shows as text, never runs (OWASP CSV
    injection): a text cell or column name starting with ``= + - @``, tab or carriage return gets a
    leading single quote. Numeric columns, and text that is a plain number (``-12.5``), stay as
    they are."""

    def cell(value):
        if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
            return "'" + value
        return value

    out = pdf.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) == "string":
            out[col] = out[col].map(cell)
    out.columns = [cell(c) for c in out.columns]
    return out


def write_csv_for_spreadsheets(pdf, path: str | os.PathLike) -> None:
    """CSV that spreadsheets open correctly and safely: UTF-8 with BOM, ISO dates, no cell that
    starts a formula (``neutralise_formulas``), CRLF line ends (RFC 4180: a cell holding a line
    break, even a lone carriage return, is then quoted and cannot split its row). For bounded
    outputs (queues, rejected rows)."""
    neutralise_formulas(pdf).to_csv(
        path, index=False, encoding="utf-8-sig", date_format="%Y-%m-%d", lineterminator="\r\n"
    )


def read_user_csv(path: str | os.PathLike, what: str, *, utf8_hint: str = ""):
    """A small CSV a person wrote or saved (dispositions, case events, an audit sample): every cell
    a string as typed (no NA guessing), UTF-8 with or without BOM, file order. Grain: one row per
    data line. Each way it cannot be read is one ``InputError`` line naming ``what`` ("feedback
    file", ...) and the path; ``utf8_hint`` is added to the not-UTF-8 message."""
    import pandas as pd

    from claimsentry.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8{utf8_hint}: {path}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} is empty: {path}") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{what} is not a readable CSV ({str(exc).splitlines()[0]}): {path}") from None
