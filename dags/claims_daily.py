"""
### claims_daily — score one day's claims and write the audit queues

One run per **logical date** `ds`; every task reads and writes only that date's partition, so a
run is idempotent and a backfill of a range equals running each date on its own.

| task | what it does | reads | writes |
|---|---|---|---|
| `land` | waits (sensor, reschedule mode) until the day's drop holds `medical_claim`, `pharmacy_claim`, `eligibility` | `<claims_root>/<ds>/` | — |
| `choose_engine` | in-process Spark, or `spark-submit` when connection `claimsentry_spark` exists (param `spark_submit` forces either way) | — | — |
| `validate` | data-quality gate; a failed gate **fails the run without retries**, the one-line reason is the last log line | input | `<staging_root>/<ds>/gate/` |
| `score_and_queue` | features → champion score → claim and provider queues, one atomic write of the run directory | input, the gate's checked rows, champion model | `<output_root>/<ds>/` |
| `report` | actuaries' HTML report of the run | run directory | `<output_root>/<ds>/model_report.html` |

`validate_on_cluster` / `score_and_queue_on_cluster` are the same stages submitted to the cluster
(`jobs/spark_entry.py`). Features, scoring and queues are one task because `run_score` writes the run
directory as a single transaction (the gate is part of that transaction, so the queues can only be
built from data that passed it). It reads the rows `validate` checked (`<staging_root>/<ds>/gate/accepted/`,
removed once the run is written) when the input has not changed since; otherwise it checks them
again itself. Settings: see `docs/operations.md`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task

from claimsentry.dags._common import (
    DEFAULT_ARGS,
    LAND_POKE_INTERVAL_S,
    LAND_TIMEOUT_S,
    common_params,
    spark_submit,
    xcom,
    xcom_json,
)


@dag(
    dag_id="claims_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the case history excludes claims queued by *earlier* dates: run dates in order
    default_args=DEFAULT_ARGS,
    tags=["claimsentry", "scoring"],
    doc_md=__doc__,
    params={
        **common_params(),
        "input_template": Param(
            None, type=["null", "string"], description="overrides Variable claimsentry_input_template ('{claims_root}/{ds}')"
        ),
        "required_tables": Param(
            ["medical_claim", "pharmacy_claim", "eligibility"], type="array", description="tables the day's drop must hold"
        ),
        "success_marker": Param(None, type=["null", "string"], description="file the landing job writes last, e.g. _SUCCESS"),
    },
)
def claims_daily():
    @task.sensor(task_id="land", poke_interval=LAND_POKE_INTERVAL_S, timeout=LAND_TIMEOUT_S, mode="reschedule")
    def land() -> PokeReturnValue:
        from claimsentry.dags._common import resolve_paths, settings_overrides
        from claimsentry.jobs.tasks import check_landed

        ctx = get_current_context()
        params = ctx["params"]
        overrides = settings_overrides(params)
        run = resolve_paths(params, ctx["ds"], overrides) | {"overrides": overrides}
        landed = check_landed(
            run["input_dir"], tables=tuple(params["required_tables"]), success_marker=params.get("success_marker")
        )
        print(f"landing check {run['input_dir']}: {landed['reason']}")
        return PokeReturnValue(is_done=landed["ready"], xcom_value=run | {"found": landed["found"]})

    @task.branch
    def choose_engine() -> str:
        from claimsentry.dags._common import use_spark_submit

        cluster = use_spark_submit(get_current_context()["params"])
        print("Spark stages run " + ("through spark-submit" if cluster else "in-process on this worker"))
        return "validate_on_cluster" if cluster else "validate"

    @task
    def validate(run: dict) -> dict:
        from claimsentry.dags._common import user_errors_fail_fast
        from claimsentry.jobs.tasks import validate_partition

        with user_errors_fail_fast("data-quality gate"):
            return validate_partition(run["ds"], run["input_dir"], run["gate_dir"], run["overrides"])

    @task
    def score_and_queue(run: dict, gate: dict) -> dict:
        from claimsentry.dags._common import user_errors_fail_fast
        from claimsentry.jobs.tasks import score_partition

        with user_errors_fail_fast("scoring"):
            return score_partition(
                run["ds"], run["input_dir"], run["output_root"], run["overrides"], gate_dir=run["gate_dir"]
            )

    @task(trigger_rule="none_failed_min_one_success")
    def report(run: dict) -> dict:
        from claimsentry.dags._common import user_errors_fail_fast
        from claimsentry.jobs.tasks import report_partition

        with user_errors_fail_fast("report"):
            return report_partition(run["run_dir"], run["overrides"])

    run = land()
    engine = choose_engine()
    gate = validate(run)
    scored = score_and_queue(run, gate)

    gate_cluster = spark_submit(
        "validate_on_cluster",
        "validate",
        ["--input", xcom("land", "input_dir"), "--gate-dir", xcom("land", "gate_dir"), "--run-date", "{{ ds }}",
         "--overrides", xcom_json("land", "overrides")],
    )
    scored_cluster = spark_submit(
        "score_and_queue_on_cluster",
        "score",
        ["--input", xcom("land", "input_dir"), "--output", xcom("land", "output_root"), "--run-date", "{{ ds }}",
         "--gate-dir", xcom("land", "gate_dir"), "--overrides", xcom_json("land", "overrides")],
    )
    reported = report(run)

    run >> engine >> [gate, gate_cluster]
    gate_cluster >> scored_cluster
    [scored, scored_cluster] >> reported


claims_daily()
