"""DE-SynPUF adapter: hand-written rows -> exact contract rows, and the real sample-2-10k end to end."""

from __future__ import annotations

import datetime as dt
import json
import gzip
import os
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from claimsentry import cli
from claimsentry.jobs.import_synpuf import (
    beneficiaries_to_eligibility,
    inpatient_to_medical_claim,
    npi_luhn_valid,
)
from claimsentry.schemas import ELIGIBILITY, MEDICAL_CLAIM

D = dt.date


def _raw(spark, rows: list[dict]):
    """All-string frame, as the importer reads the CSVs (blank cells are empty strings)."""
    cols = list(rows[0])
    schema = StructType([StructField(c, StringType()) for c in cols])
    return spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], schema)


def _ip(**kw) -> dict:
    base = {
        "DESYNPUF_ID": "00013D2EFD8E45D1", "CLM_ID": "196011176996883", "SEGMENT": "1",
        "CLM_FROM_DT": "20090305", "CLM_THRU_DT": "20090314", "PRVDR_NUM": "3602GC",
        "CLM_PMT_AMT": "34000.00", "NCH_PRMRY_PYR_CLM_PD_AMT": "0.00", "AT_PHYSN_NPI": "0668336456",
        "OP_PHYSN_NPI": "", "CLM_ADMSN_DT": "20090305", "NCH_BENE_DSCHRG_DT": "20090314",
        "CLM_DRG_CD": "064", "ICD9_DGNS_CD_1": "0389", "ICD9_DGNS_CD_2": "V4501", "ICD9_PRCDR_CD_1": "0066",
        "NCH_BENE_IP_DDCTBL_AMT": "1068.00", "NCH_BENE_PTA_COINSRNC_LBLTY_AM": "0.00", "CLM_UTLZTN_DAY_CNT": "9",
    }
    base.update(kw)
    return base


def test_inpatient_segments_become_lines_of_one_claim_with_header_from_segment_1(spark):
    given = _raw(
        spark,
        [
            _ip(),
            # segment 2 as SynPUF ships it: no claim dates, DRG 000, another provider, own payment
            _ip(SEGMENT="2", CLM_FROM_DT="", CLM_THRU_DT="", PRVDR_NUM="36016V", CLM_PMT_AMT="9000.00",
                AT_PHYSN_NPI="", CLM_ADMSN_DT="20090207", CLM_DRG_CD="000", ICD9_DGNS_CD_1="", ICD9_DGNS_CD_2="",
                ICD9_PRCDR_CD_1="", CLM_UTLZTN_DAY_CNT=""),
            # a recoupment (negative payment), DRG 'OTH', attending missing -> operating renders
            _ip(CLM_ID="196811176982330", CLM_PMT_AMT="-100.00", CLM_DRG_CD="OTH", AT_PHYSN_NPI="",
                OP_PHYSN_NPI="1234567893"),
        ],
    )
    out = inpatient_to_medical_claim(given)
    assert out.columns[: len(MEDICAL_CLAIM.columns)] == MEDICAL_CLAIM.column_names
    for c, t in MEDICAL_CLAIM.columns:
        assert out.schema[c].dataType == t, c
    cols = ["claim_id", "claim_line_number", "claim_type", "claim_start_date", "claim_end_date",
            "claim_line_start_date", "admission_date", "drg_code_type", "drg_code", "billing_npi",
            "facility_npi", "rendering_npi", "paid_amount", "deductible_amount", "diagnosis_code_type",
            "diagnosis_code_1", "diagnosis_code_2", "procedure_code_type", "procedure_code_1",
            "bill_type_code", "data_source", "source_drg_code", "segment_provider_num",
            "utilization_day_count", "import_flags"]
    c1, c2 = "196011176996883", "196811176982330"
    expect = spark.createDataFrame(
        [
            (c1, 1, "institutional", D(2009, 3, 5), D(2009, 3, 14), D(2009, 3, 5), D(2009, 3, 5), "ms-drg", "064",
             "3602GC", "3602GC", "0668336456", 34000.0, 1068.0, "icd-9-cm", "0389", "V4501", "icd-9-pcs", "0066",
             None, "desynpuf", "064", "3602GC", 9, None),
            (c1, 2, "institutional", D(2009, 3, 5), D(2009, 3, 14), None, D(2009, 3, 5), "ms-drg", "064",
             "3602GC", "3602GC", "0668336456", 9000.0, 1068.0, "icd-9-cm", "0389", "V4501", "icd-9-pcs", "0066",
             None, "desynpuf", "000", "36016V", 9, "header_from_segment_1"),
            (c2, 1, "institutional", D(2009, 3, 5), D(2009, 3, 14), D(2009, 3, 5), D(2009, 3, 5), None, None,
             "3602GC", "3602GC", "1234567893", -100.0, 1068.0, "icd-9-cm", "0389", "V4501", "icd-9-pcs", "0066",
             None, "desynpuf", "OTH", "3602GC", 9,
             "negative_paid_amount;drg_not_a_drg;rendering_from_operating"),
        ],
        out.select(cols).schema,
    )
    assertDataFrameEqual(out.select(cols), expect)


