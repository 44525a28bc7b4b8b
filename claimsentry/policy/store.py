"""Versioned storage of the policy reference tables, and what edit rules read from it.

Layout, under ``reference.dir`` (default ``<data_dir>/reference``)::

    <kind>/[<setting>/]version=<label>/
        rows/          Parquet: the typed table (``formats.SPECS[kind].schema``)
        quarantine/    Parquet: table, row_content, reason, source_file
        manifest.json  kind, setting, version, source (citation words), files with their sha256,
                       row counts, quarantine reasons, effective period, loaded_at

PTP edits and MUEs are kept per setting (``ncci-ptp/practitioner/…``, ``ncci-mue/dme/…``).
A version is written whole or not at all (staged in a hidden sibling, then renamed:
``claimsentry.io.atomic_dir``). Adding files whose content is already stored (same sha256) stores
nothing and names the version that holds them. The current version of a kind (and setting) is the
one added last.

For edit rules: ``load_reference`` (one kind), ``load_current`` (every kind stored), each a
``ReferenceTable`` whose ``source`` is the citation's words ('NCCI MUE practitioner 2026Q1');
``versions_used`` is what a run records in run_summary.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from claimsentry.errors import InputError
from claimsentry.io import atomic_dir
from claimsentry.policy import sniff as sn
from claimsentry.policy.formats import (
    KINDS,
    QUARANTINE_SCHEMA,
    REASON,
    RULES,
    SETTING_WORDS,
    SETTINGS,
    SPECS,
    FileLayout,
    accepted_rows,
    mark_repeated_keys,
    parse_files,
    period_aggregates,
    quarantine_rows,
)

MANIFEST = "manifest.json"
SOURCE_WORDS = {"ncci-ptp": "NCCI PTP", "ncci-mue": "NCCI MUE", "ncci-aoc": "NCCI add-on", "leie": "OIG LEIE", "nppes": "NPPES"}
SETTING_ALIASES = {
    "practitioner": "practitioner", "pra": "practitioner",
    "outpatient": "outpatient", "outpatient-hospital": "outpatient", "outpatient_hospital": "outpatient",
    "hospital": "outpatient", "oph": "outpatient", "opps": "outpatient",
    "dme": "dme", "dme-supplier": "dme",
}
VERSION_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOP_REASONS = 10


def reference_root(settings) -> Path:
    configured = settings.get("reference.dir")
    return Path(configured).expanduser().resolve() if configured else settings.data_dir / "reference"


def version_dir(root: Path, kind: str, setting: str | None, version: str) -> Path:
    return (root / kind / setting if setting else root / kind) / f"version={version}"


def citation_source(manifest: Mapping) -> str:
    """The words a citation names a version by: 'NCCI PTP practitioner 2026Q1', 'NCCI MUE
    outpatient hospital 2026Q1', 'NCCI add-on 2026Q1', 'OIG LEIE 2026-01', 'NPPES 2026-01'."""
    words = [SOURCE_WORDS[manifest["kind"]]]
    if manifest.get("setting"):
        words.append(SETTING_WORDS[manifest["setting"]])
    words.append(manifest["version"])
    return " ".join(words)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown kind '{kind}': one of {', '.join(KINDS)}")


def _check_setting(kind: str, setting: str | None) -> str | None:
    if setting is None:
        return None
    if kind not in SETTINGS:
        raise InputError(f"{kind}: a setting applies to ncci-ptp and ncci-mue only")
    value = SETTING_ALIASES.get(setting.strip().lower())
    if value not in SETTINGS[kind]:
        raise InputError(f"{kind}: setting '{setting}' is not one of {', '.join(SETTINGS[kind])}")
    return value


# --- Reading the store ---------------------------------------------------------------------------


def list_versions(settings, kind: str | None = None, setting: str | None = None) -> list[dict]:
    """Every stored version's manifest (with ``path``), oldest added first."""
    if kind is not None:
        _check_kind(kind)
    root = reference_root(settings)
    found = []
    for path in [*root.glob("*/version=*/" + MANIFEST), *root.glob("*/*/version=*/" + MANIFEST)]:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a version this code wrote
        if (kind is None or manifest.get("kind") == kind) and (setting is None or manifest.get("setting") == setting):
            found.append({**manifest, "path": str(path.parent)})
    return sorted(found, key=lambda m: (m.get("loaded_at", ""), m.get("version", "")))


