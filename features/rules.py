"""Rules knowledge base: auditor rules in YAML (``conf/rules_*.yaml``) turned into feature columns.

A rule is a named, explained threshold over ``claim_features`` columns (one row per (claim_id,
claim_source)). Each rule becomes a model feature ``rule_<ID>`` (double 1.0 when it fires, else
0.0) and, through its ``reason`` template, a human-readable reason; ``rule_hits`` lists the ids that
fired on the claim. Adding a threshold rule on an existing feature is a YAML change only.

YAML shape (one file per area; every ``rules_*.yaml`` shipped in ``claimsentry.conf`` is read)::

    rules:
      - id: IP003                       # prefix: IP inpatient, MB member, DUP duplicates, RX, PR
        name: stay far longer than expected
        scheme: inflated_los            # a scheme name of docs/ARCHITECTURE.md
        severity: high                  # high | medium | low
        description: length of stay at least 3x the CMS geometric mean LOS of the billed DRG
        reads: [los_to_gmlos]           # claim_features columns the rule reads
        applies_to: medical             # optional: medical | pharmacy
        when: "los_to_gmlos >= 3"       # Spark SQL boolean over claim_features columns
        reason: "stay {los_days:.0f} days vs {drg_gmlos_days:.1f} expected for DRG {billed_drg}"
        certain: false                  # optional: true = a hit is an improper payment on its face (service
                                        # after death, outside enrollment); such claims rank above every
                                        # claim that is only unusual, whatever the model says
        cites: NCCI PTP                 # optional: the policy source its findings cite (the start of the
                                        # claim's `citations` entries that belong to this rule)


Null safety: a rule fires only when its ``when`` is true AND every column in ``reads`` is non-null
on the claim (a rule whose inputs are unknown does not fire).
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path
from typing import Iterable

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from claimsentry.errors import InputError

REQUIRED_KEYS = ("id", "name", "scheme", "severity", "description", "reads", "when", "reason")
OPTIONAL_KEYS = ("applies_to", "certain", "cites")
SEVERITIES = ("high", "medium", "low")
CLAIM_SOURCES = ("medical", "pharmacy")
SCHEMES = (
    "drg_upcoding",
    "inflated_los",
    "split_admission",
    "duplicate_billing",
    "service_after_death",
    "outside_enrollment",
    "excessive_units",
    "em_upcoding",
    "opioid_overprescribing",
    "doctor_shopping",
    "pharmacy_shopping",
    "early_refill",
    "prescriber_pharmacy_collusion",
    "peer_outlier_billing",
    "unbundling",
    "mue_breach",
    "add_on_without_primary",
    "excluded_provider",
)
_ID = re.compile(r"^[A-Z]{2,4}[0-9]{3}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _packaged_rule_files() -> list[tuple[str, str]]:
    """(name, text) of every ``rules_*.yaml`` shipped in ``claimsentry.conf``, by name."""
    entries = sorted(resources.files("claimsentry.conf").iterdir(), key=lambda p: p.name)
    return [
        (e.name, e.read_text(encoding="utf-8"))
        for e in entries
        if e.name.startswith("rules_") and e.name.endswith(".yaml")
    ]


def _path_rule_files(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """(name, text) of rule files given as files or folders (a folder contributes its rules_*.yaml)."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(path.glob("rules_*.yaml"))
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"rules file not found: {path}")
        out += [(str(f), f.read_text(encoding="utf-8")) for f in files]
    return out


def _spark_active() -> bool:
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def _parse_when(when: str) -> None:
    """Parse ``when`` with Spark's SQL parser only (no analysis: claim_features columns are not
    known at load time, and analysing against an empty frame would log every unknown column).
    Raises ``ValueError`` with the parser's first line."""
    from pyspark.sql import SparkSession

    session = SparkSession.active()
    parser = getattr(session, "_jsparkSession", None)
    if parser is None:  # Spark Connect: no JVM handle; apply_rules still checks the expression
        return
    try:
        parser.sessionState().sqlParser().parseExpression(when)
    except Exception as err:  # ParseException (captured) or Py4JJavaError
        text = str(err).strip()
        first = text.splitlines()[0] if text else "syntax error"
        raise ValueError(f"`when` does not parse as Spark SQL: {first}") from None


def _when_type(when: str, frame: DataFrame):
    """The data type of ``when`` evaluated on ``frame``. Raises ``ValueError`` with the parser's
    first line when it does not parse; analysis errors (unknown columns) propagate."""
    from pyspark.errors import ParseException

    try:
        return frame.select(F.expr(when).alias("_when")).schema["_when"].dataType
    except ParseException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "syntax error"
        raise ValueError(f"`when` does not parse as Spark SQL: {first}") from None


