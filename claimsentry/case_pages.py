"""Static HTML pages an auditor works a case from: one per queued claim, one per queued provider.

A run writes ``cases/<case_id>.html`` for every claim of its queue and ``providers/<npi>.html``
for every provider of its provider queue; the queue page links to both. A case page shows:

- the claim's lines and codes (medical: dates, HCPCS and modifiers, units, DRG, diagnoses, paid;
  pharmacy: the fill, NDC, quantity, days' supply, prescriber and pharmacy);
- the member's other claims in the look-back (``features.rx_window_days`` before the claim to
  ``features.readmit_long_days`` after), nearest first, with the ones a finding names marked: the
  duplicate, the near duplicate, the stay it overlaps;
- the provider against its peers, as the claim's features measured them (provider value next to
  the peer value), the rules hit with their scheme and citation, and the reasons;
- the case's timeline as of the run (``claimsentry cases show`` prints the live one).

Pages are self-contained (no script, no network, no assets), every value escaped by Jinja2's
autoescape. Frames gathered from Spark are bounded by the queue capacities: the queued claims'
lines, their members' claims in the window (at most ``max_member_claims`` per case), the queued
providers' top claims.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
from jinja2 import Environment, FunctionLoader, select_autoescape

# (provider or claim value, peer value, label): pairs of scored_claims columns a page compares
PEER_PAIRS = [
    ("provider_em_high_share", "peer_em_high_share", "share of E/M visits at the top level", "pct"),
    ("prescriber_opioid_share", "peer_opioid_share", "prescriber's opioid share of fills", "pct"),
    ("prescriber_mean_mme_per_day", "peer_mean_mme_per_day", "prescriber's mean MME per day", "num"),
    ("cost_per_unit", "peer_cost_per_unit", "drug cost per unit", "money"),
    ("facility_top_severity_share", "peer_top_severity_share", "facility's share of stays at the top severity", "pct"),
    ("los_days", "drg_peer_median_los_days", "length of stay (days) vs the DRG's peer median", "num"),
    ("los_days", "drg_gmlos_days", "length of stay (days) vs the DRG's geometric mean LOS", "num"),
    ("amount_paid", "drg_peer_median_paid", "paid vs the DRG's peer median", "money"),
    ("charge_per_unit", "charge_code_median", "charge per unit vs the code's median", "money"),
    ("units_line_units", "units_code_p99", "units on the line vs the code's 99th percentile", "num"),
]
# scored_claims columns that name another claim a finding refers to -> what that claim is
RELATED_COLUMNS = {
    "duplicate_of_claim_id": "exact duplicate",
    "near_duplicate_of_claim_id": "near duplicate",
    "overlapping_claim_id": "overlapping stay",
}
MEDICAL_LINE_COLUMNS = [
    "claim_line_number", "claim_line_start_date", "claim_line_end_date", "hcpcs_code", "hcpcs_modifier_1",
    "hcpcs_modifier_2", "service_unit_quantity", "revenue_center_code", "place_of_service_code", "drg_code",
    "rendering_npi", "charge_amount", "allowed_amount", "paid_amount",
]
PHARMACY_LINE_COLUMNS = [
    "claim_line_number", "dispensing_date", "ndc_code", "quantity", "days_supply", "refills",
    "prescribing_provider_npi", "dispensing_provider_npi", "paid_amount",
]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def page_name(key: str) -> str:
    """A file name for a case id or NPI that cannot leave its folder."""
    return _SAFE_NAME.sub("_", str(key)) + ".html"


@dataclass
class PageData:
    """What the pages show, gathered once per run (pandas, bounded).

    ``lines``: the queued claims' lines (one row per claim line; claim_source, claim_id, line columns).
    ``member_claims``: per case, the member's other claims in the window (one row per case_id and
    other claim). ``provider_claims``: per queued provider, its highest-scored claims of the run
    (one row per npi and claim)."""

    lines: pd.DataFrame
    member_claims: pd.DataFrame
    provider_claims: pd.DataFrame


def gather(spark, tables: Mapping[str, Any], scored, queued: pd.DataFrame, providers: pd.DataFrame, *,
           before_days: int, after_days: int, max_member_claims: int, max_provider_claims: int) -> PageData:
    """Collect the bounded frames the pages need. ``tables``: the gate's accepted tables (Spark);
    ``scored``: scored_claims (Spark); ``queued``: the queued claims with every scored column
    (pandas); ``providers``: the provider queue (pandas)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = queued[["case_id", "claim_id", "claim_source", "person_id", "claim_date"]].copy()
    keys["claim_date"] = pd.to_datetime(keys["claim_date"]).dt.date
    keys_df = spark.createDataFrame(keys.astype({"case_id": str, "claim_id": str, "claim_source": str, "person_id": str}),
                                    "case_id string, claim_id string, claim_source string, person_id string, claim_date date")
    medical, pharmacy = tables.get("medical_claim"), tables.get("pharmacy_claim")

    def col(df, name: str):  # contract tables carry every column; hand-made test frames may not
        return F.col(name) if name in df.columns else F.lit(None).cast("string")

    line_frames, claim_frames = [], []
    if medical is not None:
        cols = [c for c in MEDICAL_LINE_COLUMNS if c in medical.columns]
        dx = [c for c in medical.columns if re.fullmatch(r"diagnosis_code_\d+", c)][:12]
        line_frames.append(
            medical.join(F.broadcast(keys_df.where(F.col("claim_source") == "medical").select("claim_id")), "claim_id")
            .select(F.lit("medical").alias("claim_source"), "claim_id", *cols,
                    F.concat_ws(" ", *[F.col(c) for c in dx]).alias("diagnoses"))
        )
        claim_frames.append(
            medical.groupBy("claim_id").agg(
                F.lit("medical").alias("claim_source"),
                F.max("person_id").alias("person_id"),
                F.max("claim_type").alias("claim_type"),
                F.min("claim_start_date").alias("start_date"),
                F.max("claim_end_date").alias("end_date"),
                F.max("billing_npi").alias("provider_npi"),
                F.concat_ws(" ", F.slice(F.array_sort(F.collect_set(F.coalesce(col(medical, "hcpcs_code"), col(medical, "drg_code")))), 1, 8)).alias("codes"),
                F.sum("paid_amount").alias("paid_amount"),
            )
        )
    if pharmacy is not None:
        cols = [c for c in PHARMACY_LINE_COLUMNS if c in pharmacy.columns]
        line_frames.append(
            pharmacy.join(F.broadcast(keys_df.where(F.col("claim_source") == "pharmacy").select("claim_id")), "claim_id")
            .select(F.lit("pharmacy").alias("claim_source"), "claim_id", *cols)
        )
        claim_frames.append(
            pharmacy.groupBy("claim_id").agg(
                F.lit("pharmacy").alias("claim_source"),
                F.max("person_id").alias("person_id"),
                F.lit("pharmacy").alias("claim_type"),
                F.min("dispensing_date").alias("start_date"),
                F.max(F.date_add("dispensing_date", F.coalesce(F.col("days_supply"), F.lit(1)) - 1)).alias("end_date"),
                F.max("dispensing_provider_npi").alias("provider_npi"),
                F.concat_ws(" ", F.array_sort(F.collect_set("ndc_code"))).alias("codes"),
                F.sum("paid_amount").alias("paid_amount"),
            )
        )
    lines = pd.concat([f.toPandas() for f in line_frames], ignore_index=True) if line_frames else pd.DataFrame()

    member_claims = pd.DataFrame()
    if claim_frames:
        claims = claim_frames[0]
        for extra in claim_frames[1:]:
            claims = claims.unionByName(extra, allowMissingColumns=True)
        anchors = keys_df.select("case_id", F.col("claim_id").alias("_anchor_id"), F.col("claim_source").alias("_anchor_source"),
                                 "person_id", F.col("claim_date").alias("_anchor_date"))
        near = (
            claims.join(F.broadcast(anchors), "person_id")
            .where(~((F.col("claim_id") == F.col("_anchor_id")) & (F.col("claim_source") == F.col("_anchor_source"))))
            .where(F.col("start_date").between(F.date_sub("_anchor_date", before_days), F.date_add("_anchor_date", after_days)))
            .withColumn("days_from_claim", F.datediff("start_date", "_anchor_date"))
        )
        nearest = Window.partitionBy("case_id").orderBy(F.abs("days_from_claim"), "start_date", "claim_source", "claim_id")
        member_claims = (
            near.withColumn("_n", F.row_number().over(nearest)).where(F.col("_n") <= max_member_claims)
            .drop("_n", "_anchor_id", "_anchor_source", "_anchor_date").toPandas()
        )

    provider_claims = pd.DataFrame()
    if len(providers):
        npis = spark.createDataFrame(providers[["npi"]].astype(str).drop_duplicates(), "npi string")
        roles = [scored.select(F.col("billing_npi").alias("npi"), "*")]
        if "prescriber_npi" in scored.columns:
            roles.append(scored.where(F.col("prescriber_npi").isNotNull()).select(F.col("prescriber_npi").alias("npi"), "*"))
        by_npi = roles[0]
        for extra in roles[1:]:
            by_npi = by_npi.unionByName(extra)
        keep = ["npi", "claim_id", "claim_source", "claim_type", "claim_date", "person_id", "amount_paid", "score", "rule_hits",
                *{c for pair in PEER_PAIRS[:5] for c in pair[:2]}]
        top = Window.partitionBy("npi").orderBy(F.col("score").desc(), "claim_id", "claim_source")
        provider_claims = (
            by_npi.join(F.broadcast(npis), "npi").select(*[c for c in keep if c in by_npi.columns])
            .withColumn("_n", F.row_number().over(top)).where(F.col("_n") <= max_provider_claims).drop("_n").toPandas()
        )
    return PageData(lines=lines, member_claims=member_claims, provider_claims=provider_claims)