def current_manifest(settings, kind: str, *, setting: str | None = None, version: str | None = None) -> dict:
    """The manifest of ``version`` (a label), or of the version added last."""
    _check_kind(kind)
    setting = _check_setting(kind, setting)
    if kind in SETTINGS and setting is None:
        raise InputError(f"{kind}: name the setting ({', '.join(SETTINGS[kind])})")
    stored = list_versions(settings, kind, setting)
    what = f"{kind} {setting}" if setting else kind
    if version is not None:
        stored = [m for m in stored if m["version"] == version]
        if not stored:
            raise InputError(f"{what}: no version {version} is stored")
    if not stored:
        raise InputError(
            f"{what}: no version is stored under {reference_root(settings)} (add one: claimsentry reference add {kind} FILE)"
        )
    return stored[-1]


@dataclass(frozen=True)
class ReferenceTable:
    """One stored version: its typed rows and its manifest."""

    rows: DataFrame
    manifest: dict

    @property
    def source(self) -> str:
        """The citation's words for this version, e.g. 'NCCI MUE practitioner 2026Q1'."""
        return citation_source(self.manifest)

    @property
    def version(self) -> str:
        return self.manifest["version"]


def load_reference(
    spark: SparkSession, settings, kind: str, *, setting: str | None = None, version: str | None = None
) -> ReferenceTable:
    """The typed rows of one kind (and setting: PTP and MUE need one): the version added last,
    or the version labelled ``version``."""
    manifest = current_manifest(settings, kind, setting=setting, version=version)
    rows = spark.read.schema(SPECS[kind].schema).parquet(str(Path(manifest["path"]) / "rows"))
    return ReferenceTable(rows, manifest)


def load_current(spark: SparkSession, settings, kinds: Sequence[str] = KINDS) -> dict[str, ReferenceTable]:
    """The current version of every kind (and setting) stored, keyed 'ncci-ptp/practitioner',
    'ncci-mue/dme', 'ncci-aoc', 'leie', 'nppes'. Kinds with nothing stored are absent."""
    out: dict[str, ReferenceTable] = {}
    for kind in kinds:
        for setting in SETTINGS.get(kind, (None,)):
            if list_versions(settings, kind, setting):
                key = f"{kind}/{setting}" if setting else kind
                out[key] = load_reference(spark, settings, kind, setting=setting)
    return out


def load_quarantine(spark: SparkSession, manifest: Mapping) -> DataFrame:
    """The rows a version's load rejected, with their reasons."""
    return spark.read.schema(QUARANTINE_SCHEMA).parquet(str(Path(manifest["path"]) / "quarantine"))


def versions_used(tables: Mapping[str, ReferenceTable]) -> dict:
    """What a run records of the reference versions it used (run_summary.json), by table key."""
    return {
        key: {
            "kind": t.manifest["kind"],
            "setting": t.manifest.get("setting"),
            "version": t.manifest["version"],
            "source": t.source,
            "sha256": t.manifest["sha256"],
            "loaded_at": t.manifest["loaded_at"],
        }
        for key, t in tables.items()
    }


# --- Adding a version ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddPlan:
    """A checked request to add a version: everything the driver can tell before Spark reads."""

    kind: str
    setting: str | None
    sources: tuple[sn.SourceFile, ...]
    layouts: tuple[FileLayout, ...]
    files: tuple[dict, ...]  # name, sha256, bytes of each file given
    sha256: str  # of the files' content (one file: its own)
    version: str | None  # known before reading (flag or file name); else derived from the rows
    effective_from: dt.date | None
    as_of: dt.date | None
    publisher_version: str | None
    replace: bool
    existing: dict | None  # a stored version with the same content


@dataclass(frozen=True)
class AddResult:
    manifest: dict
    path: Path
    already_stored: bool


def _label(value: str) -> str:
    if not VERSION_LABEL.fullmatch(value):
        raise InputError(f"version label '{value}' must be letters, digits, '.', '_' or '-' (e.g. 2026Q1)")
    return value


def _one(values: set, what: str, kind: str) -> object | None:
    if len(values) > 1:
        raise InputError(f"{kind}: the files are for different {what} ({', '.join(sorted(map(str, values)))}); add them one at a time")
    return next(iter(values), None)


