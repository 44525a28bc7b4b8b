"""Policy reference loaders and ``claimsentry reference`` (issue 36, first part).

Given small files written in the publishers' own formats (tests/data/policy/: a PTP text file with
its copyright and wrapped header lines, an MUE CSV with its multi-line copyright cell, a
fixed-width add-on code file, an LEIE UPDATED.csv, an NPPES file with the real 330-column header),
expect the exact typed rows, the quarantined rows with their reasons, counts that reconcile, and
the version each is stored as. Wrong files fail with one line naming what was expected and found.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from claimsentry.config import load_settings
from claimsentry.errors import InputError
from claimsentry.policy import formats, sniff, store
from conftest import REPO, claimsentry_cli

DATA = REPO / "tests" / "data" / "policy"
PTP_FILES = ["ccipra-v321r0-f1.TXT", "ccipra-v321r0-f2.TXT"]
MUE_FILE = "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
AOC_FILE = "AOC_V2026Q2-F-MCR.txt"
LEIE_FILE = "UPDATED.csv"
NPPES_FILE = "npidata_pfile_20050523-20260111.csv"
LOADED_AT = dt.datetime(2026, 4, 2, 9, 0, tzinfo=dt.timezone.utc)
d = dt.date


def nppes_header() -> list[str]:
    """The NPPES data file's columns, in order (NPPES Data Dissemination Readme, Exhibit 2-1)."""
    mailing, practice = "Provider Business Mailing Address ", "Provider Business Practice Location Address "
    cols = [
        "NPI", "Entity Type Code", "Replacement NPI", "Employer Identification Number (EIN)",
        "Provider Organization Name (Legal Business Name)", "Provider Last Name (Legal Name)", "Provider First Name",
        "Provider Middle Name", "Provider Name Prefix Text", "Provider Name Suffix Text", "Provider Credential Text",
        "Provider Other Organization Name", "Provider Other Organization Name Type Code", "Provider Other Last Name",
        "Provider Other First Name", "Provider Other Middle Name", "Provider Other Name Prefix Text",
        "Provider Other Name Suffix Text", "Provider Other Credential Text", "Provider Other Last Name Type Code",
        "Provider First Line Business Mailing Address", "Provider Second Line Business Mailing Address",
    ]
    cols += [mailing + s for s in ("City Name", "State Name", "Postal Code", "Country Code (If outside U.S.)", "Telephone Number", "Fax Number")]
    cols += ["Provider First Line Business Practice Location Address", "Provider Second Line Business Practice Location Address"]
    cols += [practice + s for s in ("City Name", "State Name", "Postal Code", "Country Code (If outside U.S.)", "Telephone Number", "Fax Number")]
    cols += [
        "Provider Enumeration Date", "Last Update Date", "NPI Deactivation Reason Code", "NPI Deactivation Date",
        "NPI Reactivation Date", "Provider Sex Code", "Authorized Official Last Name", "Authorized Official First Name",
        "Authorized Official Middle Name", "Authorized Official Title or Position", "Authorized Official Telephone Number",
    ]
    for i in range(1, 16):
        cols += [f"Healthcare Provider Taxonomy Code_{i}", f"Provider License Number_{i}",
                 f"Provider License Number State Code_{i}", f"Healthcare Provider Primary Taxonomy Switch_{i}"]
    for i in range(1, 51):
        cols += [f"Other Provider Identifier_{i}", f"Other Provider Identifier Type Code_{i}",
                 f"Other Provider Identifier State_{i}", f"Other Provider Identifier Issuer_{i}"]
    cols += ["Is Sole Proprietor", "Is Organization Subpart", "Parent Organization LBN", "Parent Organization TIN",
             "Authorized Official Name Prefix Text", "Authorized Official Name Suffix Text", "Authorized Official Credential Text"]
    cols += [f"Healthcare Provider Taxonomy Group_{i}" for i in range(1, 16)] + ["Certification Date"]
    return cols