# --- Rendering (pure: pandas and dicts in, HTML out) ----------------------------------------------


def _shown(value, kind: str = "text") -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value == "":
        return None
    if kind == "money":
        return f"${float(value):,.2f}"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "num":
        return f"{float(value):,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.date().isoformat()
    return str(value)


def _table(frame: pd.DataFrame, columns: list[tuple[str, str, str]]) -> dict:
    """A frame as header + rows of display strings; ``columns``: (column, header, kind)."""
    present = [(c, h, k) for c, h, k in columns if c in frame.columns and frame[c].notna().any()]
    return {
        "header": [h for _, h, _ in present],
        "rows": [[_shown(rec.get(c), k) or "" for c, _, k in present] for rec in frame.to_dict("records")],
    }


def _items(value) -> list:
    return [] if value is None or (isinstance(value, float) and math.isnan(value)) else list(value)


def peer_rows(row: Mapping[str, Any]) -> list[list[str]]:
    """The provider (or claim) against its peers, as the claim's features measured them."""
    out = []
    for own, peer, label, kind in PEER_PAIRS:
        mine, theirs = row.get(own), row.get(peer)
        if _shown(mine) is None or _shown(theirs) is None:
            continue
        ratio = f"{float(mine) / float(theirs):.2f}×" if float(theirs) else ""
        out.append([label, _shown(mine, kind), _shown(theirs, kind), ratio])
    if row.get("peer_group"):
        out.append(["peer group", str(row["peer_group"]), "", ""])
    return out


