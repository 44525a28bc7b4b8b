"""Case lifecycle: events, transitions, deadlines, labels and recoveries, and the ``cases`` command.

No Spark: the case store is small pandas tables. The command runs in-process (``cli.main``)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from claimsentry import cases
from claimsentry.cli import main
from claimsentry.jobs.cases import record
from claimsentry.jobs.feedback import ingest_feedback

RUN = dt.date(2026, 1, 5)
TODAY = dt.date(2026, 6, 1)


@pytest.fixture()
def queued(settings):
    """Three cases queued by the run of RUN: A and B at provider 111 (B suggests two schemes),
    C at provider 222 (queued by the score alone)."""
    root = cases.history_dir(settings)
    rows = [
        ("A", "medical", 1000.0, "1111111111", "drg_upcoding"),
        ("B", "medical", 400.0, "1111111111", "duplicate_billing, unbundling"),
        ("C", "pharmacy", 90.0, "2222222222", None),
    ]
    queue = pd.DataFrame(
        [
            {"case_id": cases.case_id(s, c), "claim_id": c, "claim_source": s, "rank": i + 1, "score": 0.9,
             "amount_at_risk": paid / 2, "amount_paid": paid, "billing_npi": npi, "schemes": schemes,
             "model_version": "3", "reasons": "DRG above what the diagnoses support; stay 1 day", "person_id": "P1"}
            for i, (c, s, paid, npi, schemes) in enumerate(rows)
        ]
    )
    cases.record_queue(root, RUN, queue)
    return {c: cases.case_id(s, c) for c, s, *_ in rows}


def events_csv(path, rows):
    pd.DataFrame(rows, columns=["case_id", "state", "event_date", "actor", "outcome", "amount", "note"]).to_csv(path, index=False)
    return path


def run(capsys, settings, *argv):
    code = main(["--data-dir", str(settings.data_dir), "cases", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_case_walks_its_lifecycle_with_an_appeal_and_the_timeline_shows_every_step(settings, queued, tmp_path, capsys):
    a = queued["A"]
    walk = events_csv(tmp_path / "walk.csv", [
        (a, "records_requested", "2026-01-10", "ana", "", "", "letter sent"),
        (a, "under_review", "2026-02-01", "ana", "", "", "records in"),
        (a, "findings_issued", "2026-02-20", "ana", "confirmed", "600", "DRG 871 not supported"),
        (a, "appealed", "2026-03-01", "ana", "", "", "provider appeal"),
    ])
    code, out, _ = run(capsys, settings, "event", "--file", str(walk))
    assert code == 0 and "4 of 4 events recorded, 0 rejected" in out
    # one more step from the command line each
    assert run(capsys, settings, "event", a, "appeal_upheld", "--date", "2026-04-15", "--by", "bo")[0] == 0
    assert run(capsys, settings, "event", a, "recovered", "--date", "2026-05-01", "--amount", "350")[0] == 0
    assert run(capsys, settings, "event", a, "recovered", "--date", "2026-05-20", "--amount", "250", "--note", "final")[0] == 0
    assert run(capsys, settings, "event", a, "closed", "--date", "2026-05-21")[0] == 0

    code, out, _ = run(capsys, settings, "show", a, "--as-of", TODAY.isoformat())
    assert code == 0
    timeline = out.split("timeline:\n")[1].splitlines()
    states = [line.split()[1] for line in timeline]
    assert states == ["open", "records_requested", "under_review", "findings_issued", "appealed",
                      "appeal_upheld", "recovered", "recovered", "closed"]
    assert "findings_issued (confirmed) by ana $600.00 — DRG 871 not supported" in out
    assert "appeal_upheld       by bo" in out
    assert "state: closed since 2026-05-21" in out and "DRG above what the diagnoses support" in out

    board = cases.case_board(cases.history_dir(settings), settings, TODAY).set_index("case_id")
    assert board.loc[a, "state"] == "closed" and board.loc[a, "recovered"] == pytest.approx(600.0)
    assert board.loc[a, "label"] == 1 and board.loc[a, "identified"] == pytest.approx(600.0)
    # as of an earlier day the case stood where it stood then
    then = cases.case_board(cases.history_dir(settings), settings, dt.date(2026, 3, 5)).set_index("case_id")
    assert then.loc[a, "state"] == "appealed" and then.loc[a, "recovered"] == 0


def test_events_that_break_the_lifecycle_are_rejected_with_reasons_and_nothing_is_lost(settings, queued, tmp_path):
    a, b, c = queued["A"], queued["B"], queued["C"]
    bad = events_csv(tmp_path / "bad.csv", [
        (a, "appealed", "2026-02-01", "", "", "", ""),  # 2: nothing to appeal yet
        (b, "findings_issued", "2026-02-01", "", "fraud!", "", ""),  # 3: unknown outcome
        ("CS-NOPE", "closed", "2026-02-01", "", "", "", ""),  # 4
        (c, "under_review", "2027-01-01", "", "", "", ""),  # 5: future
        (c, "under_review", "2026-01-01", "", "", "", ""),  # 6: before the case was queued
        (c, "findings_issued", "2026-02-01", "", "confirmed", "", ""),  # 7: good
        (c, "recovered", "2026-02-02", "", "", "95", ""),  # 8: more than the 90 paid
        (c, "recovered", "2026-02-02", "", "", "inf", ""),  # 9
        (c, "closed", "2026-02-02", "", "confirmed", "", ""),  # 10: outcome on a non-finding
        (b, "open", "2026-02-02", "", "", "", ""),  # 11: cannot re-open
    ])
    result = record(settings, pd.read_csv(bad, dtype=str, keep_default_na=False), key="k1", source="bad.csv", today=TODAY, actor="t")
    assert (result["rows"], result["accepted"], result["rejected"]) == (10, 1, 9)
    reasons = {r["source_row"]: r["reason"] for r in result["rejections"]}
    assert reasons[1] == f"{a} is open: it can move to closed, findings_issued, records_requested, referred, under_review, not appealed"
    assert "needs an outcome" in reasons[2]
    assert reasons[3] == "unknown case_id 'CS-NOPE'"
    assert reasons[4] == "event_date 2027-01-01 is in the future"
    assert reasons[5] == "event_date 2026-01-01 is before the case's last change (2026-01-05)"
    assert reasons[7] == "recoveries would total 95.00, more than the claim paid (90.00)"
    assert "not a finite number" in reasons[8]
    assert reasons[9] == "only findings_issued takes an outcome"
    assert "is not one of records_requested" in reasons[10]
    rejected = pd.read_csv(result["rejected_path"], dtype=str)
    assert len(rejected) == 9 and rejected["reason"].notna().all()


def test_reimporting_a_file_or_repeating_a_command_records_it_once(settings, queued, tmp_path, capsys):
    a = queued["A"]
    walk = events_csv(tmp_path / "w.csv", [(a, "records_requested", "2026-01-10", "", "", "", ""),
                                         (a, "under_review", "2026-01-20", "", "", "", "")])
    assert run(capsys, settings, "event", "--file", str(walk))[0] == 0
    code, out, _ = run(capsys, settings, "event", "--file", str(walk))
    assert code == 0 and "2 of 2 events recorded" in out
    assert run(capsys, settings, "event", a, "findings_issued", "--outcome", "cleared", "--date", "2026-02-01")[0] == 0
    assert run(capsys, settings, "event", a, "findings_issued", "--outcome", "cleared", "--date", "2026-02-01")[0] == 0
    events = cases.case_events(cases.history_dir(settings))
    assert events["state"].tolist() == ["records_requested", "under_review", "findings_issued"]


def test_a_single_rejected_event_is_one_line_and_non_zero(settings, queued, capsys):
    code, _, err = run(capsys, settings, "event", queued["A"], "recovered", "--amount", "5")
    assert code != 0 and err.strip().count("\n") == 0
    assert "is open: it can move to" in err
    code, _, err = run(capsys, settings, "list", "--state", "lost")
    assert code != 0 and "unknown state 'lost'" in err


def test_deadlines_make_cases_overdue_or_due_soon(settings, queued, tmp_path):
    a, b, c = queued["A"], queued["B"], queued["C"]
    root = cases.history_dir(settings)
    record(settings, pd.DataFrame([
        {"case_id": a, "state": "records_requested", "event_date": "2026-01-10"},  # due +45 = 2026-02-24
        {"case_id": b, "state": "referred", "event_date": "2026-01-10"},  # no deadline
    ]), key="k", source="t", today=TODAY, actor="t")
    board = cases.case_board(root, settings, dt.date(2026, 2, 20)).set_index("case_id")
    assert board.loc[a, "due_date"] == "2026-02-24" and board.loc[a, "days_left"] == 4 and board.loc[a, "due_soon"]
    assert board.loc[c, "state"] == "open" and board.loc[c, "due_date"] == "2026-02-04" and board.loc[c, "overdue"]
    assert board.loc[b, "due_date"] is None and not board.loc[b, "overdue"]
    summary = cases.deadline_summary(board.reset_index())
    assert summary["overdue_count"] == 1 and summary["due_soon_count"] == 1
    assert summary["overdue"][0]["case_id"] == c and summary["overdue"][0]["days_left"] == -16
    assert summary["by_state"] == {"open": 1, "records_requested": 1, "referred": 1}
    later = cases.case_board(root, settings, dt.date(2026, 3, 1)).set_index("case_id")
    assert later.loc[a, "overdue"] and later.loc[a, "days_left"] == -5


def test_findings_and_appeals_are_the_training_labels(settings, queued, tmp_path):
    a, b, c = queued["A"], queued["B"], queued["C"]
    root = cases.history_dir(settings)
    record(settings, pd.DataFrame([
        {"case_id": a, "state": "findings_issued", "event_date": "2026-02-01", "outcome": "confirmed", "amount": "600"},
        {"case_id": a, "state": "appealed", "event_date": "2026-02-10"},
        {"case_id": a, "state": "appeal_overturned", "event_date": "2026-03-10"},  # the claim was proper after all
        {"case_id": b, "state": "findings_issued", "event_date": "2026-02-01", "outcome": "partial", "amount": "100"},
        {"case_id": b, "state": "recovered", "event_date": "2026-02-05", "amount": "100"},
    ]), key="k", source="t", today=TODAY, actor="t")
    # a feedback import is one more way in: C confirmed with a recovery
    fb = tmp_path / "fb.csv"
    pd.DataFrame([{"case_id": c, "outcome": "confirmed", "recovered_amount": "80", "outcome_date": "2026-02-03"}]).to_csv(fb, index=False)
    assert ingest_feedback(settings, fb, today=TODAY)["accepted"] == 1

    labels = cases.feedback_labels(root).set_index("claim_id")
    assert labels["label"].to_dict() == {"A": 0, "B": 1, "C": 1}
    assert labels.loc["A", "outcome_date"] == "2026-03-10"
    assert labels.loc["B", "recovered_amount"] == pytest.approx(100) and labels.loc["C", "recovered_amount"] == pytest.approx(80)
    # as of a date before the appeal was decided, A was still a confirmed finding
    assert cases.feedback_labels(root, dt.date(2026, 2, 15)).set_index("claim_id").loc["A", "label"] == 1

    board = cases.case_board(root, settings, TODAY)
    assert board.set_index("case_id").loc[c, "state"] == "recovered"
    money = cases.recoveries(board)
    got = {(r["billing_npi"], r["scheme"]): (r["cases"], r["confirmed"], r["recovered"]) for r in money.to_dict("records")}
    assert got == {
        ("1111111111", "drg_upcoding"): (1, 0, 0.0),
        ("1111111111", "duplicate_billing"): (1, 1, 100.0),
        ("1111111111", "unbundling"): (1, 1, 100.0),
        ("2222222222", "(none)"): (1, 1, 80.0),
    }
    assert set(money["model_version"]) == {"3"}


def test_cases_list_filters_and_prints_json(settings, queued, capsys):
    a = queued["A"]
    assert run(capsys, settings, "event", a, "records_requested", "--date", "2026-01-10")[0] == 0
    code, out, _ = run(capsys, settings, "list", "--as-of", "2026-03-01", "--overdue", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["case_id"] for r in rows} == set(queued.values())  # open ones past 30 days, A past 45
    code, out, _ = run(capsys, settings, "list", "--as-of", "2026-01-20", "--state", "records_requested")
    assert code == 0 and "1 cases as of 2026-01-20" in out and a in out
    code, out, _ = run(capsys, settings, "list", "--as-of", "2026-01-20", "--npi", "2222222222")
    assert code == 0 and "1 cases" in out and queued["C"] in out


def test_a_first_run_with_no_earlier_case_reports_an_empty_board(settings):
    """The first score run of a new data_dir: no case yet, nothing overdue (not an error)."""
    board = cases.case_board(cases.history_dir(settings), settings, RUN, opened_before=RUN)
    assert board.empty
    summary = cases.deadline_summary(board)
    assert (summary["cases"], summary["overdue"], summary["due_soon"], summary["by_state"]) == (0, [], [], {})
