"""Payment-policy edits from published reference files, each finding citing its source and version.

Schemes: ``unbundling`` (NCCI procedure-to-procedure pairs), ``mue_breach`` (NCCI medically
unlikely edits), ``add_on_without_primary`` (NCCI add-on code edits) and ``excluded_provider``
(OIG LEIE). The reference tables are the versions ``claimsentry reference add`` stored
(``claimsentry.policy.store``); without them the features are null and named unavailable.

Which NCCI setting applies to a claim (CMS applies NCCI to practitioner, outpatient hospital and
DME claims, never to inpatient stays):

- ``professional`` claims → practitioner tables;
- ``institutional`` claims whose bill type is not inpatient (not ``11x``/``12x``) → outpatient
  hospital tables;
- ``dme`` claims → the DME MUE table.

The edits, on claim lines (``medical_claim``), with the date of service the line's start date
(else the claim's):

- **PTP**: a column-2 code billed with its column-1 code for the same member, billing provider and
  date of service, the edit in effect that day (effective date ≤ date < deletion date). Modifier
  indicator ``0``: no modifier bypasses the edit; ``1``: an NCCI-associated modifier (59, XE, XP,
  XS, XU, the anatomic modifiers, 24, 25, 27, 57, 79, 91) on either line bypasses it; ``9``: the
  edit does not apply. The column-2 line is the one found.
- **MUE**: units of a code above its MUE value. MAI ``1`` (line edit): per claim line; MAI ``2``
  (date of service edit, policy: absolute) and ``3`` (date of service edit, clinical): the units
  of the code summed per member, billing provider and date of service, across claims, taken in
  claim order — the line that takes the day past the value is found, the lines before it are not
  (so the first of two claims that together exceed it stands). The version applies from its
  effective date.
- **Add-on codes**: an add-on code billed without any of its primary codes by the same provider
  for the same member on the same date of service, the pairing in effect that day. Types 1 and 3
  list their primary codes; type 2's are defined by each contractor ('CCCCC') and are not checked.
  A type 3 finding says the contractor may allow other primaries.
- **Exclusions**: a line whose billing or rendering NPI (a fill's pharmacy or prescriber) is in
  the LEIE with its exclusion date on or before the date of service, and no reinstatement or
  waiver in effect by then.

Grain of every frame returned: one row per claim (claim_id, claim_source) that some edit finds.
"""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

FEATURES: dict[str, str] = {
    "ncci_ptp_breaks": "lines of the claim that are the column-2 code of an NCCI procedure-to-procedure edit billed with its column-1 code the same day, without a modifier the edit allows",
    "ncci_mue_excess_units": "most units above an NCCI medically unlikely edit on the claim (per line for MAI 1, per member, provider and day for MAI 2 and 3)",
    "ncci_aoc_orphans": "add-on code lines of the claim billed without any of their primary codes the same day (NCCI add-on code edits, types 1 and 3)",
    "excluded_provider": "1 when a provider on the claim was excluded by the OIG (LEIE) on the date of service",
}
CONTEXT_COLUMNS: tuple[str, ...] = (
    "citations",  # every edit the claim breaks, its source, kind and version in words; '; '-joined
    "ptp_column_1_code",
    "ptp_column_2_code",
    "mue_code",
    "mue_value",
    "mue_units",
    "aoc_code",
    "leie_npi",
    "leie_exclusion_date",
)
# NCCI-associated modifiers that bypass a PTP edit whose modifier indicator is '1' (NCCI Policy
# Manual, ch. I; the anatomic modifiers E1-E4, FA-F9, TA-T9, LT, RT, LC, LD, RC, LM, RI; global
# surgery 24, 25, 57, 58, 78, 79; 27; 59 and its X{EPSU} subsets; 91).
BYPASS_MODIFIERS = (
    "59", "XE", "XP", "XS", "XU", "24", "25", "27", "57", "58", "78", "79", "91",
    "E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9",
    "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "LT", "RT", "LC", "LD", "RC", "LM", "RI",
)
SETTINGS = ("practitioner", "outpatient", "dme")
INPATIENT_BILL_TYPES = ("11", "12")  # bill type 11x hospital inpatient (Part A), 12x inpatient (Part B)


