"""``claimsentry report``: the HTML model report for actuaries.

Extract: the registered model version (champion by default) and its training run's artifacts from
MLflow (``evaluation/*``, ``data/training_feature_sample.parquet``, ``features.json``,
``promotion.json``), and, when a scoring run directory is given, its ``run_summary.json``, queues and a
bounded sample of ``scored_claims``. Transform: pure section builders (pandas, bounded inputs) ->
one context dict. Load: a single self-contained HTML page (plots embedded as PNG data URIs).

A missing artifact makes its section say "not available"; only a missing model stops the report
(``ModelNotFound``, one line).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from claimsentry.errors import InputError, ModelNotFound

log = logging.getLogger(__name__)

# Artifact contract of a training run (logged by claimsentry.jobs.train): key -> path in the run.
ARTIFACTS = {
    "metrics": "evaluation/metrics.json",
    "test_predictions": "evaluation/test_predictions.parquet",
    "feature_importance": "evaluation/feature_importance.json",
    "shap_sample": "evaluation/shap_sample.parquet",
    "training_sample": "data/training_feature_sample.parquet",
    "features": "features.json",
    "promotion": "promotion.json",
}
SHAP_VALUE_PREFIX = "value__"  # shap_sample: feature values ride beside the SHAP values under this prefix
SHAP_NOT_FEATURES = {"claim_id", "claim_source", "bias"}  # shap_sample's key columns and the model's base value
PROMOTION_FIELDS = ["decision", "reason", "metric", "challenger_metric", "champion_metric", "margin"]
NO_SCHEME = "(no rule hit: model score only)"
SCORED_CONTEXT_COLUMNS = ["score", "model_version", "claim_type", "claim_source", "claim_date", "amount_paid"]

# Plain-language meaning of the logged metrics (models/evaluate.py), for actuaries. {capacity} is filled in.
METRIC_EXPLANATIONS = {
    "roc_auc": "Chance that a randomly chosen improper claim scores higher than a randomly chosen clean one "
    "(0.5 = coin flip, 1.0 = perfect ranking). Does not depend on how rare improper claims are.",
    "pr_auc": "Average precision over every queue size. Compare it with the base rate: a random ranking "
    "scores about the base rate.",
    "base_rate": "Share of the known test claims that are improper: what random picks would hit.",
    "precision_at_capacity": "Of the top {capacity} test claims by score (one audit queue's worth), the share "
    "improper among those whose outcome is known. This is the hit rate auditors would see.",
    "recall_at_capacity": "Of all improper test claims, the share that would land in a queue of {capacity}.",
    "lift_at_1pct": "How many times more often improper claims occur in the top 1% of scores than overall "
    "(1.0 = no better than random).",
    "lift_at_2pct": "Same as above, for the top 2% of scores.",
    "lift_at_5pct": "Same as above, for the top 5% of scores.",
    "dollars_at_risk_captured_at_capacity": "Share of the dollars paid on improper test claims that a queue of "
    "{capacity} would have caught.",
    "dollars_at_risk_in_queue": "Dollars paid on the improper test claims inside a queue of {capacity}.",
    "n_known": "Test claims whose outcome is known (audit labels: audited claims only).",
    "n_pos": "Of those, improper.",
    "capacity": "Claims an audit team can open per run: the queue size the figures above assume "
    "(scaled down when the test set was sampled).",
    "n_test": "Claims of the held-out test period (never seen while fitting), labelled or not.",
    "n_pos_test": "Improper claims in the test period under the headline ground truth.",
    "evaluation_sample_fraction": "Share of the test period kept for these figures (1 = all of it).",
    "ground_truth": "Which outcome the headline figures use: audit labels, or the synthetic generator's truth.",
    "model_kind": "Which model produced the score.",
    "best_iteration": "Boosting rounds kept (early stopping on the validation period).",
}
PER_TRUTH_METRICS = [
    "roc_auc", "pr_auc", "base_rate", "precision_at_capacity", "recall_at_capacity", "lift_at_1pct",
    "lift_at_2pct", "lift_at_5pct", "dollars_at_risk_captured_at_capacity", "dollars_at_risk_in_queue",
    "n_known", "n_pos",
]
GENERAL_METRICS = ["capacity", "n_test", "n_pos_test", "evaluation_sample_fraction", "ground_truth", "model_kind",
                   "best_iteration"]
METRIC_KINDS = {
    "base_rate": "pct", "precision_at_capacity": "pct", "recall_at_capacity": "pct",
    "lift_at_1pct": "lift", "lift_at_2pct": "lift", "lift_at_5pct": "lift",
    "dollars_at_risk_captured_at_capacity": "pct",  # a share of improper dollars (models/evaluate.py)
    "dollars_at_risk_in_queue": "money",
    "n_known": "int", "n_pos": "int", "capacity": "int", "n_test": "int", "n_pos_test": "int", "best_iteration": "int",
    "evaluation_sample_fraction": "pct", "ground_truth": "text", "model_kind": "text",
}


# ---------------------------------------------------------------------------------------------
# Formatting helpers (pure)
# ---------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def fmt(value: Any, kind: str = "float", digits: int = 3) -> str:
    """A value for the page: kind is float | int | pct | money | lift | date | text."""
    if value is None or (_is_number(value) and not math.isfinite(float(value))):
        return "–"
    if kind == "text" or not _is_number(value):
        return str(value)
    v = float(value)
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "money":
        return f"${v:,.0f}"
    if kind == "lift":
        return f"{v:.2f}×"
    return f"{v:,.{digits}f}"


def metric_kind(name: str) -> str:
    if name in METRIC_KINDS:
        return METRIC_KINDS[name]
    if "dollar" in name or "amount" in name:
        return "money"
    if name.startswith("n_") or name in ("capacity",) or name.endswith("_count"):
        return "int"
    if name.startswith("lift"):
        return "lift"
    return "float"


def not_available(reason: str) -> dict:
    return {"available": False, "reason": reason}


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
@dataclass
class ModelRef:
    """One registered model version and the training run that produced it."""

    name: str
    version: str
    run_id: str
    aliases: list[str] = field(default_factory=list)
    registered_at: str | None = None
    run_started_at: str | None = None
    run_name: str | None = None


@dataclass
class RunData:
    """What the report reads from a scoring run directory (bounded)."""

    run_dir: Path
    summary: dict | None = None
    claim_queue: pd.DataFrame | None = None  # one row per queued claim
    provider_queue: pd.DataFrame | None = None  # one row per queued provider (npi, role)
    scored_sample: pd.DataFrame | None = None  # one row per sampled scored claim
    scored_rows: int | None = None  # rows in all of scored_claims (from Parquet metadata)
    claim_date_range: tuple[str, str] | None = None


def _ms_to_iso(ms: Any) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def resolve_model(settings, model_version: str | int | None = None) -> ModelRef:
    """The model version to report on: ``model_version`` if given, else the champion alias.
    Raises ModelNotFound (one line) when the store, the model or the version is missing."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri
    name = settings.get("mlflow.model_name", "claimsentry-fraud")
    alias = settings.get("mlflow.champion_alias", "champion")
    hint = "run `claimsentry train` first"
    db = settings.mlflow_sqlite_file
    if db is not None and not db.is_file():
        # Do not create an empty store just to find nothing in it.
        raise ModelNotFound(f"no MLflow store at {uri}: no model '{name}' to report on; {hint}")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if model_version is not None:
            mv = client.get_model_version(name, str(model_version))
        else:
            mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        which = f"version {model_version}" if model_version is not None else f"a '{alias}' alias"
        raise ModelNotFound(f"model '{name}' has no {which} in {uri}; {hint}") from None
    if not mv.run_id:
        raise ModelNotFound(f"model '{name}' version {mv.version} has no training run to report on")
    started = run_name = None
    try:
        run = client.get_run(mv.run_id)
        started, run_name = _ms_to_iso(run.info.start_time), run.info.run_name
    except MlflowException:
        log.warning("training run %s of %s v%s not found", mv.run_id, name, mv.version)
    return ModelRef(
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        aliases=list(getattr(mv, "aliases", []) or []),
        registered_at=_ms_to_iso(mv.creation_timestamp),
        run_started_at=started,
        run_name=run_name,
    )


