"""Build ``claimsentry/reference/drug_reference.csv.gz``: one row per 11-digit NDC (5-4-2).

Sources (public tables in ``../shared/reference/``, see their PROVENANCE.md):

- FDA National Drug Code Directory, snapshot ~2019-04-29 (``fda-ndc-directory-2019-04``):
  ``product.txt`` and ``package.txt``, tab-separated, cp1252. Only ``HUMAN PRESCRIPTION DRUG``
  products (listed ``N`` and excluded ``E`` alike: claims carry NDCs of delisted packages too).
- CDC compilation of opioids (oral MME conversion factors), benzodiazepines, stimulants, muscle
  relaxants and zolpidem, 2017 (``cdc-opioid-mme-ndc-2017``): NDCs already 11-digit text.

Columns:
    ndc_11                 11-digit NDC string (5-4-2, zero-padded), the key
    generic_name           nonproprietary (ingredient) name, lower case
    product_group          integer id of (active substances, strength, unit, dosage form, route):
                           packages of interchangeable products share it (cost peers, brand/generic)
    is_brand               1 innovator product (FDA marketing category NDA or BLA), 0 generic
                           (ANDA, NDA AUTHORIZED GENERIC); empty when unapproved/unknown
    generic_available      1 when some generic (ANDA / authorized generic) exists in the same
                           product_group, else 0
    dea_schedule           2..5 (DEA schedule CII..CV); empty = not controlled. FDA DEASCHEDULE
                           first, else the CDC DEAClassCode (its 6 = not controlled)
    is_opioid              1 for NDCs on the CDC opioid sheet (buprenorphine included, no MME factor)
    is_benzodiazepine      1 for NDCs on the CDC benzodiazepine sheet
    strength_per_unit      CDC strength of the opioid component per unit (mg, or mcg/mcg-per-hour
                           for fentanyl/buprenorphine forms); only for opioids
    mme_conversion_factor  CDC oral MME conversion factor; MME/day = strength_per_unit x
                           quantity / days_supply x factor

NDC normalisation: FDA package codes are hyphenated 10-digit codes in 4-4-2, 5-3-2 or 5-4-1 form;
the zero-padded 11-digit form pads the short segment with one zero (4-4-2 0002-0800-01 ->
00002080001; 5-3-2 12345-678-90 -> 12345067890; 5-4-1 12345-6789-0 -> 12345678900). ``normalise_ndc`` below is the plain-Python twin
of ``claimsentry.features.drug_reference.normalise_ndc`` (tests check they agree).

Usage:  python tools/build_drug_reference.py [--reference-dir ../shared/reference] [--output PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference"
DEFAULT_OUTPUT = REPO / "claimsentry" / "reference" / "drug_reference.csv.gz"
COLUMNS = [
    "ndc_11", "generic_name", "product_group", "is_brand", "generic_available", "dea_schedule",
    "is_opioid", "is_benzodiazepine", "strength_per_unit", "mme_conversion_factor",
]
# FDA marketing categories: innovator (brand) vs generic; everything else (unapproved, OTC
# monograph, medical gas) is neither and leaves is_brand empty.
BRAND_CATEGORIES = {"NDA", "BLA"}
GENERIC_CATEGORIES = {"ANDA", "NDA AUTHORIZED GENERIC"}
DEA_SCHEDULES = {"CII": "2", "CIII": "3", "CIV": "4", "CV": "5"}
CDC_SHEETS = ("Opioids", "Benzos", "Stimulants", "Muscle_Relaxants", "Misc_Zolpidem")

_HYPHENATED = re.compile(r"^(\d{4,5})-(\d{3,4})-(\d{1,2})$")


def normalise_ndc(text: str | None) -> str | None:
    """11-digit 5-4-2 NDC from a 4-4-2 / 5-3-2 / 5-4-1 / 5-4-2 hyphenated code or a digit string.

    Digit strings of 11 digits are kept; shorter digit strings (a numeric column that lost its
    leading zeros) are left-padded with zeros; anything else is None.
    """
    if text is None:
        return None
    text = text.strip()
    m = _HYPHENATED.match(text)
    if m:
        a, b, c = m.groups()
        shape = (len(a), len(b), len(c))
        if shape == (4, 4, 2):
            return "0" + a + b + c
        if shape == (5, 3, 2):
            return a + "0" + b + c
        if shape == (5, 4, 1):
            return a + b + "0" + c
        if shape == (5, 4, 2):
            return a + b + c
        return None
    if text.isdigit() and 1 <= len(text) <= 11:
        return text.zfill(11)
    return None


def _num(text: str) -> str:
    text = (text or "").strip()
    try:
        return f"{float(text):g}" if text else ""
    except ValueError:
        return ""


def read_fda(ref: Path) -> dict[str, dict]:
    """FDA prescription-drug packages keyed by 11-digit NDC."""
    def rows(name: str):
        with open(ref / "fda-ndc-directory-2019-04" / name, encoding="cp1252", newline="") as fh:
            yield from csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)

    products = {}
    for p in rows("product.txt"):
        if p["PRODUCTTYPENAME"] != "HUMAN PRESCRIPTION DRUG":
            continue
        category = p["MARKETINGCATEGORYNAME"].strip()
        products[p["PRODUCTID"]] = {
            "generic_name": " ".join(p["NONPROPRIETARYNAME"].lower().split()),
            "group_key": "fda|" + "|".join(
                " ".join(p[c].upper().split())
                for c in ("SUBSTANCENAME", "ACTIVE_NUMERATOR_STRENGTH", "ACTIVE_INGRED_UNIT", "DOSAGEFORMNAME", "ROUTENAME")
            ),
            "is_brand": "1" if category in BRAND_CATEGORIES else "0" if category in GENERIC_CATEGORIES else "",
            "dea_schedule": DEA_SCHEDULES.get(p["DEASCHEDULE"].strip(), ""),
        }
    out: dict[str, dict] = {}
    for pk in rows("package.txt"):
        product = products.get(pk["PRODUCTID"])
        ndc = normalise_ndc(pk["NDCPACKAGECODE"])
        if product is None or ndc is None:
            continue
        out.setdefault(ndc, dict(product))
    return out


def read_cdc(ref: Path) -> dict[str, dict]:
    """CDC NDCs (all sheets) keyed by 11-digit NDC with class flags, schedule and MME inputs."""
    out: dict[str, dict] = {}
    for sheet in CDC_SHEETS:
        with open(ref / "cdc-opioid-mme-ndc-2017" / f"{sheet}.csv", encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                ndc = normalise_ndc(r["NDC"])
                if ndc is None:
                    continue
                schedule = r["DEAClassCode"].strip()
                out[ndc] = {
                    "generic_name": " ".join(r["Generic_Drug_Name"].lower().split()),
                    "group_key": "cdc|" + "|".join(
                        " ".join(r[c].upper().split()) for c in ("Generic_Drug_Name", "Strength_Per_Unit", "UOM", "Master_Form")
                    ),
                    "dea_schedule": schedule if schedule in {"2", "3", "4", "5"} else "",  # 6 = not controlled
                    "is_opioid": "1" if sheet == "Opioids" else "0",
                    "is_benzodiazepine": "1" if sheet == "Benzos" else "0",
                    "strength_per_unit": _num(r["Strength_Per_Unit"]) if sheet == "Opioids" else "",
                    "mme_conversion_factor": _num(r.get("MME_Conversion_Factor", "")) if sheet == "Opioids" else "",
                }
    return out


def build_rows(ref: Path) -> list[dict]:
    """One dict per NDC (union of FDA prescription packages and CDC NDCs), sorted by ndc_11."""
    fda, cdc = read_fda(ref), read_cdc(ref)
    generic_groups = {v["group_key"] for v in fda.values() if v["is_brand"] == "0"}
    keys = sorted({v["group_key"] for v in fda.values()} | {v["group_key"] for v in cdc.values()})
    group_id = {k: i + 1 for i, k in enumerate(keys)}
    rows = []
    for ndc in sorted(set(fda) | set(cdc)):
        f, c = fda.get(ndc), cdc.get(ndc)
        base = f or c
        rows.append(
            {
                "ndc_11": ndc,
                "generic_name": base["generic_name"],
                "product_group": str(group_id[base["group_key"]]),
                "is_brand": f["is_brand"] if f else "",
                "generic_available": ("1" if f["group_key"] in generic_groups else "0") if f else "",
                "dea_schedule": (f["dea_schedule"] if f and f["dea_schedule"] else (c["dea_schedule"] if c else "")),
                "is_opioid": c["is_opioid"] if c else "0",
                "is_benzodiazepine": c["is_benzodiazepine"] if c else "0",
                "strength_per_unit": c["strength_per_unit"] if c else "",
                "mme_conversion_factor": c["mme_conversion_factor"] if c else "",
            }
        )
    return rows


def write_rows(rows: list[dict], output: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same sources give a byte-identical file
    with open(output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    rows = build_rows(args.reference_dir)
    write_rows(rows, args.output)
    count = lambda col, val="1": sum(1 for r in rows if r[col] == val)  # noqa: E731
    print(
        f"{args.output}: {len(rows)} NDCs; opioid {count('is_opioid')} (with MME factor "
        f"{sum(1 for r in rows if r['mme_conversion_factor'])}), benzodiazepine {count('is_benzodiazepine')}, "
        f"controlled {sum(1 for r in rows if r['dea_schedule'])}, brand {count('is_brand')}, "
        f"generic {count('is_brand', '0')}, brand with generic available "
        f"{sum(1 for r in rows if r['is_brand'] == '1' and r['generic_available'] == '1')}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