def claim_settings(lines: DataFrame, header: DataFrame) -> DataFrame:
    """Lines with their NCCI setting and date of service (``ncci_setting`` null: no NCCI edit
    applies, e.g. an inpatient stay). Grain: one row per claim line."""
    bill = F.substring(F.coalesce(F.col("bill_type_code"), F.lit("")), 1, 2) if "bill_type_code" in header.columns else F.lit("")
    kinds = header.select("claim_id", F.lower(F.col("claim_type")).alias("_type"), bill.alias("_bill"))
    setting = (
        F.when(F.col("_type") == "professional", "practitioner")
        .when((F.col("_type") == "institutional") & ~F.col("_bill").isin(*INPATIENT_BILL_TYPES), "outpatient")
        .when(F.col("_type") == "dme", "dme")
    )
    mods = [F.upper(F.col(c)) for c in (f"hcpcs_modifier_{i}" for i in range(1, 6)) if c in lines.columns]
    return lines.join(kinds, "claim_id", "left").select(
        "claim_id", "claim_line_number", "person_id", "billing_npi",
        F.col("rendering_npi") if "rendering_npi" in lines.columns else F.lit(None).cast("string").alias("rendering_npi"),
        F.upper(F.col("hcpcs_code")).alias("code"),
        F.coalesce(F.col("service_unit_quantity"), F.lit(1.0)).alias("units"),
        F.coalesce(F.col("claim_line_start_date"), F.col("claim_start_date")).alias("dos"),
        F.array_compact(F.array(*mods)).alias("modifiers") if mods else F.array().cast("array<string>").alias("modifiers"),
        setting.alias("ncci_setting"),
    )


def _in_effect(dos, start, end):
    """``start`` ≤ dos < ``end`` (end null: open)."""
    return (F.col(start) <= dos) & (F.col(end).isNull() | (dos < F.col(end)))


def _codes_used(ref: DataFrame, lines: DataFrame, *cols: str) -> DataFrame:
    """The reference rows whose codes the claims use: the real tables are large, the codes billed few."""
    used = lines.select(F.col("code").alias("_code")).distinct()
    for c in cols:
        ref = ref.join(F.broadcast(used.withColumnRenamed("_code", c)), c, "left_semi")
    return ref


def ptp_findings(lines: DataFrame, ptp: DataFrame, *, setting: str, source: str) -> DataFrame:
    """Column-2 lines of PTP pairs billed without an allowed bypass. One row per claim found:
    ncci_ptp_breaks, the first pair's codes, and its citations."""
    mine = lines.where(F.col("ncci_setting") == setting).where(F.col("code").isNotNull())
    edits = _codes_used(ptp.where(F.col("modifier_indicator").isin("0", "1")), mine, "column_1_code", "column_2_code")
    one = mine.select(*[F.col(c).alias(f"a_{c}") for c in ("person_id", "billing_npi", "dos", "code", "modifiers")])
    pairs = (
        mine.join(F.broadcast(edits), mine["code"] == edits["column_2_code"])
        .join(one, (F.col("a_person_id") == F.col("person_id")) & (F.col("a_billing_npi") == F.col("billing_npi"))
              & (F.col("a_dos") == F.col("dos")) & (F.col("a_code") == F.col("column_1_code")))
        .where(_in_effect(F.col("dos"), "effective_date", "deletion_date"))
    )
    bypass = F.array(*[F.lit(m) for m in BYPASS_MODIFIERS])
    allowed = (F.col("modifier_indicator") == "1") & (
        F.arrays_overlap(F.col("modifiers"), bypass) | F.arrays_overlap(F.col("a_modifiers"), bypass)
    )
    found = pairs.where(~allowed).select(
        "claim_id", "claim_line_number", "column_1_code", "column_2_code", "modifier_indicator",
        F.concat(
            F.lit(f"{source}: "), F.col("column_2_code"), F.lit(" is column 2 to "), F.col("column_1_code"),
            F.lit(" on the same day, modifier indicator "), F.col("modifier_indicator"),
            F.when(F.col("modifier_indicator") == "1", F.lit(", no 59/XE/XP/XS/XU or other NCCI modifier billed"))
            .otherwise(F.lit(" (no modifier bypasses it)")),
        ).alias("citation"),
    )
    first = Window.partitionBy("claim_id").orderBy("claim_line_number", "column_1_code")
    return (
        found.withColumn("_n", F.row_number().over(first))
        .groupBy("claim_id")
        .agg(
            F.countDistinct("claim_line_number").cast("double").alias("ncci_ptp_breaks"),
            F.max(F.when(F.col("_n") == 1, F.col("column_1_code"))).alias("ptp_column_1_code"),
            F.max(F.when(F.col("_n") == 1, F.col("column_2_code"))).alias("ptp_column_2_code"),
            F.array_sort(F.collect_set("citation")).alias("_citations"),
        )
    )


