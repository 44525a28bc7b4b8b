"""Case and provider pages, read in a real headless Chromium: the rendered text a reader sees.

Given a few hand-written claims (a duplicate pair, an earlier stay, a pharmacy fill) and a queue,
``claimsentry.case_pages`` writes the pages; the test opens them in the browser and checks the
text and the links, not pixels."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from browser import Browser
from claimsentry import case_pages

D = dt.date
HOSTILE = '<script>document.body.innerHTML="owned"</script>P1'


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(spark, tmp_path_factory):
    med = spark.createDataFrame(
        [
            ("c1", 1, "professional", HOSTILE, D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), "99215", "25", 1.0, "1111111111", 180.0, "E119", "I10"),
            ("c1", 2, "professional", HOSTILE, D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), "36415", None, 1.0, "1111111111", 10.0, "E119", "I10"),
            ("c0", 1, "professional", HOSTILE, D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10), "99215", "25", 1.0, "1111111111", 180.0, "E119", None),
            ("c9", 1, "institutional", HOSTILE, D(2026, 1, 2), D(2026, 1, 6), None, None, None, None, None, "3333333333", 9000.0, "I509", None),
            ("old", 1, "professional", HOSTILE, D(2025, 6, 1), D(2025, 6, 1), None, None, "99213", None, 1.0, "1111111111", 90.0, "E119", None),
        ],
        "claim_id string, claim_line_number int, claim_type string, person_id string, claim_start_date date, claim_end_date date, "
        "claim_line_start_date date, claim_line_end_date date, hcpcs_code string, hcpcs_modifier_1 string, service_unit_quantity double, "
        "billing_npi string, paid_amount double, diagnosis_code_1 string, diagnosis_code_2 string",
    )
    rx = spark.createDataFrame(
        [("r1", 1, HOSTILE, "2222222222", "5555555555", D(2026, 3, 1), "00406052301", 120.0, 30, 60.0)],
        "claim_id string, claim_line_number int, person_id string, prescribing_provider_npi string, dispensing_provider_npi string, "
        "dispensing_date date, ndc_code string, quantity double, days_supply int, paid_amount double",
    )
    scored_rows = [
        {"claim_id": "c1", "claim_source": "medical", "claim_type": "professional", "claim_date": D(2026, 3, 10), "person_id": HOSTILE,
         "billing_npi": "1111111111", "prescriber_npi": None, "amount_paid": 190.0, "score": 0.97, "rule_hits": ["DUP001", "PR001"],
         "duplicate_of_claim_id": "c0", "provider_em_high_share": 0.8, "peer_em_high_share": 0.2, "peer_group": "99215"},
        {"claim_id": "c0", "claim_source": "medical", "claim_type": "professional", "claim_date": D(2026, 3, 10), "person_id": HOSTILE,
         "billing_npi": "1111111111", "prescriber_npi": None, "amount_paid": 180.0, "score": 0.5, "rule_hits": ["DUP001"],
         "duplicate_of_claim_id": None, "provider_em_high_share": 0.8, "peer_em_high_share": 0.2, "peer_group": "99215"},
    ]
    scored = spark.createDataFrame(
        pd.DataFrame(scored_rows),
        "claim_id string, claim_source string, claim_type string, claim_date date, person_id string, billing_npi string, "
        "prescriber_npi string, amount_paid double, score double, rule_hits array<string>, duplicate_of_claim_id string, "
        "provider_em_high_share double, peer_em_high_share double, peer_group string",
    )
    queued = pd.DataFrame([{**scored_rows[0], "case_id": "CS-AAA", "rank": 1, "amount_at_risk": 190.0, "model_version": "4",
                            "run_date": "2026-03-20", "reasons": 'exact duplicate of claim c0; top-level E/M share 80% vs peers 20% <b>x</b>'}])
    providers = pd.DataFrame([{"rank": 1, "npi": "1111111111", "npi_role": "billing", "score": 0.8, "flagged_claims": 2,
                               "amount_at_risk": 370.0, "reasons": "2 claims flagged; top-level E/M 4x peers"}])
    data = case_pages.gather(spark, {"medical_claim": med, "pharmacy_claim": rx}, scored, queued, providers,
                             before_days=90, after_days=30, max_member_claims=40, max_provider_claims=20)
    rules = [{"id": "DUP001", "name": "exact duplicate claim", "scheme": "duplicate_billing", "description": "same member, provider, codes, date, amount"},
             {"id": "PR001", "name": "top-level E/M visits far above peers", "scheme": "em_upcoding", "description": "E/M level creep"}]
    events = pd.DataFrame([{"case_id": "CS-AAA", "event_date": "2026-03-21", "state": "records_requested", "outcome": None,
                            "actor": "ana", "amount": None, "note": "letter <sent>"}])
    board = pd.DataFrame([{"case_id": "CS-OLD", "claim_id": "old", "run_date": "2025-06-10", "billing_npi": "1111111111",
                           "state": "recovered", "since": "2025-08-01", "due_date": None, "recovered": 90.0}])
    folder = tmp_path_factory.mktemp("pages")
    counts = case_pages.write_pages(folder, queued, providers, data, rules, events, board, run_date="2026-03-20")
    return {"folder": folder, "counts": counts, "data": data}


def test_gather_is_bounded_to_the_queued_claims_and_their_members_window(pages):
    data = pages["data"]
    assert sorted(data.lines["claim_id"]) == ["c1", "c1"]  # only the queued claim's lines
    # the member's other claims within 90 days before to 30 after: the duplicate, the stay, the fill; not "old"
    assert sorted(data.member_claims["claim_id"]) == ["c0", "c9", "r1"]
    assert sorted(data.provider_claims["claim_id"]) == ["c0", "c1"]


def test_case_page_reads_as_the_auditor_needs_it(pages, browser):
    assert pages["counts"] == {"case_pages": 1, "provider_pages": 1}
    page = pages["folder"] / "cases" / "CS-AAA.html"
    text = browser.text(page)
    assert "Case CS-AAA — medical claim c1 (rank 1)" in text
    assert HOSTILE in text  # the hostile member id is text, not markup: nothing was injected
    assert browser.evaluate(page, "document.querySelectorAll('script').length") == 0
    assert "top-level E/M share 80% vs peers 20% <b>x</b>" in text
    # lines and codes
    assert "99215\t25\t1" in text and "36415" in text and "E119 I10" in text
    # the member's other claims, the duplicate named by its finding
    assert "Named by a finding: exact duplicate: claim c0." in text
    assert "0\t2026-03-10\t2026-03-10\tmedical\tc0\tprofessional\t1111111111\t99215\t$180.00\texact duplicate" in text
    assert "-67\t2026-01-02\t2026-01-06\tmedical\tc9\tinstitutional" in text
    assert "-9\t2026-03-01\t2026-03-30\tpharmacy\tr1\tpharmacy\t5555555555\t00406052301\t$60.00" in text
    # peers, rules, timeline
    assert "share of E/M visits at the top level\t80.0%\t20.0%\t4.00×" in text
    assert "DUP001\texact duplicate claim\tduplicate_billing" in text and "PR001\ttop-level E/M visits far above peers" in text
    assert "2026-03-20\topen\tclaimsentry" in text and "2026-03-21\trecords_requested\tana\t\tletter <sent>" in text


def test_provider_page_lists_its_claims_and_links_to_case_pages_that_exist(pages, browser):
    page = pages["folder"] / "providers" / "1111111111.html"
    text = browser.text(page)
    assert "Provider 1111111111" in text and "Flagged claims\n2" in text
    assert "share of E/M visits at the top level\t80.0%\t20.0%\t4.00×" in text
    assert "2026-03-10\tmedical\tc1\tprofessional\t$190.00\t0.97\tDUP001, PR001\tCS-AAA" in text
    assert "CS-OLD\told\t2025-06-10\trecovered\t2025-08-01" in text
    targets = {link.split("#")[0] for link in browser.links(page)}  # resolved by the browser
    folder = pages["folder"]
    assert targets == {(folder / "claim_queue.html").as_uri(), (folder / "cases" / "CS-AAA.html").as_uri()}
    assert (folder / "cases" / "CS-AAA.html").is_file()  # the queue page itself is the run's (tests/test_dags.py)


def test_page_names_cannot_leave_their_folder():
    assert case_pages.page_name("../../etc/passwd") == ".._.._etc_passwd.html"
    assert "/" not in case_pages.page_name("a/b")
