"""
### audit_feedback — import auditors' dispositions as they arrive

Every 30 minutes: each disposition CSV waiting in the inbox (Variable `claimsentry_feedback_inbox`)
is imported with `claimsentry.jobs.feedback.ingest_feedback` — accepted rows close their cases and
become labels for the next `model_training` run; rejected rows are kept with their reason — and the
file moves to `<inbox>/processed/`. A file that cannot be read at all moves to `<inbox>/failed/`
with `<file>.reason.txt`, and the run fails visibly naming it (no retries: the file won't change).
Re-importing a file replaces its own rows, so a retry after a crash never double-counts.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from claimsentry.dags._common import DEFAULT_ARGS, common_params


@dag(
    dag_id="audit_feedback",
    schedule=dt.timedelta(minutes=30),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one importer at a time moves files out of the inbox
    default_args=DEFAULT_ARGS,
    tags=["claimsentry", "feedback"],
    doc_md=__doc__,
    params={
        **common_params(),
        "feedback_inbox": Param(None, type=["null", "string"], description="overrides Variable claimsentry_feedback_inbox"),
    },
)
def audit_feedback():
    @task
    def ingest_inbox() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from claimsentry.dags._common import resolve_paths, settings_overrides
        from claimsentry.jobs import tasks

        ctx = get_current_context()
        overrides = settings_overrides(ctx["params"])
        inbox = resolve_paths(ctx["params"], ctx["ds"], overrides)["feedback_inbox"]
        # "today" for the not-in-the-future check is the end of this run's interval, not the wall clock.
        end = ctx.get("data_interval_end") or ctx["logical_date"]
        result = tasks.ingest_inbox(inbox, overrides, today=end.date())
        print(
            f"inbox {inbox}: {len(result['files'])} files imported ({result['accepted']} dispositions accepted, "
            f"{result['rejected']} rejected), {len(result['failed'])} unreadable"
        )
        if result["failed"]:
            names = "; ".join(f"{f['file']}: {f['reason']}" for f in result["failed"])
            raise AirflowFailException(f"unreadable feedback files moved to {inbox}/failed: {names}")
        return result

    ingest_inbox()


audit_feedback()