def fetch_artifacts(settings, run_id: str) -> dict[str, Any]:
    """Every contract artifact of the training run, read into memory (JSON -> dict, Parquet ->
    pandas; all bounded by the training job). A missing one is None and is listed in ``_missing``."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    uri = settings.mlflow_tracking_uri
    out: dict[str, Any] = {"_missing": []}
    with tempfile.TemporaryDirectory(prefix="claimsentry-report-") as tmp:
        for key, artifact_path in ARTIFACTS.items():
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact_path, dst_path=tmp, tracking_uri=uri
                )
                if artifact_path.endswith(".json"):
                    out[key] = json.loads(Path(local).read_text(encoding="utf-8"))
                else:
                    out[key] = pd.read_parquet(local)
            except (MlflowException, OSError, ValueError) as exc:
                log.info("artifact %s not available: %s", artifact_path, str(exc).splitlines()[0] if str(exc) else exc)
                out[key] = None
                out["_missing"].append(artifact_path)
    return out


def sample_parquet(path: Path, columns: list[str], *, max_rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """A bounded sample of a Parquet folder: whole-file never loaded. Picks row groups at random
    (seeded) and reads up to a slice of each until ``max_rows`` rows; returns (sample, total rows).
    The total comes from Parquet metadata (no scan)."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(path), format="parquet")
    cols = [c for c in dict.fromkeys(columns) if c in dataset.schema.names]
    total = int(dataset.count_rows())
    pieces = [rg for frag in dataset.get_fragments() for rg in frag.split_by_row_group()]
    if not pieces or not cols or total == 0:
        return pd.DataFrame(columns=cols), total
    rng = np.random.default_rng(seed)
    per_piece = max(1_000, max_rows // min(len(pieces), 20))
    tables, taken = [], 0
    for i in rng.permutation(len(pieces)):
        got = 0
        for batch in pieces[i].to_batches(columns=cols, batch_size=min(per_piece, 65_536)):
            tables.append(pa.Table.from_batches([batch]))
            got += batch.num_rows
            if got >= per_piece:
                break
        taken += got
        if taken >= max_rows:
            break
    sample = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    if len(sample) > max_rows:
        sample = sample.sample(n=max_rows, random_state=seed).reset_index(drop=True)
    return sample, total


def date_range_from_metadata(path: Path, column: str) -> tuple[str, str] | None:
    """(min, max) of a date column over all of a Parquet folder, from row-group statistics (no scan)."""
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(path), format="parquet")
    if column not in dataset.schema.names:
        return None
    lows, highs = [], []
    for frag in dataset.get_fragments():
        meta = frag.metadata
        idx = meta.schema.to_arrow_schema().get_field_index(column)
        if idx < 0:
            continue
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(idx).statistics
            if stats is None or not stats.has_min_max:
                return None  # incomplete statistics: do not report a wrong range
            lows.append(stats.min)
            highs.append(stats.max)
    if not lows:
        return None
    return str(min(lows)), str(max(highs))