def rule_rows(row: Mapping[str, Any], rules_by_id: Mapping[str, Mapping]) -> list[list[str]]:
    """Rules the claim breaks: id, name, scheme, what it checks, and the claim's citations."""
    citations = [c for c in str(row.get("citations") or "").split("; ") if c]
    out = []
    for rid in _items(row.get("rule_hits")):
        rule = rules_by_id.get(rid, {})
        cited = [c for c in citations if rule.get("cites") and c.startswith(rule["cites"])]
        out.append([rid, rule.get("name", ""), rule.get("scheme", ""), rule.get("description", ""), "; ".join(cited)])
    return out


def case_context(row: Mapping[str, Any], data: PageData, rules_by_id: Mapping[str, Mapping],
                 timeline: pd.DataFrame, *, run_date: str) -> dict:
    """Everything one case page shows, as display strings."""
    key = (row["claim_source"], row["claim_id"])
    lines = data.lines
    if len(lines):
        lines = lines[(lines["claim_source"] == key[0]) & (lines["claim_id"] == key[1])].sort_values("claim_line_number")
    related_ids = {str(row.get(col)): what for col, what in RELATED_COLUMNS.items() if _shown(row.get(col))}
    members = data.member_claims
    if len(members):
        members = members[members["case_id"] == row["case_id"]].sort_values(["days_from_claim", "claim_source", "claim_id"])
        members = members.assign(
            named=[related_ids.get(str(c), "") if s == "medical" else "" for c, s in zip(members["claim_id"], members["claim_source"])]
        )
    line_columns = [(c, c.replace("_", " "), "money" if c.endswith("_amount") else "text") for c in
                    (MEDICAL_LINE_COLUMNS + ["diagnoses"] if key[0] == "medical" else PHARMACY_LINE_COLUMNS)]
    events = [
        [e["event_date"], e["state"] + (f" ({e['outcome']})" if e.get("outcome") else ""), e.get("actor") or "",
         _shown(e.get("amount"), "money") or "", e.get("note") or ""]
        for e in timeline.to_dict("records")
    ]
    return {
        "run_date": run_date,
        "case_id": row["case_id"],
        "claim_id": row["claim_id"],
        "claim_source": row["claim_source"],
        "rank": row.get("rank"),
        "facts": [(label, v) for label, v in (
            ("Claim type", _shown(row.get("claim_type"))),
            ("Service date", _shown(row.get("claim_date"))),
            ("Member", _shown(row.get("person_id"))),
            ("Billing / dispensing NPI", _shown(row.get("billing_npi"))),
            ("Prescriber NPI", _shown(row.get("prescriber_npi"))),
            ("Paid", _shown(row.get("amount_paid"), "money")),
            ("Amount at risk", _shown(row.get("amount_at_risk"), "money")),
            ("Score", _shown(row.get("score"), "num")),
            ("Model", _shown(row.get("model_version"))),
            ("Rules version", _shown(row.get("rules_version"))),
        ) if v is not None],
        "provider_page": f"../providers/{page_name(row['billing_npi'])}" if row.get("billing_npi") and row.get("provider_page") else None,
        "reasons": [r for r in str(row.get("reasons") or "").split("; ") if r],
        "lines": _table(lines, line_columns) if len(lines) else {"header": [], "rows": []},
        "members": _table(members, [
            ("days_from_claim", "days from this claim", "text"), ("start_date", "from", "text"), ("end_date", "to", "text"),
            ("claim_source", "source", "text"), ("claim_id", "claim", "text"), ("claim_type", "type", "text"),
            ("provider_npi", "provider", "text"), ("codes", "codes", "text"), ("paid_amount", "paid", "money"),
            ("named", "named by a finding", "text"),
        ]) if len(members) else {"header": [], "rows": []},
        "related": [f"{what}: claim {cid}" for cid, what in related_ids.items()],
        "peers": peer_rows(row),
        "rules": rule_rows(row, rules_by_id),
        "timeline": [[row.get("run_date") or run_date, "open", "claimsentry", "", f"queued at rank {row.get('rank')}"], *events],
    }


