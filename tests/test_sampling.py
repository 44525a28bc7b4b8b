"""Provider audits by sampling (issue 37): given -> expect tests of ``claimsentry.sampling`` with
numbers computed by hand in the comments, the Spark step that builds a provider's claims, and
``claimsentry audit-sample`` then ``claimsentry extrapolate`` end to end on generated claims."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from claimsentry import sampling
from claimsentry.errors import InputError
from conftest import claimsentry_cli

# Student's t quantiles from a table (not from the code under test).
T95_DF3 = 2.3533634  # t(0.95; 3)
T90_DF3 = 1.6377444  # t(0.90; 3)


def audited(rows: list[tuple]) -> pd.DataFrame:
    """A sample file as ``extrapolate`` reads it (every cell text), from
    (claim_id, stratum, stratum_size, stratum_sample_size, paid_amount, overpayment) rows."""
    cols = ["claim_id", "stratum", "stratum_size", "stratum_sample_size", "paid_amount", "overpayment"]
    frame = pd.DataFrame([[str(v) for v in r] for r in rows], columns=cols)
    frame.insert(1, "claim_source", "medical")
    return frame


def extrapolated(rows: list[tuple]) -> dict:
    return sampling.extrapolate(sampling.check_sample(audited(rows)))


# --- Extrapolation: hand-computed examples ---------------------------------------------------------


def test_simple_random_sample_with_finite_population_correction():
    # N = 10 claims, n = 4 sampled, overpayments 10, 0, 30, 20.
    # mean 15; s² = (25 + 225 + 225 + 25) / 3 = 500/3
    # point = N·mean = 150
    # SE = N·sqrt((1 − n/N)·s²/n) = 10·sqrt(0.6 · 500/3 / 4) = 10·sqrt(25) = 50
    #   (without the correction it would be 10·sqrt(500/3/4) = 64.55)
    # df = n − 1 = 3, t(0.95; 3) = 2.3533634 -> half-width 117.668
    # lower 150 − 117.668 = 32.33, upper 267.67, precision 117.668/150 = 0.784454
    # one-sided 90% lower limit (PIM): 150 − 1.6377444·50 = 68.11
    got = extrapolated([(f"c{i}", 1, 10, 4, 100, y) for i, y in enumerate([10, 0, 30, 20])])
    half = T95_DF3 * 50
    assert got["universe_size"] == 10 and got["sample_size"] == 4
    assert got["point_estimate"] == 150.0
    assert got["standard_error"] == 50.0
    assert got["degrees_of_freedom"] == 3
    assert got["lower_90"] == pytest.approx(150 - half, abs=0.006) == pytest.approx(32.33, abs=0.006)
    assert got["upper_90"] == pytest.approx(267.67, abs=0.006)
    assert got["precision"] == pytest.approx(half / 150, abs=1e-6) == pytest.approx(0.784454, abs=1e-6)
    assert got["precision_amount"] == pytest.approx(117.67, abs=0.006)
    assert got["lower_90_one_sided"] == pytest.approx(150 - T90_DF3 * 50, abs=0.006) == pytest.approx(68.11, abs=0.006)
    assert got["method"] == "simple" and got["sample_overpayment"] == 60.0
    # 32.33 is below the 60.00 found in the sample itself: said, not hidden
    assert any("below the overpayment found in the sample" in n for n in got["notes"])


def test_the_correction_shrinks_the_error_as_the_sample_nears_the_universe():
    # Same four claims from a universe of 4: a census, no sampling error, the total is known exactly.
    got = extrapolated([(f"c{i}", 1, 4, 4, 100, y) for i, y in enumerate([10, 0, 30, 20])])
    assert got["point_estimate"] == got["lower_90"] == got["upper_90"] == 60.0
    assert got["standard_error"] == 0.0 and got["precision"] == 0.0
    # From a universe of 1,000: SE = 1000·sqrt((1 − 4/1000)·(500/3)/4) = 1000·sqrt(41.5) = 6442.05
    big = extrapolated([(f"c{i}", 1, 1000, 4, 100, y) for i, y in enumerate([10, 0, 30, 20])])
    assert big["point_estimate"] == 15000.0
    assert big["standard_error"] == pytest.approx(6442.05, abs=0.006)


def test_stratified_sample_with_a_certainty_stratum_and_satterthwaite_df():
    # stratum 1: N=20, n=4, y = 0, 10, 0, 10   -> mean 5,  s² = 4·25/3 = 100/3
    # stratum 2: N=10, n=5, y = 20,40,60,40,40 -> mean 40, s² = (400+0+400+0+0)/4 = 200
    # stratum 3: N=3,  n=3, y = 100, 200, 0    -> taken whole (certainty): total 300, no variance
    # point = 20·5 + 10·40 + 300 = 800
    # a_h = N_h²(1 − n_h/N_h)/n_h: a1 = 400·0.8/4 = 80, a2 = 100·0.5/5 = 10
    # var = 80·100/3 + 10·200 = 8000/3 + 2000 = 14000/3 -> SE = 68.3130
    # Satterthwaite df = (14000/3)² / ((8000/3)²/3 + 2000²/4) = 588/91 = 6.4615
    # t(0.95; 6.4615) = 1.9186034 -> half-width 131.066; lower 668.93, upper 931.07
    # precision 131.066/800 = 0.163832
    rows = [(f"a{i}", 1, 20, 4, 50, y) for i, y in enumerate([0, 10, 0, 10])]
    rows += [(f"b{i}", 2, 10, 5, 80, y) for i, y in enumerate([20, 40, 60, 40, 40])]
    rows += [(f"c{i}", 3, 3, 3, 250, y) for i, y in enumerate([100, 200, 0])]
    got = extrapolated(rows)
    se = math.sqrt(14000 / 3)
    half = 1.9186034 * se
    assert got["method"] == "stratified" and got["strata"] == 3
    assert got["universe_size"] == 33 and got["sample_size"] == 12
    assert got["point_estimate"] == 800.0
    assert got["standard_error"] == pytest.approx(68.31, abs=0.006)
    assert got["degrees_of_freedom"] == pytest.approx(588 / 91, abs=1e-4)
    assert got["lower_90"] == pytest.approx(800 - half, abs=0.006) == pytest.approx(668.93, abs=0.006)
    assert got["upper_90"] == pytest.approx(931.07, abs=0.006)
    assert got["precision"] == pytest.approx(0.163832, abs=1e-6)
    by = {s["stratum"]: s for s in got["by_stratum"]}
    assert by["3"]["certainty"] and by["3"]["standard_error"] == 0.0 and by["3"]["estimate"] == 300.0


def test_stratified_with_one_varying_stratum_uses_its_own_degrees_of_freedom():
    # stratum 1: N=20, n=4, y = 0, 10, 0, 10 -> estimate 100, var 400·0.8·(100/3)/4 = 8000/3
    # stratum 2: N=5 taken whole, y = 100, 0, 50, 50, 0 -> 200 exactly
    # point 300; SE = sqrt(8000/3) = 51.6398; df = n1 − 1 = 3 -> half 51.6398·2.3533634 = 121.527
    rows = [(f"a{i}", 1, 20, 4, 50, y) for i, y in enumerate([0, 10, 0, 10])]
    rows += [(f"b{i}", 2, 5, 5, 150, y) for i, y in enumerate([100, 0, 50, 50, 0])]
    got = extrapolated(rows)
    assert got["point_estimate"] == 300.0 and got["degrees_of_freedom"] == 3
    assert got["lower_90"] == pytest.approx(300 - T95_DF3 * math.sqrt(8000 / 3), abs=0.006) == pytest.approx(178.47, abs=0.006)


# --- Reading an audited sample: nothing dropped, every fault named ---------------------------------


def test_bad_overpayments_are_one_error_naming_their_lines():
    rows = [(f"c{i}", 1, 10, 6, 100, y) for i, y in enumerate(["", "abc", "-5", "100.01", "12,50", "1,000"])]
    with pytest.raises(InputError) as err:
        sampling.check_sample(audited(rows), name="sample.csv")
    msg = str(err.value)
    assert "\n" not in msg
    assert "overpayment missing on line 2" in msg  # line 1 is the header
    assert "not a number on lines 3 ('abc'), 6 ('12,50')" in msg  # a decimal comma is not guessed at
    assert "negative on line 4" in msg
    assert "above the claim's paid amount on lines 5 (100.01 > 100.00), 7 (1000.00 > 100.00)" in msg


def test_sample_file_consistency_checks():
    good = [(f"c{i}", 1, 10, 3, 100, 0) for i in range(3)]
    assert len(sampling.check_sample(audited(good))) == 3
    with pytest.raises(InputError, match="has 2 rows but stratum_sample_size 3"):
        sampling.check_sample(audited(good[:2]))
    with pytest.raises(InputError, match="more than one stratum_size"):
        sampling.check_sample(audited(good[:2] + [("c9", 1, 11, 3, 100, 0)]))
    with pytest.raises(InputError, match="claim listed twice on line 4"):
        sampling.check_sample(audited(good[:2] + [("c0", 1, 10, 3, 100, 0)]))
    with pytest.raises(InputError, match="column missing: overpayment"):
        sampling.check_sample(audited(good).drop(columns="overpayment"))
    with pytest.raises(InputError, match="samples 1 of 10 claims"):
        sampling.check_sample(audited([("c0", 1, 10, 1, 100, 0)]))
    # money as auditors type it; a spreadsheet's empty trailing row is not a claim
    typed = audited([("c0", 1, 10, 2, "$1,200.00", "$1,000.50"), ("c1", 1, 10, 2, 80, "0"), ("", "", "", "", "", "")])
    typed.loc[2, "claim_source"] = ""
    got = sampling.check_sample(typed)
    assert got["overpayment"].tolist() == [1000.5, 0.0] and got["paid_amount"].tolist() == [1200.0, 80.0]


# --- Strata and allocation -------------------------------------------------------------------------


def test_dalenius_hodges_boundaries():
    # 31 claims from 10 to 110; 10 classes of width 10: [10,20) [20,30) ... [100,110]
    # counts f = 16, 9, 4, 1, 0, 0, 0, 0, 0, 1 -> sqrt f = 4, 3, 2, 1, 0, ..., 1
    # cumulative = 4, 7, 9, 10, 10, 10, 10, 10, 10, 11; K = 3 targets 11/3 = 3.67 and 7.33
    # nearest cumulative: 4 (after class 1 -> cut 20) and 7 (after class 2 -> cut 30)
    paid = [10] + [15] * 15 + [25] * 9 + [35] * 4 + [45] + [110]
    cuts = sampling.strata_bounds(paid, 3, classes=10)
    assert cuts == [20.0, 30.0]
    strata = sampling.assign_strata(paid, cuts)
    assert np.bincount(strata).tolist() == [0, 16, 9, 6]
    assert sampling.assign_strata([19.99, 20.0, 29.99, 30.0], cuts).tolist() == [1, 2, 2, 3]  # lower bound inclusive
    # paid amounts that cannot be split: fewer strata, never an empty one
    assert sampling.strata_bounds([50.0] * 10, 3) == []
    # nine claims at 10, one at 90, 40 classes of width 2: sqrt f is 3 for the first class, 1 for the
    # last; every target (1, 2, 3 of 4) is nearest the first class's 3 -> one cut, at 12
    assert sampling.strata_bounds([10.0] * 9 + [90.0], 4) == [12.0]


def test_neyman_weight_is_the_all_or_nothing_overpayment_sd():
    # paid 10 and 30: mean 20, population variance 100
    # S² = ½·100 + ¼·20² = 150 -> N·S = 2·sqrt(150) = 24.4949
    assert sampling.neyman_weight([10, 30]) == pytest.approx(24.494897, abs=1e-6)
    # all claims paid the same: still weighted by their dollars (S = ½·mean), never zero
    assert sampling.neyman_weight([40, 40, 40]) == pytest.approx(3 * 20.0)


def test_neyman_allocation():
    assert sampling.allocate([100, 100], [1, 3], 20) == [5, 15]  # proportional to N_h·S_h
    # unconstrained 2 and 18, but stratum 2 holds 4 claims: taken whole, the rest to stratum 1
    assert sampling.allocate([100, 4], [1, 9], 20) == [16, 4]
    # unconstrained 0.2 and 19.8: every stratum keeps at least 2
    assert sampling.allocate([100, 100], [1, 99], 20) == [2, 18]
    # 10/3 each: floors 3, 3, 3; the one left over goes to the lower stratum on a tie
    assert sampling.allocate([100, 100, 100], [1, 1, 1], 10) == [4, 3, 3]
    # a stratum of one claim needs (and can give) only one
    assert sampling.allocate([1, 50], [5, 1], 3) == [1, 2]
    with pytest.raises(InputError, match="too small for 3 strata"):
        sampling.allocate([10, 10, 10], [1, 1, 1], 5)
    with pytest.raises(InputError, match="larger than the universe"):
        sampling.allocate([10, 10], [1, 1], 21)


@pytest.mark.parametrize("sizes,weights,n", [([50, 30, 7], [3.0, 11.0, 40.0], 25), ([200, 200, 3, 9], [1.0, 2.0, 50.0, 0.5], 40)])
def test_allocation_properties(sizes, weights, n):
    alloc = sampling.allocate(sizes, weights, n)
    assert sum(alloc) == n
    assert all(min(2, N) <= a <= N for a, N in zip(alloc, sizes))


# --- Drawing ---------------------------------------------------------------------------------------


def universe(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fills = n // 10
    return pd.DataFrame(
        {
            "claim_source": ["medical"] * (n - fills) + ["pharmacy"] * fills,
            "claim_id": [f"C{i:05d}" for i in range(n)],
            "paid_amount": np.round(rng.lognormal(4, 1, n), 2),
            "claim_date": [dt.date(2025, 1, 1) + dt.timedelta(days=i % 300) for i in range(n)],
            "person_id": [f"P{i % 37}" for i in range(n)],
        }
    )


def test_universe_excludes_claims_paid_nothing_and_counts_them():
    claims = universe(10)
    claims.loc[[2, 5], "paid_amount"] = [0.0, -12.5]
    got, excluded = sampling.universe_of(claims.iloc[::-1])
    assert len(got) == 8 and excluded == {"claims": 2, "paid_amount": -12.5}
    assert list(got["claim_id"]) == sorted(got["claim_id"])  # (claim_source, claim_id) order


def test_same_seed_same_sample_whatever_the_row_order():
    u = universe()
    frame, sample, design = sampling.draw_sample(u, 30, strata=3, seed=11)
    shuffled = u.sample(frac=1.0, random_state=1)  # Spark returns rows in any order
    frame2, sample2, _ = sampling.draw_sample(shuffled, 30, strata=3, seed=11)
    pd.testing.assert_frame_equal(sample, sample2)
    pd.testing.assert_frame_equal(frame, frame2)
    _, other, _ = sampling.draw_sample(u, 30, strata=3, seed=12)
    assert set(other["claim_id"]) != set(sample["claim_id"])

    # the design holds: n_h per stratum as allocated, drawn from that stratum, the n_h smallest numbers
    assert design["strata_formed"] == 3 and len(sample) == 30 and frame["sampled"].sum() == 30
    for s in design["allocation"]:
        members = frame[frame["stratum"] == s["stratum"]]
        picked = sample[sample["stratum"] == s["stratum"]]
        assert len(picked) == s["sample_size"] == picked["stratum_sample_size"].iloc[0]
        assert len(members) == s["claims"] == picked["stratum_size"].iloc[0]
        assert set(picked["claim_id"]) == set(members.nsmallest(s["sample_size"], "random_number")["claim_id"])
        assert s["sample_size"] >= 2
    assert sample["sample_item"].tolist() == list(range(1, 31))
    assert sample["overpayment"].isna().all()


def test_simple_random_sample_is_one_stratum():
    frame, sample, design = sampling.draw_sample(universe(), 25, strata=None, seed=5)
    assert design["method"] == "simple random sampling" and design["strata_formed"] == 1
    assert (sample["stratum"] == 1).all() and (sample["stratum_size"] == 200).all()
    assert set(sample["claim_id"]) == set(frame.nsmallest(25, "random_number")["claim_id"])


@pytest.mark.parametrize(
    "size,strata,seed,message",
    [
        (0, None, 1, "at least 1"),
        (201, None, 1, "larger than the universe"),
        (1, None, 1, "at least 2"),
        (10, 0, 1, "--strata must be at least 1"),
        (5, 3, 1, "too small for 3 strata"),
        (10, 2, -3, "non-negative"),
    ],
)
def test_draw_sample_rejects_what_cannot_be_drawn(size, strata, seed, message):
    with pytest.raises(InputError, match=message):
        sampling.draw_sample(universe(), size, strata=strata, seed=seed)


def test_audit_files_refuse_to_overwrite_recorded_overpayments(tmp_path):
    from claimsentry.jobs.audit_sample import write_audit

    u = universe(40)
    u.loc[0, "claim_id"] = "=HYPERLINK(\"http://x\")"  # a claim id a spreadsheet would run
    frame, sample, design = sampling.draw_sample(u, 10, strata=2, seed=1)
    audit = {"audit_id": "AU-TEST", **design}
    write_audit(tmp_path, frame, sample, audit)
    first = {n: (tmp_path / n).read_bytes() for n in ("universe.csv", "sample.csv", "audit.json")}
    write_audit(tmp_path, frame, sample, audit)  # the same audit again: the same bytes
    assert {n: (tmp_path / n).read_bytes() for n in first} == first
    assert b"'=HYPERLINK" in first["universe.csv"] and b"\n=" not in first["universe.csv"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

    filled = pd.read_csv(tmp_path / "sample.csv", dtype=str, encoding="utf-8-sig")
    filled["overpayment"] = "0"
    filled.to_csv(tmp_path / "sample.csv", index=False, encoding="utf-8-sig")
    with pytest.raises(InputError, match="differs from this audit's sample"):
        write_audit(tmp_path, frame, sample, audit)
    with pytest.raises(InputError, match="already holds AU-TEST"):
        write_audit(tmp_path, frame, sample, {**audit, "audit_id": "AU-OTHER"})
    assert (tmp_path / "sample.csv").read_bytes() != first["sample.csv"]  # the auditors' file is kept


def test_extrapolate_links_only_its_own_audit(tmp_path, settings):
    from claimsentry import cases
    from claimsentry.jobs.audit_sample import freeze_audit, write_audit
    from claimsentry.jobs.extrapolate import extrapolate_file

    u = universe(60)
    frame, sample, design = sampling.draw_sample(u, 12, strata=2, seed=4)
    audit = {"audit_id": "AU-LINKED", "size": 12, "universe_size": 60, **design}
    out = tmp_path / "audit"
    write_audit(out, frame, sample, audit)
    frozen, wrote = freeze_audit(cases.history_dir(settings), frame, sample, audit)
    assert wrote and not freeze_audit(cases.history_dir(settings), frame, sample, audit)[1]  # written once
    filled = pd.read_csv(out / "sample.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    filled["overpayment"] = "0"
    filled.to_csv(out / "sample.csv", index=False, encoding="utf-8-sig")

    result = extrapolate_file(settings, out / "sample.csv")
    assert result["audit_id"] == "AU-LINKED" and result["point_estimate"] == 0.0 and result["precision"] is None
    assert json.loads((frozen / "extrapolation.json").read_text()) == result
    assert (frozen / "sample_audited.csv").read_bytes() == (out / "sample.csv").read_bytes()

    # another claim in place of a sampled one: the file is not that audit's sample any more
    filled.loc[0, "claim_id"] = "SOMEONE-ELSE"
    filled.to_csv(out / "sample.csv", index=False, encoding="utf-8-sig")
    other = extrapolate_file(settings, out / "sample.csv")
    assert other["audit_id"] is None and any("not those of audit AU-LINKED" in n for n in other["notes"])
    assert json.loads((frozen / "extrapolation.json").read_text()) == result  # the frozen result is kept


# --- Spark: one provider's claims ------------------------------------------------------------------


def test_provider_claims_one_row_per_claim(spark):
    from claimsentry.jobs.audit_sample import claims_in_period, provider_claims
    from claimsentry.schemas import MEDICAL_CLAIM, PHARMACY_CLAIM

    def frame(spec, rows):
        return spark.createDataFrame([tuple(r.get(c) for c in spec.column_names) for r in rows], spec.schema)

    npi, other = "1234567893", "1111111112"
    d = dt.date
    med = [
        # m1: two lines of the provider -> one claim paid 150
        dict(claim_id="m1", claim_line_number=1, claim_type="professional", person_id="p1", billing_npi=npi,
             claim_start_date=d(2025, 3, 1), claim_end_date=d(2025, 3, 1), paid_amount=100.0),
        dict(claim_id="m1", claim_line_number=2, claim_type="professional", person_id="p1", billing_npi=npi,
             claim_start_date=d(2025, 3, 1), claim_end_date=d(2025, 3, 1), paid_amount=50.0),
        # m2: another provider's claim
        dict(claim_id="m2", claim_line_number=1, claim_type="professional", person_id="p2", billing_npi=other,
             claim_start_date=d(2025, 3, 1), claim_end_date=d(2025, 3, 1), paid_amount=70.0),
        # m3: the provider's, outside the period
        dict(claim_id="m3", claim_line_number=1, claim_type="professional", person_id="p2", billing_npi=npi,
             claim_start_date=d(2024, 12, 31), claim_end_date=d(2024, 12, 31), paid_amount=30.0),
        # m4: one line of the provider, two of another: the claim votes to the other provider
        *[dict(claim_id="m4", claim_line_number=i, claim_type="professional", person_id="p3",
               billing_npi=npi if i == 1 else other, claim_start_date=d(2025, 4, 1),
               claim_end_date=d(2025, 4, 1), paid_amount=10.0) for i in (1, 2, 3)],
    ]
    rx = [
        dict(claim_id="r1", claim_line_number=1, person_id="p4", prescribing_provider_npi=other,
             dispensing_provider_npi=npi, dispensing_date=d(2025, 6, 30), ndc_code="00000000001",
             quantity=30.0, days_supply=30, paid_amount=12.5),
        dict(claim_id="r2", claim_line_number=1, person_id="p4", prescribing_provider_npi=other,
             dispensing_provider_npi=other, dispensing_date=d(2025, 6, 30), ndc_code="00000000001",
             quantity=30.0, days_supply=30, paid_amount=99.0),
    ]
    touched = provider_claims(frame(MEDICAL_CLAIM, med), frame(PHARMACY_CLAIM, rx), npi).toPandas()
    got = touched.sort_values(["claim_source", "claim_id"]).reset_index(drop=True)
    assert got[["claim_source", "claim_id", "paid_amount", "attributed"]].values.tolist() == [
        ["medical", "m1", 150.0, True],
        ["medical", "m3", 30.0, True],
        ["medical", "m4", 30.0, False],
        ["pharmacy", "r1", 12.5, True],
    ]
    claims, unattributed = claims_in_period(touched, d(2025, 1, 1), d(2025, 6, 30))
    assert sorted(claims["claim_id"]) == ["m1", "r1"] and unattributed == 1
    assert set(claims.columns) == set(sampling.CLAIM_COLUMNS)


# --- End to end ------------------------------------------------------------------------------------


def test_audit_sample_then_extrapolate_end_to_end(tmp_path, generated_claims, spark, capsys):
    lines = pd.read_parquet(generated_claims / "medical_claim", columns=["claim_id", "billing_npi"])
    npi = lines.drop_duplicates("claim_id")["billing_npi"].value_counts().index[0]  # the busiest provider
    env = {"CLAIMSENTRY_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "audit"
    args = ["--npi", npi, "--from", "2024-01-01", "--to", "2025-12-31", "--size", "30", "--strata", "3", "--seed", "11"]

    bad = claimsentry_cli("audit-sample", "--input", str(generated_claims), *args[:2], "--from", "2024-13-01",
                          *args[4:], "--output", str(out), env=env, cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "YYYY-MM-DD" in bad.stderr

    # in-process, as the installed command runs it (cli.main), on the session's Spark: a second JVM
    # would cost the suite ~20 s and show nothing the one-line error above did not
    from claimsentry.cli import main

    assert main(["--data-dir", str(tmp_path / "data"), "audit-sample", "--input", str(generated_claims), *args,
                 "--output", str(out)]) == 0
    audit = json.loads((out / "audit.json").read_text())
    assert audit["audit_id"].startswith("AU-") and audit["audit_id"] in capsys.readouterr().out
    universe_csv = pd.read_csv(out / "universe.csv", encoding="utf-8-sig", dtype={"claim_id": str})
    sample_csv = pd.read_csv(out / "sample.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(universe_csv) == audit["universe_size"] > 30 and universe_csv["sampled"].sum() == 30
    assert len(sample_csv) == 30 and {"claim_id", "claim_source", "paid_amount", "stratum"} <= set(sample_csv.columns)
    assert (sample_csv["overpayment"] == "").all()
    assert audit["universe_paid_amount"] == pytest.approx(universe_csv["paid_amount"].sum(), abs=0.01)
    frozen = tmp_path / "data" / "cases" / "audits" / audit["audit_id"]
    assert pd.read_parquet(frozen / "sample.parquet")["claim_id"].tolist() == sample_csv["claim_id"].tolist()

    # (the same sample whatever the input's row order: test_same_seed_same_sample_whatever_the_row_order)

    # Auditors record overpayments: half the paid amount on every other claim, 0 elsewhere.
    missing = claimsentry_cli("extrapolate", "--sample", str(out / "sample.csv"), env=env, cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "overpayment missing on lines 2, 3" in missing.stderr
    paid = sample_csv["paid_amount"].astype(float)
    over = [round(p / 2, 2) if i % 2 == 0 else 0.0 for i, p in enumerate(paid)]
    sample_csv["overpayment"] = [f"{v:.2f}" for v in over]
    sample_csv.to_csv(out / "sample.csv", index=False, encoding="utf-8-sig")
    done = claimsentry_cli("extrapolate", "--sample", str(out / "sample.csv"), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == json.loads((out / "extrapolation.json").read_text())
    assert result == json.loads((frozen / "extrapolation.json").read_text())
    assert result["audit_id"] == audit["audit_id"]
    for key in ("universe_size", "sample_size", "point_estimate", "lower_90", "upper_90", "precision"):
        assert key in result
    assert result["universe_size"] == audit["universe_size"] and result["sample_size"] == 30
    # the point estimate, recomputed here: sum over strata of N_h times the stratum's mean overpayment
    sample_csv["y"] = over
    expect = sum(int(g["stratum_size"].iloc[0]) * g["y"].mean() for _, g in sample_csv.groupby("stratum"))
    assert result["point_estimate"] == pytest.approx(expect, abs=0.01)
    assert result["lower_90"] < result["point_estimate"] < result["upper_90"]
    assert result["precision"] == pytest.approx((result["upper_90"] - result["point_estimate"]) / result["point_estimate"], abs=1e-4)
