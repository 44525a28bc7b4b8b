"""MLflow at the edge: log a training run, register its model, move the ``champion`` alias, load it back.

Only ``claimsentry.jobs.train`` (and ``load_champion`` for scoring) call this module. A registered model
version is an XGBoost-flavour model (``mlflow.xgboost``, JSON format) plus JSON artifacts of the same
run: ``bundle/scoring.json`` (feature list, calibration, anomaly statistics, blend weight) and
``features.json``. Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Mapping

from claimsentry.errors import ModelNotFound
from claimsentry.models.scoring import ModelBundle

log = logging.getLogger(__name__)

CHAMPION = "champion"
SCORING_JSON = "bundle/scoring.json"


def model_name(settings) -> str:
    return str(settings.get("mlflow.model_name", "claimsentry-fraud"))


def client(settings):
    """An MlflowClient on the configured tracking/registry store."""
    import mlflow
    from mlflow import MlflowClient

    uri = settings.mlflow_tracking_uri
    db = settings.mlflow_sqlite_file
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings) -> str:
    """Experiment id of ``mlflow.experiment``, created with the configured artifact location."""
    import mlflow

    c = client(settings)
    name = str(settings.get("mlflow.experiment", "claimsentry"))
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return c.create_experiment(name, artifact_location=settings.mlflow_artifact_location)
    mlflow.set_experiment(name)
    return exp.experiment_id


def promotion_decision(
    challenger: float | None, champion: float | None, *, champion_exists: bool, margin: float, metric: str
) -> dict:
    """Promote when there is no champion, or the challenger beats it by at least ``margin`` on the same
    held-out data. A challenger without a figure (no audit labels in the test period) never replaces a
    champion."""
    def finite(v):
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    if not champion_exists:
        promote, why = True, "no champion registered yet"
    elif not finite(challenger):
        promote, why = False, f"challenger has no {metric} on the held-out period (no audit labels there)"
    elif not finite(champion):
        promote, why = True, f"champion has no {metric} on the held-out period (it cannot score these features)"
    elif challenger >= champion + margin:
        promote, why = True, f"challenger {metric} {challenger:.4f} beats champion {champion:.4f} by >= {margin}"
    else:
        promote, why = False, f"challenger {metric} {challenger:.4f} does not beat champion {champion:.4f} by {margin}"
    return {
        "decision": "promoted" if promote else "kept_champion",
        "promote": promote,
        "reason": why,
        "metric": metric,
        "challenger_metric": challenger if finite(challenger) else None,
        "champion_metric": champion if finite(champion) else None,
        "margin": float(margin),
    }


def champion_version(settings) -> str | None:
    """The version number holding the ``champion`` alias, or None. A local SQLite store that does not
    exist yet holds no model: answered without creating it (MLflow's schema migrations, ~5 s, and an
    empty store left behind by a command that then stops)."""
    from mlflow.exceptions import MlflowException

    db = settings.mlflow_sqlite_file
    if db is not None and not db.is_file():
        return None
    try:
        mv = client(settings).get_model_version_by_alias(model_name(settings), CHAMPION)
    except MlflowException:
        return None
    return str(mv.version)


def _download_json(c, run_id: str, path: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        local = c.download_artifacts(run_id, path, tmp)
        return json.loads(Path(local).read_text(encoding="utf-8"))


def load_version(settings, version: str) -> ModelBundle:
    """The bundle of one registered version (booster from the XGBoost flavour, JSON from its run)."""
    import mlflow.xgboost

    c = client(settings)
    name = model_name(settings)
    mv = c.get_model_version(name, str(version))
    booster = mlflow.xgboost.load_model(f"models:/{name}/{mv.version}")
    if hasattr(booster, "get_booster"):
        booster = booster.get_booster()
    config = _download_json(c, mv.run_id, SCORING_JSON)
    return ModelBundle.from_config(booster, config, version=f"{name}/{mv.version}", run_id=mv.run_id)


def load_champion(settings) -> ModelBundle:
    """The champion bundle; ``ModelNotFound`` (one line) when none is registered."""
    version = champion_version(settings)
    if version is None:
        raise ModelNotFound(
            f"no champion model registered under '{model_name(settings)}' at {settings.mlflow_tracking_uri}; "
            "run `claimsentry train` first"
        )
    return load_version(settings, version)


def model_requirements() -> list[str]:
    """What loading the logged model needs, pinned to this environment's versions (MLflow adds
    itself). Stated rather than inferred: inference loads the model in a subprocess (~6 s of every
    training) and listed packages the model never uses (rich, psutil, scikit-learn)."""
    from importlib.metadata import packages_distributions, version

    dists = packages_distributions()
    return sorted(f"{dist}=={version(dist)}" for module in ("xgboost", "numpy", "pandas") for dist in dists.get(module, [])[:1])


def log_and_register(
    settings,
    *,
    bundle: ModelBundle,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts_dir: Path,
    input_example,
    decide,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """One MLflow run: params, metrics, every file under ``artifacts_dir`` (keeping its relative
    path), ``bundle/scoring.json``, the XGBoost model with its signature, registered under
    ``mlflow.model_name``. ``decide()`` is then called (it compares with the champion on the same
    held-out data) and returns ``promotion_decision(...)``; the alias moves only when it says so, and
    ``promotion.json`` plus ``promotion.*`` figures are logged. Returns the decision with
    ``model_version`` ("name/N") and ``run_id``."""
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature

    c = client(settings)
    exp_id = ensure_experiment(settings)
    name = model_name(settings)
    with mlflow.start_run(experiment_id=exp_id) as run:
        run_id = run.info.run_id
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in sorted(Path(artifacts_dir).rglob("*")):
            if path.is_file():
                rel = path.relative_to(artifacts_dir).parent.as_posix()
                mlflow.log_artifact(str(path), artifact_path=None if rel == "." else rel)
        mlflow.log_dict(bundle.scoring_config(), SCORING_JSON)
        prediction = bundle.booster.predict(__import__("xgboost").DMatrix(input_example, missing=float("nan")))
        signature = infer_signature(input_example, prediction)
        info = mlflow.xgboost.log_model(
            bundle.booster,
            name="model",
            signature=signature,
            input_example=input_example,
            registered_model_name=name,
            model_format="json",
            pip_requirements=model_requirements(),
        )
        version = str(info.registered_model_version)
        decision = decide()
        if decision["promote"]:
            c.set_registered_model_alias(name, CHAMPION, version)
        decision = {**decision, "model_version": f"{name}/{version}", "version": version, "run_id": run_id}
        mlflow.log_dict(decision, "promotion.json")
        mlflow.log_metrics(
            {
                f"promotion.{k}": float(decision[k])
                for k in ("challenger_metric", "champion_metric", "margin")
                if decision.get(k) is not None
            }
        )
        mlflow.set_tags({"promotion.decision": decision["decision"], **(tags or {})})
        c.set_model_version_tag(name, version, "promotion", decision["decision"])
    return decision
