"""The Airflow DAGs: they parse, their task graphs and retries are what the docs say, the
spark-submit path builds the right command, and real ``dag.test()`` runs of ``claims_daily`` and
``model_training`` on generated claims write the run directory; a date's queue leaves out the cases
of earlier dates (open, or closed by an auditor's disposition); a re-run of a date through the
spark-submit entry script gives byte-for-byte the same outputs as its daily run.

Airflow runs against a throw-away metadata DB (sqlite) under a temp ``AIRFLOW_HOME``; Spark is the
session fixture, which ``claimsentry.spark.get_spark`` returns as the active session.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import DAGS, TRAINING_DATE, utc, without_retries

REPO = Path(__file__).resolve().parents[1]
DAG_IDS = {"claims_daily", "model_training", "audit_feedback"}
D1, D2 = "2026-01-01", "2026-01-02"
CLAIM_QUEUE_COLUMNS = ["rank", "claim_id", "claim_source", "score", "amount_at_risk", "expected_recovery", "reasons", "billing_npi", "person_id"]
PROVIDER_QUEUE_COLUMNS = ["rank", "npi", "score", "flagged_claims", "amount_at_risk", "reasons"]


def _downstream(dag) -> dict[str, set[str]]:
    return {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}


# ---------------------------------------------------------------------------------------------
# Parsing, graphs, retries
# ---------------------------------------------------------------------------------------------
def test_dagbag_has_the_three_dags_and_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS


def test_claims_daily_task_graph(dagbag):
    dag = dagbag.dags["claims_daily"]
    assert _downstream(dag) == {
        "land": {"choose_engine", "validate", "score_and_queue", "report"},
        "choose_engine": {"validate", "validate_on_cluster"},
        "validate": {"score_and_queue"},
        "score_and_queue": {"report"},
        "validate_on_cluster": {"score_and_queue_on_cluster"},
        "score_and_queue_on_cluster": {"report"},
        "report": set(),
    }
    assert dag.task_dict["report"].trigger_rule == "none_failed_min_one_success"
    assert type(dag.task_dict["land"]).__name__ == "DecoratedSensorOperator"
    assert dag.task_dict["land"].mode == "reschedule"
    assert type(dag.task_dict["score_and_queue_on_cluster"]).__name__ == "SparkSubmitOperator"


def test_model_training_and_feedback_task_graphs(dagbag):
    assert _downstream(dagbag.dags["model_training"]) == {
        "training_set": {"choose_engine", "train", "report"},
        "choose_engine": {"train", "train_on_cluster"},
        "train": {"report"},
        "train_on_cluster": {"report"},
        "report": set(),
    }
    assert _downstream(dagbag.dags["audit_feedback"]) == {"ingest_inbox": set()}


def test_schedules_retries_and_docs(dagbag):
    schedules = {"claims_daily": "@daily", "model_training": "@weekly", "audit_feedback": "0:30:00"}
    for dag_id, dag in dagbag.dags.items():
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert "claimsentry" in dag.tags
        assert dag.doc_md and dag_id in dag.doc_md
        assert str(dag.schedule) == schedules[dag_id]
        for t in dag.tasks:
            expected = 0 if t.task_id == "training_set" else 2  # a missing training set won't appear on retry
            assert t.retries == expected, (dag_id, t.task_id)
            assert t.retry_exponential_backoff, (dag_id, t.task_id)
            assert t.retry_delay == dt.timedelta(minutes=2)
            assert t.max_retry_delay == dt.timedelta(minutes=30)


def test_dag_files_are_thin_no_pyspark_or_job_imports():
    """A scheduler parse of every DAG file imports neither PySpark nor the job modules. (How long the
    parse takes is not asserted: on a fresh install it is mostly compiling Airflow's own bytecode.)"""
    code = (
        "import sys, runpy\n"
        f"for f in ['claims_daily', 'model_training', 'audit_feedback']: runpy.run_path(r'{DAGS}/' + f + '.py')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'mlflow', 'xgboost', 'great_expectations')"
        " or m.startswith(('claimsentry.jobs', 'claimsentry.features', 'claimsentry.models')))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------------
# Run parameters and the spark-submit path
# ---------------------------------------------------------------------------------------------
def test_paths_resolve_from_params_then_variables_then_defaults(airflow_home, monkeypatch, tmp_path):
    from claimsentry.dags._common import resolve_paths, settings_overrides

    monkeypatch.setenv("AIRFLOW_VAR_CLAIMSENTRY_CLAIMS_ROOT", "/landing")
    monkeypatch.setenv("AIRFLOW_VAR_CLAIMSENTRY_INPUT_TEMPLATE", "{claims_root}/dt={ds}")
    monkeypatch.setenv("AIRFLOW_VAR_CLAIMSENTRY_SETTINGS", json.dumps({"data_dir": str(tmp_path), "queue.claim_capacity": 9}))
    overrides = settings_overrides({"settings_overrides": {"queue.claim_capacity": 5}})
    assert overrides == {"data_dir": str(tmp_path), "queue.claim_capacity": 5}  # the run's conf wins

    paths = resolve_paths({"output_root": "/out/"}, D1, overrides)
    assert paths["input_dir"] == "/landing/dt=2026-01-01"
    assert paths["run_dir"] == "/out/2026-01-01"
    assert paths["gate_dir"] == "/out/_staging/2026-01-01/gate"
    assert paths["training_dir"] == "/out/_training/2026-01-01"
    assert paths["feedback_inbox"] == str(tmp_path.resolve() / "feedback" / "inbox")

    monkeypatch.setenv("AIRFLOW_VAR_CLAIMSENTRY_INPUT_TEMPLATE", "{claims_root}/{day}")
    with pytest.raises(ValueError, match="may only use"):
        resolve_paths({}, D1, overrides)


def test_engine_choice_follows_connection_and_param(airflow_home, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from claimsentry.dags._common import use_spark_submit

    monkeypatch.delenv("AIRFLOW_CONN_CLAIMSENTRY_SPARK", raising=False)
    assert use_spark_submit({"spark_submit": None}) is False
    with pytest.raises(AirflowFailException, match="claimsentry_spark"):
        use_spark_submit({"spark_submit": True})
    monkeypatch.setenv("AIRFLOW_CONN_CLAIMSENTRY_SPARK", "spark://spark-master:7077?deploy-mode=cluster")
    assert use_spark_submit({"spark_submit": None}) is True
    assert use_spark_submit({"spark_submit": False}) is False


class _FakeTI:
    def __init__(self, values: dict):
        self.values = values

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return self.values[task_ids]


def test_cluster_path_builds_the_spark_submit_command(dagbag, monkeypatch):
    from airflow.sdk.execution_time.context import VariableAccessor

    monkeypatch.setenv("AIRFLOW_CONN_CLAIMSENTRY_SPARK", "spark://spark-master:7077?deploy-mode=client")
    monkeypatch.setenv("AIRFLOW_VAR_CLAIMSENTRY_SPARK_PY_FILES", "/opt/claimsentry.zip")
    land = {"input_dir": "/claims/2026-01-02", "output_root": "/out", "gate_dir": "/out/_staging/2026-01-02/gate",
            "overrides": {"mlflow.tracking_uri": "http://mlflow:5000"}}
    context = {
        "ti": _FakeTI({"land": land}),
        "ds": D2,
        "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(deserialize_json=True)},
    }
    commands = {}
    for task_id in ("validate_on_cluster", "score_and_queue_on_cluster"):
        op = dagbag.dags["claims_daily"].task_dict[task_id]
        op.render_template_fields(context)
        assert op._conn_id == "claimsentry_spark"
        commands[task_id] = op._get_hook()._build_spark_submit_command(op.application)
    entry = str(REPO / "jobs" / "spark_entry.py")
    overrides = '{"mlflow.tracking_uri": "http://mlflow:5000"}'
    assert commands["score_and_queue_on_cluster"] == [
        "spark-submit", "--master", "spark://spark-master:7077", "--py-files", "/opt/claimsentry.zip",
        "--name", "claimsentry-score-2026-01-02", "--deploy-mode", "client", entry,
        "score", "--input", "/claims/2026-01-02", "--output", "/out", "--run-date", D2,
        "--gate-dir", "/out/_staging/2026-01-02/gate", "--overrides", overrides,
    ]
    assert commands["validate_on_cluster"][-9:] == [
        "validate", "--input", "/claims/2026-01-02", "--gate-dir", "/out/_staging/2026-01-02/gate",
        "--run-date", D2, "--overrides", overrides,
    ]
    # ... and the entry script parses exactly those arguments.
    from claimsentry.jobs.spark_entry import build_parser

    args = build_parser().parse_args(commands["score_and_queue_on_cluster"][10:])
    assert (args.command, args.input, args.output, args.run_date) == ("score", "/claims/2026-01-02", "/out", D2)
    assert args.gate_dir == land["gate_dir"]
    assert json.loads(args.overrides) == land["overrides"]
    args = build_parser().parse_args(commands["validate_on_cluster"][-9:])
    assert (args.command, args.input, args.gate_dir, args.run_date) == ("validate", "/claims/2026-01-02", land["gate_dir"], D2)


def test_training_cluster_path_passes_the_run_date_and_labels(dagbag, monkeypatch):
    from airflow.sdk.execution_time.context import VariableAccessor

    monkeypatch.setenv("AIRFLOW_CONN_CLAIMSENTRY_SPARK", "yarn://?deploy-mode=cluster&queue=claims")
    run = {"training_input": "/claims/training", "summary_path": "/out/_training/2026-01-04/train_summary.json",
           "labels_path": None, "provider_labels_path": "/labels/providers.csv", "overrides": {}}
    op = dagbag.dags["model_training"].task_dict["train_on_cluster"]
    op.render_template_fields({
        "ti": _FakeTI({"training_set": run}), "ds": "2026-01-04",
        "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(deserialize_json=True)},
    })
    assert op.application_args == [
        "train", "--input", "/claims/training", "--run-date", "2026-01-04",
        "--summary-out", "/out/_training/2026-01-04/train_summary.json",
        "--labels", "", "--provider-labels", "/labels/providers.csv", "--overrides", "{}",
    ]
    from claimsentry.jobs.spark_entry import build_parser

    args = build_parser().parse_args(op.application_args)
    assert (args.labels, args.provider_labels, args.run_date) == ("", "/labels/providers.csv", "2026-01-04")


def test_spark_entry_bad_overrides_exit_with_one_line(capsys):
    from claimsentry.jobs.spark_entry import main

    code = main(["score", "--input", "/x", "--output", "/y", "--run-date", D1, "--overrides", "[1, 2]"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "claimsentry InputError: --overrides must be a JSON object of dotted settings"


# ---------------------------------------------------------------------------------------------
# Landing check and the feedback inbox (no Spark)
# ---------------------------------------------------------------------------------------------
def test_landing_check_waits_for_every_table_and_the_marker(tmp_path):
    from claimsentry.jobs.tasks import check_landed

    day = tmp_path / D1
    assert check_landed(str(day)) == {
        "ready": False, "missing": ["medical_claim", "pharmacy_claim", "eligibility"], "found": {},
        "reason": f"input directory not found: {day}",
    }
    day.mkdir()
    (day / "medical_claim.csv").write_text("claim_id\n", encoding="utf-8")
    (day / "eligibility").mkdir()  # a part-file folder still empty: being written
    got = check_landed(str(day))
    assert got["ready"] is False
    assert got["missing"] == ["pharmacy_claim", "eligibility"]
    assert "eligibility: folder" in got["reason"]
    (day / "eligibility" / "part-0.parquet").write_bytes(b"x")
    (day / "pharmacy_claim.parquet").write_bytes(b"x")
    assert check_landed(str(day))["ready"] is True
    assert check_landed(str(day), success_marker="_SUCCESS")["reason"] == f"marker _SUCCESS not written yet in {day}"
    (day / "_SUCCESS").touch()
    assert check_landed(str(day), success_marker="_SUCCESS")["ready"] is True


def test_audit_feedback_dag_imports_inbox_and_fails_visibly_on_an_unreadable_file(airflow_home, dagbag, tmp_path, capfd):
    from claimsentry import cases

    opened = pd.DataFrame({"claim_id": ["M1", "M2"], "claim_source": "medical", "rank": [1, 2], "amount_paid": 500.0})
    opened["case_id"] = [cases.case_id("medical", c) for c in opened["claim_id"]]
    cases.record_queue(tmp_path / "data" / "cases", dt.date(2026, 1, 2), opened)  # the cases a daily run opened
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text(
        "claim_id,claim_source,outcome,outcome_date\nM1,medical,confirmed,2026-01-03\nM2,medical,cleared,2026-01-09\n",
        encoding="utf-8",
    )
    (inbox / "empty.csv").write_text("", encoding="utf-8")
    conf = {"feedback_inbox": str(inbox), "settings_overrides": {"data_dir": str(tmp_path / "data")}}
    dr = dagbag.dags["audit_feedback"].test(logical_date=utc("2026-01-05"), run_conf=conf)

    assert dr.state == "failed"
    (ti,) = dr.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1)  # AirflowFailException: no retries
    captured = capfd.readouterr()
    assert "unreadable feedback files moved to" in captured.out + captured.err  # the reason is in the task log
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["good.csv"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["empty.csv", "empty.csv.reason.txt"]
    assert "empty" in (inbox / "failed" / "empty.csv.reason.txt").read_text(encoding="utf-8")
    stored = list((tmp_path / "data" / "cases" / "dispositions").glob("*.parquet"))
    accepted = pd.read_parquet(stored[0])
    assert sorted(accepted["claim_id"]) == ["M1"]  # M2's outcome date is after the run's date: rejected


# ---------------------------------------------------------------------------------------------
# Real runs on generated claims
# ---------------------------------------------------------------------------------------------
def _xcom(dr, task_id: str):
    from airflow.models.xcom import XComModel

    from airflow.utils.session import create_session

    query = XComModel.get_many(run_id=dr.run_id, dag_ids=dr.dag_id, task_ids=task_id, key="return_value")
    with create_session() as session:  # Airflow 3.3: get_many returns a SQLAlchemy Select
        row = session.scalars(query).first()
    value = row.value
    return json.loads(value) if isinstance(value, str) else value


def _states(dr) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def test_gate_failure_fails_the_run_without_retries(airflow_home, dagbag, spark, tmp_path, caplog):
    day = tmp_path / "claims" / D1
    day.mkdir(parents=True)
    (day / "medical_claim.csv").write_text(
        "claim_id,claim_line_number,claim_type,person_id,claim_start_date,claim_end_date,billing_npi,paid_amount\n",
        encoding="utf-8",
    )
    (day / "eligibility.csv").write_text(
        "person_id,birth_date,enrollment_start_date,enrollment_end_date\nP1,1950-01-01,2025-01-01,2025-12-31\n",
        encoding="utf-8",
    )
    conf = {  # a feed without pharmacy claims: land waits for the two tables only
        "required_tables": ["medical_claim", "eligibility"],
        "claims_root": str(tmp_path / "claims"),
        "output_root": str(tmp_path / "out"),
        "spark_submit": False,
        "settings_overrides": {"data_dir": str(tmp_path / "data")},
    }
    dr = dagbag.dags["claims_daily"].test(logical_date=utc(D1), run_conf=conf)

    assert dr.state == "failed"
    states = _states(dr)
    assert states["validate"] == "failed"
    assert states["score_and_queue"] == states["report"] == "upstream_failed"
    assert states["validate_on_cluster"] == "skipped"
    assert dr.get_task_instance("validate").try_number == 1
    assert "data-quality gate failed (GateFailed): medical_claim: no data rows (header only or empty)" in caplog.text
    assert not (tmp_path / "out" / D1).exists()  # nothing published for a failed gate


@pytest.fixture(scope="module")
def generated(tmp_path_factory, generated_claims):
    """The session's generated claims, landed for two logical dates (the same files, so the second
    date's queue must skip the cases the first date opened: the case history is exercised)."""
    root = tmp_path_factory.mktemp("claims")
    for ds in (D1, D2):
        shutil.copytree(generated_claims, root / ds)
    return root


@pytest.mark.slow
def test_model_training_dag_trains_promotes_and_reports(trained_run):
    """The session's champion is this DAG run's model (conftest.trained_run)."""
    dr = trained_run["dag_run"]
    assert dr.state == "success", _states(dr)
    assert _states(dr) == {
        "training_set": "success", "choose_engine": "success", "train": "success",
        "train_on_cluster": "skipped", "report": "success",
    }
    result = _xcom(dr, "report")
    assert result["promoted"] is True  # the first model always beats "no champion"
    assert result["model_version"]
    out = trained_run["output_root"] / "_training" / TRAINING_DATE
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["model_version"] == result["model_version"]
    assert summary["labels_from_dispositions"] == 0  # a fresh case history: no disposition yet
    assert (out / "model_report.html").stat().st_size > 1000


def _compare_run_dirs(spark, a: Path, b: Path) -> None:
    for name in ("claim_queue", "provider_queue"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet"))
        lines_a = (a / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        lines_b = (b / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        differ = [(i, x, y) for i, (x, y) in enumerate(zip(lines_a, lines_b)) if x != y]
        assert len(lines_a) == len(lines_b) and not differ, (name, len(lines_a), len(lines_b), differ[:2])
    keys = ["claim_id", "claim_source"]
    sa = spark.read.parquet(str(a / "scored_claims")).drop("rule_hits")
    sb = spark.read.parquet(str(b / "scored_claims")).drop("rule_hits")
    assert sa.schema == sb.schema
    only_a, only_b = sa.exceptAll(sb), sb.exceptAll(sa)
    if only_a.count() or only_b.count():  # name the columns that differ, for a CI log
        ra = {tuple(r[k] for k in keys): r.asDict() for r in only_a.limit(20).collect()}
        rb = {tuple(r[k] for k in keys): r.asDict() for r in sb.join(only_a.select(*keys), keys).collect()}
        cols = sorted({c for k, r in ra.items() for c, v in r.items() if k in rb and rb[k].get(c) != v})
        raise AssertionError(f"scored_claims differ: {only_a.count()} vs {only_b.count()} rows; columns {cols}")
    assert sa.count() == sb.count() > 0
    # array columns: exceptAll cannot compare them, so compare in key order
    sa_arr = spark.read.parquet(str(a / "scored_claims")).select(*keys, "rule_hits").orderBy(*keys).toPandas()
    sb_arr = spark.read.parquet(str(b / "scored_claims")).select(*keys, "rule_hits").orderBy(*keys).toPandas()
    assert sa_arr["rule_hits"].map(str).tolist() == sb_arr["rule_hits"].map(str).tolist()

    def summary(p: Path) -> dict:
        s = json.loads((p / "run_summary.json").read_text(encoding="utf-8"))
        s.pop("timings_seconds", None)
        s.pop("gate", None)  # where the checked rows came from: asserted by the caller
        return s

    sum_a, sum_b = summary(a), summary(b)
    assert sum_a == sum_b, sorted(k for k in sum_a.keys() | sum_b.keys() if sum_a.get(k) != sum_b.get(k))


@pytest.fixture(scope="module")
def daily_runs(trained_run, dagbag, generated, tmp_path_factory):
    """dag.test of claims_daily for two dates (in-process path: validate, then score reusing its
    rows) with the session's champion, and an auditor's disposition of D1's top case imported
    between them. Before D2's run, a killed earlier run of D2 left its staging folder (``stale``).
    ``{"work", "overrides", "runs", "top", "feedback", "stale"}``; the output root is
    ``work / "out"``."""
    from claimsentry.cli import main as cli_main
    from claimsentry.config import load_settings
    from claimsentry.jobs.feedback import ingest_feedback

    assert trained_run["dag_run"].state == "success", "needs the champion from model_training"
    work = tmp_path_factory.mktemp("daily")
    overrides = {"data_dir": str(trained_run["settings"].data_dir), "queue.history_dir": str(work / "history"),
                 "cases.deadlines_days": {"records_requested": 0}}  # records due the day they are requested
    daily = {"claims_root": str(generated), "output_root": str(work / "out"), "spark_submit": False, "settings_overrides": overrides}
    runs, top, feedback = {}, None, None
    # what a score run of D2 killed mid-run leaves: its staging folder with a typed copy of the input
    stale = work / "out" / f".{D2}.staging-0dead0d2"
    (stale / "_accepted" / "medical_claim").mkdir(parents=True)
    (stale / "_accepted" / "medical_claim" / "part-00000.parquet").write_text("typed rows of a killed run")
    with without_retries(dagbag.dags["claims_daily"]) as dag:
        for ds in (D1, D2):
            runs[ds] = dag.test(logical_date=utc(ds), run_conf=daily)
            if ds == D1 and (work / "out" / D1 / "claim_queue.parquet").is_file():  # the auditor confirms D1's top case
                top = pd.read_parquet(work / "out" / D1 / "claim_queue.parquet").iloc[0]
                dispositions = work / "dispositions.csv"
                pd.DataFrame([{"case_id": top["case_id"], "outcome": "confirmed", "recovered_amount": "100",
                               "outcome_date": D1}]).to_csv(dispositions, index=False)
                feedback = ingest_feedback(load_settings(environ={}, overrides=overrides), dispositions)
                # and requests the second case's records, due that same day: overdue in D2's run
                second = pd.read_parquet(work / "out" / D1 / "claim_queue.parquet").iloc[1]
                assert cli_main(["--config", str(_config_file(work, overrides)), "cases", "event", second["case_id"],
                                 "records_requested", "--date", D1, "--by", "auditor"]) == 0
    return {"work": work, "overrides": overrides, "runs": runs, "top": top, "feedback": feedback, "stale": stale,
            "requested": second["case_id"] if top is not None else None}


def _config_file(work: Path, overrides: dict) -> Path:
    """The overrides as a config file, for the command line."""
    import yaml

    tree: dict = {}
    for dotted, value in overrides.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = work / "claimsentry.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return path


@pytest.mark.slow
def test_daily_run_directory_has_every_contract_output(spark, daily_runs):
    """The spine end to end as operators run it (generated claims -> gate -> features -> champion ->
    scores -> queues): D1's run directory holds every output of the contract."""
    out = daily_runs["work"] / "out"
    run_dir = out / D1
    for name in ("claim_queue.parquet", "claim_queue.csv", "claim_queue.html", "provider_queue.parquet", "provider_queue.csv", "run_summary.json"):
        assert (run_dir / name).is_file(), name
    assert not list(out.glob(".*staging*")), "staging folder left behind"

    queue = pd.read_parquet(run_dir / "claim_queue.parquet")
    assert list(queue.columns[: len(CLAIM_QUEUE_COLUMNS)]) == CLAIM_QUEUE_COLUMNS
    assert len(queue) > 0 and queue["rank"].tolist() == list(range(1, len(queue) + 1))
    # claims that break a certain rule first (a block at the top), then by expected recovery, in each block
    from claimsentry.models.scoring import CERTAIN_SCORE

    certain = queue["score"] >= CERTAIN_SCORE
    assert certain.is_monotonic_decreasing
    for block in (queue[certain], queue[~certain]):
        assert block["expected_recovery"].is_monotonic_decreasing
    assert queue["score"].between(0, 1).all()
    assert (queue["reasons"].str.len() > 0).all()
    assert queue["case_id"].str.startswith("CS-").all() and queue["model_version"].notna().all()
    csv = pd.read_csv(run_dir / "claim_queue.csv", dtype=str, encoding="utf-8-sig")
    assert csv["claim_id"].tolist() == queue["claim_id"].tolist()
    assert (run_dir / "claim_queue.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets

    written = json.loads((run_dir / "run_summary.json").read_text(encoding="utf-8"))
    scored = spark.read.parquet(str(run_dir / "scored_claims"))
    assert {"claim_id", "claim_source", "score", "model_version"} <= set(scored.columns)
    assert scored.count() == sum(written["scored_claims"].values())
    feature_names = set(written["features"].get("names", []))
    for reasons in queue["reasons"]:
        assert not any(name in reasons for name in feature_names if "_" in name), reasons

    providers = pd.read_parquet(run_dir / "provider_queue.parquet")
    assert list(providers.columns[: len(PROVIDER_QUEUE_COLUMNS)]) == PROVIDER_QUEUE_COLUMNS
    for table, counts in written["tables"].items():
        assert counts["read"] == counts["accepted"] + counts["quarantined"], table
    assert written["queues"]["claim_queue"] == len(queue)
    assert written["model"]["version"] == queue["model_version"].iloc[0]
    assert set(written["timings_seconds"]) >= {"validate", "features", "score", "queues", "case_pages"}
    # no policy file stored in this data dir: the edits did not run, and the summary says so; the
    # generated input has a provider table, so E/M peers are by specialty, and the summary says so
    assert written["references"].startswith("no policy reference stored")
    assert written["peers"].startswith("E/M mix against the same specialty")
    assert written["cases"]["cases"] == 0 and written["cases"]["overdue"] == []  # D1 is the first run
    assert "citations" in queue.columns

    # every case and every queued provider has its page, and the queue page's links all resolve
    assert written["pages"] == {"case_pages": len(queue), "provider_pages": providers["npi"].nunique()}
    from browser import Browser

    browser = Browser()
    try:
        links = {link.split("#")[0] for link in browser.links(run_dir / "claim_queue.html")}
        assert {(run_dir / "cases" / f"{c}.html").as_uri() for c in queue["case_id"]} <= links
        assert {(run_dir / "providers" / f"{n}.html").as_uri() for n in providers["npi"]} <= links
        assert all(Path(link[len("file://"):]).is_file() for link in links), links
        top = queue.iloc[0]
        text = browser.text(run_dir / "cases" / f"{top['case_id']}.html")
        assert f"Case {top['case_id']} — {top['claim_source']} claim {top['claim_id']} (rank 1)" in text
        assert top["reasons"].split("; ")[0] in text and "Claim lines" in text and "Timeline" in text
    finally:
        browser.close()


@pytest.mark.slow
def test_claims_daily_dag_cases_and_a_rerun_of_a_date(daily_runs, generated, spark, monkeypatch):
    """The two dates' DAG runs, with the disposition between them (``daily_runs``); then D2 re-run
    over its own run directory through the spark-submit entry script (cluster path driver code, which
    checks the rows itself), as an operator's backfill would: the same run directory, and the case
    history unchanged."""
    from claimsentry import cases
    from claimsentry.config import load_settings

    work, overrides, runs, top = daily_runs["work"], daily_runs["overrides"], daily_runs["runs"], daily_runs["top"]
    history = cases.history_dir(load_settings(environ={}, overrides=overrides))
    for ds, dr in runs.items():
        assert dr.state == "success", (ds, _states(dr))
        assert _states(dr) == {
            "land": "success", "choose_engine": "success", "validate": "success", "score_and_queue": "success",
            "validate_on_cluster": "skipped", "score_and_queue_on_cluster": "skipped", "report": "success",
        }
    run_dir = work / "out" / D1
    summary = json.loads((run_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["run_date"] == D1
    assert _xcom(runs[D1], "report")["queues"] == summary["queues"]
    assert (run_dir / "model_report.html").is_file()
    gate_dir = work / "out" / "_staging" / D1 / "gate"
    # score_and_queue read the rows validate had checked (same input), then dropped that copy
    assert summary["gate"]["reused_from"] == str(gate_dir)
    assert sorted(p.name for p in gate_dir.iterdir()) == ["data_quality", "gate_summary.json", "quarantine"]
    assert not daily_runs["stale"].exists(), "D2's run left the killed run's staging folder"
    assert sorted(p.name for p in (work / "out").iterdir()) == [D1, D2, "_staging"]
    # D2 (same files as D1) queued none of D1's cases, open or closed: the case history was read
    queues = {ds: pd.read_parquet(work / "out" / ds / "claim_queue.parquet") for ds in (D1, D2)}
    assert len(queues[D2]) > 0 and not set(queues[D1]["case_id"]) & set(queues[D2]["case_id"])
    assert daily_runs["feedback"]["closed_cases"] == 1
    # the case whose records were due on D1 is overdue in the next day's run: summary and page
    d2 = json.loads((work / "out" / D2 / "run_summary.json").read_text(encoding="utf-8"))["cases"]
    assert [(c["case_id"], c["state"], c["days_left"]) for c in d2["overdue"]] == [(daily_runs["requested"], "records_requested", -1)]
    assert d2["cases"] == len(queues[D1]) and d2["by_state"]["records_requested"] == 1
    page = (work / "out" / D2 / "claim_queue.html").read_text(encoding="utf-8")
    assert "Cases past or near their deadline" in page and daily_runs["requested"] in page
    status = cases.case_status(history).set_index("case_id")["status"].sort_index()
    assert status[top["case_id"]] == "confirmed"
    assert (status == "open").sum() == len(queues[D1]) - 1 + len(queues[D2])

    # Re-run of D2 over its run directory through jobs/spark_entry.py as spark-submit would run it,
    # with no validate gate dir: score checks its rows itself. (Both commands call the functions the
    # in-process tasks call.) It starts from the same history: cases of dates before D2.
    from claimsentry.jobs.spark_entry import main

    shutil.copytree(work / "out" / D2, work / "daily_D2")
    monkeypatch.setenv("CLAIMSENTRY_UNDER_SPARK_SUBMIT", "1")
    args = ["--input", str(generated / D2), "--run-date", D2, "--overrides", json.dumps(overrides)]
    assert main(["score", "--output", str(work / "out"), *args]) == 0
    assert json.loads((work / "out" / D2 / "run_summary.json").read_text())["gate"]["reused_from"] is None
    # So D2 compares a run that read its validate task's rows with one that checked them itself.
    _compare_run_dirs(spark, work / "daily_D2", work / "out" / D2)
    after = cases.case_status(history).set_index("case_id")["status"].sort_index()
    pd.testing.assert_series_equal(after, status)  # the re-run replaced D2's cases: none opened twice
