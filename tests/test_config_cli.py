"""Settings precedence and the CLI's error contract (one line on stderr, non-zero exit, no traceback)."""

import subprocess
import sys

import pytest

from claimsentry.config import load_settings
from claimsentry.errors import ClaimSentryError


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queue:\n  claim_capacity: 11\n  provider_capacity: 12\n  min_score: 0.3\n")
    env = {"CLAIMSENTRY_QUEUE__CLAIM_CAPACITY": "22", "CLAIMSENTRY_QUEUE__PROVIDER_CAPACITY": "23"}
    s = load_settings(cfg, overrides={"queue.claim_capacity": 33}, environ=env)
    assert s.get("queue.claim_capacity") == 33  # flag
    assert s.get("queue.provider_capacity") == 23  # environment
    assert s.get("queue.min_score") == 0.3  # file
    assert s.get("spark.master") == "local[2]"  # packaged default


def test_env_shortcuts_and_derived_mlflow_paths(tmp_path):
    s = load_settings(environ={"CLAIMSENTRY_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path.resolve()
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    s2 = load_settings(environ={"CLAIMSENTRY_MLFLOW_URI": "http://mlflow.internal:5000"})
    assert s2.mlflow_tracking_uri == "http://mlflow.internal:5000"


def test_large_local_config_raises_the_heap_and_allows_hash_joins():
    """bench/spark-16g.yaml (docs/operations.md, "Sizing a local run") merges over the packaged Spark
    conf: a 16g heap, and shuffled hash joins (whose maps need that heap); nothing else."""
    from pathlib import Path

    default = load_settings(environ={}).get("spark.conf")
    big = load_settings(Path(__file__).resolve().parents[1] / "bench" / "spark-16g.yaml", environ={}).get("spark.conf")
    assert default["spark.driver.memory"] == "4g"
    assert big == {
        **default,
        "spark.driver.memory": "16g",
        "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold": "512m",
    }


def test_bad_config_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ClaimSentryError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("queue: [unclosed\n")
    with pytest.raises(ClaimSentryError, match="not valid YAML"):
        load_settings(bad, environ={})


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "claimsentry.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "--input", "missing-dir", "--output", "out", "--run-date", "2025-01-01"], "input directory not found"),
        (["score", "--input", ".", "--output", "out", "--run-date", "2025-13-01"], "--run-date must be YYYY-MM-DD"),
        (["--config", "nope.yaml", "score", "--input", ".", "--output", "o", "--run-date", "2025-01-01"], "config file not found"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(tmp_path, args, message):
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
