"""Safe reading and writing of spreadsheets: .xlsx and .csv files and cells pasted from Excel.

Reading treats every file as hostile. An .xlsx is a zip of XML parts, so before openpyxl sees
it the zip directory is checked against ``OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES`` (a zip
bomb declares its real size there; one that lies is cut short by ``zipfile`` and fails its CRC
check), and openpyxl must parse XML through defusedxml, which refuses entity declarations (the
"billion laughs" bomb). The workbook is opened read-only, rows are counted as they stream and
refused past ``OSCAR_LOYALTY_IMPORT_MAX_ROWS``. Every cell comes back as text, so phones and
card numbers keep their leading zeros and never turn into ``1.23E+15``.

Writing streams with openpyxl's write-only mode, and every text cell that a spreadsheet could
take for a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe.
"""

import codecs
import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from oscar_loyalty import conf
from oscar_loyalty.exceptions import LoyaltyError

# Cells beyond this column are ignored: an import needs four.
MAX_COLUMNS = 50
MAX_ZIP_ENTRIES = 10_000
# Text a spreadsheet may run as a formula when it opens the file or the cell is edited.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


class SpreadsheetError(LoyaltyError):
    """A file that cannot or must not be read; the message says why, for the manager."""


# --- start-up check --------------------------------------------------------------------------


def xml_is_defused():
    """Whether openpyxl parses worksheet XML with defusedxml (entity bombs refused)."""
    try:
        import defusedxml  # noqa: F401
        import openpyxl.xml
        from openpyxl.worksheet import _reader
    except ImportError:
        return False
    return bool(openpyxl.xml.DEFUSEDXML) and _reader.iterparse.__module__.startswith("defusedxml")


@checks.register(checks.Tags.security)
def check_defusedxml(app_configs=None, **kwargs):
    """System check run at start-up: Excel import must not parse XML unprotected."""
    if xml_is_defused():
        return []
    return [
        checks.Error(
            "openpyxl does not use defusedxml, so an uploaded .xlsx could carry an XML "
            "entity bomb.",
            hint="pip install defusedxml and do not set OPENPYXL_DEFUSEDXML=False.",
            id="oscar_loyalty.E001",
        )
    ]


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Table:
    """Rows read from a spreadsheet: ``(row number in the file, cells as text)``.

    Blank rows are left out; their numbers are skipped, so a row number always points at
    the row the manager sees in Excel.
    """

    rows: list = field(default_factory=list)
    width: int = 0
    source: str = ""
    notes: list = field(default_factory=list)


def megabytes(size):
    return f"{size / (1024 * 1024):.0f}"