def plan_add(
    settings,
    kind: str,
    files: Sequence[str],
    *,
    version: str | None = None,
    setting: str | None = None,
    effective_from: str | dt.date | None = None,
    replace: bool = False,
) -> AddPlan:
    """Check a request on the driver alone: the kind, the files (existence, form, header), the
    setting and version label, the content hash. Raises ``InputError`` (one line) on any problem."""
    _check_kind(kind)
    setting = _check_setting(kind, setting)
    if version is not None:
        version = _label(version)
    if effective_from is not None:
        if kind != "ncci-mue":
            raise InputError(f"{kind}: an effective-from date applies to ncci-mue only (other kinds' periods come from their rows)")
        if isinstance(effective_from, str):
            try:
                effective_from = dt.date.fromisoformat(effective_from)
            except ValueError:
                raise InputError(f"effective-from '{effective_from}' is not a date (YYYY-MM-DD)") from None
    if not files:
        raise InputError(f"{kind}: give a file to load")
    sources = sn.resolve_sources(kind, list(files))
    layouts = [sn.sniff(kind, s) for s in sources]
    names = ", ".join(s.name for s in sources)

    found = _one({l.setting for l in layouts if l.setting}, "settings", kind)
    if setting and found and found != setting:
        raise InputError(f"{kind}: {names} is for the {SETTING_WORDS[found]} setting, not {SETTING_WORDS[setting]}")
    setting = setting or found
    if kind in SETTINGS and setting is None:
        raise InputError(f"{kind}: cannot tell the setting of {names}; give --setting {'|'.join(SETTINGS[kind])}")
    if kind == "ncci-ptp" and setting == "dme":
        raise InputError("ncci-ptp: PTP edits are published for practitioner and outpatient hospital only")

    hinted = _one({l.label_hint for l in layouts if l.label_hint}, "versions", kind)
    version = version or (_label(hinted) if hinted else None)
    effective_from = effective_from or _one({l.effective_hint for l in layouts if l.effective_hint}, "effective dates", kind)
    if kind == "ncci-mue":
        effective_from = effective_from or (sn.quarter_start(version) if version else None)
        if version is None and effective_from:
            version = sn.quarter_label(effective_from)
        if version is None:
            raise InputError(f"ncci-mue: cannot tell the version of {names} from its name; give --version (e.g. 2026Q1) or --effective-from")

    given = list(dict.fromkeys(s.given for s in sources))
    hashed = tuple({"name": p.name, "sha256": sn.sha256(p), "bytes": p.stat().st_size} for p in given)
    digests = sorted(f["sha256"] for f in hashed)
    content = digests[0] if len(digests) == 1 else hashlib.sha256("\n".join(digests).encode()).hexdigest()
    existing = next((m for m in list_versions(settings, kind, setting) if m.get("sha256") == content), None)
    if existing is None and version is not None and not replace:
        _refuse_existing(settings, kind, setting, version)
    return AddPlan(
        kind=kind,
        setting=setting,
        sources=tuple(sources),
        layouts=tuple(layouts),
        files=hashed,
        sha256=content,
        version=version,
        effective_from=effective_from,
        as_of=_one({l.as_of_hint for l in layouts if l.as_of_hint}, "dates", kind),
        publisher_version=_one({l.publisher_version for l in layouts if l.publisher_version}, "publisher versions", kind),
        replace=replace,
        existing=existing,
    )


def _refuse_existing(settings, kind: str, setting: str | None, version: str) -> None:
    path = version_dir(reference_root(settings), kind, setting, version)
    if (path / MANIFEST).is_file():
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        held = ", ".join(f["name"] for f in manifest.get("files", []))
        what = f"{kind} {setting}" if setting else kind
        raise InputError(f"{what}: version {version} is already stored, from other content ({held}); give another --version, or --replace")


def _derived_version(plan: AddPlan, stats: Mapping) -> str:
    """A version label from the rows, when neither the flag nor the file name gave one: the
    quarter of the latest effective date (PTP, add-on codes), the month of the file's date
    (LEIE: its latest exclusion, reinstatement or waiver; NPPES: its latest update)."""
    if plan.kind in ("ncci-ptp", "ncci-aoc") and stats.get("max_effective"):
        return sn.quarter_label(stats["max_effective"])
    if plan.kind in ("leie", "nppes") and stats.get("as_of"):
        return stats["as_of"].strftime("%Y-%m")
    raise InputError(f"{plan.kind}: cannot tell the version of {', '.join(s.name for s in plan.sources)}; give --version")


