"""
### model_training — retrain the claims model, promote it only when it beats the champion

Weekly, or on demand (trigger with conf). Reads a standing training set (tables + labels, plus
the auditors' dispositions that `audit_feedback` has imported), never a date partition of new claims.

| task | what it does | writes |
|---|---|---|
| `training_set` | resolves paths; fails at once (no retries) if the training input lacks a table | — |
| `choose_engine` | in-process Spark, or `spark-submit` when connection `claimsentry_spark` exists | — |
| `train` | features → train → evaluate against the champion → register; the champion alias moves only when the new model is better (`train_from_input`) | MLflow run + model version; `<training_output>/<ds>/train_summary.json` |
| `report` | model report; returns the promotion decision (XCom keys `promoted`, `decision`, `model_version`) and logs it | `<training_output>/<ds>/model_report.html` |

`train_on_cluster` is `train` submitted to the cluster (`jobs/spark_entry.py train`).
Evaluation and promotion are inside `train` because they are one MLflow transaction: a model
version is registered and compared in the same run that produced it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from claimsentry.dags._common import DEFAULT_ARGS, common_params, spark_submit, xcom, xcom_json


@dag(
    dag_id="model_training",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two trainings racing for the champion alias would be a coin toss
    default_args=DEFAULT_ARGS,
    tags=["claimsentry", "training"],
    doc_md=__doc__,
    params={
        **common_params(),
        "training_input": Param(None, type=["null", "string"], description="overrides Variable claimsentry_training_input"),
        "labels_path": Param(None, type=["null", "string"], description="overrides Variable claimsentry_labels_path"),
    },
)
def model_training():
    @task(retries=0)
    def training_set() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from claimsentry.dags._common import resolve_paths, settings_overrides
        from claimsentry.jobs.tasks import check_landed

        ctx = get_current_context()
        overrides = settings_overrides(ctx["params"])
        run = resolve_paths(ctx["params"], ctx["ds"], overrides) | {"overrides": overrides}
        landed = check_landed(run["training_input"], tables=("medical_claim", "eligibility"))
        print(f"training input {run['training_input']}: {landed['reason']}")
        if not landed["ready"]:
            raise AirflowFailException(f"training input not usable: {landed['reason']}")
        return run | {
            "summary_path": f"{run['training_dir']}/train_summary.json",
            "report_path": f"{run['training_dir']}/model_report.html",
        }

    @task.branch
    def choose_engine() -> str:
        from claimsentry.dags._common import use_spark_submit

        cluster = use_spark_submit(get_current_context()["params"])
        print("training runs " + ("through spark-submit" if cluster else "in-process on this worker"))
        return "train_on_cluster" if cluster else "train"

    @task
    def train(run: dict) -> dict:
        from claimsentry.dags._common import user_errors_fail_fast
        from claimsentry.jobs.tasks import train_model

        with user_errors_fail_fast("training"):
            return train_model(
                run["ds"],
                run["training_input"],
                run["summary_path"],
                run["overrides"],
                labels_path=run["labels_path"],
                provider_labels_path=run["provider_labels_path"],
            )

    @task(trigger_rule="none_failed_min_one_success")
    def report(run: dict) -> dict:
        from claimsentry.dags._common import user_errors_fail_fast
        from claimsentry.jobs.tasks import training_report

        with user_errors_fail_fast("model report"):
            result = training_report(run["summary_path"], run["report_path"], run["overrides"])
        verdict = "PROMOTED to champion" if result["promoted"] else "not promoted (champion kept)"
        print(f"model {result['model_version']}: {verdict}; decision: {result['decision']}")
        return result

    run = training_set()
    engine = choose_engine()
    trained = train(run)
    trained_cluster = spark_submit(
        "train_on_cluster",
        "train",
        ["--input", xcom("training_set", "training_input"), "--run-date", "{{ ds }}", "--summary-out", xcom("training_set", "summary_path"),
         "--labels", "{{ ti.xcom_pull(task_ids='training_set')['labels_path'] or '' }}",
         "--provider-labels", "{{ ti.xcom_pull(task_ids='training_set')['provider_labels_path'] or '' }}",
         "--overrides", xcom_json("training_set", "overrides")],
    )
    reported = report(run)

    run >> engine >> [trained, trained_cluster]
    [trained, trained_cluster] >> reported


model_training()