def cell_text(value):
    """One cell as text, the way the manager typed it: no exponent, no float noise."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        # Our own exports put an apostrophe before text that looks like a formula.
        if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_PREFIXES:
            text = text[1:]
        return text
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _limit_rows(limit):
    return SpreadsheetError(
        ngettext(
            "The file has more than %(limit)s row; split it into smaller files.",
            "The file has more than %(limit)s rows; split it into smaller files.",
            limit,
        )
        % {"limit": limit}
    )


class _Collector:
    """Gathers rows, skipping blank ones and enforcing the row limit."""

    def __init__(self, source):
        self.table = Table(source=source)
        self.limit = conf.import_max_rows
        self.wide = False

    def add(self, number, values):
        if number > self.limit:
            raise _limit_rows(self.limit)
        if len(values) > MAX_COLUMNS:
            self.wide = self.wide or any(values[MAX_COLUMNS:])
            values = values[:MAX_COLUMNS]
        cells = [cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            self.table.rows.append((number, tuple(cells)))
            if len(cells) > self.table.width:
                self.table.width = len(cells)

    def finish(self):
        if self.wide:
            self.table.notes.append(
                _("Only the first %(count)s columns were read.") % {"count": MAX_COLUMNS}
            )
        if not self.table.rows:
            raise SpreadsheetError(_("The file has no rows with data."))
        return self.table


def _read_bytes(upload):
    """The content of an uploaded file (or bytes), refusing it when it is too large."""
    limit = conf.import_max_file_bytes
    if isinstance(upload, (bytes, bytearray)):
        data = bytes(upload)
    else:
        size = getattr(upload, "size", None)
        if size is not None and size > limit:
            raise _too_large(limit)
        upload.seek(0)
        data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        raise SpreadsheetError(_("The file is empty."))
    return data


def _too_large(limit):
    return SpreadsheetError(_("The file is larger than %(size)s MB.") % {"size": megabytes(limit)})


def read_file(upload, name=""):
    """Read an uploaded .xlsx or .csv (``upload`` is a Django file or bytes) into a ``Table``."""
    name = name or getattr(upload, "name", "") or ""
    data = _read_bytes(upload)
    if data[:4] == b"PK\x03\x04":
        return read_xlsx(data, name)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SpreadsheetError(
            _("Old .xls workbooks cannot be read; save the file as .xlsx or .csv.")
        )
    if name.lower().endswith((".xlsx", ".xlsm")):
        raise SpreadsheetError(_("The file is not a valid .xlsx workbook."))
    return read_csv(data, name)


def read_pasted(text):
    """Read cells copied from Excel and pasted as text (tab-separated lines)."""
    text = text or ""
    limit = conf.import_max_file_bytes
    if len(text.encode("utf-8")) > limit:
        raise _too_large(limit)
    if not text.strip():
        raise SpreadsheetError(_("Nothing was pasted."))
    return _read_text(text, _("Pasted cells"), pasted=True)


def _decode(data):
    """Text of a CSV: UTF-8 (with or without a BOM), else Windows-1251, as Russian Excel saves."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if b"\x00" in data[:4096]:
        for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
            if data.startswith(bom):
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    break
        raise SpreadsheetError(_("The file is neither an .xlsx workbook nor a text .csv file."))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def read_csv(data, name=""):
    return _read_text(_decode(data), name or "file.csv")


def _delimiter(sample, pasted):
    if pasted and "\t" in sample:
        return "\t"
    counts = {d: sample.count(d) for d in ("\t", ";", ",")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ("\t" if pasted else ",")


def _read_text(text, source, pasted=False):
    sample = "\n".join(text.splitlines()[:20])
    delimiter = _delimiter(sample, pasted)
    collector = _Collector(source)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        for number, values in enumerate(reader, start=1):
            collector.add(number, values)
    except csv.Error as exc:
        raise SpreadsheetError(
            _("The text could not be read as a table (line %(line)s): %(error)s")
            % {"line": reader.line_num, "error": exc}
        ) from None
    return collector.finish()


def _check_zip(data):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise SpreadsheetError(_("The file is not a valid .xlsx workbook.")) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise SpreadsheetError(_("The workbook has too many parts to be a plain table."))
        limit = conf.import_max_uncompressed_bytes
        if sum(entry.file_size for entry in entries) > limit:
            raise SpreadsheetError(
                _("The workbook unpacks to more than %(size)s MB, which is not allowed.")
                % {"size": megabytes(limit)}
            )
        names = {entry.filename for entry in entries}
        if "xl/workbook.xml" not in names:
            raise SpreadsheetError(_("The file is a zip archive, not an Excel workbook."))
        for name in sorted(names):
            if SHEET_PART.fullmatch(name):
                _count_rows(archive, name)


SHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml")
ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")


def _count_rows(archive, name):
    """Refuse a sheet with more rows than allowed before openpyxl opens it.

    openpyxl reads a sheet's whole XML when the sheet does not declare its size, so a
    million-row sheet without ``<dimension>`` would cost its full parse just to be refused;
    counting ``<row`` tags in the unpacked stream is a hundred times cheaper.
    """
    limit = conf.import_max_rows
    count, tail = 0, b""
    try:
        with archive.open(name) as part:
            while chunk := part.read(1024 * 1024):
                data = tail + chunk
                count += len(ROW_TAG.findall(data))
                tail = data[-16:]
                # a tag cut by the chunk edge is counted once: drop what the tail repeats
                count -= len(ROW_TAG.findall(tail))
                if count > limit:
                    raise _limit_rows(limit)
        count += len(ROW_TAG.findall(tail))
        if count > limit:
            raise _limit_rows(limit)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        raise SpreadsheetError(
            _("The workbook is damaged and could not be read. Open it in Excel and save it again.")
        ) from None


def _unsafe_xml(exc):
    """Whether defusedxml refused the XML (openpyxl wraps its error in a ValueError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (type(exc).__module__ or "").startswith("defusedxml"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def open_workbook(data):
    """Open .xlsx bytes read-only after the zip checks; refuse unsafe or broken content."""
    import openpyxl

    if not xml_is_defused():
        raise ImproperlyConfigured("openpyxl must use defusedxml to read uploaded workbooks")
    _check_zip(data)
    try:
        return openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise _broken(exc) from None


def _broken(exc):
    if _unsafe_xml(exc):
        return SpreadsheetError(
            _("The workbook contains XML entity declarations, which are not allowed.")
        )
    return SpreadsheetError(
        _("The workbook is damaged and could not be read. Open it in Excel and save it again.")
    )


def read_xlsx(data, name=""):
    """Rows of the first worksheet of .xlsx bytes, as text."""
    workbook = open_workbook(data)
    try:
        if not workbook.worksheets:
            raise SpreadsheetError(_("The workbook has no worksheets."))
        sheet = workbook.worksheets[0]
        limit = conf.import_max_rows
        declared = sheet.max_row
        if declared is not None and declared > limit:
            raise _limit_rows(limit)
        # The declared size may be wrong; read every row there is, never pad to a claimed width.
        sheet.reset_dimensions()
        collector = _Collector(name or "file.xlsx")
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                collector.add(number, values)
        except SpreadsheetError:
            raise
        except Exception as exc:
            raise _broken(exc) from None
        return collector.finish()
    finally:
        workbook.close()


# --- writing ---------------------------------------------------------------------------------


def safe_text(value):
    """Text that no spreadsheet will run as a formula (an apostrophe goes first)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value):
    """A value openpyxl and csv can write: Decimals stay numbers, the rest text or dates."""
    if value is None or isinstance(value, (int, float, Decimal, datetime, date)):
        if isinstance(value, datetime) and value.tzinfo is not None:
            from django.utils import timezone

            return timezone.localtime(value).replace(tzinfo=None)
        return value
    return safe_text(str(value))


