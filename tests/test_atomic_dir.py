"""claimsentry.io.atomic_dir: what a killed writer leaves beside its output is removed by the next
writer of the same output, and a live writer's staging folder is never touched. Real processes are
killed with SIGKILL (no cleanup code can run), as an operator's ``kill -9`` or the OOM killer would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from claimsentry.io import atomic_dir

WRITER = """
import os, signal, sys
from pathlib import Path
from claimsentry.io import atomic_dir

with atomic_dir(sys.argv[1]) as staging:
    accepted = staging / "_accepted" / "medical_claim"
    accepted.mkdir(parents=True)
    (accepted / "part-00000.parquet").write_text("typed copy of the input")
    print(staging, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()  # a live run: holds its staging folder until the test closes stdin
    (staging / "claim_queue.csv").write_text("from the slow run")
"""


def _writer(final, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(final), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_next_run_of_a_date_removes_the_staging_folder_of_a_killed_run_but_not_of_a_live_one(tmp_path):
    final = tmp_path / "out" / "2026-01-01"
    live = _writer(final, "wait")  # a run of the same date still writing (it started first)
    try:
        live_staging = live.stdout.readline().strip()
        killed = _writer(final, "kill")
        killed_staging = killed.stdout.readline().strip()
        assert killed.wait(timeout=120) == -signal.SIGKILL
        assert os.path.isdir(killed_staging)  # the patient data a killed run leaves behind

        with atomic_dir(final) as staging:  # the next run of that date
            (staging / "claim_queue.csv").write_text("rerun")

        assert not os.path.exists(killed_staging)
        assert os.path.isdir(live_staging)  # another run of the date still writing: left alone
        assert (final / "claim_queue.csv").read_text() == "rerun"
        live.stdin.close()
        assert live.wait(timeout=120) == 0
    finally:
        if live.poll() is None:
            live.kill()
    assert (final / "claim_queue.csv").read_text() == "from the slow run"
    assert _hidden(final.parent) == []


def test_a_run_killed_between_its_renames_gets_its_previous_output_back(tmp_path):
    """The window between moving the previous output aside and the new one in: the previous
    output must come back, even when the next run fails."""
    final = tmp_path / "2026-01-01"
    old = tmp_path / ".2026-01-01.old-0a1b2c3d"
    (old / "claim_queue.csv").parent.mkdir(parents=True)
    (old / "claim_queue.csv").write_text("previous run")
    (tmp_path / ".2026-01-01.staging-0a1b2c3d" / "_accepted").mkdir(parents=True)
    (tmp_path / ".2026-01-01.staging-feedbeef").mkdir()  # killed earlier, before any rename

    with pytest.raises(RuntimeError, match="features broke"):
        with atomic_dir(final):
            raise RuntimeError("features broke")

    assert (final / "claim_queue.csv").read_text() == "previous run"
    assert _hidden(tmp_path) == []


def test_another_date_is_not_touched(tmp_path):
    other = tmp_path / ".2026-01-02.staging-0a1b2c3d"
    other.mkdir()
    with atomic_dir(tmp_path / "2026-01-01") as staging:
        (staging / "x").write_text("x")
    assert other.is_dir()
