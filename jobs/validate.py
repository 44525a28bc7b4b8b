"""``claimsentry validate``: the data-quality gate.

Extract: each contract table read raw (strings, ``claimsentry.io.read_raw``; Parquet columns already
in their contract type as they are). Transform: type it,
check every row against the table's suite (``expectations/<table>.json``, translated to Spark
predicates by ``claimsentry.expectations.suites``) and split into accepted rows and quarantine rows.
Load (``write_gate_artifacts``): quarantine Parquet, GE validation results JSON and Data Docs HTML.

Severity levels:
- a row that breaks a row rule goes to ``quarantine`` with every failing rule named;
- a table-level break (table unreadable or blank, required column missing, no data rows, quarantined
  share above ``validation.max_error_rate``, fewer accepted rows than ``validation.min_rows.<table>``)
  raises ``GateFailed`` (one line) before anything is written;
- warnings (unknown extra columns, mostly-empty optional columns, payment dates after the as-of
  date) are reported, never blocking.

Counts reconcile per table: read = accepted + quarantined. Only aggregates reach the driver.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.errors import AnalysisException

from claimsentry import quality
from claimsentry.errors import GateFailed, InputError
from claimsentry.expectations import suites
from claimsentry.io import atomic_dir, is_uri, locate_table, read_raw
from claimsentry.schemas import ALL_TABLES
from claimsentry.spark import session_conf

log = logging.getLogger(__name__)

REQUIRED_TABLES = ("medical_claim", "eligibility")
OPTIONAL_TABLES = ("pharmacy_claim", "labels", "provider_labels", "provider")
QUARANTINE_SCHEMA = T.StructType([T.StructField(c, T.StringType()) for c in quality.QUARANTINE_COLUMNS])


@dataclass
class GateResult:
    """The gate's output. ``tables``: accepted rows per table, typed per ``claimsentry.schemas``
    (None when an optional table is absent). ``quarantine``: one row per rejected input row.
    ``checked``: per table, every row read, typed, before the split (what GE validates)."""

    tables: dict[str, DataFrame | None]
    quarantine: DataFrame
    counts: dict[str, dict[str, int]]
    warnings: list[str]
    missing_tables: list[str]
    as_of: dt.date
    checked: dict[str, DataFrame] = field(default_factory=dict)
    cached: list[DataFrame] = field(default_factory=list)
    # With a checkpoint dir: each table's part files, sorted, so that a GE sample can read a few
    # of them instead of the whole table (``ge_frame``).
    parts: dict[str, list[str]] = field(default_factory=dict)
    # Per table, the columns the input stored in their contract type: their raw shadows are not in
    # the part files (``quality.with_derived_shadows``).
    stored: dict[str, list[str]] = field(default_factory=dict)

    def ge_frame(self, name: str, max_rows: int | None) -> tuple[DataFrame, bool]:
        """What GE validates for ``name``: its checked rows, or above ``max_rows`` rows
        (``validation.ge_max_rows``) a deterministic ~``max_rows`` sample, and whether it is one.

        With a checkpoint the sample reads only some of its part files, evenly spaced through the
        sorted list, and hashes rows within them (``ge_sample``): its cost stays flat as the table
        grows (at 10M lines a full read for the sample was most of the GE report's 95 s)."""
        df, rows = self.checked[name], self.counts.get(name, {}).get("read", 0)
        parts = self.parts.get(name) or []
        if not max_rows or rows <= max_rows or len(parts) < 2:
            return ge_sample(df, rows, max_rows)
        k = min(len(parts), math.ceil(len(parts) * max_rows / rows))
        chosen = [parts[i * len(parts) // k] for i in range(k)]
        # Checked rows are every row read, whatever its reason: the part files alone give them.
        subset = df.sparkSession.read.parquet(*chosen)
        order = [c for c in df.columns if c != quality.ROW_TEXT]
        subset = _checked_view(quality.with_derived_shadows(subset, self.stored.get(name, []), order))
        sample, _ = ge_sample(subset, rows * k // len(parts), max_rows)
        return sample, True

    def release(self) -> None:
        """Drop the gate's persisted frames from Spark's cache (with a checkpoint dir, only the small
        group-rule frames are persisted)."""
        for frame in self.cached:
            frame.unpersist()
        self.cached.clear()


# --- Extract --------------------------------------------------------------------------------------


def _read_table(spark: SparkSession, input_dir: str, name: str, *, required: bool, path: str | None = None):
    """Raw frame, or None when an optional table is absent. Unreadable present tables are breaks."""
    folder, table_name = input_dir, name
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise InputError(f"{name}: file not found: {path}")
        stem = p.name
        for suffix in (".csv.gz", ".csv", ".parquet"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        if p.is_dir() and locate_table(str(p), name) is not None:
            folder = str(p)
        else:
            folder, table_name = str(p.parent), stem
        required = True
    elif not Path(input_dir).is_dir() and "://" not in input_dir:
        raise InputError(f"input directory not found: {input_dir}")
    if locate_table(folder, table_name) is None:
        if required:
            raise InputError(f"{name}: no {name}.csv, {name}.parquet or {name}/ in {input_dir}")
        return None
    try:
        return read_raw(spark, folder, table_name, required=True, typed=dict(ALL_TABLES[name].columns))
    except InputError as err:  # present but unusable: a table-level break
        raise GateFailed(str(err) if str(err).startswith(name) else f"{name}: {err}") from None
    except Exception as exc:  # noqa: BLE001 - a file Spark cannot decode must still be one line
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise GateFailed(f"{name}: cannot read the table: {first}") from None


# --- Transform ------------------------------------------------------------------------------------


@dataclass
class TableCheck:
    """One table's gate plan (``check_table``). ``ruled``: the checked rows with ``_row_id`` and the
    row rules' ``_reason`` (one projection of the input: materialise it once); ``group_checks`` run
    on it afterwards (``quality.group_failures``)."""

    ruled: DataFrame
    group_checks: list
    warning_checks: list
    warnings: list[str]
    stored: list[str] = field(default_factory=list)  # quality.stored_typed: shadows derived, not stored


def check_table(
    raw: DataFrame, name: str, *, as_of: dt.date, npi_stand_in_sources: tuple[str, ...] = ()
) -> TableCheck:
    """The gate plan for one table (see ``claimsentry.quality``): row rules, group rules, warning
    checks and the schema-level warnings. Raises GateFailed when a required column is missing.

    ``npi_stand_in_sources``: ``data_source`` values whose provider ids are declared stand-ins, not
    NPIs (DE-SynPUF carries CMS certification numbers): the NPI check-digit rules skip those rows."""
    spec = ALL_TABLES[name]
    suite = suites.load_suite(name)
    # Names are lower-cased on read, so Parquet columns "Payer" and "payer" collide. (Spark itself
    # renames a name repeated in a CSV header, payer -> payer<i>: those arrive as unknown columns.)
    seen: set[str] = set()
    doubled = sorted({c for c in raw.columns if c in seen or seen.add(c)})
    if doubled:
        raise GateFailed(f"{name}: column name{'s' if len(doubled) > 1 else ''} repeated: {', '.join(doubled)}")
    missing = [c for c in suites.required_columns(suite) if c not in raw.columns]
    if missing:
        raise GateFailed(f"{name}: required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}")
    warnings = []
    extras = quality.extra_columns(raw.columns, spec)
    if extras:
        shown = ", ".join(extras[:10]) + (" ..." if len(extras) > 10 else "")
        warnings.append(f"{name}: {len(extras)} unknown column(s) kept and ignored: {shown}")
    checked = quality.type_table(raw, spec)
    row_checks, group_checks = suites.compile_checks(
        suite, checked.columns, as_of=as_of, npi_stand_in_sources=npi_stand_in_sources
    )
    if npi_stand_in_sources and any(c.rule == "npi_luhn" for c in row_checks):
        warnings.append(
            f"{name}: NPI check digits not checked for data_source {', '.join(npi_stand_in_sources)} "
            "(declared provider-id stand-ins, validation.npi_stand_in_sources)"
        )
    return TableCheck(
        quality.flag_row_rules(checked, row_checks),
        group_checks,
        [c for c in row_checks if c.severity == "warning"],
        warnings,
        quality.stored_typed(raw, spec),
    )


def run_gate(
    spark: SparkSession,
    input_dir: str,
    settings,
    *,
    as_of: dt.date,
    checkpoint_dir: str | os.PathLike | None = None,
    reuse_checkpoint: bool = False,
    labels_path: str | None = None,
    provider_labels_path: str | None = None,
) -> GateResult:
    """Validate every contract table in ``input_dir``. Raises GateFailed/InputError (one line) on a
    table-level break, before anything is written. With ``checkpoint_dir``, each table's checked
    rows and their rule failures are written there once as Parquet (``<table>/``) and every
    result frame reads that copy; without it they are persisted in Spark's cache.

    ``reuse_checkpoint``: ``checkpoint_dir`` already holds that copy, written by an earlier gate of
    the same input (``reusable_gate`` decides): it is read instead of checking every row again.
    The group rules, counts, breaks and the split below run on it exactly as on a fresh copy."""
    max_error_rate = float(settings.get("validation.max_error_rate", 0.25))
    explicit = {"labels": labels_path, "provider_labels": provider_labels_path}
    raws: dict[str, DataFrame | None] = {}
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        raws[name] = _read_table(
            spark, str(input_dir), name, required=name in REQUIRED_TABLES, path=explicit.get(name)
        )
    missing_tables = [n for n, df in raws.items() if df is None]

    plans: dict[str, TableCheck] = {}
    warnings: list[str] = []
    for name, raw in raws.items():
        if raw is None:
            continue
        plans[name] = check_table(
            raw, name, as_of=as_of, npi_stand_in_sources=tuple(settings.get("validation.npi_stand_in_sources") or ())
        )
        warnings += plans[name].warnings
    warning_checks = {name: plan.warning_checks for name, plan in plans.items()}

    # One pass over each input: the typed rows with every failing row rule are materialised once,
    # as Parquet in ``checkpoint_dir`` or else persisted, with no shuffle. Group rules (duplicate
    # keys, one claim_type per claim, overlapping spans) then read narrow columns of that copy, and
    # the few rows breaking them are joined back by row id. Counts, accepted rows, quarantine and
    # the GE validation all read the copy instead of re-reading and re-checking the raw input.
    base = Path(checkpoint_dir) if checkpoint_dir is not None else None
    flagged: dict[str, DataFrame] = {}
    checked: dict[str, DataFrame] = {}
    cached: list[DataFrame] = []

    def cache(df: DataFrame) -> DataFrame:
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return cached[-1]

    parts: dict[str, list[str]] = {}
    for name, plan in plans.items():
        if reuse_checkpoint and base is not None:
            rows = quality.with_derived_shadows(spark.read.parquet(str(base / name)), plan.stored, plan.ruled.columns)
        else:
            rows = _materialise(spark, plan.ruled, name, None if base is None else base / name, stored=plan.stored)
        if base is None:
            cached.append(rows)
        else:
            parts[name] = sorted(rows.inputFiles())
        failures = quality.group_failures(rows, plan.group_checks, cache=cache)
        flagged[name] = quality.apply_group_failures(rows, failures, cache=cache)
        checked[name] = _checked_view(flagged[name])

    counts: dict[str, dict[str, int]] = {}
    for name, frame in flagged.items():
        c = quality.table_counts(frame, warning_checks[name])
        for check, n in zip(warning_checks[name], c.pop("_warning_counts")):
            if c["read"] and n / c["read"] > 1.0 - check.mostly + 1e-12:
                warnings.append(f"{name}: {n} of {c['read']} rows: {check.text}")
        counts[name] = c
        _table_breaks(name, c, settings, max_error_rate)

    extras = {n: quality.extra_columns(raws[n].columns, ALL_TABLES[n]) for n in flagged}
    tables: dict[str, DataFrame | None] = {
        n: (quality.accepted_rows(flagged[n], ALL_TABLES[n], extras[n]) if n in flagged else None) for n in raws
    }
    quarantine = spark.createDataFrame([], QUARANTINE_SCHEMA)
    for n, f in flagged.items():
        quarantine = quarantine.unionByName(quality.quarantine_rows(f, n))
    for name, c in counts.items():
        log.info("gate %s: read %d, accepted %d, quarantined %d", name, c["read"], c["accepted"], c["quarantined"])
    stored = {name: plan.stored for name, plan in plans.items()}
    return GateResult(tables, quarantine, counts, warnings, missing_tables, as_of, checked, cached, parts, stored)


GATE_COPY = "accepted"  # in a gate dir: the checked rows, one Parquet folder per table
GATE_SUMMARY = "gate_summary.json"


def gate_fingerprint(input_dir: str, settings, as_of: dt.date) -> str | None:
    """What a gate's outcome depends on: every file under a local ``input_dir`` (relative path,
    size, modification time), the ``validation.*`` settings, the as-of date, the suites and the
    claimsentry version. None for an object-store input, which is not listed: its gate is re-run."""
    if is_uri(input_dir):
        return None
    base = Path(str(input_dir).removeprefix("file://"))
    if not base.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(settings.get("validation") or {}, sort_keys=True, default=str).encode())
    h.update(as_of.isoformat().encode())
    from claimsentry import __version__

    h.update(__version__.encode())
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        h.update(json.dumps(suites.load_suite(name), sort_keys=True).encode())
    return h.hexdigest()


def reusable_gate(gate_dir: str | os.PathLike | None, input_dir: str, settings, as_of: dt.date) -> dict | None:
    """The saved gate summary in ``gate_dir`` when that gate checked this very input (same
    ``gate_fingerprint``) and its copy of the checked rows is still there; else None (re-check)."""
    if not gate_dir or is_uri(gate_dir):
        return None
    folder = Path(gate_dir)
    try:
        saved = json.loads((folder / GATE_SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fingerprint = gate_fingerprint(input_dir, settings, as_of)
    tables = (saved.get("counts") or {}).keys()
    if not fingerprint or saved.get("fingerprint") != fingerprint or "data_quality" not in saved:
        return None
    if not tables or not all((folder / GATE_COPY / t).is_dir() for t in tables):
        return None
    return saved


def copy_gate_artifacts(gate_dir: str | os.PathLike, run_dir: str | os.PathLike) -> None:
    """The quarantine and data-quality report that a reusable gate (``reusable_gate``) wrote,
    copied into ``run_dir`` where ``write_gate_artifacts`` would have written them."""
    for name in ("quarantine", "data_quality"):
        shutil.copytree(Path(gate_dir) / name, Path(run_dir) / name)


def _checked_view(flagged: DataFrame) -> DataFrame:
    """Every row read, typed, with its row text (what GE validates): the flagged copy without the
    gate's own columns. The row text is not stored in the copy; it is rebuilt here, lazily."""
    view = flagged.drop(quality.REASON, quality.ROW_ID)
    return view.withColumn(quality.ROW_TEXT, quality.row_text(view.columns))


# The row-rule pass of a table with fewer than ``spark.sql.codegen.maxFields`` (100) columns is fused
# into one generated method: typing, and the reason text of every failing rule (41 for pharmacy_claim).
# That method is above the JVM's 8,000-byte limit for JIT compilation, and Spark's default
# hugeMethodLimit (65,535) lets it through, so it runs interpreted. At this limit Spark falls back to
# non-fused code that the JIT compiles. The pharmacy pass inside the gate, per 1.06M fills:
# 14.3-14.4 s -> 10.5-11.0 s (BENCHMARKS.md's history in git, 2026-12-03 (c)). Only around the gate's pass: set for
# the whole run, the feature plans got slower (2M run 282 -> 314 s).
ROW_PASS_HUGE_METHOD_LIMIT = "8000"


def _materialise(
    spark: SparkSession, frame: DataFrame, name: str, path: Path | None, *, stored: list[str] = ()
) -> DataFrame:
    """Compute ``frame`` once: write it to ``path`` and read it back, or persist it when there is
    no path. The raw shadows of the ``stored`` (stored-typed) columns are not written: they are the
    values' strings, derived again on read (generated Parquet: 40 of the medical copy's 189
    columns; the gate at 2M lines 96-103 s -> 86-88 s, BENCHMARKS.md's history in git, 2026-12-03 (g)). A file Spark
    cannot decode (e.g. a truncated .csv.gz) is a one-line GateFailed."""
    try:
        with session_conf(spark, {"spark.sql.codegen.hugeMethodLimit": ROW_PASS_HUGE_METHOD_LIMIT}):
            if path is None:
                frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
                frame.count()
                return frame
            frame.drop(*[quality.RAW_PREFIX + c for c in stored]).write.mode("overwrite").parquet(str(path))
        return quality.with_derived_shadows(spark.read.parquet(str(path)), list(stored), frame.columns)
    except AnalysisException:
        raise  # a plan error is a bug in a suite or in this code, not bad input
    except Exception as exc:  # noqa: BLE001 - never a traceback for unreadable input
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise GateFailed(f"{name}: cannot read the table: {first}") from None


def _table_breaks(name: str, c: dict, settings, max_error_rate: float) -> None:
    """Raise GateFailed on a table-level break found in the counts."""
    min_rows = int(settings.get(f"validation.min_rows.{name}", 0) or 0)
    if c["read"] == 0 and min_rows > 0:
        raise GateFailed(f"{name}: no data rows (header only or empty)")
    if c["read"] and c["quarantined"] / c["read"] > max_error_rate:
        raise GateFailed(
            f"{name}: {c['quarantined']} of {c['read']} rows ({c['quarantined'] / c['read']:.0%}) failed validation, "
            f"above validation.max_error_rate {max_error_rate:.0%}"
        )
    if c["accepted"] < min_rows:
        raise GateFailed(f"{name}: {c['accepted']} accepted rows, fewer than validation.min_rows.{name} = {min_rows}")


# --- GE validation and load -----------------------------------------------------------------------


def ge_sample(df: DataFrame, rows: int, max_rows: int | None) -> tuple[DataFrame, bool]:
    """``df`` itself when it has at most ``max_rows`` rows (or no limit is set), else a deterministic
    ~``max_rows`` sample chosen by a hash of each row's text as read (same input, same sample)."""
    if not max_rows or rows <= max_rows:
        return df, False
    buckets = 1_000_000
    keep = max(1, int(buckets * max_rows / rows))
    return df.where(F.pmod(F.xxhash64(F.col(quality.ROW_TEXT)), F.lit(buckets)) < keep), True


# GE validates a table of at most this many rows as one partition (see ge_validate): one task per
# metric job is quicker than a shuffle stage for that size, and leaves validation.ge_max_rows: null
# (the whole table) on every core.
GE_ONE_PARTITION_ROWS = 250_000


def ge_validate(
    frames: dict[str, tuple[DataFrame, bool]], *, as_of: dt.date
) -> tuple[dict[str, object], dict[str, bool]]:
    """Run each table's GE suite on its Spark DataFrame (ephemeral context, no progress bars).
    ``frames``: per table, what GE validates and whether it is a sample (``GateResult.ge_frame``:
    above ``validation.ge_max_rows`` rows GE validates a deterministic sample, because it runs one
    Spark job per metric). Returns GE ``ExpectationSuiteValidationResult`` per table and, per
    table, whether GE saw a sample. The row rules themselves are enforced by the gate's Spark
    predicates on every row either way; the sample only bounds the report's cost."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for logger_name in ["great_expectations", *logging.root.manager.loggerDict]:
        if logger_name.startswith("great_expectations"):
            logging.getLogger(logger_name).setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_spark("claimsentry_gate")
    results, sampled = {}, {}
    for name, (df, sampled[name]) in frames.items():
        # GE computes one Spark job per metric: read the table once, not once per metric ...
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            rows = df.count()  # ... with every core (a sample is a filter over the whole table's parts) ...
            # ... then hand GE that cached copy as one partition when it is small (a sample, or a
            # small day): a metric's aggregate then needs no shuffle stage (135 -> 93 Spark jobs for
            # the medical suite). coalesce keeps the partitions' order: the same partial_unexpected_list.
            batch_df = df.coalesce(1) if rows <= GE_ONE_PARTITION_ROWS else df
            asset = source.add_dataframe_asset(name)
            batch_def = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
            batch = batch_def.get_batch(batch_parameters={"dataframe": batch_df})
            suite = suites.to_ge_suite(suites.load_suite(name), as_of=as_of)
            results[name] = batch.validate(suite)
        finally:
            df.unpersist()
    return results, sampled


def _render_data_docs(results: dict, counts: dict, warnings: list[str], folder: Path, sampled: dict) -> Path:
    """GE's own validation-results page per table (``data_docs/<table>.html``) and an index page."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    pages = folder / "data_docs"
    pages.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, res in results.items():
        page = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(res))
        (pages / f"{name}.html").write_text(page, encoding="utf-8")
        st = res.statistics
        c = counts.get(name, {})
        rows.append(
            f"<tr><td><a href='data_docs/{name}.html'>{name}</a></td><td>{c.get('read', '')}</td>"
            f"<td>{c.get('accepted', '')}</td><td>{c.get('quarantined', '')}</td>"
            f"<td>{st['successful_expectations']}/{st['evaluated_expectations']}"
            f"{' (on a sample)' if sampled.get(name) else ''}</td>"
            f"<td>{'passed' if res.success else 'rules broken (see page)'}</td></tr>"
        )
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in warnings) or "<li>none</li>"
    index = folder / "data_docs.html"
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>claimsentry data quality</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}</style></head><body><h1>Data quality gate</h1>"
        "<p>Rows breaking a row rule went to quarantine; per-table pages are Great Expectations "
        "validation results on the typed rows as read (on a deterministic sample of large tables, "
        "validation.ge_max_rows; the row rules are applied to every row either way).</p><table><tr><th>table</th><th>read</th>"
        "<th>accepted</th><th>quarantined</th><th>expectations met</th><th>suite</th></tr>"
        + "".join(rows)
        + f"</table><h2>Warnings</h2><ul>{warn}</ul></body></html>",
        encoding="utf-8",
    )
    return index


def write_gate_artifacts(result: GateResult, run_dir: str | os.PathLike, *, ge_max_rows: int | None = None) -> dict:
    """Write ``quarantine/`` (Parquet, always), ``data_quality/validation_results.json`` and
    ``data_quality/data_docs.html`` into ``run_dir``. Returns the data-quality summary.
    ``ge_max_rows``: see ``ge_validate`` (``validation.ge_max_rows``)."""
    run_dir = Path(run_dir)
    result.quarantine.write.mode("overwrite").parquet(str(run_dir / "quarantine"))
    dq = run_dir / "data_quality"
    dq.mkdir(parents=True, exist_ok=True)
    frames = {name: result.ge_frame(name, ge_max_rows) for name in result.checked}
    results, sampled = ge_validate(frames, as_of=result.as_of)
    payload = {name: {**res.to_json_dict(), "claimsentry_sampled": sampled[name]} for name, res in results.items()}
    (dq / "validation_results.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    docs = _render_data_docs(results, result.counts, result.warnings, dq, sampled)
    return {
        "as_of": result.as_of.isoformat(),
        "counts": result.counts,
        "quarantined": sum(c["quarantined"] for c in result.counts.values()),
        "missing_tables": result.missing_tables,
        "warnings": result.warnings,
        "suites": {
            name: {"success": bool(res.success), "sampled": sampled[name], **{k: res.statistics[k] for k in (
                "evaluated_expectations", "successful_expectations", "unsuccessful_expectations", "success_percent")}}
            for name, res in results.items()
        },
        "paths": {  # relative to the run directory (it is written in a staging folder, then renamed)
            "quarantine": "quarantine",
            "validation_results": "data_quality/validation_results.json",
            "data_docs": str(docs.relative_to(run_dir)),
        },
    }


# --- CLI ------------------------------------------------------------------------------------------


def configure_parser(parser) -> None:
    parser.add_argument("--input", required=True, help="claims directory (medical_claim, pharmacy_claim, eligibility)")
    parser.add_argument("--output", required=True, help="folder for quarantine, data-quality results and run_summary.json")
    parser.add_argument("--as-of", help="YYYY-MM-DD: dates after it are in the future (default: today)")


def run_from_cli(args, settings) -> int:
    from claimsentry.spark import get_spark

    if args.as_of:
        try:
            as_of = dt.date.fromisoformat(args.as_of)
        except ValueError:
            raise InputError(f"--as-of must be YYYY-MM-DD, got {args.as_of!r}") from None
    else:
        as_of = dt.date.today()
    if not Path(args.input).is_dir() and "://" not in args.input:
        raise InputError(f"input directory not found: {args.input}")
    spark = get_spark(settings)
    with atomic_dir(args.output) as staging:
        result = run_gate(spark, args.input, settings, as_of=as_of, checkpoint_dir=staging / "_work")
        summary = write_gate_artifacts(result, staging, ge_max_rows=settings.get("validation.ge_max_rows"))
        shutil.rmtree(staging / "_work", ignore_errors=True)
        run_summary = {"input_dir": str(args.input), "tables": result.counts, "data_quality": summary}
        (staging / "run_summary.json").write_text(json.dumps(run_summary, indent=2, default=str), encoding="utf-8")
    for name, c in result.counts.items():
        print(f"{name}: read {c['read']:,}, accepted {c['accepted']:,}, quarantined {c['quarantined']:,}")
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"-> {args.output}")
    return 0