def mue_findings(lines: DataFrame, mue: DataFrame, *, setting: str, source: str, effective_from) -> DataFrame:
    """Units above the MUE. One row per claim found: ncci_mue_excess_units (the most units above
    a value on the claim), the code, value and units of that finding, and citations."""
    mine = lines.where(F.col("ncci_setting") == setting).where(F.col("code").isNotNull())
    if effective_from is not None:
        mine = mine.where(F.col("dos") >= F.lit(effective_from).cast("date"))
    edits = _codes_used(mue, mine.withColumnRenamed("code", "code"), "hcpcs_code")
    joined = mine.join(F.broadcast(edits), mine["code"] == edits["hcpcs_code"])
    # Per day, the lines are adjudicated in claim order: the units that fit pay, the line that
    # takes the day past the value is the one found (the first claim of a day is not).
    day = ["person_id", "billing_npi", "dos", "code"]
    so_far = F.sum("units").over(Window.partitionBy(*day).orderBy("claim_id", "claim_line_number")
                                 .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    line_edit = F.col("mue_adjudication_indicator") == "1"
    units = F.when(line_edit, F.col("units")).otherwise(F.sum("units").over(Window.partitionBy(*day)))
    excess = F.when(line_edit, F.col("units") - F.col("mue_value")).otherwise(
        F.least(F.col("units"), so_far - F.col("mue_value")))
    mai_words = {"1": "per line", "2": "per day", "3": "per day"}
    found = joined.select("*", units.alias("_units"), excess.alias("_excess")).where(F.col("_excess") > 0).select(
        "claim_id", "code", "mue_value", "_units", "mue_adjudication_indicator", "_excess",
        F.concat(
            F.lit(f"{source}: "), F.col("code"), F.lit(" allows "), F.col("mue_value").cast("string"), F.lit(" units "),
            F.coalesce(*[F.when(F.col("mue_adjudication_indicator") == k, F.lit(v)) for k, v in mai_words.items()], F.lit("")),
            F.lit(" (MAI "), F.col("mue_adjudication_indicator"), F.lit(")"),
            F.lit(", billed "), F.regexp_replace(F.format_number(F.col("_units"), 2), r"\.?0+$", ""),
        ).alias("citation"),
    )
    worst = Window.partitionBy("claim_id").orderBy(F.col("_excess").desc(), "code")
    return (
        found.withColumn("_n", F.row_number().over(worst))
        .groupBy("claim_id")
        .agg(
            F.max("_excess").cast("double").alias("ncci_mue_excess_units"),
            F.max(F.when(F.col("_n") == 1, F.col("code"))).alias("mue_code"),
            F.max(F.when(F.col("_n") == 1, F.col("mue_value"))).cast("double").alias("mue_value"),
            F.max(F.when(F.col("_n") == 1, F.col("_units"))).cast("double").alias("mue_units"),
            F.array_sort(F.collect_set("citation")).alias("_citations"),
        )
    )


def aoc_findings(lines: DataFrame, aoc: DataFrame, *, source: str) -> DataFrame:
    """Add-on code lines with none of their primary codes the same day. One row per claim found."""
    mine = lines.where(F.col("ncci_setting").isNotNull()).where(F.col("code").isNotNull())
    pairs = aoc.where(F.col("aoc_edit_type").isin("1", "3") & ~F.col("contractor_defined_primary"))
    pairs = _codes_used(pairs, mine, "add_on_code")
    addon_lines = mine.join(F.broadcast(pairs), mine["code"] == pairs["add_on_code"]).where(
        _in_effect(F.col("dos"), "effective_date", "deletion_date")
    )
    day = mine.select(
        F.col("person_id").alias("p_person_id"), F.col("billing_npi").alias("p_billing_npi"),
        F.col("dos").alias("p_dos"), F.col("code").alias("p_code"),
    ).distinct()
    with_primary = addon_lines.join(
        day,
        (F.col("p_person_id") == F.col("person_id")) & (F.col("p_billing_npi") == F.col("billing_npi"))
        & (F.col("p_dos") == F.col("dos")) & (F.col("p_code") == F.col("primary_code")),
        "left",
    )
    per_line = with_primary.groupBy("claim_id", "claim_line_number", "code").agg(
        F.max(F.col("p_code").isNotNull().cast("int")).alias("_has_primary"),
        F.array_sort(F.collect_set("primary_code")).alias("_primaries"),
        F.max("aoc_edit_type").alias("_type"),
    ).where(F.col("_has_primary") == 0)
    cited = per_line.select(
        "claim_id", "claim_line_number", "code",
        F.concat(
            F.lit(f"{source}: "), F.col("code"), F.lit(" is an add-on code billed without a primary code ("),
            F.concat_ws(", ", F.slice(F.col("_primaries"), 1, 6)),
            F.when(F.size("_primaries") > 6, F.lit(", …")).otherwise(F.lit("")),
            F.lit(") the same day, type "), F.col("_type"),
            F.when(F.col("_type") == "3", F.lit("; the contractor may allow other primaries")).otherwise(F.lit("")),
        ).alias("citation"),
    )
    return cited.groupBy("claim_id").agg(
        F.countDistinct("claim_line_number").cast("double").alias("ncci_aoc_orphans"),
        F.min("code").alias("aoc_code"),
        F.array_sort(F.collect_set("citation")).alias("_citations"),
    )


def exclusion_findings(services: DataFrame, leie: DataFrame, *, source: str) -> DataFrame:
    """Services by an excluded provider. ``services``: one row per (claim_id, claim_source, npi,
    dos) for every provider role on a claim. One row per claim found (claim_id, claim_source)."""
    excluded = leie.where(F.col("npi").isNotNull() & F.col("exclusion_date").isNotNull()).select(
        F.col("npi").alias("_npi"), "exclusion_date", "reinstatement_date", "waiver_date", "exclusion_type"
    )
    hit = services.join(F.broadcast(excluded), services["npi"] == excluded["_npi"]).where(
        (F.col("exclusion_date") <= F.col("dos"))
        & (F.col("reinstatement_date").isNull() | (F.col("dos") < F.col("reinstatement_date")))
        & (F.col("waiver_date").isNull() | (F.col("dos") < F.col("waiver_date")))
    )
    cited = hit.select(
        "claim_id", "claim_source", "npi", "exclusion_date",
        F.concat(
            F.lit(f"{source}: "), F.col("npi"), F.lit(" excluded "), F.date_format("exclusion_date", "yyyy-MM-dd"),
            F.lit(" ("), F.coalesce(F.col("exclusion_type"), F.lit("type not given")), F.lit("), not reinstated by the date of service"),
        ).alias("citation"),
    )
    first = Window.partitionBy("claim_id", "claim_source").orderBy("exclusion_date", "npi")
    return (
        cited.withColumn("_n", F.row_number().over(first))
        .groupBy("claim_id", "claim_source")
        .agg(
            F.lit(1.0).alias("excluded_provider"),
            F.max(F.when(F.col("_n") == 1, F.col("npi"))).alias("leie_npi"),
            F.max(F.when(F.col("_n") == 1, F.date_format("exclusion_date", "yyyy-MM-dd"))).alias("leie_exclusion_date"),
            F.array_sort(F.collect_set("citation")).alias("_citations"),
        )
    )


def provider_services(lines: DataFrame, rx: DataFrame | None) -> DataFrame:
    """Every provider role on every claim with its date of service. Grain: one row per claim_id,
    claim_source, npi and dos."""
    roles = [lines.select("claim_id", F.lit("medical").alias("claim_source"), F.col(c).alias("npi"), "dos")
             for c in ("billing_npi", "rendering_npi")]
    if rx is not None:
        roles += [rx.select("claim_id", F.lit("pharmacy").alias("claim_source"), F.col(c).alias("npi"), F.col("dispensing_date").alias("dos"))
                  for c in ("dispensing_provider_npi", "prescribing_provider_npi")]
    out = roles[0]
    for r in roles[1:]:
        out = out.unionByName(r)
    return out.where(F.col("npi").isNotNull()).distinct()


def policy_features(lines: DataFrame, header: DataFrame, rx: DataFrame | None, references: Mapping) -> tuple[DataFrame | None, list[str]]:
    """One row per claim (claim_id, claim_source) that breaks an edit: ``FEATURES`` and
    ``CONTEXT_COLUMNS``. ``references``: ``claimsentry.policy.store.load_current`` (keys
    'ncci-ptp/practitioner', 'ncci-mue/dme', 'ncci-aoc', 'leie', ...). Returns the frame (None
    when no reference is loaded) and the features no loaded reference can compute."""
    set_lines = claim_settings(lines, header)
    medical: list[DataFrame] = []
    have: set[str] = set()
    for setting in SETTINGS:
        ptp = references.get(f"ncci-ptp/{setting}")
        if ptp is not None:
            have.add("ncci_ptp_breaks")
            medical.append(ptp_findings(set_lines, ptp.rows, setting=setting, source=ptp.source))
        mue = references.get(f"ncci-mue/{setting}")
        if mue is not None:
            have.add("ncci_mue_excess_units")
            medical.append(mue_findings(set_lines, mue.rows, setting=setting, source=mue.source,
                                        effective_from=mue.manifest.get("effective_from")))
    if references.get("ncci-aoc") is not None:
        have.add("ncci_aoc_orphans")
        medical.append(aoc_findings(set_lines, references["ncci-aoc"].rows, source=references["ncci-aoc"].source))
    frames = [f.withColumn("claim_source", F.lit("medical")) for f in medical]
    if references.get("leie") is not None:
        have.add("excluded_provider")
        frames.append(exclusion_findings(provider_services(set_lines, rx), references["leie"].rows, source=references["leie"].source))
    missing = [f for f in FEATURES if f not in have]
    if not frames:
        return None, missing
    cols = [*FEATURES, *[c for c in CONTEXT_COLUMNS if c != "citations"]]
    typed = {"mue_value": "double", "mue_units": "double", **{f: "double" for f in FEATURES}}
    aligned = [
        f.select("claim_id", "claim_source", "_citations",
                 *[(F.col(c) if c in f.columns else F.lit(None)).cast(typed.get(c, "string")).alias(c) for c in cols])
        for f in frames
    ]
    out = aligned[0]
    for f in aligned[1:]:
        out = out.unionByName(f)
    return (
        out.groupBy("claim_id", "claim_source").agg(
            *[F.max(c).alias(c) for c in cols],
            F.concat_ws("; ", F.array_sort(F.array_distinct(F.flatten(F.collect_list("_citations"))))).alias("citations"),
        ),
        missing,
    )


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``). Claims no edit finds get 0
    for the counts where the reference is loaded (nothing found), null where it is not. Without
    any reference: None (``build_claim_features`` adds the columns, all null)."""
    references = getattr(ctx, "references", None) or {}
    frame, missing = policy_features(ctx.tables["medical_claim"], ctx.header, ctx.tables.get("pharmacy_claim"), references)
    ctx.unavailable.extend(f for f in missing if f not in ctx.unavailable)
    present = [f for f in FEATURES if f not in missing]
    if frame is None:  # no reference loaded: nothing to join; assemble adds the columns as nulls
        return None, FEATURES
    base = ctx.base.select("claim_id", "claim_source")
    out = base.join(frame, ["claim_id", "claim_source"], "left")
    out = out.fillna(0.0, subset=present).select(
        "claim_id", "claim_source",
        *[(F.lit(None).cast("double") if f in missing else F.col(f)).alias(f) for f in FEATURES],
        *CONTEXT_COLUMNS,
    )
    return out, FEATURES
