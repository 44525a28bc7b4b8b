"""``claimsentry score`` as a user runs it, on bad input: one line and a non-zero exit. (The spine end
to end, generated claims -> gate -> features -> champion -> scores -> queues, is the claims_daily DAG
run in tests/test_dags.py: its run directory is checked against the contract there.)"""

from __future__ import annotations

from conftest import claimsentry_cli


def test_cli_bad_input_is_one_line_and_non_zero(tmp_path, generated_claims):
    env = {"CLAIMSENTRY_DATA_DIR": str(tmp_path / "data")}
    missing = claimsentry_cli("score", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--run-date", "2026-01-01", env=env)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr

    bad_date = claimsentry_cli("score", "--input", str(generated_claims), "--output", str(tmp_path / "o"), "--run-date", "01/02/2026", env=env)
    assert bad_date.returncode != 0 and "YYYY-MM-DD" in bad_date.stderr and len(bad_date.stderr.strip().splitlines()) == 1

    no_model = claimsentry_cli("score", "--input", str(generated_claims), "--output", str(tmp_path / "o"), "--run-date", "2026-01-01", env=env)
    assert no_model.returncode != 0 and "champion" in no_model.stderr and len(no_model.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "mlflow" / "mlflow.db").exists()  # no empty model store left behind
    assert not (tmp_path / "o" / "2026-01-01").exists()
