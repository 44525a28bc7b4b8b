"""The benchmark script keeps working (a tiny size; real figures come from `make bench`, not CI)."""

from __future__ import annotations

import json

import pytest

from conftest import bench_module


@pytest.mark.slow
def test_bench_smoke_writes_results_with_stage_ceilings(tmp_path, trained_settings, spark, capsys):
    """bench/run.py's main on a tiny size. The session's champion: training is covered by its own
    tests, so the smoke only scores; --in-process reuses the session's Spark instead of starting a
    JVM per size (real figures come from a fresh process per size)."""
    run = bench_module("run")
    code = run.main(["--sizes", "3000", "--train-members", "150", "--in-process",
                     "--model-data-dir", str(trained_settings.get("data_dir")),
                     "--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert code == 0
    results = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    [size] = results["sizes"]
    assert size["claim_lines"] > 0 and size["claims"] > 0
    assert set(size["stages"]) >= {"validate", "features", "score", "queues"}
    assert size["ceilings"]["parquet_scan"]["rows_per_second"] > 0
    assert size["ceilings"]["xgboost_inplace_predict"]["rows_per_second"] > 0
    assert size["peak_memory_mb"]["jvm"] > 0
    assert size["in_process"] is True
    assert "| claim lines |" in out


def test_spark_profile_attributes_executor_time_to_pipeline_stages(tmp_path):
    """bench/spark_profile.py on a hand-written event log in Spark 4's rolling layout (given -> expect):
    tasks add up per Spark stage, Spark stages go to the pipeline stage named by their job's
    description, and a stage's operators come from its RDD scopes."""
    spark_profile = bench_module("spark_profile")

    def task(stage, run_ms, cpu_ns, spill=0, shuffle=0):
        return {"Event": "SparkListenerTaskEnd", "Stage ID": stage, "Task Metrics": {
            "Executor Run Time": run_ms, "Executor CPU Time": cpu_ns, "JVM GC Time": 0, "Disk Bytes Spilled": spill,
            "Shuffle Write Metrics": {"Shuffle Bytes Written": shuffle}, "Input Metrics": {"Bytes Read": 0}}}

    scope = lambda name: json.dumps({"id": "1", "name": name})  # noqa: E731
    events = [
        {"Event": "SparkListenerJobStart", "Job ID": 0, "Submission Time": 1_000, "Stage IDs": [0, 1],
         "Properties": {"spark.job.description": "claimsentry validate"}},
        task(0, 2_000, 1_500_000_000, shuffle=2**20), task(0, 1_000, 500_000_000), task(1, 4_000, 3_000_000_000, spill=2**21),
        {"Event": "SparkListenerStageCompleted", "Stage Info": {"Stage ID": 1, "Stage Name": "parquet", "RDD Info": [
            {"Scope": scope("Exchange")}, {"Scope": scope("WholeStageCodegen (2)")}, {"Scope": scope("Sort")}]}},
        {"Event": "SparkListenerJobEnd", "Job ID": 0, "Completion Time": 8_000},
        {"Event": "SparkListenerJobStart", "Job ID": 1, "Submission Time": 9_000, "Stage IDs": [2], "Properties": {}},
        task(2, 500, 100_000_000),
    ]
    folder = tmp_path / "eventlog_v2_local-1"
    folder.mkdir()
    half = len(events) // 2
    (folder / "events_2_local-1").write_text("\n".join(json.dumps(e) for e in events[half:]) + "\n")
    (folder / "events_1_local-1").write_text("\n".join(json.dumps(e) for e in events[:half]) + "\n")

    summary = spark_profile.summarise(folder)
    validate = summary["pipeline_stages"]["validate"]
    assert (validate["run_s"], validate["cpu_s"], validate["tasks"], validate["jobs"]) == (7.0, 5.0, 3, 1)
    assert (validate["spill_mb"], validate["shuffle_write_mb"], validate["job_s"]) == (2.0, 1.0, 7.0)
    assert summary["pipeline_stages"]["(outside the stages)"]["run_s"] == 0.5
    top = summary["spark_stages"][0]
    assert (top["stage_id"], top["pipeline_stage"], top["operators"]) == (1, "validate", "Exchange, Sort")
    assert "| validate |" in spark_profile.render(summary)


def test_jvm_threads_groups_the_session_jvms_cpu_by_thread_kind(spark):
    """bench/jvm_threads.py: thread names map to their groups (given -> expect), and a reading of
    the test session's own Spark JVM finds its JIT compiler threads and its executor task threads
    (the fixture's session has run tasks by now: one job is run here to be sure)."""
    jvm_threads = bench_module("jvm_threads")
    given = [("Executor task l", 3.0), ("Executor task i", 1.0), ("C2 CompilerThre", 2.5), ("C1 CompilerThre", 0.5),
             ("Thread-7", 1.0), ("GC Thread#0", 0.3), ("pool-12-thread-", 0.1)]
    assert jvm_threads.cpu_by_group(given) == {
        "executor tasks": 4.0, "JIT compiler C2": 2.5, "driver: py4j calls (planning, codegen)": 1.0,
        "JIT compiler C1": 0.5, "garbage collector": 0.3, "pool-#-thread-": 0.1}

    assert spark.range(200_000).selectExpr("sum(id * 3) as s").first()["s"] == 3 * 199_999 * 200_000 // 2
    pid = spark.sparkContext._gateway.proc.pid  # spark-submit execs the JVM: the same process
    groups = jvm_threads.cpu_by_group(jvm_threads.read_threads(pid).values())
    assert "executor tasks" in groups and sum(groups.values()) > 0  # a short task may not reach one clock tick
    assert {"JIT compiler C1", "JIT compiler C2"} & set(groups)
    assert "| executor tasks |" in jvm_threads.render(groups)
