"""Audit labels, deliberate contract breaks (dirty rows) and writing tables as Parquet or CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from claimsentry.generate.world import AUDIT_CLEAN_PER_IMPROPER, AUDIT_SHARE_IMPROPER, NULL_DAY, Providers
from claimsentry.schemas import TableSpec


# ---------------------------------------------------------------------------------- labels, dirt

def audit_labels(rng: np.random.Generator, claims: pd.DataFrame, *, audited_before: int | None = None,
                 outcomes_by: int | None = None) -> pd.DataFrame:
    """Past audit outcomes for one chunk. ``claims``: one row per claim (claim_id, claim_source,
    claim_day, paid_amount, improper). ~37% of improper claims are audited (label 1, part of the
    money recovered); ~2.5x as many clean claims are audited (label 0), picked with probability
    growing with the paid amount, as auditors chase money. Only claims before ``audited_before`` are
    audited, and an outcome comes 60-365 days after the claim: outcomes after ``outcomes_by`` (the end
    of the data) are not known yet, so the newest months hold few labels, as in real audit data."""
    improper = claims.improper.to_numpy()
    auditable = np.ones(len(claims), dtype=bool) if audited_before is None else claims.claim_day.to_numpy() < audited_before
    bad = np.flatnonzero(improper & auditable & (rng.random(len(claims)) < AUDIT_SHARE_IMPROPER))
    clean = np.flatnonzero(~improper & auditable)
    n_clean = min(len(clean), int(round(AUDIT_CLEAN_PER_IMPROPER * len(bad))))
    w = np.sqrt(np.maximum(claims.paid_amount.to_numpy()[clean], 1.0))
    good = np.sort(rng.choice(clean, n_clean, replace=False, p=w / w.sum())) if n_clean else clean[:0]
    pick = np.r_[bad, good]
    label = np.r_[np.ones(len(bad), np.int32), np.zeros(len(good), np.int32)]
    paid = claims.paid_amount.to_numpy()[pick]
    out = pd.DataFrame({
        "claim_id": claims.claim_id.to_numpy()[pick], "claim_source": claims.claim_source.to_numpy()[pick],
        "label": label, "outcome_date": claims.claim_day.to_numpy()[pick] + rng.integers(60, 366, len(pick)),
        "recovered_amount": np.where(label == 1, np.round(paid * rng.uniform(0.6, 1.0, len(pick)), 2), 0.0),
    })
    if outcomes_by is not None:
        out = out[out.outcome_date <= outcomes_by]
    return out.sort_values(["claim_source", "claim_id"]).reset_index(drop=True)


def _as_strings(table: pa.Table) -> pd.DataFrame:
    import pyarrow.compute as pc

    return pa.table({c: pc.cast(table[c], pa.string()) for c in table.column_names}).to_pandas()


def make_dirty(rng: np.random.Generator, df: pd.DataFrame, spec: TableSpec, fraction: float,
               protected: np.ndarray) -> tuple[pd.DataFrame, int]:
    """Break ``fraction`` of the rows of an all-string frame (rows of ``protected`` claims/people are
    left alone): blank required field, unparseable date, negative or text amount, end before start,
    or a duplicate key (an extra copy of the row). Returns the frame and the number of broken rows."""
    eligible = np.flatnonzero(~protected)
    k = min(len(eligible), int(round(fraction * len(df))))
    if k == 0:
        return df, 0
    rows = np.sort(rng.choice(eligible, k, replace=False))
    kind = rng.integers(0, 5, k)  # 0 blank, 1 bad date, 2 bad amount, 3 end before start, 4 duplicate key
    df = df.copy()
    pairs = {"medical_claim": ("claim_start_date", "claim_end_date"),
             "eligibility": ("enrollment_start_date", "enrollment_end_date")}
    if "paid_amount" not in df:
        kind[kind == 2] = 4
    if spec.name not in pairs:
        kind[kind == 3] = 4
    required = [c for c in spec.required if c not in spec.key]
    dates = [c for c, t in spec.columns if c in spec.required and str(t) == "DateType()"]
    col_of = rng.integers(0, 1 << 30, k)
    for col_i, col in enumerate(required):  # blank one required field
        hit = rows[(kind == 0) & (col_of % len(required) == col_i)]
        df.loc[hit, col] = None
    for col_i, col in enumerate(dates):  # a date that does not parse
        hit = rows[(kind == 1) & (col_of % len(dates) == col_i)]
        df.loc[hit, col] = "2024-13-45"
    hit = rows[kind == 2]  # an amount that is text or negative
    if len(hit):
        df.loc[hit, "paid_amount"] = np.where(rng.random(len(hit)) < 0.5, "N/A", "-" + df.loc[hit, "paid_amount"].astype(str))
    if spec.name in pairs:  # start moved 3-30 days after the end
        a, b = pairs[spec.name]
        hit = rows[kind == 3]
        ends = pd.to_datetime(df.loc[hit, b]).to_numpy().astype("datetime64[D]")
        df.loc[hit, a] = (ends + rng.integers(3, 31, len(hit)).astype("timedelta64[D]")).astype(str)
    dup = rows[kind == 4]  # an extra copy of the row: a duplicate key
    out = pd.concat([df, df.iloc[dup]]).sort_index(kind="stable").reset_index(drop=True)
    return out, k


# ---------------------------------------------------------------------------------------- writing

_ARROW = {"StringType()": pa.string(), "DateType()": pa.date32(), "DoubleType()": pa.float64(),
          "IntegerType()": pa.int32()}


def to_arrow(df: pd.DataFrame, spec: TableSpec) -> pa.Table:
    """The frame as an Arrow table with every contract column, typed per ``claimsentry.schemas``
    (dates held as day numbers become date32; absent columns are typed nulls)."""
    arrays = {}
    for col, typ in spec.columns:
        at = _ARROW[str(typ)]
        if col not in df:
            arrays[col] = pa.nulls(len(df), at)
            continue
        v = df[col].to_numpy()
        if at == pa.date32():
            days = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(dtype=float)
            mask = np.isnan(days) | (days == float(NULL_DAY))
            arrays[col] = pa.array(np.where(mask, 0, days).astype(np.int32), mask=mask).cast(pa.date32())
        elif at == pa.string():
            arrays[col] = pa.array(v.astype(object) if v.dtype != object else v, type=pa.string(), from_pandas=True)
        else:
            arrays[col] = pa.array(pd.to_numeric(pd.Series(v)).to_numpy(dtype=float), from_pandas=True).cast(at)
    return pa.table(arrays)


class _TableWriter:
    """Appends chunks of one table: a Parquet part file per chunk, or rows appended to one CSV."""

    def __init__(self, out: Path, name: str, fmt: str) -> None:
        self.name, self.fmt, self.part = name, fmt, 0
        if fmt == "parquet":
            self.path = out / name
            self.path.mkdir(parents=True, exist_ok=True)
        else:
            self.path = out / f"{name}.csv"

    def write(self, table: pa.Table | pd.DataFrame) -> None:
        if self.fmt == "parquet":
            if isinstance(table, pd.DataFrame):
                table = pa.Table.from_pandas(table, preserve_index=False,
                                             schema=pa.schema([(c, pa.string()) for c in table.columns]))
            pq.write_table(table, self.path / f"part-{self.part:05d}.parquet")
        else:
            pdf = table if isinstance(table, pd.DataFrame) else _as_strings(table)
            pdf.to_csv(self.path, mode="w" if self.part == 0 else "a", header=self.part == 0, index=False)
        self.part += 1


def provider_labels(rng: np.random.Generator, prov: Providers, truth: pd.DataFrame, end: int) -> pd.DataFrame:
    """One row per labelled provider: about half of the providers behind injected claims (label 1,
    dated in the last months of the period) and 1.5x as many clean providers (label 0)."""
    late = set().union(*prov.late.values()) if prov.late else set()
    bad = np.array(sorted(set(truth.npi.dropna()) - late), dtype=object)  # the late ones are unknown
    bad = bad[rng.random(len(bad)) < 0.5] if len(bad) > 1 else bad
    everyone = np.concatenate([prov.hospitals, prov.physicians.npi.to_numpy(), prov.pharmacies])
    all_bad = set(truth.npi.dropna()) | set(prov.fraud.get("_colluding_prescriber", []))
    clean = np.array(sorted(set(everyone) - all_bad), dtype=object)
    good = np.sort(rng.choice(clean, min(len(clean), int(round(1.5 * len(bad)))), replace=False))
    npi = np.r_[bad, good]
    days = end - rng.integers(0, 120, len(npi))
    return pd.DataFrame({"npi": npi, "label": np.r_[np.ones(len(bad), int), np.zeros(len(good), int)],
                         "label_date": days.astype("datetime64[D]").astype(str)})