def _settings(root: Path):
    return load_settings(environ={}, overrides={"data_dir": str(root / "data")})


@pytest.fixture(scope="module")
def ref_settings(tmp_path_factory):
    return _settings(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def loaded(spark, ref_settings):
    """Every kind added once to one store: kind -> AddResult."""
    files = {
        "ncci-ptp": PTP_FILES,
        "ncci-mue": [MUE_FILE],
        "ncci-aoc": [AOC_FILE],
        "leie": [LEIE_FILE],
        "nppes": [NPPES_FILE],
    }
    return {
        kind: store.add_reference(spark, ref_settings, kind, [str(DATA / f) for f in names], now=LOADED_AT)
        for kind, names in files.items()
    }


def _rows(spark, ref_settings, kind, setting=None):
    return store.load_reference(spark, ref_settings, kind, setting=setting).rows


def _quarantine(spark, result):
    return {(r["reason"], r["source_file"]) for r in store.load_quarantine(spark, result.manifest).collect()}


def _expect(spark, kind, rows):
    return spark.createDataFrame(rows, formats.SPECS[kind].schema)


# --- Each kind: given the published file, expect the typed rows and the quarantine -------------------


def test_ptp_parts_load_as_one_version_with_typed_rows(spark, ref_settings, loaded):
    expect = _expect(spark, "ncci-ptp", [
        ("00100", "0213T", False, d(2013, 1, 1), None, "1", "Misuse of column two code with column one code"),
        ("11042", "11000", True, d(1996, 1, 1), None, "1", "Standards of medical / surgical services"),
        ("0213T", "0216T", False, d(2013, 1, 1), d(2015, 1, 1), "0", "Mutually exclusive procedures"),
        ("36415", "36410", False, d(2004, 4, 1), d(2004, 4, 1), "9", "CPT Manual or CMS manual coding instruction"),
        ("99215", "99211", False, d(2020, 1, 1), None, "0", "Mutually exclusive procedures"),
        ("J1885", "96372", False, d(2026, 4, 1), None, "1", "Standard preparation / monitoring services for anesthesia"),
    ])
    assertDataFrameEqual(_rows(spark, ref_settings, "ncci-ptp", "practitioner"), expect)
    m = loaded["ncci-ptp"].manifest
    assert (m["kind"], m["setting"], m["version"], m["publisher_version"]) == ("ncci-ptp", "practitioner", "2026Q2", "32.1 r0")
    assert m["source"] == "NCCI PTP practitioner 2026Q2"
    assert m["rows"] == {"read": 10, "accepted": 6, "quarantined": 4}  # 8 + 2 data lines; header lines are not rows
    assert (m["effective_from"], m["effective_to"]) == ("1996-01-01", None)  # open: some edits are not deleted
    assert [f["name"] for f in m["files"]] == PTP_FILES
    assert m["files"][0]["read_as"] == ["tab-delimited, ISO-8859-1"]


def test_ptp_bad_rows_are_quarantined_with_their_reasons(spark, loaded):
    assert _quarantine(spark, loaded["ncci-ptp"]) == {
        ("Effective Date is not a date (YYYYMMDD): '20201301'", "ccipra-v321r0-f1.TXT"),
        ("Modifier indicator is not 0, 1 or 9: '2'", "ccipra-v321r0-f1.TXT"),
        ("Column 1 is empty", "ccipra-v321r0-f1.TXT"),
        ("repeats the key (column_1_code, column_2_code, effective_date) of an earlier row", "ccipra-v321r0-f1.TXT"),
    }
    repeat = store.load_quarantine(spark, loaded["ncci-ptp"].manifest).where("reason like 'repeats%'").first()
    assert json.loads(repeat["row_content"]) == {  # the later copy is quarantined, the earlier one kept
        "Column 1": "00100",
        "Column 2": "0213T",
        "Effective Date": "20130101",
        "Deletion Date *=no data": "*",
        "Modifier 0=not allowed 1=allowed 9=not applicable": "0",
        "PTP Edit Rationale": "Misuse of column two code with column one code (repeated)",
    }


def test_mue_rows_carry_the_mai_digit_and_its_words(spark, ref_settings, loaded):
    expect = _expect(spark, "ncci-mue", [
        ("0001U", 1, "2", "Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"),
        ("J1885", 4, "3", "Date of Service Edit: Clinical", "Clinical: Data"),
        ("A4216", 0, "1", "Line Edit", "Nature of Service/Procedure"),
        ("99213", 1, "2", "Date of Service Edit: Policy", "Nature of Service/Procedure"),
    ])
    assertDataFrameEqual(_rows(spark, ref_settings, "ncci-mue", "practitioner"), expect)
    m = loaded["ncci-mue"].manifest
    assert (m["setting"], m["version"], m["effective_from"], m["effective_to"]) == ("practitioner", "2026Q2", "2026-04-01", None)
    assert m["rows"] == {"read": 6, "accepted": 4, "quarantined": 2}  # the trailing ',,,' line is blank, not a row
    assert _quarantine(spark, loaded["ncci-mue"]) == {
        ("MUE value is not a whole number of units: 'four'", MUE_FILE),
        ("MUE Adjudication Indicator is not 1, 2 or 3: '4 Date of Service Edit: Other'", MUE_FILE),
    }


def test_add_on_code_fixed_width_records_with_julian_dates(spark, ref_settings, loaded):
    expect = _expect(spark, "ncci-aoc", [
        ("11045", "11042", "1", False, None, None, d(2013, 4, 1), None, None),
        ("22614", "22600", "1", False, None, None, d(2013, 4, 1), d(2025, 12, 31), None),
        ("99417", "CCCCC", "2", True, None, None, d(2021, 1, 1), None, "Contractor Defined Primary Codes"),
        ("96376", "96374", "3", False, None, None, d(2013, 4, 1), None, "96376 may be reported by facilities only"),
        ("96376", "96409", "3", False, None, d(2024, 12, 31), d(2013, 4, 1), d(2024, 12, 31), None),
    ])
    assertDataFrameEqual(_rows(spark, ref_settings, "ncci-aoc"), expect)
    m = loaded["ncci-aoc"].manifest
    assert (m["source"], m["effective_from"], m["effective_to"]) == ("NCCI add-on 2026Q2", "2013-04-01", None)
    assert _quarantine(spark, loaded["ncci-aoc"]) == {
        ("AOC edit type is not 1, 2 or 3: '4'", AOC_FILE),
        ("AOC edit effective date is not a date (YYYYDDD): '2013400'", AOC_FILE),  # day 400 of 2013
    }


def test_leie_individuals_businesses_reinstatements_and_waivers(spark, ref_settings, loaded):
    expect = _expect(spark, "leie", [
        ("1234567893", "individual", "DOE", "JANE", "Q", None, "IND- LIC HC SERV PRO", "NURSE/NURSES AIDE", None,
         d(1970, 1, 2), "12 MAIN ST", "ALBANY", "NY", "12207", "1128b4", d(2020, 1, 15), None, None, None),
        (None, "organization", None, None, None, "#1 MEDICAL SUPPLY, INC", "OTHER BUSINESS", "DME - GENERAL", None,
         None, "239 BRIGHTON BEACH AVENUE", "BROOKLYN", "NY", "11235", "1128a1", d(2020, 3, 19), None, None, None),
        ("1679576722", "individual", "ROE", "RICHARD", None, None, "IND- LIC HC SERV PRO", "FAMILY PRACTICE", None,
         d(1958, 11, 20), "1 OAK RD", "DALLAS", "TX", "75201", "1128b4", d(2018, 4, 10), d(2023, 6, 1), None, None),
        ("1982746503", "individual", "SMITH", "ALAN", "B", None, "IND- LIC HC SERV PRO", "INTERNAL MEDICINE", None,
         None, "5 ELM ST", "AUSTIN", "TX", "78701", "1128a1", d(2021, 3, 1), None, d(2021, 4, 15), "TX"),
    ])
    assertDataFrameEqual(_rows(spark, ref_settings, "leie"), expect)
    m = loaded["leie"].manifest
    # UPDATED.csv's name has no date: the version is the month of its latest action (a reinstatement).
    assert (m["source"], m["as_of"], m["effective_from"]) == ("OIG LEIE 2023-06", "2023-06-01", "2023-06-01")
    assert _quarantine(spark, loaded["leie"]) == {
        ("NPI is not 10 digits: '12345'", LEIE_FILE),
        ("EXCLDATE is not a date (YYYYMMDD): '20211340'", LEIE_FILE),
        ("repeats an earlier row", LEIE_FILE),
    }


def test_nppes_reads_the_needed_columns_of_the_full_header(spark, ref_settings, loaded):
    with open(DATA / NPPES_FILE, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == nppes_header()  # the test file carries the real 330 columns
    assert len(nppes_header()) == 330
    expect = _expect(spark, "nppes", [
        ("1234567893", "1", "individual", "207Q00000X", ["207Q00000X", "207R00000X"], "NY", d(2005, 5, 23), d(2007, 7, 8), None, None),
        ("1245319599", "2", "organization", "282N00000X", ["261QM1300X", "282N00000X"], "CA", d(2006, 6, 1), d(2026, 1, 5), None, None),
        ("1346053246", None, None, None, [], None, None, None, d(2019, 8, 21), None),  # deactivated: only NPI and date
    ])
    assertDataFrameEqual(_rows(spark, ref_settings, "nppes"), expect)
    m = loaded["nppes"].manifest
    assert (m["source"], m["as_of"]) == ("NPPES 2026-01", "2026-01-11")  # npidata_pfile_20050523-20260111: a full file
    assert _quarantine(spark, loaded["nppes"]) == {
        ("NPI is not 10 digits: '123456789'", NPPES_FILE),
        ("Entity Type Code is not 1 or 2: '3'; Provider Enumeration Date is not a date (MM/DD/YYYY): '02/30/2011'", NPPES_FILE),
    }


# --- The store ---------------------------------------------------------------------------------------


def test_counts_reconcile_and_the_store_layout(ref_settings, loaded):
    root = store.reference_root(ref_settings)
    assert root == ref_settings.data_dir / "reference"
    for result in loaded.values():
        m = result.manifest
        assert m["rows"]["read"] == m["rows"]["accepted"] + m["rows"]["quarantined"]
        assert sum(m["quarantine_reasons"].values()) >= m["rows"]["quarantined"]
        assert m["loaded_at"] == "2026-04-02T09:00:00+00:00"
        assert len(m["sha256"]) == 64
        on_disk = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
        assert on_disk == {k: v for k, v in m.items() if k != "path"}
        assert {p.name for p in result.path.iterdir()} == {"rows", "quarantine", "manifest.json"}
    assert loaded["ncci-ptp"].path == root / "ncci-ptp" / "practitioner" / "version=2026Q2"
    assert loaded["leie"].path == root / "leie" / "version=2023-06"
    assert not [p for p in root.rglob(".*") if p.is_dir()]  # no staging or extraction folder left


def test_adding_the_same_content_again_stores_nothing_new(spark, ref_settings, loaded):
    before = store.list_versions(ref_settings)
    files = [str(DATA / f) for f in reversed(PTP_FILES)]  # the same parts, another order
    plan = store.plan_add(ref_settings, "ncci-ptp", files, version="other-label")
    assert plan.existing["version"] == "2026Q2"
    again = store.add_reference(spark, ref_settings, "leie", [str(DATA / LEIE_FILE)])
    assert again.already_stored and again.manifest["version"] == "2023-06"
    assert store.list_versions(ref_settings) == before


def test_a_label_already_holding_other_content_is_refused(tmp_path, ref_settings, loaded):
    edited = tmp_path / LEIE_FILE
    edited.write_bytes((DATA / LEIE_FILE).read_bytes().replace(b"DOE", b"DOW"))
    with pytest.raises(InputError, match="version 2023-06 is already stored, from other content"):
        store.plan_add(ref_settings, "leie", [str(edited)], version="2023-06")
    assert store.plan_add(ref_settings, "leie", [str(edited)], version="2023-06", replace=True).existing is None


def test_rules_load_the_current_version_of_each_kind_and_cite_it(spark, ref_settings, loaded):
    tables = store.load_current(spark, ref_settings)
    assert {key: t.source for key, t in tables.items()} == {
        "ncci-ptp/practitioner": "NCCI PTP practitioner 2026Q2",
        "ncci-mue/practitioner": "NCCI MUE practitioner 2026Q2",
        "ncci-aoc": "NCCI add-on 2026Q2",
        "leie": "OIG LEIE 2023-06",
        "nppes": "NPPES 2026-01",
    }
    assert tables["leie"].rows.count() == 4
    used = store.versions_used(tables)
    assert used["ncci-mue/practitioner"] == {
        "kind": "ncci-mue", "setting": "practitioner", "version": "2026Q2", "source": "NCCI MUE practitioner 2026Q2",
        "sha256": loaded["ncci-mue"].manifest["sha256"], "loaded_at": "2026-04-02T09:00:00+00:00",
    }
    assert store.load_reference(spark, ref_settings, "ncci-aoc", version="2026Q2").version == "2026Q2"
    with pytest.raises(InputError, match="no version 1999Q1 is stored"):
        store.load_reference(spark, ref_settings, "ncci-aoc", version="1999Q1")
    with pytest.raises(InputError, match="name the setting"):
        store.load_reference(spark, ref_settings, "ncci-ptp")
    with pytest.raises(InputError, match="ncci-mue dme: no version is stored"):
        store.load_reference(spark, ref_settings, "ncci-mue", setting="dme")


def test_citation_words():
    cite = store.citation_source
    assert cite({"kind": "ncci-ptp", "setting": "outpatient", "version": "2026Q1"}) == "NCCI PTP outpatient hospital 2026Q1"
    assert cite({"kind": "ncci-mue", "setting": "dme", "version": "2026Q1"}) == "NCCI MUE DME 2026Q1"
    assert cite({"kind": "ncci-aoc", "setting": None, "version": "2026Q1"}) == "NCCI add-on 2026Q1"
    assert cite({"kind": "leie", "setting": None, "version": "2026-01"}) == "OIG LEIE 2026-01"


def test_a_failed_load_leaves_no_version_folder(spark, tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    archive = tmp_path / "leie.zip"
    with zipfile.ZipFile(archive, "w") as z:  # a zip member is extracted beside the store while it loads
        z.write(DATA / LEIE_FILE, LEIE_FILE)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(store, "quarantine_rows", disk_full)  # fails after the rows were written
    with pytest.raises(OSError, match="No space left"):
        store.add_reference(spark, settings, "leie", [str(archive)])
    root = store.reference_root(settings)
    assert list((root / "leie").iterdir()) == []  # neither version=… nor its hidden staging folder
    assert [p.name for p in root.iterdir()] == ["leie"]  # the extracted member is gone too
    assert store.list_versions(settings) == []


def test_a_file_with_a_header_and_no_rows_stores_nothing(spark, tmp_path):
    settings = _settings(tmp_path)
    head = (DATA / PTP_FILES[0]).read_bytes().split(b"\r\n")[:6]  # copyright, title, 4 header lines
    empty = tmp_path / "ccioph-v321r0-f1.TXT"
    empty.write_bytes(b"\r\n".join(head) + b"\r\n")
    with pytest.raises(InputError, match="has no rows after its header"):
        store.add_reference(spark, settings, "ncci-ptp", [str(empty)])
    assert store.list_versions(settings) == []


def test_a_zip_as_published_loads_its_text_member(spark, tmp_path):
    settings = _settings(tmp_path)
    archive = tmp_path / "medicare-ncci-2026-q2-practitioner-services-mue-table.zip"
    with zipfile.ZipFile(archive, "w") as z:  # CMS ships the table as CSV and as a workbook
        z.write(DATA / MUE_FILE, MUE_FILE)
        z.writestr(MUE_FILE.replace(".csv", ".xlsx"), b"PK")
    result = store.add_reference(spark, settings, "ncci-mue", [str(archive)])
    m = result.manifest
    assert (m["source"], m["rows"]["accepted"], [f["name"] for f in m["files"]]) == (
        "NCCI MUE practitioner 2026Q2", 4, [archive.name])


# --- What the driver tells from a file's head and name ----------------------------------------------


def test_the_wrapped_ptp_header_is_read_as_its_published_column_names():
    layout = sniff.sniff("ncci-ptp", sniff.SourceFile(DATA / PTP_FILES[0]))
    assert layout.header.columns == (
        "Column 1", "Column 2", "*=in existence prior to 1996", "Effective Date", "Deletion Date *=no data",
        "Modifier 0=not allowed 1=allowed 9=not applicable", "PTP Edit Rationale",
    )
    assert (layout.header.first, layout.header.last, layout.sep, layout.encoding) == (2, 5, "\t", "ISO-8859-1")


@pytest.mark.parametrize(
    "kind, name, hints",
    [
        ("ncci-ptp", "ccioph-v320r0-f3.TXT", {"setting": "outpatient", "label": "2026Q1", "publisher_version": "32.0 r0"}),
        ("ncci-ptp", "ccipra-v303r1-f1.zip", {"setting": "practitioner", "label": "2024Q4r1", "publisher_version": "30.3 r1"}),
        ("ncci-mue", "MCR_MUE_DMESupplierServices_Eff_01-01-2026.csv", {"setting": "dme", "label": "2026Q1", "effective": d(2026, 1, 1)}),
        ("ncci-mue", "MCR_MUE_OutpatientHospitalServices_Eff_07-01-2026.csv", {"setting": "outpatient", "label": "2026Q3", "effective": d(2026, 7, 1)}),
        ("ncci-aoc", "AOC_V2026Q1-F-MCR.txt", {"label": "2026Q1"}),
        ("nppes", "npidata_pfile_20050523-20260209.csv", {"label": "2026-02", "as_of": d(2026, 2, 9)}),
        ("nppes", "npidata_pfile_20260202-20260208.csv", {"label": "2026-02-08", "as_of": d(2026, 2, 8)}),  # a weekly file
        ("leie", "UPDATED.csv", {}),
    ],
)
def test_what_a_published_file_name_says(kind, name, hints):
    assert sniff.name_hints(kind, name) == hints


@pytest.mark.parametrize(
    "kind, make, message",
    [
        ("ncci-ptp", lambda p: DATA / LEIE_FILE,
         "is not a CMS NCCI procedure-to-procedure (PTP) edit file: expected columns Column 1, Column 2, *=in existence "
         "prior to 1996, Effective Date, Deletion Date, Modifier, PTP Edit Rationale (tab-delimited, after the copyright "
         "lines); found LASTNAME, FIRSTNAME, MIDNAME, BUSNAME, GENERAL, SPECIALTY, … — is this an OIG LEIE exclusion file (kind leie)?"),
        ("ncci-mue", lambda p: DATA / AOC_FILE, "found a first line '111045       11042       2013091' — is this a CMS NCCI add-on code edit file (kind ncci-aoc)?"),
        ("leie", lambda p: DATA / NPPES_FILE, "— is this an NPPES NPI data file (kind nppes)?"),
        ("nppes", lambda p: DATA / PTP_FILES[0], "— is this a CMS NCCI procedure-to-procedure (PTP) edit file (kind ncci-ptp)?"),
        ("ncci-aoc", lambda p: DATA / MUE_FILE, "found HCPCS/ CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator, MUE Rationale"),
        ("leie", lambda p: _write(p / "x.csv", b"LASTNAME,NPI,EXCLTYPE\r\nDOE,0000000000,1128a1\r\n"), "the LEIE header lacks FIRSTNAME, MIDNAME"),
        ("leie", lambda p: _write(p / "2601EXCL.csv", (DATA / LEIE_FILE).read_bytes()), "is a monthly LEIE supplement"),
        ("leie", lambda p: _write(p / "UPDATED.csv", b""), "leie: UPDATED.csv is empty"),
        ("leie", lambda p: _write(p / "UPDATED.csv", (DATA / LEIE_FILE).read_text().encode("utf-16")), "is UTF-16 text"),
        ("ncci-mue", lambda p: _write(p / "MUE.xlsx", b"PK\x03\x04"), "ncci-mue: MUE.xlsx is an Excel workbook; give the .csv in the CMS zip"),
        ("ncci-ptp", lambda p: _write(p / "edits.TXT", (DATA / PTP_FILES[0]).read_bytes()), "cannot tell the setting of edits.TXT; give --setting"),
        ("ncci-xyz", lambda p: DATA / LEIE_FILE, "unknown kind 'ncci-xyz': one of ncci-ptp, ncci-mue, ncci-aoc, leie, nppes"),
        ("leie", lambda p: p / "missing.csv", "leie: file not found"),
    ],
)
def test_a_wrong_file_is_one_line_naming_what_was_expected_and_found(tmp_path, kind, make, message):
    with pytest.raises(InputError) as err:
        store.plan_add(_settings(tmp_path), kind, [str(make(tmp_path))])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- The command -------------------------------------------------------------------------------------


def test_cli_errors_are_one_line_without_starting_spark(tmp_path):
    env = {"CLAIMSENTRY_DATA_DIR": str(tmp_path / "data")}
    utf16 = _write(tmp_path / "UPDATED.csv", (DATA / LEIE_FILE).read_text().encode("utf-16"))
    for args, words in [
        (["ncci-ptp", str(DATA / LEIE_FILE)], "is not a CMS NCCI procedure-to-procedure (PTP) edit file"),
        (["leie", str(utf16)], "is UTF-16 text"),
        (["hcpcs", str(DATA / LEIE_FILE)], "unknown kind 'hcpcs'"),
    ]:
        result = claimsentry_cli("reference", "add", *args, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("claimsentry reference: ")
        assert words in result.stderr


@pytest.mark.slow
def test_cli_adds_a_version_then_lists_it(tmp_path, spark, capsys):
    """The command as installed runs it (``cli.main``), in-process on the session's Spark: the
    one-line errors above run the real console script without starting a JVM."""
    from claimsentry.cli import main

    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "reference", "add", "ncci-mue", str(DATA / MUE_FILE)]) == 0
    added = capsys.readouterr()
    assert "NCCI MUE practitioner 2026Q2: 6 rows read, 4 accepted, 2 quarantined" in added.out
    assert "1 × MUE value is not a whole number of units" in added.out
    assert "effective 2026-04-01 to open" in added.out
    assert "parsed and typed 6 rows: 4 accepted, 2 quarantined" in added.err  # progress, per stage
    assert main([*data, "reference", "list"]) == 0
    listed = capsys.readouterr()
    current = [line for line in listed.out.splitlines() if line.startswith("*  ncci-mue")]
    assert len(current) == 1 and "practitioner  2026Q2" in current[0] and MUE_FILE in current[0]