def test_inpatient_claim_without_segment_1_keeps_its_own_values(spark):
    out = inpatient_to_medical_claim(_raw(spark, [_ip(SEGMENT="2", CLM_FROM_DT="", CLM_THRU_DT="")]))
    row = out.select("claim_line_number", "claim_start_date", "import_flags").first()
    assert row == Row(claim_line_number=2, claim_start_date=None, import_flags="no_segment_1")


def _bene(**kw) -> dict:
    base = {
        "DESYNPUF_ID": "000EF833E50F150C", "BENE_BIRTH_DT": "19180301", "BENE_DEATH_DT": "",
        "BENE_SEX_IDENT_CD": "1", "SP_STATE_CODE": "03", "BENE_COUNTY_CD": "090",
        "BENE_HI_CVRAGE_TOT_MONS": "12", "BENE_SMI_CVRAGE_TOT_MONS": "12", "BENE_HMO_CVRAGE_TOT_MONS": "0",
        "PLAN_CVRG_MOS_NUM": "00", "file_year": "2008",
    }
    base.update(kw)
    return base


def test_beneficiaries_one_span_per_year_cut_at_death(spark):
    given = _raw(
        spark,
        [
            _bene(),  # 2008: death not yet known in this year's file
            _bene(file_year="2009", BENE_DEATH_DT="20090601", BENE_HI_CVRAGE_TOT_MONS="5"),
            _bene(DESYNPUF_ID="00016F745862898F", BENE_SEX_IDENT_CD="2", SP_STATE_CODE="54"),  # 54 = "Others"
        ],
    )
    out = beneficiaries_to_eligibility(given)
    assert out.columns[: len(ELIGIBILITY.columns)] == ELIGIBILITY.column_names
    cols = ["person_id", "member_id", "gender", "birth_date", "death_date", "death_flag", "enrollment_start_date",
            "enrollment_end_date", "payer", "payer_type", "plan", "state", "zip_code", "data_source",
            "source_state_code", "source_county_code", "part_a_coverage_months"]
    p1, p2 = "000EF833E50F150C", "00016F745862898F"
    expect = spark.createDataFrame(
        [
            (p1, p1, "male", D(1918, 3, 1), D(2009, 6, 1), 1, D(2008, 1, 1), D(2008, 12, 31), "medicare", "medicare",
             None, "AZ", None, "desynpuf", "03", "090", 12),
            (p1, p1, "male", D(1918, 3, 1), D(2009, 6, 1), 1, D(2009, 1, 1), D(2009, 6, 1), "medicare", "medicare",
             None, "AZ", None, "desynpuf", "03", "090", 5),
            (p2, p2, "female", D(1918, 3, 1), None, 0, D(2008, 1, 1), D(2008, 12, 31), "medicare", "medicare",
             None, None, None, "desynpuf", "54", "090", 12),
        ],
        out.select(cols).schema,
    )
    assertDataFrameEqual(out.select(cols), expect)