def _check_rule(rule, source: str) -> dict:
    """A validated copy of one rule (raises ``InputError`` with a one-line message)."""
    if not isinstance(rule, dict):
        raise InputError(f"rules file {source}: every entry under `rules` must be a mapping, got {rule!r}")
    label = f"rules file {source}: rule {rule.get('id', '<no id>')}"
    missing = [k for k in REQUIRED_KEYS if rule.get(k) in (None, "", [])]
    if missing:
        raise InputError(f"{label}: missing required key(s) {', '.join(missing)}")
    unknown = sorted(set(rule) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise InputError(f"{label}: unknown key(s) {', '.join(unknown)}")
    rule_id = str(rule["id"])
    if not _ID.match(rule_id):
        raise InputError(f"{label}: id must look like IP001 (2-4 capital letters, 3 digits)")
    if rule["severity"] not in SEVERITIES:
        raise InputError(f"{label}: severity must be one of {', '.join(SEVERITIES)}, got {rule['severity']!r}")
    if rule["scheme"] not in SCHEMES:
        raise InputError(f"{label}: unknown scheme {rule['scheme']!r}")
    if rule.get("applies_to") is not None and rule["applies_to"] not in CLAIM_SOURCES:
        raise InputError(f"{label}: applies_to must be one of {', '.join(CLAIM_SOURCES)}, got {rule['applies_to']!r}")
    reads = rule["reads"]
    if isinstance(reads, str):
        reads = [reads]
    if not isinstance(reads, list) or not all(isinstance(c, str) and _COLUMN.match(c) for c in reads):
        raise InputError(f"{label}: reads must be a list of column names, got {rule['reads']!r}")
    if rule.get("certain") is not None and not isinstance(rule["certain"], bool):
        raise InputError(f"{label}: certain must be true or false, got {rule['certain']!r}")
    if not isinstance(rule["when"], str):
        raise InputError(f"{label}: `when` must be a string (Spark SQL boolean)")
    try:
        list(string.Formatter().parse(str(rule["reason"])))
    except ValueError as err:
        raise InputError(f"{label}: reason is not a valid format string ({err})") from None
    if _spark_active():
        try:
            _parse_when(rule["when"])
        except ValueError as err:
            raise InputError(f"{label}: {err}") from None
    return {**rule, "id": rule_id, "reads": list(reads), "source": source}


def certain_rule_columns(rules: list[dict]) -> list[str]:
    """The ``rule_<ID>`` columns of the rules marked ``certain: true``."""
    return [f"rule_{r['id']}" for r in rules if r.get("certain")]


def load_rules(paths: Iterable[str | Path] | None = None, *, packaged: bool = True) -> list[dict]:
    """Every rule of the knowledge base, validated, in file order.

    Reads the ``rules_*.yaml`` files shipped in ``claimsentry.conf`` (unless ``packaged=False``)
    plus any extra rule files or folders in ``paths`` (an override location: a rule added there
    needs no Python). Raises ``InputError`` (one line) on bad YAML, a missing key, an unknown
    severity/scheme/applies_to, a duplicate id or (with an active Spark session) a ``when`` that
    does not parse; column existence is checked by ``apply_rules``.
    """
    files = (_packaged_rule_files() if packaged else []) + _path_rule_files(paths or [])
    rules: list[dict] = []
    seen: dict[str, str] = {}
    for source, text in files:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise InputError(f"rules file {source}: invalid YAML{where}: {problem}") from None
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise InputError(f"rules file {source}: expected a top-level `rules:` list")
        for raw in data["rules"]:
            rule = _check_rule(raw, source)
            if rule["id"] in seen:
                raise InputError(f"rules file {source}: rule id {rule['id']} is already defined in {seen[rule['id']]}")
            seen[rule["id"]] = source
            rules.append(rule)
    return rules


def _reason_fields(template: str) -> set[str]:
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f}


def rule_column(rule: dict) -> str:
    return f"rule_{rule['id']}"


def apply_rules(df: DataFrame, rules: list[dict]) -> tuple[DataFrame, list[str], dict[str, str]]:
    """Add ``rule_<ID>`` (double 1.0/0.0) per rule and ``rule_hits`` (array<string> of fired ids).

    ``df`` is ``claim_features`` (one row per (claim_id, claim_source)); the grain is unchanged.
    Returns the frame, the rule column names and their descriptions. Raises ``InputError`` (one
    line) when a rule reads a column the frame lacks, its reason names one, or its ``when`` does
    not parse, does not resolve or is not boolean.
    """
    columns = set(df.columns)
    # `when` is type-checked on an empty frame of the same schema: a select on the features' own
    # plan (dozens of joins) re-analysed that plan once per rule (BENCHMARKS.md's history in git, 2026-12-02 (b)).
    probe = df.sparkSession.createDataFrame([], df.schema)
    rule_cols: list[str] = []
    descriptions: dict[str, str] = {}
    exprs = []
    for rule in rules:
        label = f"rule {rule['id']} ({rule.get('source', 'rules')})"
        absent = [c for c in rule["reads"] if c not in columns]
        if absent:
            raise InputError(f"{label} reads column(s) {', '.join(absent)} that claim_features does not have")
        absent = sorted(_reason_fields(str(rule["reason"])) - columns)
        if absent:
            raise InputError(f"{label}: reason names column(s) {', '.join(absent)} that claim_features does not have")
        try:
            dtype = _when_type(rule["when"], probe)
        except ValueError as err:
            raise InputError(f"{label}: {err}") from None
        except Exception as err:  # AnalysisException: unknown column or function in `when`
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"{label}: `when` does not resolve on claim_features: {first}") from None
        if not isinstance(dtype, BooleanType):
            raise InputError(f"{label}: `when` must be a boolean expression, got {dtype.simpleString()}")
        fires = F.coalesce(F.expr(rule["when"]), F.lit(False))
        for c in rule["reads"]:
            fires = fires & F.col(c).isNotNull()
        if rule.get("applies_to"):
            fires = fires & (F.col("claim_source") == F.lit(rule["applies_to"]))
        name = rule_column(rule)
        exprs.append(F.when(fires, F.lit(1.0)).otherwise(F.lit(0.0)).alias(name))
        rule_cols.append(name)
        descriptions[name] = f"rule {rule['id']} ({rule['severity']}): {rule['description']}"
    out = df.select("*", *exprs)
    if rule_cols:
        hits = F.filter(
            F.array(*[F.when(F.col(c) == 1.0, F.lit(r["id"])) for c, r in zip(rule_cols, rules)]),
            lambda h: h.isNotNull(),
        )
    else:
        hits = F.array().cast("array<string>")
    return out.withColumn("rule_hits", hits), rule_cols, descriptions
