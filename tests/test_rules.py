"""Rules knowledge base: loading and validating ``conf/rules_*.yaml``, applying rules to claim_features.

Given hand-written claim_features rows -> expect exact ``rule_<ID>`` values and ``rule_hits``.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from claimsentry import reasons as R
from claimsentry.errors import InputError
from claimsentry.features import drg, duplicates, member
from claimsentry.features.rules import apply_rules, load_rules

SCHEMA = (
    "claim_id string, claim_source string, los_days double, los_to_gmlos double, drg_gmlos_days double,"
    " billed_drg string, days_after_death double, member_death_date date, exact_duplicate double"
)
ROWS = [
    ("C1", "medical", 12.0, 3.16, 3.8, "291", 0.0, None, 0.0),  # long stay
    ("C2", "medical", 3.0, 0.79, 3.8, "291", 4.0, date(2025, 6, 10), 1.0),  # after death, duplicate
    ("C3", "medical", None, None, None, None, None, None, 0.0),  # nothing known
    ("R1", "pharmacy", None, 5.0, None, None, 2.0, date(2025, 6, 10), 0.0),  # pharmacy: IP rule must not fire
]


def _rule(rule_id, when, reads, **extra):
    return {
        "id": rule_id, "name": f"rule {rule_id}", "scheme": "inflated_los", "severity": "high",
        "description": "test rule", "reads": reads, "when": when, "reason": "stay {los_days:.0f} days",
        "source": "test", **extra,
    }


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_rules_load_with_unique_ids_and_reason_templates_for_every_feature(spark):
    rules = load_rules()
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    assert {"IP001", "IP003", "IP006", "IP007", "IP008", "MB001", "MB002", "DUP001", "DUP002", "DUP003"} <= set(ids)
    templates = R.feature_templates()
    for block in (drg, member, duplicates):
        assert set(block.FEATURES) <= set(templates), block.__name__


def test_apply_rules_given_rows_expect_flags_and_hits(spark):
    df = spark.createDataFrame(ROWS, SCHEMA)
    rules = [
        _rule("IP003", "los_to_gmlos >= 3", ["los_to_gmlos"], applies_to="medical"),
        _rule("MB001", "days_after_death > 0", ["days_after_death"]),
        _rule("DUP001", "exact_duplicate = 1", ["exact_duplicate"]),
        # reads two columns: does not fire when either is null, even though `OR` could be true
        _rule("IP099", "los_days > 10 OR los_to_gmlos > 4", ["los_days", "los_to_gmlos"]),
    ]
    out, cols, desc = apply_rules(df, rules)
    assert cols == ["rule_IP003", "rule_MB001", "rule_DUP001", "rule_IP099"]
    assert desc["rule_IP003"] == "rule IP003 (high): test rule"
    got = {r["claim_id"]: (r["rule_IP003"], r["rule_MB001"], r["rule_DUP001"], r["rule_IP099"], r["rule_hits"])
           for r in out.collect()}
    assert got == {
        "C1": (1.0, 0.0, 0.0, 1.0, ["IP003", "IP099"]),
        "C2": (0.0, 1.0, 1.0, 0.0, ["MB001", "DUP001"]),
        "C3": (0.0, 0.0, 0.0, 0.0, []),
        "R1": (0.0, 1.0, 0.0, 0.0, ["MB001"]),
    }
    assert dict(out.dtypes)["rule_IP003"] == "double"
    assert dict(out.dtypes)["rule_hits"] == "array<string>"


def test_no_rules_gives_empty_hits(spark):
    out, cols, desc = apply_rules(spark.createDataFrame(ROWS, SCHEMA), [])
    assert (cols, desc) == ([], {})
    assert {tuple(r["rule_hits"]) for r in out.collect()} == {()}


def test_packaged_rules_fire_on_claim_features_with_rendered_reasons(spark):
    """The shipped IP003 / MB001 / DUP001 rules on hand rows (only the columns they read)."""
    rules = [r for r in load_rules() if r["id"] in ("IP003", "MB001", "DUP001")]
    cols = {c for r in rules for c in r["reads"]} | {c for r in rules for c in R.template_fields(r["reason"])}
    base = spark.createDataFrame(ROWS, SCHEMA)
    extra = sorted(cols - set(base.columns))
    for c in extra:
        base = base.withColumn(c, F.lit(None).cast("string"))
    out, _, _ = apply_rules(base, rules)
    row = {r["claim_id"]: r.asDict() for r in out.collect()}
    assert row["C1"]["rule_hits"] == ["IP003"]
    assert row["C2"]["rule_hits"] == ["DUP001", "MB001"]  # file order: rules_duplicates, rules_member
    ip003 = next(r for r in rules if r["id"] == "IP003")
    assert R.render(ip003["reason"], row["C1"]) == "stay 12 days vs 3.8 expected (CMS geometric mean) for DRG 291"
    mb001 = next(r for r in rules if r["id"] == "MB001")
    assert R.render(mb001["reason"], row["C2"]) == "service 4 day(s) after the member's recorded death on 2025-06-10"


def test_rule_added_in_an_override_file_works_without_python(spark, tmp_path):
    path = _write(tmp_path, "rules_local.yaml", """