def test_npi_luhn(spark):
    df = spark.createDataFrame(
        [("1234567893", True), ("1234567890", False), ("2600GD", False), (None, False), ("0668336456", False)],
        "npi string, ok boolean",
    )
    assert df.filter(npi_luhn_valid(F.col("npi")) != F.col("ok")).count() == 0


# ---------------------------------------------------------------------------- real sample-2-10k, via the CLI

# The CMS sample-2-10k files, gzipped in the repo (1.2 MB) so CI on a bare clone runs these tests;
# CLAIMSENTRY_SYNPUF_SAMPLE may point at another copy (plain or gzipped CSVs).
SAMPLE = Path(os.environ.get("CLAIMSENTRY_SYNPUF_SAMPLE", Path(__file__).resolve().parent / "data" / "desynpuf-sample-2-10k"))


def _data_rows(pattern: str) -> int:
    def lines(p: Path) -> int:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as fh:
            return sum(1 for _ in fh) - 1

    return sum(lines(p) for p in SAMPLE.glob(pattern + "*"))


@pytest.fixture(scope="module")
def imported(spark, tmp_path_factory):
    if not SAMPLE.is_dir():
        pytest.skip(f"DE-SynPUF sample-2-10k not found at {SAMPLE} (set CLAIMSENTRY_SYNPUF_SAMPLE)")
    tmp = tmp_path_factory.mktemp("synpuf")
    out = tmp / "out"
    code = cli.main(["--data-dir", str(tmp / "data"), "import-synpuf", "--input", str(SAMPLE), "--output", str(out)])
    return code, out, json.loads((out / "import_report.json").read_text())


def test_sample_counts_reconcile_with_source(imported, spark):
    code, out, report = imported
    assert code == 0
    lines = spark.read.parquet(str(out / "medical_claim"))
    spans = spark.read.parquet(str(out / "eligibility"))
    assert lines.count() == _data_rows("*Inpatient_Claims*.csv") == 5888
    assert spans.count() == _data_rows("*Beneficiary_Summary_File*.csv") == 29543
    med, elig = report["medical_claim"]["counts"], report["eligibility"]["counts"]
    assert (med["source_rows"], med["rows_written"], med["claims_written"]) == (5888, 5888, 5884)
    assert (elig["source_rows"], elig["rows_written"], elig["persons_written"]) == (29543, 29543, 10000)
    assert elig["source_rows_by_year"] == {"2008": 10000, "2009": 9842, "2010": 9701}
    assert med["duplicate_keys"] == 0
    assert report["medical_claim"]["source_columns"]["rows_malformed_csv"] == 0
    assert report["eligibility"]["source_columns"]["rows_malformed_csv"] == 0
    assert lines.groupBy("claim_id", "claim_line_number").count().filter("count > 1").count() == 0
    assert spans.groupBy("person_id", "enrollment_start_date").count().filter("count > 1").count() == 0


def test_sample_types_codes_and_dates(imported, spark):
    _, out, _ = imported
    lines = spark.read.parquet(str(out / "medical_claim"))
    for c, t in MEDICAL_CLAIM.columns:
        assert lines.schema[c].dataType == t, c
    assert isinstance(lines.schema["claim_start_date"].dataType, DateType)
    row = lines.filter("claim_id = '45241150095234'").first()  # DRG 075, source row 20080918..20080919
    assert (row.drg_code, row.claim_start_date, row.claim_end_date) == ("075", D(2008, 9, 18), D(2008, 9, 19))
    seg1 = lines.filter("claim_id = '45191150078432' and claim_line_number = 1").first()
    assert (seg1.rendering_npi, seg1.diagnosis_code_1) == ("0976464968", "75612")
    spans = spark.read.parquet(str(out / "eligibility"))
    assert spans.filter("source_state_code = '03' and state = 'AZ'").count() > 0
    assert spans.filter("source_county_code like '0%'").count() > 0