def provider_context(prow: Mapping[str, Any], data: PageData, queued: pd.DataFrame, board: pd.DataFrame, *,
                     run_date: str) -> dict:
    """Everything one provider page shows."""
    npi = str(prow["npi"])
    claims = data.provider_claims
    claims = claims[claims["npi"].astype(str) == npi].sort_values(["score", "claim_id"], ascending=[False, True]) if len(claims) else claims
    queued_ids = dict(zip(zip(queued["claim_source"], queued["claim_id"]), queued["case_id"])) if len(queued) else {}
    rows = []
    for rec in claims.to_dict("records"):
        case = queued_ids.get((rec["claim_source"], rec["claim_id"]))
        rows.append({
            "case": case, "href": f"../cases/{page_name(case)}" if case else None,
            "cells": [_shown(rec.get("claim_date")) or "", rec["claim_source"], str(rec["claim_id"]), _shown(rec.get("claim_type")) or "",
                      _shown(rec.get("amount_paid"), "money") or "", _shown(rec.get("score"), "num") or "",
                      ", ".join(_items(rec.get("rule_hits")))],
        })
    peers = peer_rows(claims.iloc[0].to_dict()) if len(claims) else []
    history = board[board["billing_npi"].astype(str) == npi] if len(board) else board
    return {
        "run_date": run_date,
        "npi": npi,
        "facts": [(label, v) for label, v in (
            ("Role", _shown(prow.get("npi_role"))),
            ("Rank in the provider queue", _shown(prow.get("rank"))),
            ("Score", _shown(prow.get("score"), "num")),
            ("Flagged claims", _shown(prow.get("flagged_claims"))),
            ("Amount at risk", _shown(prow.get("amount_at_risk"), "money")),
        ) if v is not None],
        "reasons": [r for r in str(prow.get("reasons") or "").split("; ") if r],
        "peers": [p for p in peers if p[0] != "peer group"],
        "claims": rows,
        "history": _table(history, [
            ("case_id", "case", "text"), ("claim_id", "claim", "text"), ("run_date", "queued", "text"),
            ("state", "state", "text"), ("since", "since", "text"), ("due_date", "due", "text"),
            ("recovered", "recovered", "money"),
        ]) if len(history) else {"header": [], "rows": []},
    }