rules:
  - id: IP901
    name: very long stay
    scheme: inflated_los
    severity: medium
    description: stay of 10 days or more
    reads: [los_days]
    applies_to: medical
    when: "los_days >= 10"
    reason: "stay {los_days:.0f} days"
""")
    rules = load_rules([path])
    assert [r["id"] for r in rules][-1] == "IP901"
    assert len(rules) == len(load_rules()) + 1
    only = load_rules([tmp_path], packaged=False)  # a folder contributes its rules_*.yaml
    out, cols, _ = apply_rules(spark.createDataFrame(ROWS, SCHEMA), only)
    assert cols == ["rule_IP901"]
    assert {r["claim_id"]: r["rule_IP901"] for r in out.collect()} == {"C1": 1.0, "C2": 0.0, "C3": 0.0, "R1": 0.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("rules: [\n  - id: IP1\n  bad", "invalid YAML at line"),
        ("rules:\n  - id: IP950\n    name: x\n", "rule IP950: missing required key(s) scheme, severity, description, reads, when, reason"),
        ("rules: {}\n", "expected a top-level `rules:` list"),
    ],
)
def test_bad_rule_files_give_one_line_errors(spark, tmp_path, text, message):
    path = _write(tmp_path, "rules_bad.yaml", text)
    with pytest.raises(InputError) as err:
        load_rules([path], packaged=False)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _yaml_rule(rule_id="IP950", when="los_days >= 10", severity="high", scheme="inflated_los"):
    return (f"  - id: {rule_id}\n    name: n\n    scheme: {scheme}\n    severity: {severity}\n    description: d\n"
            f"    reads: [los_days]\n    when: \"{when}\"\n    reason: \"r\"\n")


@pytest.mark.parametrize(
    "body, message",
    [
        (_yaml_rule() + _yaml_rule(), "rule id IP950 is already defined"),
        (_yaml_rule(when="los_days >= >= 10"), "rule IP950: `when` does not parse as Spark SQL"),
        (_yaml_rule(severity="urgent"), "severity must be one of high, medium, low"),
        (_yaml_rule(scheme="fraud"), "unknown scheme 'fraud'"),
        (_yaml_rule(rule_id="ip-1"), "id must look like IP001"),
    ],
)
def test_invalid_rules_are_rejected_at_load(spark, tmp_path, body, message):
    path = _write(tmp_path, "rules_bad.yaml", "rules:\n" + body)
    with pytest.raises(InputError) as err:
        load_rules([path], packaged=False)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_duplicate_id_against_packaged_rules_is_rejected(tmp_path):
    path = _write(tmp_path, "rules_more.yaml", "rules:\n" + _yaml_rule(rule_id="IP001"))
    with pytest.raises(InputError, match="rule id IP001 is already defined in rules_inpatient.yaml"):
        load_rules([path])


@pytest.mark.parametrize(
    "rule, message",
    [
        (_rule("IP960", "nope > 1", ["nope"]), "rule IP960 (test) reads column(s) nope that claim_features does not have"),
        (_rule("IP961", "los_dayz > 1", ["los_days"]), "rule IP961 (test): `when` does not resolve on claim_features"),
        (_rule("IP962", "los_days + 1", ["los_days"]), "rule IP962 (test): `when` must be a boolean expression, got double"),
        ({**_rule("IP963", "los_days > 1", ["los_days"]), "reason": "{los_weeks}"},
         "reason names column(s) los_weeks that claim_features does not have"),
    ],
)
def test_rules_that_do_not_fit_claim_features_fail_at_apply(spark, rule, message):
    with pytest.raises(InputError) as err:
        apply_rules(spark.createDataFrame(ROWS, SCHEMA), [rule])
    assert message in str(err.value)
    assert "\n" not in str(err.value)
