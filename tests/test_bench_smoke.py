"""The benchmark script keeps working (a tiny size; real figures come from `make bench`, not CI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_smoke_writes_results_with_stage_ceilings(tmp_path, trained_settings):
    # The session's champion: training is covered by its own tests, so the smoke only scores.
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--sizes", "3000", "--train-members", "150",
         "--model-data-dir", str(trained_settings.get("data_dir")),
         "--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    [size] = results["sizes"]
    assert size["claim_lines"] > 0 and size["claims"] > 0
    assert set(size["stages"]) >= {"validate", "features", "score", "queues"}
    assert size["ceilings"]["parquet_scan"]["rows_per_second"] > 0
    assert size["ceilings"]["xgboost_inplace_predict"]["rows_per_second"] > 0
    assert size["peak_memory_mb"]["jvm"] > 0
    assert "| claim lines |" in done.stdout
