"""Reason rendering: actual values, nulls handled, no raw feature names."""

from claimsentry import reasons as R
from claimsentry.queues import claim_reasons

RULES = {
    "DUP": {"id": "DUP", "name": "Duplicate", "scheme": "duplicate_billing", "severity": "high",
            "reason": "same service billed {duplicate_count:.0f} times"},
    "LOW": {"id": "LOW", "name": "Low", "scheme": "peer_outlier_billing", "severity": "low",
            "reason": "paid {paid_to_peer_median:.1f}x peers"},
}
TEMPLATES = {"los_ratio": "stay {los_days:.0f} day(s) vs {drg_gmlos_days:.1f} expected for DRG {drg_code}"}


def test_render_uses_values_and_prints_nulls_as_na():
    assert R.render("stay {los_days:.0f} vs {gm:.1f} for DRG {drg}", {"los_days": 9.0, "gm": 4.44, "drg": "871"}) == (
        "stay 9 vs 4.4 for DRG 871"
    )
    assert R.render("stay {los_days:.0f} vs {gm:.1f}", {"los_days": None}) == "stay n/a vs n/a"


def test_template_fields():
    assert R.template_fields("a {x:.1f} b {y} c {z[0]}") == {"x", "y", "z"}


def test_claim_reasons_rules_by_severity_then_contributions_without_raw_names():
    row = {
        "rule_hits": ["LOW", "DUP"],
        "duplicate_count": 2.0,
        "paid_to_peer_median": 3.25,
        "los_days": 1.0,
        "drg_gmlos_days": 4.4,
        "drg_code": "871",
        "contributions": [
            {"feature": "rule_DUP", "contribution": 1.2},
            {"feature": "los_ratio", "contribution": 0.8},
            {"feature": "feature_without_template", "contribution": 0.5},
        ],
    }
    got = claim_reasons(row, RULES, TEMPLATES)
    assert got == [
        "same service billed 2 times",
        "paid 3.2x peers",
        "stay 1 day(s) vs 4.4 expected for DRG 871",
    ]
    assert not any("feature_without_template" in g or "rule_" in g for g in got)


def test_shipped_templates_parse():
    templates = R.feature_templates()
    assert "paid_to_peer_median" in templates
    for feature, template in templates.items():
        R.template_fields(template)  # raises on a malformed template


def test_contributions_of_unknown_values_are_not_shown_as_reasons():
    from claimsentry.queues import claim_reasons

    templates = {
        "mme_per_day": "dose {mme_per_day:.0f} MME/day",
        "los_to_gmlos": "stay {los_days:.0f} days vs {drg_gmlos_days:.1f} expected",
    }
    row = {
        "mme_per_day": None,  # missing: XGBoost still gives it a contribution
        "los_days": 9.0,
        "drg_gmlos_days": 4.4,
        "contributions": [
            {"feature": "mme_per_day", "contribution": 0.9},
            {"feature": "los_to_gmlos", "contribution": 0.5},
        ],
    }
    assert claim_reasons(row, {}, templates) == ["stay 9 days vs 4.4 expected"]
    row["drg_gmlos_days"] = float("nan")
    assert claim_reasons(row, {}, templates) == []


def test_a_feature_stated_by_a_fired_rule_is_not_repeated_from_the_model():
    from claimsentry.queues import claim_reasons

    rules = {"IP003": {"id": "IP003", "severity": "high", "reads": ["los_to_gmlos"], "reason": "stay {los_days:.0f} days, {los_to_gmlos:.1f}x expected"}}
    templates = {"los_to_gmlos": "stay {los_days:.0f} days vs expected", "paid_to_peer_median": "paid {paid_to_peer_median:.1f}x peers"}
    row = {
        "los_days": 12.0,
        "los_to_gmlos": 3.0,
        "paid_to_peer_median": 2.5,
        "rule_hits": ["IP003"],
        "contributions": [{"feature": "los_to_gmlos", "contribution": 1.0}, {"feature": "paid_to_peer_median", "contribution": 0.4}],
    }
    assert claim_reasons(row, rules, templates) == ["stay 12 days, 3.0x expected", "paid 2.5x peers"]
