"""A self-contained HTML page per run for auditors: the ranked queue and one detail card per claim.

The page reads only the rendered queue (bounded by capacity), escapes every value (Jinja2
autoescape) and needs no network or assets, so it can be mailed or opened from a file share.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pandas as pd
from jinja2 import Environment, select_autoescape

DETAIL_FIELDS = [
    ("claim_date", "Service date"),
    ("person_id", "Member"),
    ("billing_npi", "Billing / dispensing NPI"),
    ("prescriber_npi", "Prescriber NPI"),
    ("amount_paid", "Paid"),
    ("amount_at_risk", "Amount at risk"),
    ("schemes", "Schemes suggested by rule hits"),
    ("citations", "Policy citations"),
    ("model_version", "Model"),
    ("rules_version", "Rules version"),
]


def _shown(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, float):
        return f"${value:,.2f}"
    return str(value.date() if hasattr(value, "date") and callable(value.date) else value)


def render_queue_page(queue: pd.DataFrame, *, run_date: str, cases: dict | None = None,
                      providers: pd.DataFrame | None = None) -> str:
    """The page's HTML. ``cases``: ``claimsentry.cases.deadline_summary`` of earlier runs' cases
    (overdue and due-soon cases are listed above the queue). Each case links to its page
    (``cases/<case_id>.html``) and each provider of ``providers`` (the provider queue) to its own
    (``providers/<npi>.html``), as ``claimsentry.case_pages`` writes them."""
    from claimsentry.case_pages import page_name

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("claimsentry").joinpath("templates/claim_queue.html").read_text("utf-8"))
    rows = []
    for rec in queue.sort_values("rank").to_dict("records"):
        details = [(label, _shown(rec.get(col))) for col, label in DETAIL_FIELDS]
        rows.append(
            {
                **rec,
                "details": [(label, value) for label, value in details if value is not None],
                "reason_list": [r for r in str(rec.get("reasons") or "").split("; ") if r],
                "case_page": page_name(rec.get("case_id")),
            }
        )
    versions = queue.get("model_version", pd.Series(dtype=str)).dropna().unique()
    rules = queue.get("rules_version", pd.Series(dtype=str)).dropna().unique()
    return template.render(
        run_date=run_date,
        rows=rows,
        total_at_risk=float(queue["amount_at_risk"].sum()) if len(queue) else 0.0,
        total_expected=float(queue["expected_recovery"].sum()) if len(queue) else 0.0,
        model_version=", ".join(map(str, versions)) or "n/a",
        rules_version=", ".join(map(str, rules)) or "n/a",
        cases=cases or {},
        providers=[{**p, "page": page_name(p["npi"])} for p in providers.sort_values("rank").to_dict("records")]
        if providers is not None else [],
    )


def write_queue_page(queue: pd.DataFrame, path: Path, *, run_date: str, cases: dict | None = None,
                     providers: pd.DataFrame | None = None) -> Path:
    path.write_text(render_queue_page(queue, run_date=run_date, cases=cases, providers=providers), encoding="utf-8")
    return path
