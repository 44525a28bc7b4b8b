"""The published formats of the policy reference files, and their Spark parsers.

Each kind is read from the publisher's own text form into a typed table with an explicit
``StructType``; codes stay strings end to end. A row that does not type (a date that does not
parse, an indicator outside its published values, an empty code, an NPI that is not 10 digits…)
is never dropped: it goes to the quarantine frame with every reason it fails, and the counts
reconcile (rows read = rows accepted + rows quarantined). Lines that are blank (every field
empty) are not rows and are not counted.

Grain and key of each accepted table (``KindSpec.key``; a later row repeating the key of an
earlier one, in file order, is quarantined):

- ``ncci-ptp``: one row per column-1/column-2 pair per effective date.
- ``ncci-mue``: one row per HCPCS/CPT code.
- ``ncci-aoc``: one row per add-on code / primary code pair per edit effective date.
- ``leie``: one row per exclusion record; only byte-for-byte repeats are quarantined (an
  individual without an NPI has no other key).
- ``nppes``: one row per NPI.

Locating the data: the driver finds the header in the file's first bytes (``sniff``), and the
same detector runs again on the first records Spark itself parses; those records, up to the end
of the header, are left out by their row id. Everything after that is row work in Spark.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

S, D, I, B = StringType(), DateType(), IntegerType(), BooleanType()

KINDS = ("ncci-ptp", "ncci-mue", "ncci-aoc", "leie", "nppes")
# The settings a kind is published for; kinds absent here have none.
SETTINGS: dict[str, tuple[str, ...]] = {
    "ncci-ptp": ("practitioner", "outpatient"),
    "ncci-mue": ("practitioner", "outpatient", "dme"),
}
SETTING_WORDS = {"practitioner": "practitioner", "outpatient": "outpatient hospital", "dme": "DME"}

CORRUPT = "_corrupt_record"
FIXED_WIDTH = "fixed-width"  # FileLayout.sep of a fixed-width file (one field: the whole line)
HEAD_ROWS = 200  # records Spark parses to find the header again; a preamble is a few lines

QUARANTINE_SCHEMA = StructType(
    [
        StructField("table", S),  # the kind
        StructField("row_content", S),  # the row as read: JSON keyed by the published column names
        StructField("reason", S),  # every check it fails, '; '-joined
        StructField("source_file", S),
    ]
)


def _schema(*cols: tuple[str, object]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in cols])


PTP_SCHEMA = _schema(
    ("column_1_code", S),  # paid when both codes are billed for one patient on one date
    ("column_2_code", S),  # denied in that case unless the modifier indicator lets a modifier bypass
    ("in_existence_prior_1996", B),  # '*' in the file: the edit predates 1996
    ("effective_date", D),
    ("deletion_date", D),  # null: '*' (no data) in the file, the edit is not deleted
    ("modifier_indicator", S),  # '0' not allowed, '1' allowed, '9' not applicable
    ("ptp_edit_rationale", S),
)
MUE_SCHEMA = _schema(
    ("hcpcs_code", S),
    ("mue_value", I),  # most units of service for the code per patient (0: never payable)
    ("mue_adjudication_indicator", S),  # '1' line, '2' date of service (policy), '3' date of service (clinical)
    ("mue_adjudication_description", S),  # the indicator's words as published, e.g. 'Date of Service Edit: Policy'
    ("mue_rationale", S),
)
AOC_SCHEMA = _schema(
    ("add_on_code", S),
    ("primary_code", S),  # 'CCCCC': primary codes defined by the contractor (MAC), not listed
    ("aoc_edit_type", S),  # '1', '2' or '3' (see ``type_aoc``)
    ("contractor_defined_primary", B),  # primary_code is 'CCCCC'
    ("add_on_code_deletion_date", D),
    ("primary_code_deletion_date", D),
    ("effective_date", D),  # of the add-on/primary pairing
    ("deletion_date", D),  # of the pairing; null: not deleted
    ("special_instruction_notes", S),
)
LEIE_SCHEMA = _schema(
    ("npi", S),  # null: '0000000000' in the file (no NPI on record)
    ("entity_type", S),  # 'individual' (LASTNAME given) or 'organization' (BUSNAME only)
    ("last_name", S),
    ("first_name", S),
    ("middle_name", S),
    ("business_name", S),
    ("general", S),  # the excluded party's broad category, e.g. 'OTHER BUSINESS', 'IND- LIC HC SERV PRO'
    ("specialty", S),
    ("upin", S),
    ("birth_date", D),
    ("address", S),
    ("city", S),
    ("state", S),
    ("zip_code", S),
    ("exclusion_type", S),  # the Social Security Act section, e.g. '1128a1', '1128b4'
    ("exclusion_date", D),
    ("reinstatement_date", D),  # null: '00000000', not reinstated
    ("waiver_date", D),  # null: '00000000', no waiver
    ("waiver_state", S),
)
NPPES_SCHEMA = _schema(
    ("npi", S),
    ("entity_type_code", S),  # '1' individual, '2' organization; null only on a deactivated NPI's record
    ("entity_type", S),  # 'individual' | 'organization'
    ("primary_taxonomy_code", S),  # the taxonomy whose primary switch is 'Y'; null when none is
    ("taxonomy_codes", ArrayType(S)),  # every taxonomy code listed, in the file's order
    ("practice_state", S),  # state of the primary practice location
    ("enumeration_date", D),
    ("last_update_date", D),
    ("deactivation_date", D),
    ("reactivation_date", D),
)

# Published column names, by logical field (for quarantine's row_content and error messages).
PTP_COLUMNS = {
    "column_1": "Column 1",
    "column_2": "Column 2",
    "prior_1996": "*=in existence prior to 1996",
    "effective": "Effective Date",
    "deletion": "Deletion Date *=no data",
    "modifier": "Modifier 0=not allowed 1=allowed 9=not applicable",
    "rationale": "PTP Edit Rationale",
}
MUE_COLUMNS = {
    "code": "HCPCS/CPT Code",
    "value": "Services MUE Values",
    "mai": "MUE Adjudication Indicator",
    "rationale": "MUE Rationale",
}
# The add-on code file's fields, as the CMS workbook names them; the fixed-width text file holds
# the same eight in this order (1-based start column, width; the notes run to the end of the line).
AOC_COLUMNS = {
    "edit_type": "AOC_Edit_Type",
    "add_on_code": "Add-On_Code",
    "add_on_deletion": "AOC_DelDT",
    "primary_code": "Primary_Code",
    "primary_deletion": "Primary_Code_DelDT",
    "effective": "AOC_Edit_EffDT",
    "deletion": "AOC_Edit_DelDT",
    "notes": "Special_Instruction_Notes",
}
AOC_FIXED = {
    "edit_type": (1, 1),
    "add_on_code": (2, 5),
    "add_on_deletion": (7, 7),
    "primary_code": (14, 5),
    "primary_deletion": (19, 7),
    "effective": (26, 7),
    "deletion": (33, 7),
    "notes": (40, None),
}
AOC_MIN_LINE = 32  # a record reaches at least the end of its edit effective date
# A fixed-width add-on code record: type 1-3, codes of 5 letters/digits, Julian dates (YYYYDDD) or blanks.
AOC_RECORD = re.compile(r"^[123][A-Za-z0-9]{5}[0-9 ]{7}[A-Za-z0-9]{5}[0-9 ]{7}[0-9]{7}")
LEIE_COLUMNS = (
    "LASTNAME", "FIRSTNAME", "MIDNAME", "BUSNAME", "GENERAL", "SPECIALTY", "UPIN", "NPI", "DOB",
    "ADDRESS", "CITY", "STATE", "ZIP", "EXCLTYPE", "EXCLDATE", "REINDATE", "WAIVERDATE", "WVRSTATE",
)
TAXONOMY_SLOTS = 15
NPPES_COLUMNS = {
    "npi": "NPI",
    "entity_type_code": "Entity Type Code",
    "state": "Provider Business Practice Location Address State Name",
    "enumeration": "Provider Enumeration Date",
    "last_update": "Last Update Date",
    "deactivation": "NPI Deactivation Date",
    "reactivation": "NPI Reactivation Date",
    **{f"taxonomy_{i}": f"Healthcare Provider Taxonomy Code_{i}" for i in range(1, TAXONOMY_SLOTS + 1)},
    **{f"switch_{i}": f"Healthcare Provider Primary Taxonomy Switch_{i}" for i in range(1, TAXONOMY_SLOTS + 1)},
}
NPPES_REQUIRED = ("npi", "entity_type_code", "state", "taxonomy_1", "switch_1")


@dataclass(frozen=True)
class KindSpec:
    """A reference kind: what the file is, its typed table and the grain that table keeps."""

    kind: str
    title: str  # the published file, in words
    schema: StructType
    key: tuple[str, ...]  # unique among accepted rows (the grain)
    grain: str
    expected: str  # the published columns, as a wrong-format error names them
    text_form: str  # which published file to give


SPECS: dict[str, KindSpec] = {
    s.kind: s
    for s in (
        KindSpec(
            "ncci-ptp",
            "CMS NCCI procedure-to-procedure (PTP) edit file",
            PTP_SCHEMA,
            ("column_1_code", "column_2_code", "effective_date"),
            "one row per column-1/column-2 pair per effective date",
            "Column 1, Column 2, *=in existence prior to 1996, Effective Date, Deletion Date, Modifier, "
            "PTP Edit Rationale (tab-delimited, after the copyright lines)",
            "the tab-delimited .TXT in the CMS zip (ccipra-v…-f1.TXT, ccioph-v…-f1.TXT)",
        ),
        KindSpec(
            "ncci-mue",
            "CMS NCCI medically unlikely edit (MUE) table",
            MUE_SCHEMA,
            ("hcpcs_code",),
            "one row per HCPCS/CPT code",
            "HCPCS/CPT Code, <Practitioner | Outpatient Hospital | DME Supplier> Services MUE Values, "
            "MUE Adjudication Indicator, MUE Rationale",
            "the .csv in the CMS zip (MCR_MUE_…_Eff_MM-DD-YYYY.csv)",
        ),
        KindSpec(
            "ncci-aoc",
            "CMS NCCI add-on code edit file",
            AOC_SCHEMA,
            ("add_on_code", "primary_code", "effective_date"),
            "one row per add-on code / primary code pair per edit effective date",
            "fixed-width records (edit type, add-on code, its deletion date, primary code, its deletion "
            "date, edit effective and deletion dates as YYYYDDD, notes) or the columns "
            + ", ".join(AOC_COLUMNS.values()),
            "the fixed-width .txt in the CMS zip (AOC_V…-F-MCR.txt)",
        ),
        KindSpec(
            "leie",
            "OIG LEIE exclusion file",
            LEIE_SCHEMA,
            tuple(LEIE_SCHEMA.fieldNames()),
            "one row per exclusion record (byte-for-byte repeats quarantined)",
            ", ".join(LEIE_COLUMNS),
            "UPDATED.csv from the OIG LEIE downloadable databases",
        ),
        KindSpec(
            "nppes",
            "NPPES NPI data file",
            NPPES_SCHEMA,
            ("npi",),
            "one row per NPI",
            ", ".join(NPPES_COLUMNS[f] for f in NPPES_REQUIRED) + ", …",
            "npidata_pfile_YYYYMMDD-YYYYMMDD.csv from the NPPES downloadable file",
        ),
    )
}


# --- Finding the header (pure Python, on rows of cells) ------------------------------------------


@dataclass(frozen=True)
class Header:
    """Where a file's data starts, in a list of parsed records.

    ``first`` is the header row (for a fixed-width file, the first record); every record up to and
    including ``last`` is preamble or header and is not data. ``fields`` maps logical fields to
    column positions; ``columns`` are the published names by position."""

    first: int
    last: int
    columns: tuple[str, ...]
    fields: Mapping[str, int] = field(default_factory=dict)
    setting: str | None = None
    fixed_width: bool = False


class HeaderMismatch(Exception):
    """A header row of the kind was found but lacks columns; the message says which."""


def norm(cell: str | None) -> str:
    """A header cell compared loosely: no BOM, whitespace (line breaks too) collapsed, lower case."""
    return re.sub(r"\s+", " ", (cell or "").replace("\ufeff", "")).strip().lower()


def _name(cell: str | None) -> str:
    """A published column name as shown: no BOM, whitespace (line breaks too) collapsed."""
    return re.sub(r"\s+", " ", (cell or "").replace("\ufeff", "")).strip()


def _alnum(cell: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", norm(cell)).replace("julian", "")


def _blank(row: Sequence[str | None]) -> bool:
    return not any((c or "").strip() for c in row)


def _ptp_continuation(row: Sequence[str | None]) -> bool:
    """A wrapped header line of the PTP text file: its first two cells empty, no date in it."""
    cells = [(c or "").strip() for c in row]
    return (
        not _blank(row)
        and len(cells) >= 2
        and not cells[0]
        and not cells[1]
        and not any(re.fullmatch(r"\d{8}", c) for c in cells)
    )


def detect_ptp(rows: Sequence[Sequence[str | None]]) -> Header | None:
    """The 'Column 1 / Column 2' header row, merged with the wrapped lines below it (the text file
    spreads each column's title over up to four lines: 'Deletion' / 'Date' / '*=no data')."""
    for i, row in enumerate(rows):
        cells = [norm(c) for c in row]
        if len(cells) < 2 or cells[0].replace(" ", "") != "column1" or cells[1].replace(" ", "") != "column2":
            continue
        merged = [[_name(c)] for c in row]
        last, j = i, i + 1
        while j < len(rows) and j - i <= 6:
            if _blank(rows[j]):
                j += 1
                continue
            if not _ptp_continuation(rows[j]):
                break
            for k, c in enumerate(rows[j][: len(merged)]):
                if _name(c):
                    merged[k].append(_name(c))
            last = j
            j += 1
        names = [" ".join(p for p in parts if p) for parts in merged]
        while names and not names[-1]:
            names.pop()
        low = [n.lower() for n in names]
        wanted = [(3, "effective"), (4, "deletion"), (5, "modifier")]
        if len(low) < 6 or any(word not in low[pos] for pos, word in wanted):
            raise HeaderMismatch(
                "the 'Column 1, Column 2' header lacks Effective Date, Deletion Date and Modifier as its "
                f"4th to 6th columns (found {', '.join(names)})"
            )
        fields = {f: k for k, f in enumerate(PTP_COLUMNS) if k < len(names)}
        return Header(i, last, tuple(names), fields)
    return None


MUE_SETTING_WORDS = (("practitioner", "practitioner"), ("outpatient hospital", "outpatient"), ("dme", "dme"))


def detect_mue(rows: Sequence[Sequence[str | None]]) -> Header | None:
    """The 'HCPCS/CPT Code' header row (its first cell may hold a line break: 'HCPCS/\\nCPT Code');
    the setting is in the values column's title ('Practitioner Services MUE Values')."""
    for i, row in enumerate(rows):
        cells = [norm(c) for c in row]
        if not cells or not cells[0].replace(" ", "").startswith("hcpcs"):
            continue
        value = next((k for k, c in enumerate(cells) if "mue value" in c), None)
        mai = next((k for k, c in enumerate(cells) if "adjudication indicator" in c), None)
        if value is None or mai is None:
            raise HeaderMismatch(
                f"the '{_name(row[0])}' header lacks "
                + " and ".join(n for n, k in (("a Services MUE Values column", value), ("MUE Adjudication Indicator", mai)) if k is None)
                + f" (found {', '.join(_name(c) for c in row)})"
            )
        fields = {"code": 0, "value": value, "mai": mai}
        rationale = next((k for k, c in enumerate(cells) if "rationale" in c), None)
        if rationale is not None:
            fields["rationale"] = rationale
        setting = next((s for word, s in MUE_SETTING_WORDS if word in cells[value]), None)
        return Header(i, i, tuple(_name(c) for c in row), fields, setting=setting)
    return None


def detect_aoc_fixed(lines: Sequence[Sequence[str | None]]) -> Header | None:
    """The first fixed-width add-on code record among the first lines (rows of one cell)."""
    for i, row in enumerate(lines[:50]):
        if row and AOC_RECORD.match(row[0] or ""):
            return Header(i, i - 1, tuple(AOC_COLUMNS.values()), {f: k for k, f in enumerate(AOC_COLUMNS)}, fixed_width=True)
    return None


AOC_NAMES = {  # the workbook's column names, compared without case, punctuation or '(Julian)'
    "aocedittype": "edit_type",
    "addoncode": "add_on_code",
    "aocdeldt": "add_on_deletion",
    "primarycode": "primary_code",
    "primarycodedeldt": "primary_deletion",
    "aocediteffdt": "effective",
    "aoceditdeldt": "deletion",
    "specialinstructionnotes": "notes",
}


def detect_aoc_csv(rows: Sequence[Sequence[str | None]]) -> Header | None:
    """The header of the add-on code workbook saved as CSV (after its copyright row)."""
    for i, row in enumerate(rows):
        names = [_alnum(c) for c in row]
        if "addoncode" not in names or "primarycode" not in names:
            continue
        fields = {AOC_NAMES[n]: k for k, n in enumerate(names) if n in AOC_NAMES}
        missing = [AOC_COLUMNS[f] for f in ("edit_type", "effective") if f not in fields]
        if missing:
            raise HeaderMismatch(f"the add-on code header lacks {', '.join(missing)} (found {', '.join(_name(c) for c in row)})")
        return Header(i, i, tuple(_name(c) for c in row), fields)
    return None


def detect_leie(rows: Sequence[Sequence[str | None]]) -> Header | None:
    """The LEIE header row: LASTNAME, …, WVRSTATE (every one of the 18 columns is needed)."""
    for i, row in enumerate(rows):
        names = [norm(c).upper() for c in row]
        if "EXCLTYPE" not in names or "NPI" not in names:
            continue
        missing = [c for c in LEIE_COLUMNS if c not in names]
        if missing:
            raise HeaderMismatch(f"the LEIE header lacks {', '.join(missing)}")
        return Header(i, i, tuple(names), {c.lower(): names.index(c) for c in LEIE_COLUMNS})
    return None


def detect_nppes(rows: Sequence[Sequence[str | None]]) -> Header | None:
    """The NPPES header row; only the columns this table reads are looked up (by name), so an
    extract holding just those columns also loads."""
    for i, row in enumerate(rows):
        names = [norm(c) for c in row]
        if "npi" not in names or "entity type code" not in names:
            continue
        index = {n: k for k, n in reversed(list(enumerate(names)))}
        fields = {f: index[c.lower()] for f, c in NPPES_COLUMNS.items() if c.lower() in index}
        missing = [NPPES_COLUMNS[f] for f in NPPES_REQUIRED if f not in fields]
        if missing:
            raise HeaderMismatch(f"the NPPES header lacks {', '.join(missing)}")
        return Header(i, i, tuple(_name(c) for c in row), fields)
    return None


def detect(kind: str, rows: Sequence[Sequence[str | None]], *, fixed_width: bool = False) -> Header | None:
    """The kind's header among ``rows`` (None: no header-like row; ``HeaderMismatch``: one that
    lacks columns)."""
    if kind == "ncci-aoc":
        return detect_aoc_fixed(rows) if fixed_width else detect_aoc_csv(rows)
    return {"ncci-ptp": detect_ptp, "ncci-mue": detect_mue, "leie": detect_leie, "nppes": detect_nppes}[kind](rows)


# --- Reading a file in Spark ----------------------------------------------------------------------


@dataclass(frozen=True)
class FileLayout:
    """How one published file is read: found on the driver by ``claimsentry.policy.sniff``."""

    kind: str
    name: str  # the file's name as given (a zip member: 'archive.zip:member.txt')
    path: str  # the local file Spark reads (an extracted zip member: set when the load runs)
    encoding: str  # a charset Spark reads: 'UTF-8' or 'ISO-8859-1' (the NCCI files' CP-1252 bytes)
    sep: str  # field separator, or FIXED_WIDTH
    quote: str  # '"', or '' for no quoting (the PTP text file is tab-delimited, unquoted)
    multiline: bool  # quoted fields may hold line breaks (the MUE copyright cell does)
    width: int  # fields per record
    header: Header  # as found in the sniffed head
    setting: str | None = None
    label_hint: str | None = None  # version label the file name gives
    publisher_version: str | None = None  # e.g. '32.1 r0' from a PTP file name
    effective_hint: dt.date | None = None  # e.g. the 'Eff_04-01-2026' of an MUE file name
    as_of_hint: dt.date | None = None  # e.g. the end date of an NPPES file name


def _spark_path(path: str) -> str:
    """A local path for Spark's reader, its glob characters escaped (a file named 'a[1].csv')."""
    return re.sub(r"([\[\]*?{}\\])", r"\\\1", path)


def scan(spark: SparkSession, layout: FileLayout) -> DataFrame:
    """Every record of the file as strings ``_c0``…, ``_corrupt_record`` (a line whose field count
    is not the header's) and ``_rec`` (a row id: increasing in file order within the first split,
    which holds the preamble)."""
    width = 1 if layout.sep == FIXED_WIDTH else layout.width
    schema = StructType([StructField(f"_c{i}", S) for i in range(width)] + [StructField(CORRUPT, S)])
    sep = "\u0001" if layout.sep == FIXED_WIDTH else layout.sep  # a fixed-width line is one field
    reader = (
        spark.read.schema(schema)
        .option("header", False)
        .option("sep", sep)
        .option("quote", "" if layout.sep == FIXED_WIDTH else layout.quote)
        .option("escape", '"')
        .option("multiLine", layout.multiline)
        .option("encoding", layout.encoding)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
    )
    return reader.csv(_spark_path(layout.path)).withColumn("_rec", F.monotonically_increasing_id())


def locate_data(layout: FileLayout, frame: DataFrame) -> list[int]:
    """Row ids of the preamble and header records in ``frame`` (``scan``), found by running the
    kind's detector on the first records as Spark parsed them."""
    head = frame.limit(HEAD_ROWS).collect()
    width = 1 if layout.sep == FIXED_WIDTH else layout.width
    rows = [[r[f"_c{i}"] for i in range(width)] for r in head]
    try:
        found = detect(layout.kind, rows, fixed_width=layout.header.fixed_width)
    except HeaderMismatch:
        found = None
    if found is None or found.columns != layout.header.columns:
        # The driver found the header in the same bytes; Spark's parse of them must agree.
        raise RuntimeError(f"{layout.kind}: Spark's parse of {layout.name} does not show the header the file starts with")
    return [r["_rec"] for r in head[: found.last + 1]]


def _text(c: Column) -> Column:
    """A field as a value: trimmed, blank as null."""
    t = F.trim(c)
    return F.when(t != "", t)


RAW = "_f_"  # prefix of a raw logical field's column: '_f_effective' is the Effective Date as read


def raw(name: str) -> Column:
    """A logical field as read (string, trimmed, blank as null)."""
    return F.col(RAW + name)


def raw_fields(spark: SparkSession, layout: FileLayout, file_index: int) -> DataFrame:
    """The file's data records, one row per record (blank lines left out), as the kind's logical
    fields (``_f_<field>``: strings, trimmed, blank as null) + ``_corrupt_record``, ``_file_index``,
    ``_rec``, ``_source_file``."""
    frame = scan(spark, layout)
    preamble = locate_data(layout, frame)
    if preamble:
        frame = frame.where(~F.col("_rec").isin(preamble))
    fields = layout.header.fields
    if layout.sep == FIXED_WIDTH:
        line = F.col("_c0")
        cols = [
            _text(F.substring(line, start, width) if width else F.expr(f"substring(_c0, {start})")).alias(RAW + name)
            for name, (start, width) in AOC_FIXED.items()
        ]
        line_length = F.length(F.regexp_replace(line, r"\s+$", ""))
        extra = [line_length.alias("_line_length")]
    else:
        cols = [
            (_text(F.col(f"_c{fields[name]}")) if name in fields else F.lit(None).cast(S)).alias(RAW + name)
            for name in logical_fields(layout.kind)
        ]
        extra = []
    out = frame.select(
        *cols,
        *extra,
        F.col(CORRUPT),
        F.lit(file_index).alias("_file_index"),
        F.col("_rec"),
        F.lit(layout.name).alias("_source_file"),
    )
    return out.where(F.coalesce(*[raw(n) for n in logical_fields(layout.kind)]).isNotNull())


def logical_fields(kind: str) -> tuple[str, ...]:
    return {
        "ncci-ptp": tuple(PTP_COLUMNS),
        "ncci-mue": tuple(MUE_COLUMNS),
        "ncci-aoc": tuple(AOC_COLUMNS),
        "leie": tuple(c.lower() for c in LEIE_COLUMNS),
        "nppes": tuple(NPPES_COLUMNS),
    }[kind]


def published_names(kind: str) -> dict[str, str]:
    """Logical field -> the publisher's column name (quarantine's row_content keys)."""
    return {
        "ncci-ptp": PTP_COLUMNS,
        "ncci-mue": MUE_COLUMNS,
        "ncci-aoc": AOC_COLUMNS,
        "leie": {c.lower(): c for c in LEIE_COLUMNS},
        "nppes": NPPES_COLUMNS,
    }[kind]


# --- Typing: pure transforms of the raw fields ------------------------------------------------------


class _Checks:
    """Row checks: each a failing condition, the rule in words and the offending value."""

    def __init__(self) -> None:
        self._items: list[tuple[Column, str, Column | None]] = []

    def add(self, fails: Column, rule: str, value: Column | None = None) -> None:
        self._items.append((F.coalesce(fails, F.lit(False)), rule, value))

    def rules(self) -> Column:
        """Every failing rule's words (no values): what the load counts by."""
        return F.array_compact(F.array(*[F.when(f, F.lit(rule)) for f, rule, _ in self._items]))

    def reason(self) -> Column:
        """Every failing rule with its value, '; '-joined; null when the row passes."""
        texts = [
            F.when(f, F.concat(F.lit(rule + ": '"), F.substring(v, 1, 60), F.lit("'")) if v is not None else F.lit(rule))
            for f, rule, v in self._items
        ]
        return F.nullif(F.concat_ws("; ", *texts), F.lit(""))


def yyyymmdd(c: Column) -> Column:
    """A 'YYYYMMDD' date; null when it is not one (also for impossible days: '20260230')."""
    iso = F.concat_ws("-", F.substring(c, 1, 4), F.substring(c, 5, 2), F.substring(c, 7, 2))
    return F.when(c.rlike(r"^\d{8}$"), iso.try_cast(D))


def mmddyyyy(c: Column) -> Column:
    """An 'MM/DD/YYYY' date (NPPES); null when it is not one."""
    iso = F.concat_ws("-", F.substring(c, 7, 4), F.substring(c, 1, 2), F.substring(c, 4, 2))
    return F.when(c.rlike(r"^\d{2}/\d{2}/\d{4}$"), iso.try_cast(D))


def julian(c: Column) -> Column:
    """A 'YYYYDDD' date (year, then day of the year: '2026091' is 2026-04-01); null when it is not one."""
    year = F.substring(c, 1, 4).try_cast(I)
    day = F.substring(c, 5, 3).try_cast(I)
    date = F.date_add(F.concat(F.substring(c, 1, 4), F.lit("-01-01")).try_cast(D), day - 1)
    return F.when(c.rlike(r"^\d{7}$") & (day >= 1) & (F.year(date) == year), date)


HCPCS = r"^[A-Za-z0-9]{5}$"  # a HCPCS/CPT code: five letters or digits ('99213', 'J1885', '0001U')


def _code_checks(checks: _Checks, c: Column, label: str) -> None:
    checks.add(c.isNull(), f"{label} is empty")
    checks.add(c.isNotNull() & ~c.rlike(HCPCS), f"{label} is not a 5-character HCPCS/CPT code", c)


def _date_checks(checks: _Checks, raw: Column, parsed: Column, label: str, form: str, *, required: bool = False) -> None:
    if required:
        checks.add(raw.isNull(), f"{label} is empty")
    checks.add(raw.isNotNull() & parsed.isNull(), f"{label} is not a date ({form})", raw)


def _corrupt_check(checks: _Checks, width: int) -> None:
    if not width:  # a fixed-width line is one field
        return
    checks.add(F.col(CORRUPT).isNotNull(), f"the line does not have the header's {width} fields")


def type_ptp(frame: DataFrame, width: int = len(PTP_COLUMNS)) -> DataFrame:
    """NCCI PTP edits, typed. One row per column-1/column-2 pair per effective date.

    When a provider bills both codes for the same patient on the same date, the column-1 code is
    paid and the column-2 code is denied, unless the modifier indicator lets an NCCI-associated
    modifier (such as 59 or XU) bypass the edit: '0' no modifier bypasses it, '1' one may, '9' not
    applicable (CMS uses it on edits deleted on the day they took effect). An edit is in effect
    from its effective date; a deletion date of '*' ("no data") means it has not been deleted.
    """
    checks = _Checks()
    c1, c2 = raw("column_1"), raw("column_2")
    eff_raw, del_raw, mod, prior = raw("effective"), raw("deletion"), raw("modifier"), raw("prior_1996")
    eff = yyyymmdd(eff_raw)
    not_deleted = del_raw.isNull() | (del_raw == "*")  # '*' = no data: the edit is not deleted
    dele = F.when(~not_deleted, yyyymmdd(del_raw))
    _code_checks(checks, c1, "Column 1")
    _code_checks(checks, c2, "Column 2")
    _date_checks(checks, eff_raw, eff, "Effective Date", "YYYYMMDD", required=True)
    checks.add(~not_deleted & dele.isNull(), "Deletion Date is not a date (YYYYMMDD) or *", del_raw)
    checks.add(dele < eff, "Deletion Date is before Effective Date", del_raw)
    checks.add(mod.isNull(), "Modifier indicator is empty")
    checks.add(mod.isNotNull() & ~mod.isin("0", "1", "9"), "Modifier indicator is not 0, 1 or 9", mod)
    checks.add(prior.isNotNull() & (prior != "*"), "'*=in existence prior to 1996' is neither * nor blank", prior)
    _corrupt_check(checks, width)
    typed = [
        c1.alias("column_1_code"),
        c2.alias("column_2_code"),
        F.coalesce(prior == "*", F.lit(False)).alias("in_existence_prior_1996"),
        eff.alias("effective_date"),
        dele.alias("deletion_date"),
        mod.alias("modifier_indicator"),
        raw("rationale").alias("ptp_edit_rationale"),
    ]
    return _flagged(frame, typed, checks)


def type_mue(frame: DataFrame, width: int = len(MUE_COLUMNS)) -> DataFrame:
    """NCCI MUEs, typed. One row per HCPCS/CPT code.

    ``mue_value`` is the most units of service a provider would report for the code for one
    patient on one date (0: never payable). The MUE adjudication indicator (MAI) says how it is
    applied: '1' per claim line (units on separate lines with a modifier are counted apart), '2'
    per date of service, an absolute limit set by policy, '3' per date of service, a clinical limit
    that may be exceeded on appeal with documentation. The file gives the digit with its words
    ('2 Date of Service Edit: Policy'); the digit is the indicator, the words are kept beside it.
    """
    checks = _Checks()
    code, value, mai_raw = raw("code"), raw("value"), raw("mai")
    mai = F.nullif(F.regexp_extract(F.coalesce(mai_raw, F.lit("")), r"^([0-9])(\s|$)", 1), F.lit(""))
    words = F.nullif(F.trim(F.regexp_extract(F.coalesce(mai_raw, F.lit("")), r"^[0-9]\s*(.*)$", 1)), F.lit(""))
    units = F.when(value.rlike(r"^\d+$"), value.try_cast(I))
    _code_checks(checks, code, "HCPCS/CPT Code")
    checks.add(value.isNull(), "MUE value is empty")
    checks.add(value.isNotNull() & units.isNull(), "MUE value is not a whole number of units", value)
    checks.add(mai_raw.isNull(), "MUE Adjudication Indicator is empty")
    checks.add(mai_raw.isNotNull() & (mai.isNull() | ~mai.isin("1", "2", "3")), "MUE Adjudication Indicator is not 1, 2 or 3", mai_raw)
    _corrupt_check(checks, width)
    typed = [
        code.alias("hcpcs_code"),
        units.alias("mue_value"),
        mai.alias("mue_adjudication_indicator"),
        words.alias("mue_adjudication_description"),
        raw("rationale").alias("mue_rationale"),
    ]
    return _flagged(frame, typed, checks)


def _julian_or_blank(c: Column) -> Column:
    """A Julian date field where blanks or zeros mean 'none'."""
    return F.when(c.isNotNull() & ~c.rlike(r"^0+$"), c)


def type_aoc(frame: DataFrame, width: int = len(AOC_COLUMNS), *, fixed_width: bool = True) -> DataFrame:
    """NCCI add-on code edits, typed. One row per add-on code / primary code pair per edit
    effective date.

    An add-on code is paid only with a primary procedure by the same practitioner for the same
    patient on the same date. Edit type '1': the listed primary codes are the only acceptable ones;
    '2': no list, the contractor (MAC) decides which primaries are acceptable (primary code
    'CCCCC'); '3': some acceptable primaries are listed and the contractor may accept others. All
    dates are Julian, YYYYDDD; blank means none (the code or edit is not deleted).
    """
    checks = _Checks()
    etype, addon, primary = raw("edit_type"), raw("add_on_code"), raw("primary_code")
    dates = {name: (raw(name), _julian_or_blank(raw(name))) for name in ("add_on_deletion", "primary_deletion", "effective", "deletion")}
    parsed = {name: julian(v) for name, (_, v) in dates.items()}
    if fixed_width:
        length = F.col("_line_length")
        checks.add(length < AOC_MIN_LINE, f"the record is shorter than {AOC_MIN_LINE} characters", length.cast(S))
    checks.add(etype.isNull(), "AOC edit type is empty")
    checks.add(etype.isNotNull() & ~etype.isin("1", "2", "3"), "AOC edit type is not 1, 2 or 3", etype)
    _code_checks(checks, addon, "Add-on code")
    _code_checks(checks, primary, "Primary code")
    checks.add(dates["effective"][1].isNull(), "AOC edit effective date is empty")
    for name, label in (
        ("effective", "AOC edit effective date"),
        ("deletion", "AOC edit deletion date"),
        ("add_on_deletion", "Add-on code deletion date"),
        ("primary_deletion", "Primary code deletion date"),
    ):
        raw_value, value = dates[name]
        checks.add(value.isNotNull() & parsed[name].isNull(), f"{label} is not a date (YYYYDDD)", raw_value)
    checks.add(parsed["deletion"] < parsed["effective"], "AOC edit deletion date is before its effective date", dates["deletion"][0])
    _corrupt_check(checks, width)
    typed = [
        addon.alias("add_on_code"),
        primary.alias("primary_code"),
        etype.alias("aoc_edit_type"),
        F.coalesce(primary == "CCCCC", F.lit(False)).alias("contractor_defined_primary"),  # CCCCC: MAC-defined primaries
        parsed["add_on_deletion"].alias("add_on_code_deletion_date"),
        parsed["primary_deletion"].alias("primary_code_deletion_date"),
        parsed["effective"].alias("effective_date"),
        parsed["deletion"].alias("deletion_date"),
        raw("notes").alias("special_instruction_notes"),
    ]
    return _flagged(frame, typed, checks)


def _zero_as_none(c: Column) -> Column:
    return F.when(c.isNotNull() & (c != "00000000"), c)  # LEIE writes 00000000 for "no date"


def type_leie(frame: DataFrame, width: int = len(LEIE_COLUMNS)) -> DataFrame:
    """OIG LEIE exclusions, typed. One row per exclusion record.

    An excluded individual or entity may not be paid by Medicare, Medicaid or any federal health
    care program for items or services it furnished, ordered or prescribed from ``exclusion_date``
    until it is reinstated (``reinstatement_date``), unless a waiver applies (``waiver_date`` and
    ``waiver_state``). ``exclusion_type`` is the Social Security Act authority, e.g. '1128a1'
    (conviction of program-related crimes), '1128b4' (licence revoked or suspended), '1128b7'
    (fraud, kickbacks). The file writes '0000000000' for no NPI and '00000000' for no date.
    """
    checks = _Checks()
    npi_raw = raw("npi")
    npi = F.when(npi_raw != "0000000000", npi_raw)  # 0000000000: no NPI on record
    excl_raw = raw("excldate")
    excl = yyyymmdd(_zero_as_none(excl_raw))
    dated = {name: (_zero_as_none(raw(name)), yyyymmdd(_zero_as_none(raw(name)))) for name in ("reindate", "waiverdate", "dob")}
    checks.add(npi.isNotNull() & ~npi.rlike(r"^\d{10}$"), "NPI is not 10 digits", npi_raw)
    checks.add(raw("excltype").isNull(), "EXCLTYPE is empty")
    checks.add(_zero_as_none(excl_raw).isNull(), "EXCLDATE is empty")
    checks.add(_zero_as_none(excl_raw).isNotNull() & excl.isNull(), "EXCLDATE is not a date (YYYYMMDD)", excl_raw)
    for name in ("reindate", "waiverdate", "dob"):
        value, parsed = dated[name]
        checks.add(value.isNotNull() & parsed.isNull(), f"{name.upper()} is not a date (YYYYMMDD)", value)
    checks.add(raw("lastname").isNull() & raw("busname").isNull(), "neither LASTNAME nor BUSNAME is given")
    _corrupt_check(checks, width)
    typed = [
        npi.alias("npi"),
        F.when(raw("lastname").isNotNull(), F.lit("individual")).otherwise(F.lit("organization")).alias("entity_type"),
        raw("lastname").alias("last_name"),
        raw("firstname").alias("first_name"),
        raw("midname").alias("middle_name"),
        raw("busname").alias("business_name"),
        raw("general").alias("general"),
        raw("specialty").alias("specialty"),
        raw("upin").alias("upin"),
        dated["dob"][1].alias("birth_date"),
        raw("address").alias("address"),
        raw("city").alias("city"),
        raw("state").alias("state"),
        raw("zip").alias("zip_code"),
        raw("excltype").alias("exclusion_type"),
        excl.alias("exclusion_date"),
        dated["reindate"][1].alias("reinstatement_date"),
        dated["waiverdate"][1].alias("waiver_date"),
        raw("wvrstate").alias("waiver_state"),
    ]
    return _flagged(frame, typed, checks)


def type_nppes(frame: DataFrame, width: int = 0) -> DataFrame:
    """NPPES NPI records, typed. One row per NPI.

    Entity type code '1' is an individual (a practitioner), '2' an organization; a deactivated
    NPI's record carries little more than the NPI and its deactivation date, so its entity type
    may be empty. Each record lists up to 15 taxonomy codes, each with a primary switch ('Y' the
    primary taxonomy, 'N' not, 'X' not answered); ``primary_taxonomy_code`` is the first listed
    with 'Y'. Dates are MM/DD/YYYY.
    """
    checks = _Checks()
    npi, etc = raw("npi"), raw("entity_type_code")
    dates = {name: mmddyyyy(raw(name)) for name in ("enumeration", "last_update", "deactivation", "reactivation")}
    checks.add(npi.isNull(), "NPI is empty")
    checks.add(npi.isNotNull() & ~npi.rlike(r"^\d{10}$"), "NPI is not 10 digits", npi)
    checks.add(etc.isNull() & raw("deactivation").isNull(), "Entity Type Code is empty (and the NPI is not deactivated)")
    checks.add(etc.isNotNull() & ~etc.isin("1", "2"), "Entity Type Code is not 1 or 2", etc)
    for name, label in (
        ("enumeration", "Provider Enumeration Date"),
        ("last_update", "Last Update Date"),
        ("deactivation", "NPI Deactivation Date"),
        ("reactivation", "NPI Reactivation Date"),
    ):
        checks.add(raw(name).isNotNull() & dates[name].isNull(), f"{label} is not a date (MM/DD/YYYY)", raw(name))
    _corrupt_check(checks, width)
    slots = range(1, TAXONOMY_SLOTS + 1)
    primary = F.coalesce(*[F.when(F.upper(raw(f"switch_{i}")) == "Y", raw(f"taxonomy_{i}")) for i in slots])
    typed = [
        npi.alias("npi"),
        etc.alias("entity_type_code"),
        F.when(etc == "1", F.lit("individual")).when(etc == "2", F.lit("organization")).alias("entity_type"),
        primary.alias("primary_taxonomy_code"),
        F.array_compact(F.array(*[raw(f"taxonomy_{i}") for i in slots])).alias("taxonomy_codes"),
        F.upper(raw("state")).alias("practice_state"),
        dates["enumeration"].alias("enumeration_date"),
        dates["last_update"].alias("last_update_date"),
        dates["deactivation"].alias("deactivation_date"),
        dates["reactivation"].alias("reactivation_date"),
    ]
    return _flagged(frame, typed, checks)


RULES, REASON, KEY = "_rules", "_reason", "_key"


def _flagged(frame: DataFrame, typed: list[Column], checks: _Checks) -> DataFrame:
    """The raw fields and meta columns, the typed columns, ``_rules`` and ``_reason``."""
    return frame.select("*", *typed, checks.rules().alias(RULES), checks.reason().alias(REASON))


def type_rows(kind: str, frame: DataFrame, layout: FileLayout) -> DataFrame:
    """One flagged frame per file: raw fields, typed columns, ``_rules``, ``_reason`` (null = passes)."""
    width = 0 if layout.sep == FIXED_WIDTH else layout.width
    if kind == "ncci-aoc":
        return type_aoc(frame, width, fixed_width=layout.sep == FIXED_WIDTH)
    return {"ncci-ptp": type_ptp, "ncci-mue": type_mue, "leie": type_leie, "nppes": type_nppes}[kind](frame, width)


def parse_files(spark: SparkSession, layouts: Sequence[FileLayout]) -> DataFrame:
    """Every file of one load, flagged, as one frame (same columns whatever the file's layout)."""
    kind = layouts[0].kind
    frames = []
    for index, layout in enumerate(layouts):
        fields = raw_fields(spark, layout, index)
        if "_line_length" not in fields.columns:
            fields = fields.withColumn("_line_length", F.lit(None).cast(I))
        frames.append(type_rows(kind, fields, layout))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def mark_repeated_keys(flagged: DataFrame, kind: str, *, broadcast_rows: int = 1_000_000) -> DataFrame:
    """``flagged`` with rows that repeat the key of an earlier row (file order) quarantined.

    Only rows passing the row checks take part, so a broken row never makes a good one a repeat.
    The keys are grouped once (narrow columns); when no key repeats, ``flagged`` comes back as it
    is. Materialise ``flagged`` first: this reads it twice."""
    spec = SPECS[kind]
    key = F.to_json(F.struct(*[F.col(c) for c in spec.key]))
    clean = flagged.where(F.col(REASON).isNull()).select(key.alias(KEY), "_file_index", "_rec")
    repeated = clean.groupBy(KEY).count().where(F.col("count") > 1).select(KEY)
    n = repeated.count()
    if n == 0:
        return flagged
    repeated = F.broadcast(repeated) if n <= broadcast_rows else repeated
    order = Window.partitionBy(KEY).orderBy("_file_index", "_rec")
    later = (
        clean.join(repeated, KEY, "left_semi")
        .select("_file_index", "_rec", F.row_number().over(order).alias("_n"))
        .where(F.col("_n") > 1)
        .select("_file_index", "_rec", F.lit(True).alias("_repeat"))
    )
    whole_row = set(spec.key) == set(spec.schema.fieldNames())
    rule = "repeats an earlier row" if whole_row else f"repeats the key ({', '.join(spec.key)}) of an earlier row"
    joined = flagged.join(later, ["_file_index", "_rec"], "left")
    is_repeat = F.coalesce(F.col("_repeat"), F.lit(False))
    return (
        joined.withColumn(RULES, F.when(is_repeat, F.array(F.lit(rule))).otherwise(F.col(RULES)))
        .withColumn(REASON, F.when(is_repeat, F.lit(rule)).otherwise(F.col(REASON)))
        .drop("_repeat")
    )


def accepted_rows(flagged: DataFrame, kind: str) -> DataFrame:
    """The typed table: accepted rows in the kind's schema (column order and types exactly)."""
    schema = SPECS[kind].schema
    return flagged.where(F.col(REASON).isNull()).select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def quarantine_rows(flagged: DataFrame, kind: str) -> DataFrame:
    """One row per rejected record: table (the kind), row_content (the record as read, JSON keyed by
    the published column names, empty fields left out), reason, source_file."""
    names = published_names(kind)
    content = F.to_json(
        F.struct(*[raw(f).alias(names[f]) for f in logical_fields(kind)], F.col(CORRUPT).alias("line")),
        {"ignoreNullFields": "true"},
    )
    return flagged.where(F.col(REASON).isNotNull()).select(
        F.lit(kind).alias("table"), content.alias("row_content"), F.col(REASON).alias("reason"), F.col("_source_file").alias("source_file")
    )


def period_aggregates(kind: str) -> list[Column]:
    """Aggregates over a flagged frame for a version's effective period (accepted rows only)."""
    ok = F.col(REASON).isNull()

    def of(c: str) -> Column:
        return F.when(ok, F.col(c))

    if kind in ("ncci-ptp", "ncci-aoc"):
        return [
            F.min(of("effective_date")).alias("min_effective"),
            F.max(of("effective_date")).alias("max_effective"),
            F.max(of("deletion_date")).alias("max_deletion"),
            F.sum((ok & F.col("deletion_date").isNull()).cast("long")).alias("open_rows"),
        ]
    if kind == "leie":
        latest = F.greatest(F.col("exclusion_date"), F.col("reinstatement_date"), F.col("waiver_date"))
        return [F.max(F.when(ok, latest)).alias("as_of")]
    if kind == "nppes":
        return [F.max(of("last_update_date")).alias("as_of")]
    return []
