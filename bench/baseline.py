"""The plain baseline of issue 34's side-by-side run: pandas + XGBoost, no Spark, no claimsentry code.

What a payment-integrity analyst writes in an afternoon: load the three contract tables, build
generic per-claim features (amounts and units against the code's median, per-provider and
per-member aggregates, gaps to the member's previous claim, duplicates, service after death or
outside enrollment), fit an XGBoost classifier on the audit labels of claims dated before the
evaluation period, score the evaluation period (the last quarter of claim dates). Generator truth
is never read here; nothing is tuned to it.

    python bench/baseline.py --input DIR --output SCORES.parquet   # prints timings as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["claim_id", "claim_source"]


def _read(input_dir, name: str) -> pd.DataFrame | None:
    base = Path(input_dir)
    for path in (base / name, base / f"{name}.parquet"):
        if path.exists():
            df = pd.read_parquet(path)
            break
    else:
        df = pd.read_csv(base / f"{name}.csv", dtype=str)  # codes keep their leading zeros
    numeric = ["paid_amount", "service_unit_quantity", "quantity", "days_supply", "claim_line_number", "label"]
    return df.astype({c: "float64" for c in numeric if c in df}).copy()


def evaluation_start(dates: pd.Series) -> pd.Timestamp:
    """First day of the quarter holding the latest claim date."""
    return dates.max().to_period("Q").start_time


def load_claims(input_dir) -> pd.DataFrame:
    """One row per (claim_id, claim_source): key, person_id, date and the features (float columns)."""
    m, p, e = (_read(input_dir, t) for t in ("medical_claim", "pharmacy_claim", "eligibility"))
    m["date"] = pd.to_datetime(m.claim_start_date.fillna(m.admission_date))
    m["units"] = pd.to_numeric(m.service_unit_quantity).fillna(1.0)
    m["units_ratio"] = m.units / m.groupby("hcpcs_code").units.transform("median")
    m["los"] = (pd.to_datetime(m.discharge_date) - pd.to_datetime(m.admission_date)).dt.days
    m["n_dx"] = m.filter(regex=r"^diagnosis_code_\d+$").notna().sum(axis=1)
    m = m.sort_values(["claim_id", "claim_line_number"])
    med = m.groupby("claim_id", sort=False).agg(
        person_id=("person_id", "first"), npi=("billing_npi", "first"), date=("date", "min"),
        code=("drg_code", "first"), first_hcpcs=("hcpcs_code", "first"), paid=("paid_amount", "sum"),
        lines=("claim_line_number", "size"), units=("units", "sum"), units_ratio=("units_ratio", "max"),
        los=("los", "max"), n_dx=("n_dx", "first"), modifier=("hcpcs_modifier_1", "count"),
        claim_type=("claim_type", "first"))
    med["institutional"] = (med.pop("claim_type") == "institutional").astype(float)
    med["code"] = med.code.fillna(med.pop("first_hcpcs"))
    p["date"] = pd.to_datetime(p.dispensing_date)
    rx = p.groupby("claim_id", sort=False).agg(
        person_id=("person_id", "first"), npi=("dispensing_provider_npi", "first"),
        prescriber=("prescribing_provider_npi", "first"), date=("date", "min"), code=("ndc_code", "first"),
        paid=("paid_amount", "sum"), lines=("claim_line_number", "size"), units=("quantity", "sum"),
        days_supply=("days_supply", "max"))
    c = pd.concat([med.assign(claim_source="medical"), rx.assign(claim_source="pharmacy")]).reset_index()
    c = c.sort_values(["date", "claim_source", "claim_id"], kind="stable").reset_index(drop=True)
    c["pharmacy"] = (c.claim_source == "pharmacy").astype(float)
    code = c.claim_source + ":" + c.code.fillna("?")
    for col in ("paid", "units", "los"):  # against the median of the same DRG / HCPCS / NDC
        c[f"{col}_vs_code"] = c[col] / c.groupby(code)[col].transform("median").replace(0, np.nan)
    c["per_day"] = c.units / c.days_supply.replace(0, np.nan)
    prov = c.groupby("npi")  # per-provider (billing NPI or pharmacy) aggregates
    c["prov_claims"], c["prov_members"] = prov.claim_id.transform("size"), prov.person_id.transform("nunique")
    for col in ("paid_vs_code", "units_vs_code", "los_vs_code", "n_dx"):
        c[f"prov_mean_{col}"] = prov[col].transform("mean")
    c["prov_code_share"] = c.groupby(["npi", code]).claim_id.transform("size") / c.prov_claims
    c["pair_share"] = c.groupby(["npi", "prescriber"]).claim_id.transform("size") / c.prov_claims
    c["prescriber_fills"] = c.groupby("prescriber").claim_id.transform("size")
    quarter = c.date.dt.to_period("Q")  # per-member aggregates
    c["member_claims"] = c.groupby(["person_id", "claim_source"]).claim_id.transform("size")
    c["member_q_npis"] = c.groupby(["person_id", "claim_source", quarter]).npi.transform("nunique")
    c["member_q_prescribers"] = c.groupby(["person_id", quarter]).prescriber.transform("nunique")
    for name, keys in {"same_npi": ["person_id", "npi"], "same_code": ["person_id", code]}.items():
        g = c.groupby(keys)
        c[f"gap_{name}"] = (c.date - g.date.shift()).dt.days  # gaps to the member's previous claim
        c[f"dups_{name}"] = c.groupby([*keys, "date"]).claim_id.transform("size") - 1
    c["supply_left"] = c.groupby(["person_id", code]).days_supply.shift() - c.gap_same_code.fillna(999)
    e = e.assign(start=pd.to_datetime(e.enrollment_start_date), end=pd.to_datetime(e.enrollment_end_date),
                 death=pd.to_datetime(e.death_date))
    spans = c[["person_id", "date"]].reset_index().merge(e[["person_id", "start", "end", "death"]], on="person_id")
    spans["covered"] = (spans.date >= spans.start) & (spans.date <= spans.end)
    per = spans.groupby("index").agg(covered=("covered", "any"), death=("death", "min"))
    c["outside_enrollment"] = (~per.covered.reindex(c.index, fill_value=False)).astype(float)
    c["days_after_death"] = (c.date - per.death.reindex(c.index)).dt.days
    return c.drop(columns=["npi", "prescriber", "code"])


def features(claims: pd.DataFrame) -> pd.DataFrame:
    return claims.drop(columns=[*KEY, "person_id", "date"]).astype("float64")


def run(input_dir, *, seed: int = 0, labels: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Scores of the evaluation period (claim_id, claim_source, date, score) and seconds per step."""
    import xgboost as xgb

    t, started = {}, time.perf_counter()
    claims = load_claims(input_dir)
    t["load_and_features"] = time.perf_counter() - started
    lab = pd.read_csv(labels) if labels else _read(input_dir, "labels")
    lab = lab[KEY + ["label"]].astype({"label": float}).drop_duplicates(KEY)
    claims = claims.merge(lab, on=KEY, how="left")
    cut = evaluation_start(claims.date)
    train = claims[claims.label.notna() & (claims.date < cut)]
    model = xgb.XGBClassifier(n_estimators=300, max_depth=5, learning_rate=0.05, subsample=0.8,
                              colsample_bytree=0.8, tree_method="hist", n_jobs=os.cpu_count(), random_state=seed)
    model.fit(features(train.drop(columns="label")), train.label)
    t["train"] = time.perf_counter() - started - t["load_and_features"]
    held = claims[claims.date >= cut].drop(columns="label")
    out = held[KEY + ["date"]].assign(score=model.predict_proba(features(held))[:, 1]).reset_index(drop=True)
    t["total"] = time.perf_counter() - started
    t["score"] = t["total"] - t["train"] - t["load_and_features"]
    info = {"seconds": {k: round(v, 3) for k, v in t.items()}, "train_rows": len(train),
            "train_positives": int(train.label.sum()), "evaluation_start": str(cut.date()),
            "scored_claims": len(out), "features": list(features(held.head(0)).columns)}
    return out, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="claims directory in the contract's shape, with labels")
    parser.add_argument("--output", required=True, help="Parquet file for the evaluation period's scores")
    parser.add_argument("--labels", help="labels file (default: labels in the input directory)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    scores, info = run(args.input, seed=args.seed, labels=args.labels)
    scores.to_parquet(args.output, index=False)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
