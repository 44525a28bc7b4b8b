"""Shared wiring for the claimsentry DAGs: default_args, run parameters and the Spark-submit path.

Nothing here imports PySpark, the job modules or Airflow's core at module level: the scheduler
imports DAG files every few seconds, so a DAG file and this helper only *wire* tasks. Everything
that touches data runs inside a task, through ``claimsentry.jobs.tasks`` (plain functions, no
Airflow), either in-process on the worker or on a cluster via ``spark-submit jobs/spark_entry.py``.

Where a run's settings come from (first wins):

1. the run's conf / trigger form (``params``: ``claims_root``, ``output_root``, ``spark_submit``,
   ``settings_overrides`` ...),
2. Airflow Variables ``claimsentry_*`` (see ``VARIABLES``),
3. ``CLAIMSENTRY_*`` environment of the worker (``claimsentry.config.load_settings``) and the
   derived defaults below (everything under the settings' ``data_dir``).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

SPARK_CONN_ID = "claimsentry_spark"  # an Airflow connection of type "spark"; its presence selects the cluster path
REPO_DIR = Path(__file__).resolve().parents[1]
SPARK_ENTRY = REPO_DIR / "jobs" / "spark_entry.py"

# Airflow Variable -> what it sets (documented in docs/operations.md).
VARIABLES = {
    "claimsentry_claims_root": "folder holding one sub-folder of claim files per logical date",
    "claimsentry_input_template": "landing path of one date, default '{claims_root}/{ds}'",
    "claimsentry_output_root": "run directories land in <output_root>/<ds>/",
    "claimsentry_staging_root": "gate artifacts per date, default '{output_root}/_staging'",
    "claimsentry_training_input": "claims directory (tables + labels) the weekly training reads",
    "claimsentry_training_output": "training summaries and model reports, default '{output_root}/_training'",
    "claimsentry_labels_path": "optional labels file for training (default: labels beside the tables)",
    "claimsentry_provider_labels_path": "optional provider labels file for training",
    "claimsentry_feedback_inbox": "folder auditors drop disposition CSVs into",
    "claimsentry_settings": "JSON object of dotted claimsentry settings, e.g. {\"mlflow.tracking_uri\": \"...\"}",
    "claimsentry_spark_application": "path of jobs/spark_entry.py as the Spark cluster sees it",
    "claimsentry_spark_py_files": "comma-separated --py-files for spark-submit (e.g. a claimsentry wheel/zip)",
    "claimsentry_spark_properties_file": "spark-defaults style file passed as --properties-file",
}

DEFAULT_ARGS = {
    "owner": "claimsentry",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(hours=6),
}

# Landing sensor: look every 5 minutes for up to 6 hours, freeing the worker slot in between.
LAND_POKE_INTERVAL_S = 300
LAND_TIMEOUT_S = 6 * 3600


def common_params() -> dict:
    """Run parameters shared by the DAGs (trigger form / ``--conf``). ``None`` = use Variable/env."""
    from airflow.sdk import Param  # light: the task SDK's definitions only

    return {
        "claims_root": Param(None, type=["null", "string"], description="overrides Variable claimsentry_claims_root"),
        "output_root": Param(None, type=["null", "string"], description="overrides Variable claimsentry_output_root"),
        "spark_submit": Param(
            None,
            type=["null", "boolean"],
            description="true: run Spark stages through spark-submit on connection 'claimsentry_spark'; "
            "false: in-process; empty: spark-submit when that connection exists",
        ),
        "settings_overrides": Param(
            {}, type="object", description="dotted claimsentry settings for this run, e.g. {\"queue.claim_capacity\": 100}"
        ),
    }


# ---------------------------------------------------------------------------------------------
# Runtime helpers (called inside tasks only)
# ---------------------------------------------------------------------------------------------
def variable(key: str, default: Any = None, *, json_value: bool = False) -> Any:
    """An Airflow Variable (metadata DB, secrets backend or ``AIRFLOW_VAR_<KEY>``), or ``default``.
    A Variable that is set but not valid JSON where JSON is expected fails the task (no silent default)."""
    from airflow.sdk import Variable

    return Variable.get(key, default=default, deserialize_json=json_value)


def first(*values: Any) -> Any:
    """The first value that is not None or empty string."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def settings_overrides(params: Mapping[str, Any]) -> dict:
    """Dotted settings for this run: Variable ``claimsentry_settings`` then the run's params on top."""
    merged = dict(variable("claimsentry_settings", {}, json_value=True) or {})
    merged.update(params.get("settings_overrides") or {})
    return merged


