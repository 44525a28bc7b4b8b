"""A reference file inspected on the driver before Spark reads it: small metadata only.

From the file's first 256 KiB: is it empty, UTF-16, a PDF, an Excel workbook, a zip (which member
to read), which character set and delimiter, where the header is and whether it is the kind's
header at all (a wrong file is one line saying what was expected and what was found, and which
kind it looks like). From its name: the setting, version label and dates the publisher puts
there. Nothing here reads more than the head of a file, except ``sha256`` and ``extract``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from claimsentry.errors import InputError
from claimsentry.policy.formats import (
    FIXED_WIDTH,
    KINDS,
    SPECS,
    FileLayout,
    HeaderMismatch,
    detect,
)

HEAD_BYTES = 256 * 1024
# Charset Spark reads a file in when its head is plain ASCII. CMS and OIG publish Windows-1252 text
# (the CPT copyright line's (R) sign is byte 0xAE); Spark reads it as ISO-8859-1, which decodes
# every byte (the two differ only in 0x80-0x9F, punctuation such as curly quotes).
ASCII_CHARSET = {"ncci-ptp": "ISO-8859-1", "ncci-mue": "ISO-8859-1", "ncci-aoc": "ISO-8859-1", "leie": "ISO-8859-1", "nppes": "UTF-8"}
MEMBER_SUFFIXES = {
    "ncci-ptp": (".txt", ".csv"),
    "ncci-mue": (".csv",),
    "ncci-aoc": (".txt", ".csv"),
    "leie": (".csv",),
    "nppes": (".csv",),
}
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
ARTICLE = {"ncci-ptp": "a", "ncci-mue": "a", "ncci-aoc": "a", "leie": "an", "nppes": "an"}
NPPES_FULL_START = dt.date(2005, 5, 23)  # every full NPPES file starts at the first enumeration date


@dataclass(frozen=True)
class SourceFile:
    """One file to read: a file the user gave, or one member of a zip they gave."""

    given: Path
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.given.name}:{self.member}" if self.member else self.given.name

    @property
    def base_name(self) -> str:
        return PurePosixPath(self.member).name if self.member else self.given.name


def _excel_error(kind: str, name: str) -> InputError:
    return InputError(f"{kind}: {name} is an Excel workbook; give {SPECS[kind].text_form}, or save the sheet as CSV")


def resolve_sources(kind: str, paths: list[str]) -> list[SourceFile]:
    """The files to read for ``paths``: each a text file, or the chosen members of a zip."""
    out: list[SourceFile] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"{kind}: file not found: {raw}")
        if path.is_dir():
            raise InputError(f"{kind}: {raw} is a folder; give the file(s) in it")
        if path.suffix.lower() in EXCEL_SUFFIXES:
            raise _excel_error(kind, path.name)
        if path.suffix.lower() == ".zip" or (path.suffix.lower() not in (".gz",) and zipfile.is_zipfile(path)):
            out.extend(SourceFile(path, m) for m in _members(kind, path))
        else:
            out.append(SourceFile(path))
    return out


def _members(kind: str, path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        raise InputError(f"{kind}: {path.name} is not a readable zip file") from None
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        raise _excel_error(kind, path.name)
    files = [n for n in names if "__MACOSX" not in n and not PurePosixPath(n).name.startswith(".")]
    text = [n for n in files if n.lower().endswith(MEMBER_SUFFIXES[kind]) and "fileheader" not in n.lower()]
    if kind == "nppes":
        text = [n for n in text if PurePosixPath(n).name.lower().startswith("npidata_pfile")]
    if kind == "ncci-aoc" and any(n.lower().endswith(".txt") for n in text):
        text = [n for n in text if n.lower().endswith(".txt")]
    if kind == "ncci-ptp" and any(n.lower().endswith(".txt") for n in text):
        text = [n for n in text if n.lower().endswith(".txt")]
    if not text:
        workbooks = [n for n in files if n.lower().endswith(EXCEL_SUFFIXES)]
        if workbooks:
            raise InputError(
                f"{kind}: {path.name} holds only an Excel workbook ({workbooks[0]}); give {SPECS[kind].text_form}, "
                "or save the sheet as CSV"
            )
        raise InputError(
            f"{kind}: {path.name} holds no {' or '.join(MEMBER_SUFFIXES[kind])} file to load "
            f"(it holds {', '.join(files[:5]) or 'nothing'}); give {SPECS[kind].text_form}"
        )
    if len(text) > 1 and kind != "ncci-ptp":
        raise InputError(f"{kind}: {path.name} holds several files that could be loaded ({', '.join(text)}); unzip it and give one")
    return sorted(text)


def read_head(source: SourceFile, size: int = HEAD_BYTES) -> bytes:
    try:
        if source.member:
            with zipfile.ZipFile(source.given) as archive, archive.open(source.member) as f:
                return f.read(size)
        if source.given.suffix.lower() == ".gz":
            with gzip.open(source.given, "rb") as f:
                return f.read(size)
        with open(source.given, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read {source.name}: {exc}") from None


def _utf16_without_bom(head: bytes) -> bool:
    sample = head[:4096]
    if len(sample) < 4:
        return False
    even, odd = sample[0::2], sample[1::2]
    return even.count(0) > len(even) * 0.3 or odd.count(0) > len(odd) * 0.3


def decode_head(kind: str, source: SourceFile, head: bytes) -> tuple[str, str]:
    """(text of the head, the charset Spark reads the whole file in); one-line errors for files
    that are empty, UTF-16, PDF or otherwise not text."""
    spec = SPECS[kind]
    if not head.strip():
        raise InputError(f"{kind}: {source.name} is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(head):
        raise InputError(f"{kind}: {source.name} is UTF-16 text; save it as UTF-8 (or give the publisher's original file)")
    if head.startswith(b"%PDF"):
        raise InputError(f"{kind}: {source.name} is a PDF document, not a data file; give {spec.text_form}")
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2: the old .xls format
        raise _excel_error(kind, source.name)
    if b"\x00" in head:
        raise InputError(f"{kind}: {source.name} is not a text file; give {spec.text_form}")
    if len(head) >= HEAD_BYTES and b"\n" in head:
        head = head[: head.rfind(b"\n") + 1]  # the last line may be cut
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return head.decode("latin-1"), "ISO-8859-1"
    if head.startswith(b"\xef\xbb\xbf") or not text.isascii():
        return text, "UTF-8"
    return text, ASCII_CHARSET[kind]


def parse_rows(text: str, sep: str, quote: str) -> list[list[str]]:
    """The head's records, blank ones left out (as Spark's reader leaves them out)."""
    if sep == FIXED_WIDTH:
        return [[line] for line in text.splitlines() if line.strip()]
    quoting = csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', quoting=quoting, strict=False))
    except csv.Error:
        rows = [line.split(sep) for line in text.splitlines()]
    return [r for r in rows if any(c.strip() for c in r)]


def _dialects(kind: str, text: str) -> list[tuple[str, str, bool]]:
    """(separator, quote, multi-line) to try for ``kind``, most likely first."""
    if kind == "ncci-ptp":
        tabbed = any("\t" in line for line in text.splitlines()[:40])
        tab, comma = ("\t", "", False), (",", '"', True)  # a CSV saved from the workbook may wrap header cells
        return [tab, comma] if tabbed else [comma, tab]
    if kind == "ncci-mue":
        return [(",", '"', True)]  # the copyright cell spans lines
    if kind == "ncci-aoc":
        return [(FIXED_WIDTH, "", False), (",", '"', True)]
    return [(",", '"', False)]


def find_header(kind: str, text: str):
    """(header, (sep, quote, multiline)) of ``kind`` in the head, or (None, None); raises
    ``HeaderMismatch`` when a header of the kind lacks columns."""
    for sep, quote, multiline in _dialects(kind, text):
        header = detect(kind, parse_rows(text, sep, quote), fixed_width=sep == FIXED_WIDTH)
        if header is not None:
            return header, (sep, quote, multiline)
    return None, None


def _describe(text: str) -> str:
    """What the head starts with, for an error: its first record of three or more fields (read
    as tab- or comma-separated, whichever finds one sooner), else its first line."""
    found = []
    for sep in ("\t", ","):
        rows = parse_rows(text, sep, '"')[:30]
        for index, row in enumerate(rows):
            cells = [re.sub(r"\s+", " ", c).strip() for c in row if c.strip()]
            if len(cells) >= 3:
                found.append((index, -len(cells), cells))
                break
    if found:
        cells = min(found)[2]
        shown = [c if len(c) <= 40 else c[:39] + "…" for c in cells[:6]]
        return ", ".join(shown) + (", …" if len(cells) > 6 else "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"a first line '{first[:60]}{'…' if len(first) > 60 else ''}'"


def guess_kind(kind: str, text: str) -> str | None:
    """Another kind whose header the head holds."""
    for other in KINDS:
        if other == kind:
            continue
        try:
            header, _ = find_header(other, text)
        except HeaderMismatch:
            return other
        if header is not None:
            return other
    return None


def wrong_format(kind: str, source: SourceFile, text: str, problem: str | None = None) -> InputError:
    spec = SPECS[kind]
    if problem:
        message = f"{kind}: {source.name}: {problem}; expected columns {spec.expected}"
    else:
        message = f"{kind}: {source.name} is not {ARTICLE[kind]} {spec.title}: expected columns {spec.expected}; found {_describe(text)}"
    other = guess_kind(kind, text)
    if other:
        message += f" — is this {ARTICLE[other]} {SPECS[other].title} (kind {other})?"
    return InputError(message)


# --- What file names say -------------------------------------------------------------------------


def quarter_label(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_start(label: str) -> dt.date | None:
    m = re.fullmatch(r"(\d{4})Q([1-4])", label or "")
    return dt.date(int(m[1]), 3 * int(m[2]) - 2, 1) if m else None


def _date(y: str, m: str, d: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def name_hints(kind: str, name: str) -> dict:
    """Setting, version label, publisher version and dates a published file name carries:
    'ccipra-v321r0-f1.TXT' (PTP practitioner, NCCI version 32.1 revision 0: 2026Q2),
    'MCR_MUE_PractitionerServices_Eff_04-01-2026.csv', 'AOC_V2026Q2-F-MCR.txt',
    'npidata_pfile_20050523-20260111.csv'."""
    base = PurePosixPath(name).name.lower()
    hints: dict = {}
    quarter = re.search(r"(\d{4})[-_ ]?q([1-4])", base)
    if kind == "ncci-ptp":
        if "ccipra" in base:
            hints["setting"] = "practitioner"
        elif "ccioph" in base:
            hints["setting"] = "outpatient"
        # NCCI version NN.q takes effect in quarter q+1 of 1994+NN: 32.0 is 2026Q1, 32.1 2026Q2.
        m = re.search(r"cci(?:pra|oph)-v(\d{2})([0-3])r(\d+)", base)
        if m:
            revision = int(m[3])
            hints["label"] = f"{1994 + int(m[1])}Q{int(m[2]) + 1}" + (f"r{revision}" if revision else "")
            hints["publisher_version"] = f"{int(m[1])}.{m[2]} r{revision}"
    elif kind == "ncci-mue":
        if "practitioner" in base:
            hints["setting"] = "practitioner"
        elif "outpatient" in base or "hospital" in base:
            hints["setting"] = "outpatient"
        elif "dme" in base:
            hints["setting"] = "dme"
        m = re.search(r"eff_(\d{2})-(\d{2})-(\d{4})", base)
        effective = _date(m[3], m[1], m[2]) if m else None
        if effective:
            hints["effective"] = effective
            hints["label"] = quarter_label(effective)
        elif quarter:
            hints["label"] = f"{quarter[1]}Q{quarter[2]}"
            hints["effective"] = quarter_start(hints["label"])
    elif kind == "ncci-aoc":
        if quarter:
            hints["label"] = f"{quarter[1]}Q{quarter[2]}"
    elif kind == "nppes":
        m = re.search(r"npidata_pfile_(\d{4})(\d{2})(\d{2})-(\d{4})(\d{2})(\d{2})", base)
        if m:
            start, end = _date(m[1], m[2], m[3]), _date(m[4], m[5], m[6])
            if end:
                hints["as_of"] = end
                hints["label"] = end.strftime("%Y-%m") if start == NPPES_FULL_START else end.isoformat()
    return hints


def sniff(kind: str, source: SourceFile) -> FileLayout:
    """The layout Spark reads ``source`` with (``path`` is set when the load runs)."""
    if kind == "leie" and re.fullmatch(r"\d{4}(excl|rein)\.csv(\.gz)?", source.base_name.lower()):
        raise InputError(
            f"leie: {source.name} is a monthly LEIE supplement (new exclusions or reinstatements only); "
            "load the full list, UPDATED.csv"
        )
    text, charset = decode_head(kind, source, read_head(source))
    try:
        header, dialect = find_header(kind, text)
    except HeaderMismatch as exc:
        raise wrong_format(kind, source, text, str(exc)) from None
    if header is None:
        raise wrong_format(kind, source, text)
    sep, quote, multiline = dialect
    hints = {**name_hints(kind, source.given.name), **name_hints(kind, source.base_name)}
    return FileLayout(
        kind=kind,
        name=source.name,
        path="",
        encoding=charset,
        sep=sep,
        quote=quote,
        multiline=multiline,
        width=len(header.columns) if sep == FIXED_WIDTH else len(parse_rows(text, sep, quote)[header.first]),
        header=header,
        setting=header.setting or hints.get("setting"),
        label_hint=hints.get("label"),
        publisher_version=hints.get("publisher_version"),
        effective_hint=hints.get("effective"),
        as_of_hint=hints.get("as_of"),
    )


def describe_layout(layout: FileLayout) -> str:
    form = {FIXED_WIDTH: "fixed-width", "\t": "tab-delimited", ",": "CSV"}.get(layout.sep, f"'{layout.sep}'-delimited")
    return f"{form}, {layout.encoding}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract(source: SourceFile, folder: Path) -> str:
    """A local file Spark can read for ``source``: the file itself, or its zip member copied out."""
    if not source.member:
        return str(source.given.resolve())
    target = folder / PurePosixPath(source.member).name
    with zipfile.ZipFile(source.given) as archive, archive.open(source.member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return str(target)