def _period(plan: AddPlan, stats: Mapping, version: str) -> dict:
    """The version's effective period. PTP and add-on codes: from the earliest edit effective date
    to the latest deletion date, or open while any edit is not deleted. MUE: from the date its file
    name (or --effective-from, or the version's quarter) gives, open. LEIE and NPPES are snapshots:
    from the date of the file, open (each row carries its own dates)."""
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    if plan.kind in ("ncci-ptp", "ncci-aoc"):
        return {
            "effective_from": iso(stats.get("min_effective")),
            "effective_to": None if stats.get("open_rows") else iso(stats.get("max_deletion")),
            "as_of": None,
        }
    if plan.kind == "ncci-mue":
        return {"effective_from": iso(plan.effective_from or sn.quarter_start(version)), "effective_to": None, "as_of": None}
    as_of = plan.as_of or stats.get("as_of")
    return {"effective_from": iso(as_of), "effective_to": None, "as_of": iso(as_of)}


def run_add(
    spark: SparkSession,
    settings,
    plan: AddPlan,
    *,
    progress: Callable[[str], None] | None = None,
    now: dt.datetime | None = None,
) -> AddResult:
    """Read, type and store a planned version (nothing is stored on any error)."""
    if plan.existing is not None:
        return AddResult(plan.existing, Path(plan.existing["path"]), already_stored=True)
    say = progress or (lambda message: None)
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.1f} s"

    root = reference_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=root)) if any(s.member for s in plan.sources) else None
    try:
        layouts = [replace(l, path=sn.extract(s, work)) for s, l in zip(plan.sources, plan.layouts)]
        for layout in layouts:
            say(f"reading {layout.name} ({sn.describe_layout(layout)})")
        flagged = parse_files(spark, layouts).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            final = mark_repeated_keys(flagged, plan.kind)
            stats = final.agg(
                F.count(F.lit(1)).alias("read"),
                F.sum(F.col(REASON).isNotNull().cast("long")).alias("quarantined"),
                *period_aggregates(plan.kind),
            ).first().asDict()
            read, quarantined = int(stats["read"]), int(stats["quarantined"] or 0)
            reasons = (
                final.where(F.col(REASON).isNotNull())
                .select(F.explode(RULES).alias("rule"))
                .groupBy("rule")
                .count()
                .orderBy(F.desc("count"), "rule")
                .limit(TOP_REASONS)
                .collect()
            )
            say(f"parsed and typed {read:,} rows: {read - quarantined:,} accepted, {quarantined:,} quarantined ({elapsed()})")
            names = ", ".join(l.name for l in layouts)
            if read == 0:
                raise InputError(f"{plan.kind}: {names} has no rows after its header")
            if quarantined == read:
                top = f"{reasons[0]['rule']} ({reasons[0]['count']:,})" if reasons else "see the reasons"
                raise InputError(f"{plan.kind}: no row of {names} passes the checks ({read:,} rows; most common: {top}); nothing stored")
            version = plan.version or _label(_derived_version(plan, stats))
            if not plan.replace:
                _refuse_existing(settings, plan.kind, plan.setting, version)
            manifest = {
                "kind": plan.kind,
                "setting": plan.setting,
                "version": version,
                "source": None,
                "title": SPECS[plan.kind].title,
                "grain": SPECS[plan.kind].grain,
                "key": list(SPECS[plan.kind].key),
                "sha256": plan.sha256,
                "files": [
                    {**f, "read_as": [sn.describe_layout(l) for s, l in zip(plan.sources, layouts) if s.given.name == f["name"]]}
                    for f in plan.files
                ],
                "publisher_version": plan.publisher_version,
                "rows": {"read": read, "accepted": read - quarantined, "quarantined": quarantined},
                "quarantine_reasons": {r["rule"]: r["count"] for r in reasons},
                **_period(plan, stats, version),
                "loaded_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
                "columns": {f.name: f.dataType.simpleString() for f in SPECS[plan.kind].schema.fields},
            }
            manifest["source"] = citation_source(manifest)
            final_dir = version_dir(root, plan.kind, plan.setting, version)
            with atomic_dir(final_dir) as staging:
                accepted_rows(final, plan.kind).write.parquet(str(staging / "rows"))
                quarantine_rows(final, plan.kind).coalesce(1).write.parquet(str(staging / "quarantine"))
                (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            say(f"wrote {read - quarantined:,} rows and {quarantined:,} quarantined as {manifest['source']} ({elapsed()})")
            return AddResult({**manifest, "path": str(final_dir)}, final_dir, already_stored=False)
        finally:
            flagged.unpersist()
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def add_reference(spark: SparkSession, settings, kind: str, files: Sequence[str], **options) -> AddResult:
    """Check and store files as a new version (``plan_add`` options; ``progress``, ``now``)."""
    progress, now = options.pop("progress", None), options.pop("now", None)
    return run_add(spark, settings, plan_add(settings, kind, files, **options), progress=progress, now=now)