def _template_text(name: str) -> str:
    return resources.files("claimsentry").joinpath(f"templates/{name}").read_text("utf-8")


def _env() -> Environment:
    """Templates from the package (so the two pages can include their shared style), autoescaped."""
    return Environment(loader=FunctionLoader(_template_text),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def render(template: str, context: Mapping[str, Any]) -> str:
    return _env().get_template(template).render(**context)


def write_pages(folder: Path, queued: pd.DataFrame, providers: pd.DataFrame, data: PageData,
                rules: Iterable[Mapping], events: pd.DataFrame, board: pd.DataFrame, *, run_date: str) -> dict:
    """Write ``folder/cases/*.html`` and ``folder/providers/*.html``. Returns the counts."""
    rules_by_id = {r["id"]: r for r in rules}
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    (folder / "providers").mkdir(parents=True, exist_ok=True)
    provider_npis = set(providers["npi"].astype(str)) if len(providers) else set()
    for row in queued.to_dict("records"):
        row["provider_page"] = str(row.get("billing_npi")) in provider_npis
        timeline = events[events["case_id"] == row["case_id"]] if len(events) else events
        html = render("case_page.html", case_context(row, data, rules_by_id, timeline, run_date=run_date))
        (folder / "cases" / page_name(row["case_id"])).write_text(html, encoding="utf-8")
    # one page per NPI: a provider queued both as billing provider and as prescriber shows its best rank
    unique = providers.sort_values("rank").drop_duplicates("npi") if len(providers) else providers
    for prow in unique.to_dict("records"):
        html = render("provider_page.html", provider_context(prow, data, queued, board, run_date=run_date))
        (folder / "providers" / page_name(prow["npi"])).write_text(html, encoding="utf-8")
    return {"case_pages": int(len(queued)), "provider_pages": int(len(unique))}