class XlsxWriter:
    """Streams rows into an .xlsx with openpyxl's write-only mode (memory stays flat)."""

    def __init__(self, file, header, title=""):
        import openpyxl
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        self.file = file
        self.workbook = openpyxl.Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title=(title or "Sheet")[:31])
        bold = Font(bold=True)
        cells = []
        for label in header:
            cell = WriteOnlyCell(self.sheet, value=safe_text(str(label)))
            cell.font = bold
            cells.append(cell)
        self.sheet.append(cells)
        self.count = 0

    def write(self, row):
        self.sheet.append([_plain(value) for value in row])
        self.count += 1

    def close(self):
        self.workbook.save(self.file)


class CsvWriter:
    """CSV that Excel opens in the manager's language: UTF-8 with a BOM, and where decimals
    are written with a comma (Russian), a semicolon between cells."""

    def __init__(self, file, header, title=""):
        self.file = file
        self.decimal = formats.get_format("DECIMAL_SEPARATOR") or "."
        delimiter = ";" if self.decimal == "," else ","
        self.text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="", write_through=True)
        self.writer = csv.writer(self.text, delimiter=delimiter)
        self.writer.writerow([safe_text(str(label)) for label in header])
        self.count = 0

    def _cell(self, value):
        value = _plain(value)
        if value is None:
            return ""
        if isinstance(value, (Decimal, float)):
            return str(value).replace(".", self.decimal)
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, date):
            return value.isoformat()
        return value

    def write(self, row):
        self.writer.writerow([self._cell(value) for value in row])
        self.count += 1

    def close(self):
        self.text.flush()
        self.text.detach()


WRITERS = {"xlsx": XlsxWriter, "csv": CsvWriter}
CONTENT_TYPES = {"xlsx": XLSX_CONTENT_TYPE, "csv": CSV_CONTENT_TYPE}


def write_table(file, fmt, header, rows, title=""):
    """Write ``rows`` under ``header`` to the binary ``file`` as ``fmt`` ("xlsx" or "csv")."""
    writer = WRITERS[fmt](file, header, title)
    for row in rows:
        writer.write(row)
    writer.close()
    return writer.count