def resolve_paths(params: Mapping[str, Any], ds: str, overrides: Mapping[str, Any]) -> dict:
    """Every path a run touches, as plain strings (JSON-able for XCom and spark-submit args)."""
    from claimsentry.config import load_settings  # yaml only, no Spark

    data_dir = load_settings(overrides=dict(overrides)).data_dir
    claims_root = str(first(params.get("claims_root"), variable("claimsentry_claims_root"), data_dir / "claims"))
    output_root = str(first(params.get("output_root"), variable("claimsentry_output_root"), data_dir / "runs"))
    template = str(first(params.get("input_template"), variable("claimsentry_input_template"), "{claims_root}/{ds}"))
    fmt = {"claims_root": claims_root.rstrip("/"), "output_root": output_root.rstrip("/"), "ds": ds}
    try:
        input_dir = template.format(**fmt)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"claimsentry_input_template {template!r} may only use {{claims_root}}, {{output_root}}, {{ds}} ({exc})"
        ) from None
    staging_root = str(first(variable("claimsentry_staging_root"), f"{fmt['output_root']}/_staging"))
    training_output = str(first(variable("claimsentry_training_output"), f"{fmt['output_root']}/_training"))
    return {
        "ds": ds,
        "claims_root": claims_root,
        "input_dir": input_dir,
        "output_root": output_root,
        "run_dir": f"{fmt['output_root']}/{ds}",
        "gate_dir": f"{staging_root.rstrip('/')}/{ds}/gate",
        "training_input": str(first(params.get("training_input"), variable("claimsentry_training_input"), f"{fmt['claims_root']}/training")),
        "training_dir": f"{training_output.rstrip('/')}/{ds}",
        "labels_path": first(params.get("labels_path"), variable("claimsentry_labels_path")),
        "provider_labels_path": first(variable("claimsentry_provider_labels_path")),
        "feedback_inbox": str(first(params.get("feedback_inbox"), variable("claimsentry_feedback_inbox"), data_dir / "feedback" / "inbox")),
    }


def use_spark_submit(params: Mapping[str, Any]) -> bool:
    """True when the Spark stages go through spark-submit: param ``spark_submit``, else whether the
    ``claimsentry_spark`` connection exists. Asking for spark-submit without the connection fails."""
    wanted = params.get("spark_submit")
    if wanted is False:
        return False
    exists = connection_exists(SPARK_CONN_ID)
    if wanted and not exists:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"spark_submit=true but Airflow connection '{SPARK_CONN_ID}' is not defined")
    return exists


def connection_exists(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - AirflowNotFoundException and friends: not configured
        return False
    return True


class user_errors_fail_fast:
    """Context manager: claimsentry's one-line user errors (failed gate, bad input, no champion)
    fail the task *without retries* and with the reason as the log's last line. Retrying cannot fix
    them; anything else (I/O hiccup, lost executor) propagates and is retried with back-off."""

    def __init__(self, stage: str):
        self.stage = stage

    def __enter__(self) -> "user_errors_fail_fast":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        from claimsentry.errors import ClaimSentryError

        if exc is not None and isinstance(exc, ClaimSentryError):
            from airflow.sdk.exceptions import AirflowFailException

            reason = f"{self.stage} failed ({type(exc).__name__}): {exc}"
            log.error(reason)
            raise AirflowFailException(reason) from None
        return False


# ---------------------------------------------------------------------------------------------
# The cluster path
# ---------------------------------------------------------------------------------------------
def xcom(task_id: str, key: str) -> str:
    """Jinja for one field of an upstream task's returned dict (rendered at run time)."""
    return "{{ ti.xcom_pull(task_ids='%s')['%s'] }}" % (task_id, key)


def xcom_json(task_id: str, key: str) -> str:
    """Jinja for one field of an upstream task's returned dict, as JSON text."""
    return "{{ ti.xcom_pull(task_ids='%s')['%s'] | tojson }}" % (task_id, key)


def spark_submit(task_id: str, command: str, args: list[str], **kwargs: Any):
    """A ``SparkSubmitOperator`` running ``spark_entry.py <command> <args>`` on ``claimsentry_spark``.

    ``args`` are templated strings (usually ``xcom(...)`` of the run's resolved paths); the run's
    settings overrides travel as ``--overrides <json>``. Cluster sizing belongs in the connection's
    extras or the properties file (Variable ``claimsentry_spark_properties_file``), not in code.
    """
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application="{{ var.value.get('claimsentry_spark_application', '%s') }}" % SPARK_ENTRY,
        application_args=[command, *args],
        py_files="{{ var.value.get('claimsentry_spark_py_files', '') }}",
        properties_file="{{ var.value.get('claimsentry_spark_properties_file', '') }}",
        name=f"claimsentry-{command}-{{{{ ds }}}}",
        **kwargs,
    )
