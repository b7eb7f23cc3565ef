"""Safe reading and writing of spreadsheets: .xlsx and .csv files and cells pasted from Excel.

Reading treats every file as hostile. An .xlsx is a zip of XML parts, so before any part is
unpacked the zip directory is checked against ``OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES`` (a
zip bomb declares its real size there). A directory may lie, so every part also inflates in
small steps against a running count that stops at that limit, and every part but the sheet and
its shared strings at ``OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES``, before anything parses it. No XML
is parsed with entity declarations or external references (the "billion laughs" bomb): openpyxl
reads the content types, workbook and relationships through defusedxml, and the styles, the
worksheet and its shared strings stream through expat with defusedxml's refusals. Rows with
data are counted as they come and refused past ``OSCAR_LOYALTY_IMPORT_MAX_ROWS``; no cell may
hold more text than Excel allows (32,767 characters), nor the table more than
``MAX_TEXT_CHARACTERS`` in all (one long shared string referenced by many cells), nor more
than ``MAX_CELLS`` cells. Every cell
comes back as text, so phones and card numbers keep their leading zeros and never turn into
``1.23E+15``.

Writing streams with openpyxl's write-only mode, and every text cell that a spreadsheet could
take for a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe.
"""

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import pairwise

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
# Excel's own limit on the text of one cell.
MAX_CELL_CHARACTERS = 32_767
# Text of all cells of a table together: far above a real import (200,000 rows of a few
# columns), low enough that a shared string repeated in every cell cannot exhaust memory.
MAX_TEXT_CHARACTERS = 50_000_000
# Cells of a table together (each costs some 60 bytes held and microseconds read): the row
# limit times ten columns, where an import needs four.
MAX_CELLS = 2_000_000
# Excel's last row: a larger row number is a damaged sheet.
MAX_ROW_NUMBER = 1_048_576
# Parts are inflated and parsed this many bytes at a time.
CHUNK_BYTES = 65536
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
    source: str = ""  # the file's name; empty for pasted cells
    notes: list = field(default_factory=list)
    pasted: bool = False


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
        return format(_shown(value), "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _shown(value):
    """A fraction as Excel shows it (15 significant digits: 0.30000000000000004 is 0.3),
    unless that is a cent or more away from the stored value."""
    stored = Decimal(repr(value))
    shown = Decimal(f"{value:.15g}")
    return shown if abs(shown - stored) < Decimal("0.01") else stored


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
    """Gathers rows, skipping blank ones and enforcing the limits on rows with data and on
    their text; rows that come out of order are put back in order, none is dropped."""

    def __init__(self, source):
        self.table = Table(source=source)
        self.limit = conf.import_max_rows
        self.wide = False
        self.last = 0
        self.unordered = False
        self.characters = 0
        self.cells = 0

    def add(self, number, values):
        if len(values) > MAX_COLUMNS:
            self.wide = self.wide or any(values[MAX_COLUMNS:])
            values = values[:MAX_COLUMNS]
        cells = [cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            return
        rows = self.table.rows
        if len(rows) == self.limit:
            raise _limit_rows(self.limit)
        self.cells += len(cells)
        if self.cells > MAX_CELLS:
            raise SpreadsheetError(
                _(
                    "The table has more than %(count)s cells; delete the columns the import "
                    "does not need or split it into smaller files."
                )
                % {"count": MAX_CELLS}
            )
        self.characters += sum(map(len, cells))
        if self.characters > MAX_TEXT_CHARACTERS:
            raise SpreadsheetError(
                _(
                    "The table holds more than %(count)s million characters of text; "
                    "split it into smaller files."
                )
                % {"count": MAX_TEXT_CHARACTERS // 1_000_000}
            )
        if number <= self.last:
            self.unordered = True
        self.last = number
        rows.append((number, tuple(cells)))
        if len(cells) > self.table.width:
            self.table.width = len(cells)

    def finish(self):
        rows = self.table.rows
        if self.unordered:
            rows.sort(key=lambda row: row[0])
            for (number, _cells), (following, _next) in pairwise(rows):
                if number == following:
                    raise SpreadsheetError(
                        _("Row %(row)s appears twice in the sheet; the file is damaged.")
                        % {"row": number}
                    )
        if self.wide:
            self.table.notes.append(
                _("Only the first %(count)s columns were read.") % {"count": MAX_COLUMNS}
            )
        if not rows:
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
    if data[:8] == OLE_MAGIC:
        if _encrypted(data):
            raise SpreadsheetError(
                _(
                    "This workbook is protected with a password: save it without a password "
                    "and upload it again."
                )
            )
        raise SpreadsheetError(
            _("Old .xls workbooks cannot be read; save the file as .xlsx or .csv.")
        )
    if name.lower().endswith((".xlsx", ".xlsm")):
        raise SpreadsheetError(_("The file is not a valid .xlsx workbook."))
    return read_csv(data, name)


_ENCRYPTED_PACKAGE = "EncryptedPackage\x00".encode("utf-16-le")


def _encrypted(data):
    """Whether an OLE compound file holds an ``EncryptedPackage`` stream: what Excel saves for
    an .xlsx with a password. Directory entries are 128 bytes and start on a multiple of 128
    in the file; the name's byte count (with its terminator) and the entry type (2, a
    stream) follow the 64-byte name."""
    found = data.find(_ENCRYPTED_PACKAGE)
    while found != -1:
        if found % 128 == 0 and data[found + 64 : found + 67] == b"\x22\x00\x02":
            return True
        found = data.find(_ENCRYPTED_PACKAGE, found + 2)
    return False


def read_pasted(text):
    """Read cells copied from Excel and pasted as text (tab-separated lines)."""
    text = text or ""
    limit = conf.import_max_file_bytes
    if len(text.encode("utf-8")) > limit:
        raise _too_large(limit)
    if not text.strip():
        raise SpreadsheetError(_("Nothing was pasted."))
    return _read_text(text, "", pasted=True)


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
    # A NUL deep in a .csv passes the binary check above; the database refuses it in JSON.
    nul = text.find("\x00")
    if nul >= 0:
        raise SpreadsheetError(
            _("Line %(line)s holds a NUL character; save the table again as .xlsx or .csv.")
            % {"line": text.count("\n", 0, nul) + 1}
        )
    sample = "\n".join(text.splitlines()[:20])
    delimiter = _delimiter(sample, pasted)
    collector = _Collector(source)
    collector.table.pasted = pasted
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
    """Check the zip directory of .xlsx bytes before any part is unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise SpreadsheetError(_("The file is not a valid .xlsx workbook.")) from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise SpreadsheetError(_("The workbook has too many parts to be a plain table."))
    if sum(entry.file_size for entry in entries) > conf.import_max_uncompressed_bytes:
        raise _unpacks_too_much()
    if "xl/workbook.xml" not in {entry.filename for entry in entries}:
        raise SpreadsheetError(_("The file is a zip archive, not an Excel workbook."))


def _unpacks_too_much():
    return SpreadsheetError(
        _("The workbook unpacks to more than %(size)s MB, which is not allowed.")
        % {"size": megabytes(conf.import_max_uncompressed_bytes)}
    )


class _Archive(zipfile.ZipFile):
    """The workbook's zip, whose parts inflate ``CHUNK_BYTES`` at a time against a running
    count whatever its directory says: all parts together stop at
    ``OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES``, each one at its ``limit``. openpyxl's
    reads get the limit of a small part, ``OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES``, so nothing
    it parses can be large (``zipfile`` alone would inflate a lying part whole in one call).
    """

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.left = conf.import_max_uncompressed_bytes

    def open(self, name, mode="r", pwd=None, *, limit=None, **kwargs):
        return _Part(self, super().open(name, mode, pwd, **kwargs), limit)


class _Part(io.RawIOBase):
    """One part of an ``_Archive``, counted as it inflates."""

    def __init__(self, archive, part, limit):
        self.archive, self.part, self.size = archive, part, 0
        self.limit = limit or conf.import_max_part_bytes

    def readable(self):
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_BYTES), b""))
        data = self.part.read(min(size, CHUNK_BYTES))
        self.size += len(data)
        self.archive.left -= len(data)
        if self.archive.left < 0:
            raise _unpacks_too_much()
        if self.size > self.limit:
            raise SpreadsheetError(
                _(
                    "The part %(part)s of the workbook unpacks to more than %(size)s MB, "
                    "far more than a real workbook holds."
                )
                % {"part": self.part.name, "size": megabytes(self.limit)}
            )
        return data

    def close(self):
        self.part.close()
        super().close()


def _unsafe_xml(exc):
    """Whether defusedxml refused the XML (openpyxl wraps its error in a ValueError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (type(exc).__module__ or "").startswith("defusedxml"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _broken(exc):
    if _unsafe_xml(exc):
        return SpreadsheetError(
            _("The workbook contains XML entity declarations, which are not allowed.")
        )
    return SpreadsheetError(
        _("The workbook is damaged and could not be read. Open it in Excel and save it again.")
    )


def _open_workbook(archive):
    """openpyxl's reading of a workbook's small parts (content types, workbook, relationships)
    from ``archive``, parsed through defusedxml; styles, sheet and strings are left to us.

    Returns the workbook's date epoch, the path of its first worksheet and that of its
    shared strings.
    """
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS

    reader = ExcelReader(archive.fp, read_only=True, data_only=True, keep_links=False)
    reader.archive.close()  # its own reading of the zip, which nothing bounds
    reader.archive = archive
    reader.read_manifest()
    reader.read_workbook()
    sheets = [
        rel.target
        for _sheet, rel in reader.parser.find_sheets()
        if rel.target in reader.valid_files and "chartsheet" not in rel.Type
    ]
    if not sheets:
        raise SpreadsheetError(_("The workbook has no worksheets."))
    strings = reader.package.find(SHARED_STRINGS)
    return reader.wb.epoch, sheets[0], strings.PartName[1:] if strings is not None else None


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main "
STYLES = "xl/styles.xml"


class _XmlStream:
    """An expat parser over one part of the zip, with defusedxml's refusals.

    openpyxl parses worksheets with defusedxml's pure-Python ElementTree parser (a dozen
    Python calls per element, and a whole extra pass when a sheet does not declare its
    size); here expat calls back once per element, which reads a sheet four to five times
    faster. Entity declarations and external references are refused with defusedxml's own
    exceptions, as its parsers refuse them. Text being gathered (``self.text``) is measured
    after each chunk, so a huge one is refused before it is all in memory.
    """

    def __init__(self):
        from xml.parsers import expat

        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.buffer_text = True
        self.parser.buffer_size = CHUNK_BYTES
        self.parser.EntityDeclHandler = self._entity
        self.parser.UnparsedEntityDeclHandler = self._unparsed
        self.parser.ExternalEntityRefHandler = self._external
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.text = []
        self.capture = self.text.append

    def _entity(self, name, _is_parameter, value, base, sysid, pubid, notation):
        from defusedxml import EntitiesForbidden

        raise EntitiesForbidden(name, value, base, sysid, pubid, notation)

    def _unparsed(self, name, base, sysid, pubid, notation):
        from defusedxml import EntitiesForbidden

        raise EntitiesForbidden(name, None, base, sysid, pubid, notation)

    def _external(self, context, base, sysid, pubid):
        from defusedxml import ExternalReferenceForbidden

        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    def read(self, archive, name, limit=None):
        parse = self.parser.Parse
        with archive.open(name, limit=limit) as part:
            while chunk := part.read(CHUNK_BYTES):
                parse(chunk, False)
                if len(self.text) > 1 and sum(map(len, self.text)) > MAX_CELL_CHARACTERS:
                    raise self.too_long()
        parse(b"", True)
        return self

    def too_long(self):
        raise NotImplementedError


class _Styles(_XmlStream):
    """Which cell styles show dates and which durations: all the sheet needs of the styles
    part (openpyxl builds the whole stylesheet, a second for each megabyte)."""

    NUMFMTS, NUMFMT, XFS, XF = MAIN + "numFmts", MAIN + "numFmt", MAIN + "cellXfs", MAIN + "xf"

    def __init__(self):
        super().__init__()
        self.custom, self.formats, self.section = {}, [], None

    def start(self, name, attrs):
        if name == self.XF:
            if self.section == self.XFS:
                self.formats.append(int(attrs.get("numFmtId", 0)))
        elif name == self.NUMFMT:
            if self.section == self.NUMFMTS:
                self.custom[int(attrs["numFmtId"])] = attrs.get("formatCode")
        elif name == self.NUMFMTS or name == self.XFS:
            self.section = name

    def end(self, name):
        if name == self.section:
            self.section = None

    def kinds(self):
        """The indexes of the styles that show dates, and of those that show durations."""
        from openpyxl.styles.numbers import (
            BUILTIN_FORMATS,
            is_date_format,
            is_timedelta_format,
        )

        dates, durations, known = set(), set(), {}
        for index, number_format in enumerate(self.formats):
            if number_format not in known:
                code = self.custom.get(number_format, BUILTIN_FORMATS.get(number_format))
                known[number_format] = is_date_format(code), is_timedelta_format(code)
            is_date, is_duration = known[number_format]
            if is_date:
                dates.add(index)
            if is_duration:
                durations.add(index)
        return dates, durations


class _SharedStrings(_XmlStream):
    """The shared strings table: the text of each ``<si>``, phonetic runs left out."""

    SI, T, PHONETIC = MAIN + "si", MAIN + "t", MAIN + "rPh"

    def __init__(self):
        super().__init__()
        self.strings, self.phonetic = [], False

    def start(self, name, attrs):
        if name == self.T and not self.phonetic:
            self.parser.CharacterDataHandler = self.capture
        elif name == self.SI:
            self.text.clear()
        elif name == self.PHONETIC:
            self.phonetic = True

    def end(self, name):
        if name == self.T:
            self.parser.CharacterDataHandler = None
        elif name == self.SI:
            text = "".join(self.text)
            if len(text) > MAX_CELL_CHARACTERS:
                raise self.too_long()
            self.strings.append(text.replace("x005F_", ""))
        elif name == self.PHONETIC:
            self.phonetic = False

    def too_long(self):
        return SpreadsheetError(
            _(
                "Text number %(number)s of the workbook's shared strings is longer than "
                "%(count)s characters, more than Excel allows in a cell."
            )
            % {"number": len(self.strings) + 1, "count": MAX_CELL_CHARACTERS}
        )


class _Sheet(_XmlStream):
    """A worksheet's rows, values converted as openpyxl's read-only, data-only mode does,
    each row handed to ``collector`` as it ends (the row limit stops the stream)."""

    ROW, C, V, T, PHONETIC = MAIN + "row", MAIN + "c", MAIN + "v", MAIN + "t", MAIN + "rPh"

    def __init__(self, collector, strings, epoch, dates, durations):
        super().__init__()
        self.collector, self.strings = collector, strings
        self.epoch, self.dates, self.durations = epoch, dates, durations
        self.row, self.number, self.column = [], 0, 0
        self.type, self.style, self.phonetic = "n", None, False
        self.columns = {}

    def start(self, name, attrs):
        if name == self.C:
            self.type = attrs.get("t", "n")
            self.style = attrs.get("s")
            ref = attrs.get("r")
            self.column = self._column(ref) if ref else self.column + 1
            self.text.clear()
        elif name == self.V:
            if self.type != "inlineStr":
                self.parser.CharacterDataHandler = self.capture
        elif name == self.T:
            if self.type == "inlineStr" and not self.phonetic:
                self.parser.CharacterDataHandler = self.capture
        elif name == self.ROW:
            number = attrs.get("r")
            self.number = _row_number(number) if number else self.number + 1
            self.row, self.column = [], 0
        elif name == self.PHONETIC:
            self.phonetic = True

    def end(self, name):
        if name == self.C:
            self._cell()
        elif name == self.V or name == self.T:
            self.parser.CharacterDataHandler = None
        elif name == self.ROW:
            self.collector.add(self.number, self.row)
        elif name == self.PHONETIC:
            self.phonetic = False

    def too_long(self):
        from openpyxl.utils.cell import get_column_letter

        return SpreadsheetError(
            _(
                "Row %(row)s, column %(column)s holds more than %(count)s characters, more "
                "than Excel allows in a cell."
            )
            % {
                "row": self.number,
                "column": get_column_letter(min(self.column, 16384)),
                "count": MAX_CELL_CHARACTERS,
            }
        )

    def _column(self, ref):
        letters = ref.rstrip("0123456789")
        column = self.columns.get(letters)
        if column is None:
            from openpyxl.utils.cell import column_index_from_string

            column = self.columns[letters] = column_index_from_string(letters)
        return column

    def _cell(self):
        kind = self.type
        text = "".join(self.text) if self.text else None
        if kind == "inlineStr":
            value = text or ""
        elif not text:
            return
        elif kind == "n":
            value = float(text) if "." in text or "e" in text or "E" in text else int(text)
            style = int(self.style or 0)
            if style in self.dates:
                value = self._date(value, style)
        elif kind == "s":
            value = self.strings[int(text)]
        elif kind == "b":
            value = bool(int(text))
        elif kind == "d":
            from openpyxl.utils.datetime import from_ISO8601

            value = from_ISO8601(text)
        else:  # "str" (a formula's cached text), "e" (#N/A...)
            value = text
        if text and len(text) > MAX_CELL_CHARACTERS:
            raise self.too_long()
        row, column = self.row, self.column
        if column > MAX_COLUMNS:  # kept only to tell the manager the rest was left out
            column = MAX_COLUMNS + 1
            if not value:
                return
        if column > len(row):
            row.extend([None] * (column - len(row) - 1))
            row.append(value)
        else:
            row[column - 1] = value

    def _date(self, value, style):
        from openpyxl.utils.datetime import from_excel

        try:
            return from_excel(value, self.epoch, timedelta=style in self.durations)
        except (OverflowError, ValueError):
            return "#VALUE!"


def _row_number(text):
    """A row's ``r``; outside Excel's rows the sheet is damaged (``ValueError``)."""
    try:
        number = int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise
        number = int(number)
    if not 0 < number <= MAX_ROW_NUMBER:
        raise ValueError(text)
    return number


def read_xlsx(data, name=""):
    """Rows of the first worksheet of .xlsx bytes, as text.

    The zip directory is checked first (sizes, parts); then every part inflates against a
    byte count, and the sheet streams row by row, so a sheet past the row limit is refused as
    soon as its rows say so.
    """
    if not xml_is_defused():
        raise ImproperlyConfigured("openpyxl must use defusedxml to read uploaded workbooks")
    _check_zip(data)
    collector = _Collector(name or "file.xlsx")
    whole = conf.import_max_uncompressed_bytes
    try:
        with _Archive(data) as archive:
            epoch, sheet, strings_part = _open_workbook(archive)
            styles = _Styles()
            if STYLES in archive.NameToInfo:
                styles.read(archive, STYLES)
            strings = []
            if strings_part:
                strings = _SharedStrings().read(archive, strings_part, whole).strings
            _Sheet(collector, strings, epoch, *styles.kinds()).read(archive, sheet, whole)
    except SpreadsheetError:
        raise
    except Exception as exc:  # a broken part fails in many ways
        raise _broken(exc) from None
    return collector.finish()


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