def test_sample_two_segment_claims_are_two_lines_of_one_claim(imported, spark):
    _, out, report = imported
    lines = spark.read.parquet(str(out / "medical_claim"))
    two = lines.groupBy("claim_id").agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("claim_start_date").alias("starts"),
        F.countDistinct("drg_code").alias("drgs"),
        F.countDistinct("billing_npi").alias("billers"),
        F.sum("paid_amount").alias("paid"),
    ).filter("n = 2")
    assert two.count() == 4 == report["medical_claim"]["counts"]["segment_2plus_rows"]
    assert two.filter("starts = 1 and drgs = 1 and billers = 1").count() == 4  # header repeated on both lines
    assert two.filter("claim_id = '45191150078432'").first().paid == 60000.0  # 30000 + 30000, each segment's own


def test_sample_negative_payments_kept_flagged_and_counted(imported, spark):
    _, out, report = imported
    lines = spark.read.parquet(str(out / "medical_claim"))
    neg = lines.filter("paid_amount < 0")
    assert neg.count() == 5 == report["medical_claim"]["counts"]["rows_negative_payment"]
    assert neg.filter("import_flags like '%negative_paid_amount%'").count() == 5
    assert lines.filter("claim_id = '45131150084862'").first().paid_amount == -60.0
    med = report["medical_claim"]["counts"]
    assert med["gate_rows_failing_contract_rules_excl_npi"] == 5
    assert med["rows_drg_OTH"] == 18 and med["rows_billing_npi_luhn_valid"] == 0
    assert "billing_npi" in report["medical_claim"]["stand_ins"]


def test_malformed_csv_line_is_kept_and_counted(spark, tmp_path):
    from claimsentry.jobs.import_synpuf import import_synpuf

    src = tmp_path / "src"
    src.mkdir()
    bene_header = ",".join(f'"{c}"' for c in _bene() if c != "file_year")
    (src / "DE1_0_2008_Beneficiary_Summary_File_Sample_9.csv").write_text(
        bene_header + "\n" + ",".join(v for k, v in _bene().items() if k != "file_year") + "\n"
    )
    ip_row = _ip()
    (src / "DE1_0_2008_to_2010_Inpatient_Claims_Sample_9.csv").write_text(
        ",".join(f'"{c}"' for c in ip_row) + "\n" + ",".join(ip_row.values()) + "\n"
        + "00013D2EFD8E45D1,999,1,20090305\n"  # truncated line
    )
    report = import_synpuf(spark, str(src), str(tmp_path / "out"))
    med = report["medical_claim"]["counts"]
    assert (med["source_rows"], med["rows_written"]) == (2, 2)
    assert report["medical_claim"]["source_columns"]["rows_malformed_csv"] == 1
    assert med["gate_null_claim_end_date"] == 1  # the truncated line lacks its thru date: the gate quarantines it
    assert report["eligibility"]["counts"]["rows_written"] == 1
    assert "ICD9_DGNS_CD_3" in report["medical_claim"]["source_columns"]["missing_columns"]


def test_cli_bad_input_is_one_line_error(tmp_path, capsys):
    code = cli.main(["--data-dir", str(tmp_path / "d"), "import-synpuf", "--input", str(tmp_path / "nope"),
                     "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "input directory not found" in err
    (tmp_path / "empty").mkdir()
    code = cli.main(["--data-dir", str(tmp_path / "d"), "import-synpuf", "--input", str(tmp_path / "empty"),
                     "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "beneficiary summary files" in err
    assert not (tmp_path / "o").exists()


def test_refuses_to_replace_a_folder_that_is_not_an_earlier_import(tmp_path, capsys, spark):
    if not SAMPLE.is_dir():
        pytest.skip(f"DE-SynPUF sample-2-10k not found at {SAMPLE}")
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code = cli.main(["--data-dir", str(tmp_path / "d"), "import-synpuf", "--input", str(SAMPLE), "--output", str(out)])
    assert code == 2 and "refusing" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"
