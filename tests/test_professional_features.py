"""Professional claim features (features/professional.py): given hand-written claim lines -> exact
expected features per claim; sparse feed (no units, no charges)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from claimsentry.features import professional
from claimsentry.features.assemble import BlockContext, medical_base
from claimsentry.features.header import medical_claim_header
from claimsentry.features.rules import apply_rules, load_rules
from claimsentry.schemas import MEDICAL_CLAIM
from test_pharmacy_features import typed_frame  # noqa: E402  (tests/ is on sys.path under pytest)


def line(claim_id, n, person, day, npi, code, units, charge):
    return {
        "claim_id": claim_id,
        "claim_line_number": n,
        "claim_type": "professional",
        "person_id": person,
        "claim_start_date": day,
        "claim_end_date": day,
        "place_of_service_code": "11",  # office
        "rendering_npi": npi,
        "billing_npi": "G1",
        "hcpcs_code": code,
        "service_unit_quantity": units,
        "charge_amount": charge,
        "paid_amount": 10.0,
    }


LINES = [
    # D1 bills every visit at the top level; D2 mostly 99213/99214; D3 has too few visits to compare
    line("e1", 1, "A", "2024-01-02", "D1", "99215", 1.0, None),
    line("e2", 1, "B", "2024-01-03", "D1", "99215", 1.0, None),
    line("e3", 1, "C", "2024-01-04", "D1", "99215", 1.0, None),
    line("e4", 1, "D", "2024-01-05", "D2", "99213", 1.0, None),
    line("e5", 1, "E", "2024-01-06", "D2", "99213", 1.0, None),
    line("e6", 1, "F", "2024-01-07", "D2", "99214", 1.0, None),
    line("e7", 1, "G", "2024-01-08", "D2", "99215", 1.0, None),
    line("e8", 1, "H", "2024-01-09", "D3", "99213", 1.0, None),
    # therapeutic exercise (97110): one claim with 12 units at twice the usual charge per unit
    line("u1", 1, "J", "2024-02-01", "D4", "97110", 1.0, 50.0),
    line("u2", 1, "K", "2024-02-02", "D4", "97110", 2.0, 100.0),
    line("u3", 1, "L", "2024-02-03", "D4", "97110", 2.0, 100.0),
    line("u4", 1, "M", "2024-02-04", "D4", "97110", 12.0, 1200.0),
    # venipuncture (36415) three times for one member on one day, over two claims
    line("r1", 1, "Q", "2024-03-01", "D5", "36415", 1.0, None),
    line("r1", 2, "Q", "2024-03-01", "D5", "36415", 1.0, None),
    line("r2", 1, "Q", "2024-03-01", "D6", "36415", 1.0, None),
    # an institutional claim gets no professional row
    {**line("i1", 1, "Z", "2024-03-05", "H1", "99215", 1.0, None), "claim_type": "institutional", "bill_type_code": "131"},
]
PARAMS = {"min_provider_em_lines": 2, "min_code_lines": 3, "em_window_days": 2, "min_window_em_lines": 2}
COLS = list(professional.FEATURES)
N = None
# em_high_share, em_high_share_to_peers, em_billed_top_level, em_high_share_90d_to_peers (here: the 2
# days up to the line, at least 2 lines), em_high_share_rise, units_to_code_p99, charge_to_code_median,
# same_day_repeat_count.
# E/M lines: 8 professional, 4 at 99215/99205. D1: 3/3 vs others (4-3)/(8-3) = 0.2 -> 5.0;
# D2: 1/4 vs (4-1)/(8-4) = 0.75 -> 1/3. Recent share, on top-level visits: e2 and e3 see D1's 99215s
# only (1.0 -> 5.0, no rise); e7 sees e5-e7, one 99215 in three: (1/3) / 0.75 = 4/9, a rise of
# 1/3 - 1/4. e1 has too few lines; e4-e6 and e8 are lower levels.
# 97110: p99 of units [1, 2, 2, 12] = 12; median charge/unit 50.
EXPECTED = {
    "e1": (1.0, 5.0, 1.0, N, N, 1.0, N, 0.0),
    "e2": (1.0, 5.0, 1.0, 5.0, 0.0, 1.0, N, 0.0),
    "e3": (1.0, 5.0, 1.0, 5.0, 0.0, 1.0, N, 0.0),
    "e4": (0.25, 1 / 3, 0.0, N, N, 1.0, N, 0.0),
    "e5": (0.25, 1 / 3, 0.0, N, N, 1.0, N, 0.0),  # the recent mix is set on top-level visits only
    "e6": (0.25, 1 / 3, 0.0, N, N, N, N, 0.0),  # 99214 has 1 line < min_code_lines
    "e7": (0.25, 1 / 3, 1.0, 4 / 9, 1 / 12, 1.0, N, 0.0),
    "e8": (N, N, 0.0, N, N, 1.0, N, 0.0),
    "u1": (N, N, N, N, N, 1 / 12, 1.0, 0.0),
    "u2": (N, N, N, N, N, 2 / 12, 1.0, 0.0),
    "u3": (N, N, N, N, N, 2 / 12, 1.0, 0.0),
    "u4": (N, N, N, N, N, 1.0, 2.0, 0.0),
    "r1": (N, N, N, N, N, 1.0, N, 2.0),
    "r2": (N, N, N, N, N, 1.0, N, 2.0),
}


def _ctx(spark, rows):
    lines = typed_frame(spark, MEDICAL_CLAIM, rows)
    header = medical_claim_header(lines)
    return BlockContext(
        spark=spark, tables={"medical_claim": lines}, header=header, base=medical_base(header), params=dict(PARAMS)
    )


def test_professional_features_given_expect(spark):
    ctx = _ctx(spark, LINES)
    frame, features = professional.build(ctx)
    assert features is professional.FEATURES and ctx.unavailable == []
    frame = frame.cache()
    expected = spark.createDataFrame(
        [(cid, "medical", *vals) for cid, vals in EXPECTED.items()],
        ", ".join(["claim_id string", "claim_source string"] + [f"{c} double" for c in COLS]),
    )
    assertDataFrameEqual(frame.select("claim_id", "claim_source", *COLS), expected, rtol=1e-6)
    ctx_rows = {r["claim_id"]: r for r in frame.collect()}
    u4, e1, r1 = ctx_rows["u4"], ctx_rows["e1"], ctx_rows["r1"]
    assert (u4["units_line_code"], u4["units_line_units"], u4["units_code_p99"]) == ("97110", 12.0, 12.0)
    assert (u4["charge_line_code"], u4["charge_per_unit"], u4["charge_code_median"]) == ("97110", 100.0, 50.0)
    assert e1["peer_em_high_share"] == 0.2
    assert r1["repeat_code"] == "36415" and ctx_rows["e1"]["repeat_code"] is None
    rules = [r for r in load_rules() if r["id"].startswith("PR")]
    hit_frame, _, _ = apply_rules(frame, rules)
    hits = {r["claim_id"]: sorted(r["rule_hits"]) for r in hit_frame.select("claim_id", "rule_hits").collect()}
    assert {k: v for k, v in hits.items() if v} == {
        "e1": ["PR001"], "e2": ["PR001"], "e3": ["PR001"],  # 99215 on 100% of D1's visits vs 20%
        "r1": ["PR003"], "r2": ["PR003"],  # 36415 three times on one day
    }
    frame.unpersist()


def test_reason_templates_cover_every_feature_and_name_known_columns():
    import yaml

    from claimsentry.reasons import template_fields

    conf = Path(__file__).resolve().parents[1] / "conf"
    templates = yaml.safe_load((conf / "reasons_professional.yaml").read_text())["reasons"]
    assert set(templates) == set(professional.FEATURES)
    known = set(professional.FEATURES) | set(professional.CONTEXT_COLUMNS)
    rules = yaml.safe_load((conf / "rules_professional.yaml").read_text())["rules"]
    for text in list(templates.values()) + [r["reason"] for r in rules]:
        assert template_fields(text) <= known, text
    assert all(set(r["reads"]) <= known for r in rules)


def test_sparse_feed_without_units_or_charges(spark):
    rows = [{**r, "service_unit_quantity": None, "charge_amount": None} for r in LINES]
    ctx = _ctx(spark, rows)
    frame, _ = professional.build(ctx)
    assert ctx.unavailable == ["units_to_code_p99", "charge_to_code_median"]
    counts = frame.agg(*[F.count(c).alias(c) for c in COLS]).first().asDict()
    assert counts == {
        "provider_em_high_share": 7,
        "provider_em_high_share_to_peers": 7,
        "em_billed_top_level": 8,
        "provider_em_high_share_90d_to_peers": 3,
        "provider_em_high_share_rise": 3,
        "units_to_code_p99": 0,
        "charge_to_code_median": 0,
        "same_day_repeat_count": 14,
    }


def test_em_peers_by_specialty_stop_flagging_a_high_acuity_specialty(spark):
    """A cardiologist with complex patients bills 99215 on half its visits; its cardiology peers on
    30%, the family doctors on 5%. Pooled with everyone its share is 3.2x the peers' (PR001 fires);
    against cardiologists 1.67x (it does not). An upcoding family doctor stays flagged either way.
    Too few peers, or no specialty, fall back to all providers and say so."""
    from claimsentry.features.professional import em_mix

    def visits(npi, n, high):
        return [(npi, "99215" if i < high else "99213") for i in range(n)]

    rows = visits("CX", 10, 5) + visits("U", 10, 8) + visits("Z", 10, 1) + visits("Q", 10, 1)
    for i in range(5):
        rows += visits(f"C{i}", 10, 3)
    for i in range(6):
        rows += visits(f"F{i}", 20, 1)
    lines = spark.createDataFrame(rows, "provider_npi string, hcpcs_code string")
    providers = spark.createDataFrame(
        [("CX", "cardiology", "NY"), ("U", "family_medicine", "NY"), ("Z", "dermatology", "NY")]
        + [(f"C{i}", "cardiology", "NY") for i in range(5)] + [(f"F{i}", "family_medicine", "NY") for i in range(6)],
        "npi string, specialty string, state string",
    )
    pooled = {r["provider_npi"]: r for r in em_mix(lines, min_provider_em_lines=10).collect()}
    peers = {r["provider_npi"]: r for r in em_mix(lines, min_provider_em_lines=10, providers=providers, min_specialty_peers=5).collect()}
    # pooled: CX's peers are the other 200 lines, 31 at the top level (U 8, Z 1, Q 1, C 15, F 6)
    assert pooled["CX"]["peer_em_high_share"] == pytest.approx(31 / 200)
    assert pooled["CX"]["provider_em_high_share_to_peers"] == pytest.approx(0.5 / (31 / 200))
    assert pooled["CX"]["provider_em_high_share_to_peers"] >= 3 and pooled["CX"]["peer_em_basis"] == "all providers (no provider table)"
    assert peers["CX"]["peer_em_high_share"] == pytest.approx(15 / 50) and peers["CX"]["peer_em_basis"] == "cardiology in NY"
    assert peers["CX"]["provider_em_high_share_to_peers"] == pytest.approx(0.5 / 0.3)  # < 3: PR001 no longer fires
    assert peers["U"]["provider_em_high_share_to_peers"] == pytest.approx(0.8 / (6 / 120))  # >= 3: still flagged
    assert peers["Z"]["peer_em_basis"] == "all providers (dermatology has 0 peers with enough E/M visits, fewer than 5)"
    assert peers["Q"]["peer_em_basis"] == "all providers (specialty unknown)"
    assert peers["Z"]["peer_em_high_share"] == pytest.approx(pooled["Z"]["peer_em_high_share"])