def read_run_dir(run_dir: Path, feature_cols: list[str], *, max_rows: int, seed: int) -> RunData:
    """The scoring run's summary, queues and a bounded sample of scored_claims (needed columns only)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"run directory not found: {run_dir}")
    data = RunData(run_dir=run_dir)
    summary_path = run_dir / "run_summary.json"
    if summary_path.is_file():
        try:
            data.summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            log.warning("run_summary.json unreadable: %s", exc)
    for name in ("claim_queue", "provider_queue"):
        path = run_dir / f"{name}.parquet"
        if path.exists():
            setattr(data, name, pd.read_parquet(path))
    scored = run_dir / "scored_claims"
    if scored.exists():
        data.scored_sample, data.scored_rows = sample_parquet(
            scored, SCORED_CONTEXT_COLUMNS + list(feature_cols), max_rows=max_rows, seed=seed
        )
        data.claim_date_range = date_range_from_metadata(scored, "claim_date")
    return data


# ---------------------------------------------------------------------------------------------
# Section builders (pure: plain dicts / frames in, a context dict out)
# ---------------------------------------------------------------------------------------------
def _labelled(test: pd.DataFrame) -> pd.DataFrame:
    """Test rows whose label is known (audited claims). Unaudited claims are not negatives."""
    return test[test["label"].notna()]


def _has_truth(test: pd.DataFrame | None) -> bool:
    return test is not None and "truth_scheme" in test.columns and test["truth_scheme"].notna().any()


def summary_section(model: ModelRef, artifacts: Mapping[str, Any], run: RunData | None) -> dict:
    """Header facts: model, training/test period and counts, the scoring run."""
    test = artifacts.get("test_predictions")
    rows = [
        ("Model", f"{model.name} version {model.version}" + (f" ({', '.join(model.aliases)})" if model.aliases else "")),
        ("Training run", f"{model.run_name or ''} {model.run_id}".strip()),
        ("Trained", model.run_started_at or "–"),
        ("Registered", model.registered_at or "–"),
    ]
    if test is not None and "claim_date" in test.columns and test["claim_date"].notna().any():
        dates = pd.to_datetime(test["claim_date"], errors="coerce").dropna()
        rows.append(("Test claims dated", f"{dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"))
    if test is not None:
        labelled = _labelled(test) if "label" in test.columns else test.iloc[0:0]
        positives = int((labelled["label"] == 1).sum()) if len(labelled) else 0
        rows.append(("Test claims", fmt(len(test), "int")))
        rows.append(("… of which labelled (audited)", fmt(len(labelled), "int")))
        rows.append(("… of which confirmed improper", fmt(positives, "int")))
    warnings: list[str] = []
    if run is not None:
        s = run.summary or {}
        rows.append(("Scoring run", str(run.run_dir)))
        rows.append(("Run date", str(s.get("run_date") or run.run_dir.name)))
        if run.claim_date_range:
            rows.append(("Scored claims dated", f"{run.claim_date_range[0]} to {run.claim_date_range[1]}"))
        scored_counts = s.get("scored_claims") or {}
        total_scored = run.scored_rows if run.scored_rows is not None else sum(scored_counts.values())
        by_source = ", ".join(f"{k} {fmt(v, 'int')}" for k, v in sorted(scored_counts.items()))
        rows.append(("Claims scored", fmt(total_scored, "int") + (f" ({by_source})" if by_source else "")))
        queues = s.get("queues") or {}
        for key, title, frame in (("claim_queue", "Claim queue", run.claim_queue),
                                  ("provider_queue", "Provider queue", run.provider_queue)):
            size = queues.get(key, len(frame) if frame is not None else None)
            if size is not None:
                rows.append((title, fmt(size, "int")))
        run_model = str((s.get("model") or {}).get("version") or "")
        if run_model and _version_number(run_model) != model.version:
            warnings.append(
                f"The run was scored with model version {run_model}, but this report describes version "
                f"{model.version}; pass --model-version to report on the model that scored the run."
            )
    promotion = artifacts.get("promotion")
    if promotion:
        shown = [k for k in PROMOTION_FIELDS if k in promotion] or list(promotion)
        rows.append(("Promotion decision", "; ".join(f"{k}: {_fmt_any(k, promotion[k])}" for k in shown)))
    return {"available": True, "rows": rows, "warnings": warnings}


def _version_number(text: str) -> str:
    """'3', 'v3', 'claimsentry-fraud/3' -> '3' (the registry's version number)."""
    digits = "".join(ch for ch in text.rsplit("/", 1)[-1] if ch.isdigit())
    return digits or text


def _fmt_any(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and name not in METRIC_KINDS:
        return fmt(value, "int")
    if _is_number(value):
        return fmt(value, metric_kind(name), 4)
    return str(value)


def _split_metrics(metrics: Mapping[str, Any]) -> tuple[dict | None, dict | None]:
    """(audit-label figures, generator-truth figures) of a metrics.json.

    The training job logs ``audit_labels`` and (synthetic data) ``truth`` as nested dicts and copies the
    best ground truth to the top level (``ground_truth`` says which). A flat file is read as audit labels."""
    audit = metrics.get("audit_labels") if isinstance(metrics.get("audit_labels"), Mapping) else None
    truth = metrics.get("truth") if isinstance(metrics.get("truth"), Mapping) else None
    top = {k: v for k, v in metrics.items() if k in PER_TRUTH_METRICS}
    if audit is None and metrics.get("ground_truth") != "generator_truth" and top:
        audit = top
    if truth is None and metrics.get("ground_truth") == "generator_truth" and top:
        truth = top
    return (dict(audit) if audit else None), (dict(truth) if truth else None)


def _flatten(value: Any, prefix: str) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}.{k}"))
        return out
    return [(prefix, _fmt_any(prefix.rsplit(".", 1)[-1], value))]


def metrics_section(artifacts: Mapping[str, Any], *, default_capacity: int) -> dict:
    """Held-out metrics with explanations: audit labels beside generator truth (synthetic data),
    per-scheme recall and the other logged figures. Without metrics.json they are recomputed from
    test_predictions with the training job's own metric functions."""
    metrics = artifacts.get("metrics")
    test = artifacts.get("test_predictions")
    note = None
    if metrics is None:
        if test is None or not {"label", "score", "amount_paid"} <= set(test.columns):
            return not_available("evaluation/metrics.json and evaluation/test_predictions.parquet are missing "
                                 "from the training run")
        from claimsentry.models.evaluate import held_out_metrics

        metrics = held_out_metrics(test, capacity=min(default_capacity, len(test)), has_truth=_has_truth(test))
        note = ("evaluation/metrics.json is not available; the figures below are recomputed from "
                "evaluation/test_predictions.parquet.")
    capacity = int(metrics.get("capacity") or default_capacity)
    audit, truth = _split_metrics(metrics)
    rows = []
    for key in PER_TRUTH_METRICS:
        if (audit and key in audit) or (truth and key in truth):
            kind = METRIC_KINDS.get(key, "float")
            rows.append([key, fmt((audit or {}).get(key), kind, 4), fmt((truth or {}).get(key), kind, 4),
                         METRIC_EXPLANATIONS[key].format(capacity=f"{capacity:,}")])
    general = [[key, fmt(metrics[key], METRIC_KINDS.get(key, "float"), 4), METRIC_EXPLANATIONS[key]]
               for key in GENERAL_METRICS if key in metrics and metrics[key] is not None]
    shown = set(PER_TRUTH_METRICS) | set(GENERAL_METRICS) | {"audit_labels", "truth", "per_scheme_recall", "unknown_perpetrators"}
    other = [pair for key, value in metrics.items() if key not in shown for pair in _flatten(value, key)]
    schemes = metrics.get("per_scheme_recall") or {}
    return {
        "available": True,
        "note": note,
        "capacity": capacity,
        "has_truth": truth is not None,
        "ground_truth": metrics.get("ground_truth", "audit_labels"),
        "rows": rows,
        "general_rows": general,
        "scheme_rows": [[k, fmt(v, "pct")] for k, v in sorted(schemes.items())],
        **unknown_perpetrator_rows(metrics.get("unknown_perpetrators")),
        "other_rows": other,
    }


def unknown_perpetrator_rows(unknown: Mapping[str, Any] | None) -> dict:
    """The held-out-perpetrator table: per scheme, recall in the top 5% for the claims of
    perpetrators nobody labelled and of those already labelled, with counts; and the headline
    figures (PR-AUC, precision in the top 1%, look-alikes in the top 5%). Empty without truth."""
    if not unknown:
        return {"unknown_rows": [], "unknown_summary": []}
    never, known = unknown.get("recall_top5_never_labelled_by_scheme") or {}, unknown.get("recall_top5_labelled_by_scheme") or {}
    n_never, n_known = unknown.get("never_labelled_claims_by_scheme") or {}, unknown.get("labelled_claims_by_scheme") or {}
    rows = [[k, fmt(never.get(k), "pct"), f"{n_never.get(k, 0):,}", fmt(known.get(k), "pct"), f"{n_known.get(k, 0):,}"]
            for k in sorted(set(never) | set(known))]
    summary = [
        ["PR-AUC (generator truth)", fmt(unknown.get("pr_auc"), "float", 4)],
        ["precision in the top 1%", fmt(unknown.get("precision_top1"), "pct")],
        ["recall in the top 5%, never-labelled perpetrators", fmt(unknown.get("recall_top5_never_labelled"), "pct")],
        ["lowest scheme's recall in the top 5%, never-labelled", fmt(unknown.get("min_recall_top5_never_labelled"), "pct")],
        ["legitimate look-alikes in the top 5%", fmt(unknown.get("lookalike_share_top5"), "pct")],
    ]
    return {"unknown_rows": rows, "unknown_summary": summary}


def _plot(fn: Callable[..., bytes], *args, **kwargs) -> str:
    from claimsentry.report_plots import data_uri

    return data_uri(fn(*args, **kwargs))


def curves_section(artifacts: Mapping[str, Any]) -> dict:
    """ROC/PR, lift/gains and calibration plots of the test predictions."""
    from claimsentry import report_plots as P

    test = artifacts.get("test_predictions")
    if test is None or not {"label", "score"} <= set(test.columns):
        return not_available("evaluation/test_predictions.parquet (with label and score) is missing from the training run")
    lab = _labelled(test)
    series = {"audited labels": (lab["label"], lab["score"])}
    if _has_truth(test):
        series["synthetic truth (all test claims)"] = (test["truth_scheme"].notna().astype(float), test["score"])
    reliability = P.reliability_table(lab["label"], lab["score"])
    gains = P.gains_table(lab["label"], lab["score"])
    return {
        "available": True,
        "labelled": len(lab),
        "roc_pr_img": _plot(P.roc_pr_png, series),
        "lift_img": _plot(P.lift_gains_png, lab["label"], lab["score"]),
        "calibration_img": _plot(P.calibration_png, lab["label"], lab["score"]),
        "brier": fmt(P.brier_score(lab["label"], lab["score"]), "float", 4),
        "brier_base": fmt(_brier_of_base_rate(lab["label"]), "float", 4),
        "gains_rows": [
            [str(int(r.group)), fmt(r.claims, "int"), fmt(r.positives, "int"), fmt(r.rate, "pct"),
             fmt(r.lift, "lift"), fmt(r.cum_share_positives, "pct")]
            for r in gains.itertuples()
        ],
        "reliability_rows": [
            [f"{r.bin_low:.1f}–{r.bin_high:.1f}", fmt(r.claims, "int"), fmt(r.mean_score, "pct"), fmt(r.observed_rate, "pct")]
            for r in reliability.itertuples()
        ],
    }


def _brier_of_base_rate(labels: pd.Series) -> float:
    """Brier score of always predicting the base rate: the bar a useful score must beat."""
    y = pd.to_numeric(labels, errors="coerce").dropna()
    return float(y.mean() * (1 - y.mean())) if len(y) else float("nan")


def explain_section(artifacts: Mapping[str, Any], *, top_n: int) -> dict:
    """Feature importance (gain) and the SHAP summary."""
    from claimsentry import report_plots as P

    importance = artifacts.get("feature_importance")
    shap = artifacts.get("shap_sample")
    descriptions = ((artifacts.get("features") or {}).get("descriptions")) or {}
    out: dict[str, Any] = {"available": importance is not None or shap is not None}
    if not out["available"]:
        return not_available("evaluation/feature_importance.json and evaluation/shap_sample.parquet are missing")
    if importance:
        out["importance_img"] = _plot(P.importance_png, importance, top_n=top_n)
        top = sorted(importance.items(), key=lambda kv: float(kv[1] or 0), reverse=True)[:top_n]
        out["importance_rows"] = [[k, fmt(v, "float", 2), descriptions.get(k, "")] for k, v in top]
    else:
        out["importance_missing"] = "evaluation/feature_importance.json is not available."
    if shap is not None and len(shap):
        value_cols = [c for c in shap.columns if c.startswith(SHAP_VALUE_PREFIX)]
        feature_cols = ((artifacts.get("features") or {}).get("feature_cols")) or []
        if feature_cols:
            shap_cols = [c for c in feature_cols if c in shap.columns]
        else:  # without features.json: every numeric column but the keys, the bias term and the values
            shap_cols = [c for c in shap.columns if not c.startswith(SHAP_VALUE_PREFIX) and c not in SHAP_NOT_FEATURES
                         and pd.api.types.is_numeric_dtype(shap[c])]
        values = shap[value_cols].rename(columns=lambda c: c[len(SHAP_VALUE_PREFIX):]) if value_cols else None
        out["shap_img"] = _plot(P.shap_summary_png, shap[shap_cols], values, top_n=top_n)
        out["shap_rows_n"] = len(shap)
    else:
        out["shap_missing"] = "evaluation/shap_sample.parquet is not available."
    return out


def drift_section(artifacts: Mapping[str, Any], run: RunData | None, *, n_bins: int, stable_below: float,
                  significant_above: float) -> dict:
    """PSI per feature and of the score, training sample (reference) vs the run's sample (current)."""
    from claimsentry import report_plots as P
    from claimsentry.drift import psi, psi_band, psi_table

    reference = artifacts.get("training_sample")
    if reference is None:
        return not_available("data/training_feature_sample.parquet is missing from the training run")
    if run is None or run.scored_sample is None:
        return not_available("no scored run given (use --run-dir with a scoring run directory holding scored_claims)")
    current = run.scored_sample
    feature_cols = list(((artifacts.get("features") or {}).get("feature_cols")) or [])
    if not feature_cols:
        skip = {"score", "label", "model_score", "anomaly_score"}
        feature_cols = [c for c in reference.columns if c not in skip and pd.api.types.is_numeric_dtype(reference[c])]
    table = psi_table(reference, current, feature_cols, n_bins=n_bins, stable_below=stable_below,
                      significant_above=significant_above)
    absent = [c for c in feature_cols if c not in reference.columns or c not in current.columns]
    # The score's reference: the training sample's score when logged, else the test period's scores.
    test = artifacts.get("test_predictions")
    if "score" in reference.columns:
        ref_score, ref_score_name = reference["score"], "training sample"
    elif test is not None and "score" in test.columns:
        ref_score, ref_score_name = test["score"], "test period"
    else:
        ref_score, ref_score_name = pd.Series(dtype=float), "none"
    cur_score = current["score"] if "score" in current.columns else pd.Series(dtype=float)
    score_psi = psi(ref_score, cur_score, n_bins=n_bins)
    counts = table["band"].value_counts().to_dict()
    return {
        "available": True,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "n_bins": n_bins,
        "stable_below": stable_below,
        "significant_above": significant_above,
        "score_psi": fmt(score_psi, "float", 4),
        "score_band": psi_band(score_psi, stable_below=stable_below, significant_above=significant_above),
        "band_counts": {b: int(counts.get(b, 0)) for b in ("stable", "moderate", "significant", "n/a")},
        "rows": [
            {"band": r.band, "cells": [r.feature, fmt(r.psi, "float", 4), r.band, fmt(r.reference_null_share, "pct"),
                                      fmt(r.current_null_share, "pct"), fmt(r.reference_median, "float", 3),
                                      fmt(r.current_median, "float", 3)]}
            for r in table.itertuples()
        ],
        "absent": absent,
        "score_reference": ref_score_name,
        "score_img": _plot(P.score_distribution_png, ref_score, cur_score, reference_name=ref_score_name),
    }


def queue_composition(queue: pd.DataFrame, by: str) -> pd.DataFrame:
    """Claim queue rolled up by ``by`` (``claim_type`` or ``scheme``): one row per group with claims,
    amount_at_risk, expected_recovery, mean_score; largest dollars first. A claim hit by rules of
    two schemes counts under both; claims with no rule hit form their own group."""
    q = queue.copy()
    for col in ("amount_at_risk", "expected_recovery", "score"):
        if col not in q.columns:
            q[col] = np.nan
    if by == "scheme":
        raw = q["schemes"] if "schemes" in q.columns else pd.Series("", index=q.index)
        q["scheme"] = raw.fillna("").astype(str).map(lambda s: [p.strip() for p in s.split(",") if p.strip()] or [NO_SCHEME])
        q = q.explode("scheme")
    elif by not in q.columns:
        q[by] = "unknown"
    q[by] = q[by].fillna("unknown").astype(str)
    out = (
        q.groupby(by, as_index=False)
        .agg(claims=("claim_id", "size"), amount_at_risk=("amount_at_risk", "sum"),
             expected_recovery=("expected_recovery", "sum"), mean_score=("score", "mean"))
        .sort_values(["amount_at_risk", "claims", by], ascending=[False, False, True])
        .reset_index(drop=True)
    )
    return out


def queue_section(run: RunData | None) -> dict:
    """Composition of the claim queue by claim/provider type and by scheme; provider queue by role."""
    from claimsentry import report_plots as P

    if run is None:
        return not_available("no scoring run given (use --run-dir)")
    if run.claim_queue is None:
        return not_available(f"claim_queue.parquet not found in {run.run_dir}")
    out: dict[str, Any] = {"available": True, "claims": len(run.claim_queue)}
    for by, title in (("claim_type", "claims by claim / provider type"), ("scheme", "claims by scheme")):
        table = queue_composition(run.claim_queue, by)
        out[f"{by}_img"] = _plot(P.composition_png, table, label_col=by, count_col="claims",
                                 amount_col="amount_at_risk", title=title)
        out[f"{by}_rows"] = [
            [str(r[by]), fmt(r["claims"], "int"), fmt(r["amount_at_risk"], "money"),
             fmt(r["expected_recovery"], "money"), fmt(r["mean_score"], "float", 3)]
            for r in table.to_dict("records")
        ]
    pq = run.provider_queue
    if pq is not None and len(pq):
        role = pq["npi_role"] if "npi_role" in pq.columns else pd.Series("provider", index=pq.index)
        roll = (
            pq.assign(npi_role=role.fillna("unknown"))
            .groupby("npi_role", as_index=False)
            .agg(providers=("npi", "size"), flagged_claims=("flagged_claims", "sum"),
                 amount_at_risk=("amount_at_risk", "sum"))
        )
        out["provider_rows"] = [
            [r["npi_role"], fmt(r["providers"], "int"), fmt(r["flagged_claims"], "int"), fmt(r["amount_at_risk"], "money")]
            for r in roll.to_dict("records")
        ]
    return out


def dollars_section(artifacts: Mapping[str, Any], run: RunData | None, metrics_ctx: Mapping[str, Any]) -> dict:
    """Dollars at risk and expected recovery in the queues; dollars captured at capacity in test."""
    rows: list[list[str]] = []
    if run is not None and run.claim_queue is not None:
        q = run.claim_queue
        rows.append(["Claim queue: amount at risk", fmt(q["amount_at_risk"].sum() if "amount_at_risk" in q else None, "money"),
                     "What an audit could claw back on the queued claims: the paid amount, or the narrower "
                     "overpayment a rule can state (e.g. the payment gap between the billed and the regrouped DRG)."])
        rows.append(["Claim queue: expected recovery", fmt(q["expected_recovery"].sum() if "expected_recovery" in q else None, "money"),
                     "Amount at risk weighted by each claim's score and the recovery rate: what the queue is expected to bring back."])
        if "amount_paid" in q:
            rows.append(["Claim queue: amount paid", fmt(q["amount_paid"].sum(), "money"), "Total paid on the queued claims."])
    if run is not None and run.provider_queue is not None and "amount_at_risk" in run.provider_queue:
        rows.append(["Provider queue: amount at risk", fmt(run.provider_queue["amount_at_risk"].sum(), "money"),
                     "Dollars on the flagged claims of the queued providers (a claim can count for its billing "
                     "provider and its prescriber)."])
    audit, truth = _split_metrics(artifacts.get("metrics") or {})
    capacity = metrics_ctx.get("capacity", "")
    for name, figures, whose in (("audit labels", audit, "confirmed-improper (audited)"),
                                 ("synthetic truth", truth, "truly improper")):
        if figures and _is_number(figures.get("dollars_at_risk_in_queue")):
            share = figures.get("dollars_at_risk_captured_at_capacity")
            rows.append([f"Test: improper dollars caught at capacity ({name})",
                         fmt(figures["dollars_at_risk_in_queue"], "money"),
                         f"Dollars on {whose} test claims inside the top {capacity} scores"
                         + (f": {fmt(share, 'pct')} of all such dollars." if _is_number(share) else ".")])
    if not rows:
        return not_available("no queue (use --run-dir) and no dollar metrics in the training run")
    return {"available": True, "rows": rows}


def recoveries_section(money: pd.DataFrame | None, *, top_n: int = 30) -> dict:
    """Recovered dollars of worked audit cases by provider, scheme and model version
    (``claimsentry.cases.recoveries``): what the queues brought back, per model that queued them."""
    if money is None or money.empty:
        return not_available("no audit case has a finding or a recovery recorded yet (claimsentry cases event / feedback)")
    by_model = money.groupby("model_version", dropna=False)[["recovered"]].sum().reset_index()
    return {
        "available": True,
        "rows": [
            [str(r["billing_npi"]), str(r["scheme"]), str(r["model_version"]), fmt(r["cases"], "int"),
             fmt(r["confirmed"], "int"), fmt(r["recovered"], "money")]
            for r in money.head(top_n).to_dict("records")
        ],
        "more": max(0, len(money) - top_n),
        "by_model": [[str(r["model_version"]), fmt(r["recovered"], "money")] for r in by_model.to_dict("records")],
    }


def _guard(name: str, build: Callable[[], dict]) -> dict:
    """A section that cannot be built says so instead of failing the whole report."""
    try:
        return build()
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        log.warning("report section %s not available: %s: %s", name, type(exc).__name__, exc)
        return not_available(f"could not be built from the logged data ({type(exc).__name__}: {exc})")


def build_context(model: ModelRef, artifacts: Mapping[str, Any], run: RunData | None, params: Mapping[str, Any],
                  recovered: pd.DataFrame | None = None) -> dict:
    """Everything the template shows, as strings and data URIs. ``recovered``: the case store's
    recoveries roll-up (``claimsentry.cases.recoveries``)."""
    metrics_ctx = _guard("metrics", lambda: metrics_section(artifacts, default_capacity=params["capacity"]))
    return {
        "title": f"claimsentry model report: {model.name} v{model.version}",
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "model": model,
        "missing_artifacts": list(artifacts.get("_missing") or []),
        "summary": _guard("summary", lambda: summary_section(model, artifacts, run)),
        "metrics": metrics_ctx,
        "curves": _guard("curves", lambda: curves_section(artifacts)),
        "explain": _guard("explain", lambda: explain_section(artifacts, top_n=params["top_features"])),
        "drift": _guard("drift", lambda: drift_section(
            artifacts, run, n_bins=params["psi_bins"], stable_below=params["psi_stable_below"],
            significant_above=params["psi_significant_above"])),
        "queue": _guard("queue", lambda: queue_section(run)),
        "dollars": _guard("dollars", lambda: dollars_section(artifacts, run, metrics_ctx)),
        "recoveries": _guard("recoveries", lambda: recoveries_section(recovered)),
    }


def render_html(context: Mapping[str, Any]) -> str:
    import jinja2

    text = resources.files("claimsentry").joinpath("templates/model_report.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(text).render(**context)


def report_params(settings) -> dict:
    """Report parameters from settings (``report.*``), with defaults."""
    return {
        "capacity": int(settings.get("queue.claim_capacity", 200)),
        "psi_bins": int(settings.get("report.psi_bins", 10)),
        "psi_stable_below": float(settings.get("report.psi_stable_below", 0.1)),
        "psi_significant_above": float(settings.get("report.psi_significant_above", 0.25)),
        "max_sample_rows": int(settings.get("report.max_sample_rows", 50_000)),
        "top_features": int(settings.get("report.top_features", 20)),
        "seed": int(settings.get("report.seed", 7)),
    }


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def default_output(settings, run_dir: str | Path | None, model_version: str) -> Path:
    if run_dir is not None:
        return Path(run_dir) / "model_report.html"
    return settings.data_dir / "reports" / f"model_report_{model_version}.html"


def write_report(settings, out_path: str | Path | None, *, run_dir: str | Path | None = None,
                 model_version: str | int | None = None) -> Path:
    """Write the HTML model report of ``model_version`` (default: the champion), with drift and queue
    sections from ``run_dir`` when given. Returns the written path. Raises ModelNotFound without a model."""
    params = report_params(settings)
    model = resolve_model(settings, model_version)
    artifacts = fetch_artifacts(settings, model.run_id)
    feature_cols = list(((artifacts.get("features") or {}).get("feature_cols")) or [])
    if not feature_cols and artifacts.get("training_sample") is not None:
        feature_cols = list(artifacts["training_sample"].columns)
    run = (
        read_run_dir(Path(run_dir), feature_cols, max_rows=params["max_sample_rows"], seed=params["seed"])
        if run_dir is not None
        else None
    )
    from claimsentry import cases

    board = cases.case_board(cases.history_dir(settings), settings, dt.date.today())
    html = render_html(build_context(model, artifacts, run, params, recovered=cases.recoveries(board)))
    out = Path(out_path) if out_path is not None else default_output(settings, run_dir, model.version)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)  # readers never see half a page
    log.info("model report -> %s", out)
    return out


def configure_parser(parser) -> None:
    parser.add_argument("--run-dir", help="a scoring run directory (OUTPUT/<run-date>) for drift and queue sections")
    parser.add_argument("--output", help="HTML file (default: RUN_DIR/model_report.html, else "
                        "DATA_DIR/reports/model_report_<version>.html)")
    parser.add_argument("--model-version", help="registered model version to report on (default: the champion)")


def run_from_cli(args, settings) -> int:
    if args.run_dir is not None and not Path(args.run_dir).is_dir():
        raise InputError(f"run directory not found: {args.run_dir}")
    path = write_report(settings, args.output, run_dir=args.run_dir, model_version=args.model_version)
    print(f"model report -> {path}")
    return 0
