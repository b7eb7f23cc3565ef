"""Safe reading and writing of spreadsheets: .xlsx, .xls, .ods and .csv files and cells pasted
from Excel.

Reading treats every file as hostile; python-calamine (a Rust reader) reads the workbooks. A
workbook is a zip of XML parts (an .xls excepted), so before any part is unpacked the zip
directory is checked against ``OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES`` (a zip bomb declares
its real size there). A directory may lie, so every part calamine will read then inflates in
small steps against a running count that stops at that limit, and every part but the sheet and
its shared strings at ``OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES``. No part may declare a document
type (where entity declarations, the "billion laughs" bomb, hide); calamine refuses entities
too. Calamine builds the whole sheet in memory, so the sheet's XML is measured first: rows
repeated or past Excel's last, rows with data past ``OSCAR_LOYALTY_IMPORT_MAX_ROWS``, a
rectangle of more than ``MAX_AREA`` cells, shared strings longer than Excel allows (32,767
characters) or adding up to more than ``MAX_TEXT_CHARACTERS`` in the cells that refer to them.
Then no cell may hold more text than Excel allows, nor the table more than ``MAX_CELLS``
cells. Every cell comes back as text, so phones and card numbers keep their leading zeros and
never turn into ``1.23E+15``.

Writing streams with openpyxl's write-only mode, and every text cell that a spreadsheet could
take for a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe.
"""

import codecs
import csv
import io
import re
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
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
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
    if isinstance(value, date):  # a date cell: shown with its time, as Excel stores it
        return f"{value.isoformat()} 00:00:00"
    if isinstance(value, time):
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

    def __init__(self, source, cell_limit=False):
        self.table = Table(source=source)
        self.cell_limit = cell_limit
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
        if self.cell_limit and max(map(len, cells)) > MAX_CELL_CHARACTERS:
            raise _cell_too_long(number, cells)
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
            raise _too_much_text()
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


def _cell_too_long(number, cells):
    from openpyxl.utils.cell import get_column_letter

    column = next(i for i, cell in enumerate(cells, start=1) if len(cell) > MAX_CELL_CHARACTERS)
    return SpreadsheetError(
        _(
            "Row %(row)s, column %(column)s holds more than %(count)s characters, more "
            "than Excel allows in a cell."
        )
        % {"row": number, "column": get_column_letter(column), "count": MAX_CELL_CHARACTERS}
    )


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
    """Read an uploaded .xlsx, .ods, .xls or .csv (a Django file or bytes) into a ``Table``."""
    name = name or getattr(upload, "name", "") or ""
    data = _read_bytes(upload)
    if data[:4] == b"PK\x03\x04":
        if data[30:38] == b"mimetype" and ODS_MIMETYPE in data[38:160]:
            return read_ods(data, name)
        return read_xlsx(data, name)
    if data[:8] == OLE_MAGIC:
        if _encrypted(data):
            raise _protected()
        if _ole_workbook(data):
            return read_xls(data, name)
        raise SpreadsheetError(
            _(
                "Old .xls workbook that could not be read: it is damaged or not a workbook. "
                "Open it in Excel and save it as .xlsx."
            )
        )
    if name.lower().endswith((".xlsx", ".xlsm", ".ods", ".xls")):
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


_OLE_STREAMS = ("Workbook\x00".encode("utf-16-le"), "Book\x00".encode("utf-16-le"))


def _ole_entry_named(data, name):
    """Whether an OLE compound file's directory has a stream called ``name`` (UTF-16 with its
    terminator). Directory entries are 128 bytes and start on a multiple of 128 in the file;
    the name's byte count (with its terminator) and the entry type (2, a stream) follow the
    64-byte name."""
    found = data.find(name)
    while found != -1:
        if found % 128 == 0 and data[found + 64 : found + 67] == bytes((len(name), 0, 2)):
            return True
        found = data.find(name, found + 2)
    return False


def _ole_workbook(data):
    """Whether OLE bytes are an old Excel workbook (a "Workbook" or "Book" stream) whose
    header is sane: a sector size of 512 or 4096 bytes and no more FAT sectors than the file
    holds (python-calamine trusts both)."""
    if len(data) < 512 or data[28:30] != b"\xfe\xff":
        return False
    shift = int.from_bytes(data[30:32], "little")
    fat_sectors = int.from_bytes(data[44:48], "little")
    if shift not in (9, 12) or fat_sectors * (1 << shift) > len(data):
        return False
    return any(_ole_entry_named(data, name) for name in _OLE_STREAMS)


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
    if not {"xl/workbook.xml", "content.xml"} & {entry.filename for entry in entries}:
        raise SpreadsheetError(_("The file is a zip archive, not an Excel workbook."))


def _unpacks_too_much():
    return SpreadsheetError(
        _("The workbook unpacks to more than %(size)s MB, which is not allowed.")
        % {"size": megabytes(conf.import_max_uncompressed_bytes)}
    )


class _Archive(zipfile.ZipFile):
    """The workbook's zip, whose parts inflate ``CHUNK_BYTES`` at a time against a running
    count whatever its directory says: all parts together stop at
    ``OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES``, each one at its ``limit`` (by default
    that of a small part, ``OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES``); ``zipfile`` alone would
    inflate a lying part whole in one call.
    """

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.left = conf.import_max_uncompressed_bytes

    def open(self, name, mode="r", pwd=None, *, limit=None, **kwargs):
        return _Part(self, super().open(name, mode, pwd, **kwargs), limit)

    def inflate(self, name, limit=None):
        """The whole content of part ``name``, counted as it inflates."""
        with self.open(name, limit=limit) as part:
            return part.read()

    def inflate_sheet(self, name, limit):
        """A worksheet's content and how many ``</row>`` it holds (a row with cells ends with
        one), refused as soon as there are more than the row limit allows, before the rest
        inflates."""
        rows, most, chunks, tail = 0, conf.import_max_rows, [], b""
        with self.open(name, limit=limit) as part:
            while chunk := part.read(CHUNK_BYTES):
                rows += chunk.count(b"</row>") + (tail + chunk[:5]).count(b"</row>")
                if rows > most:
                    raise _limit_rows(most)
                chunks.append(chunk)
                tail = chunk[-5:]
        return b"".join(chunks), rows


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


def _entities():
    return SpreadsheetError(
        _("The workbook contains XML entity declarations, which are not allowed.")
    )


def _damaged():
    return SpreadsheetError(
        _("The workbook is damaged and could not be read. Open it in Excel and save it again.")
    )


def _broken(exc):
    """The manager's message for an error of python-calamine or of our checks. A Rust panic
    in calamine is a ``BaseException`` (``PanicException``): it is a broken file too, while
    an interrupt or an exit goes on."""
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc
    text = str(exc)
    if (type(exc).__module__ or "").startswith("defusedxml") or "entity" in text:
        return _entities()
    if type(exc).__name__ == "PasswordError":
        return _protected()
    return _damaged()


def _protected():
    return SpreadsheetError(
        _(
            "This workbook is protected with a password: save it without a password "
            "and upload it again."
        )
    )


# --- .xlsx: checks of the parts python-calamine will read --------------------------------
# python-calamine builds the whole sheet in memory as a rectangle from the first cell to the
# last, and gives every cell that refers to a shared string its own copy of that string. So
# before it reads anything, the parts it reads are inflated here against the limits, and the
# sheet's XML and its shared strings are measured: row numbers, the rectangle's size, the
# length of every shared string and the text the cells referring to them add up to.

SMALL_PARTS = (
    "[Content_Types].xml",
    "_rels/.rels",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
)
SHARED_STRINGS = "xl/sharedStrings.xml"
RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
OFFICE_RELATIONSHIPS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
# The rectangle python-calamine may build (some 32 bytes a cell): the row limit times thirty.
MAX_AREA = 6_000_000

_ROW_FAST = re.compile(rb'<row r="([^"]*)"[^>]*?(/?)>')
_ROW_TAG = re.compile(rb"<(?:[\w.-]+:)?row\b([^>]*?)(/?)>")
_ROW_REF = re.compile(rb'\sr="([^"]*)"')
_CELL_REF = re.compile(rb'\sr="([A-Z]+)[0-9]')
_WIDE_CELL = re.compile(rb' r="[A-Z][A-Z]')
_ROW_BODY = re.compile(rb"<(?:[\w.-]+:)?row\b[^>]*>(.*?)</(?:[\w.-]+:)?row>", re.S)
_ROW_CLOSE = re.compile(rb"</(?:[\w.-]+:)?row>")
_CELL_TAG = re.compile(rb"<(?:[\w.-]+:)?c[\s>/]")
_SHEET_END = re.compile(rb"</(?:[\w.-]+:)?worksheet>\s*\Z")
_DOCTYPE = re.compile(rb"(?:\s|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.S)
_DIMENSION = re.compile(rb"<(?:[\w.-]+:)?dimension\b[^>]*>")
_SANE_DIMENSION = re.compile(rb'\sref="[A-Z]{1,3}[0-9]{1,7}(?::[A-Z]{1,3}[0-9]{1,7})?"')
_SI = re.compile(rb"<(?:[\w.-]+:)?si\b")
_STRING_REF = re.compile(rb'<(?:[\w.-]+:)?c\b[^>]*\st="s"[^>]*>\s*<(?:[\w.-]+:)?v>\s*(\d+)')
_PHONETIC = re.compile(rb"<(?:[\w.-]+:)?rPh\b.*?</(?:[\w.-]+:)?rPh>", re.S)
_TEXT_RUN = re.compile(rb"<(?:[\w.-]+:)?t\b[^>]*>(.*?)</(?:[\w.-]+:)?t>", re.S)


def _xml(data):
    from defusedxml import ElementTree

    _refuse_doctype(data)
    return ElementTree.fromstring(data)


def _refuse_doctype(part):
    """Excel never writes a document type: one is where entity declarations hide."""
    if b"<!DOCTYPE" in part[:65536] and _DOCTYPE.match(part):
        raise _entities()


def _first_sheet(archive, names):
    """The name and zip path of the workbook's first worksheet (chart sheets passed over)."""
    workbook = _xml(archive.inflate("xl/workbook.xml"))
    rels = {}
    if "xl/_rels/workbook.xml.rels" in names:
        for rel in _xml(archive.inflate("xl/_rels/workbook.xml.rels")).iter(
            RELATIONSHIPS + "Relationship"
        ):
            rels[rel.get("Id")] = (rel.get("Target") or "", rel.get("Type") or "")
    for sheet in workbook.iter(MAIN + "sheet"):
        target, kind = rels.get(sheet.get(OFFICE_RELATIONSHIPS + "id"), ("", ""))
        path = target[1:] if target.startswith("/") else "xl/" + target
        if path in names and "chartsheet" not in kind:
            return sheet.get("name"), path
    raise SpreadsheetError(_("The workbook has no worksheets."))


def _column_number(letters):
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _row_numbers(sheet, closed):
    """The number of every ``<row>`` of the sheet in order, whether it is empty (``<row/>``),
    and how many rows are closed (``closed`` counts ``</row>``); a row without ``r`` follows
    the one before."""
    plain = b":row" not in sheet
    if plain:
        found = _ROW_FAST.findall(sheet)
        if len(found) == sheet.count(b"<row"):  # else <rowBreaks>, or a row's r not first
            try:
                numbers = list(map(int, (ref for ref, _end in found)))
            except ValueError:
                numbers = [_row_number(ref) for ref, _end in found]
            empty = [bool(end) for _ref, end in found]
            return numbers, empty, closed
    numbers, empty, number = [], [], 0
    for attrs, end in _ROW_TAG.findall(sheet):
        ref = _ROW_REF.search(attrs)
        number = _row_number(ref.group(1)) if ref else number + 1
        numbers.append(number)
        empty.append(bool(end))
    return numbers, empty, len(_ROW_CLOSE.findall(sheet))


def _width(sheet, height):
    """The most columns a row of the sheet may reach: its farthest cell reference, plus the
    cells of the fullest row when some cells have no reference. With references of one
    letter only (at most 26 columns), the farthest is looked for only when 26 columns of
    ``height`` rows would be too many."""
    cells = sheet.count(b"<c ") + sheet.count(b"<c>") + sheet.count(b"<c/")
    bare = cells != sheet.count(b'<c r="') or b":c" in sheet
    wide = 26
    if _WIDE_CELL.search(sheet) or b":c" in sheet:
        wide = max(map(_column_number, _CELL_REF.findall(sheet)), default=1)
    elif bare or height * wide > MAX_AREA:
        wide = 1
        for letter in range(ord("Z"), ord("A") - 1, -1):
            if b' r="%c' % letter in sheet:
                wide = letter - 64
                break
    if bare:
        bodies = _ROW_BODY.findall(sheet)
        wide += max((len(_CELL_TAG.findall(body)) for body in bodies), default=0)
    return wide


def _check_sheet(sheet, closed):
    """Refuse a sheet whose XML is cut short, whose rows repeat or pass Excel's last row, or
    whose rectangle python-calamine would build is larger than ``MAX_AREA``. Returns the
    sheet to give calamine instead when it must be changed: a ``<dimension>`` that is not a
    plain range (calamine refuses it) taken out, error cells (``#N/A``) made text (calamine
    would give them blank)."""
    if not _SHEET_END.search(sheet[-256:]):
        raise _damaged()
    _refuse_doctype(sheet)
    numbers, empty, closed = _row_numbers(sheet, closed)
    if closed > conf.import_max_rows:
        raise _limit_rows(conf.import_max_rows)
    if closed != len(empty) - sum(empty):
        raise _damaged()
    if numbers and (min(numbers) < 1 or max(numbers) > MAX_ROW_NUMBER):
        raise _damaged()
    if not all(map(int.__lt__, numbers, numbers[1:])):
        seen = set()
        for number in numbers:
            if number in seen:
                raise SpreadsheetError(
                    _("Row %(row)s appears twice in the sheet; the file is damaged.")
                    % {"row": number}
                )
            seen.add(number)
    filled = [number for number, blank in zip(numbers, empty, strict=True) if not blank]
    if filled:
        height = max(filled)
        if height * 16384 > MAX_AREA:
            wide = _width(sheet, height)
            if height * wide > MAX_AREA:
                raise _too_wide(height, wide)
    fixed = sheet
    head = sheet.find(b"sheetData")
    dimension = _DIMENSION.search(sheet, 0, head if head > 0 else len(sheet))
    if dimension and not _SANE_DIMENSION.search(dimension.group()):
        fixed = sheet[: dimension.start()] + sheet[dimension.end() :]
    if b't="e"' in fixed:
        fixed = fixed.replace(b' t="e"', b' t="str"')
    return None if fixed is sheet else fixed


def _string_length(si):
    """Characters of one ``<si>``'s text, phonetic runs left out."""
    from html import unescape

    text = b"".join(_TEXT_RUN.findall(_PHONETIC.sub(b"", si)))
    return len(unescape(text.decode("utf-8", "replace")))


def _check_strings(strings, sheet):
    """Refuse a shared string longer than Excel allows, and a sheet whose cells would copy
    more than ``MAX_TEXT_CHARACTERS`` of shared text. Each ``<si>``'s bytes bound its
    characters, so only a long one is measured exactly."""
    pieces = _SI.split(strings)[1:]
    if not pieces:
        return
    longest = max(map(len, pieces))
    lengths = None
    if longest > MAX_CELL_CHARACTERS:
        lengths = [len(piece) for piece in pieces]
        for index, piece in enumerate(pieces):
            if len(piece) > MAX_CELL_CHARACTERS:
                lengths[index] = _string_length(piece)
                if lengths[index] > MAX_CELL_CHARACTERS:
                    raise SpreadsheetError(
                        _(
                            "Text number %(number)s of the workbook's shared strings is longer "
                            "than %(count)s characters, more than Excel allows in a cell."
                        )
                        % {"number": index + 1, "count": MAX_CELL_CHARACTERS}
                    )
        longest = max(lengths)
    if sheet.count(b't="s"') * longest <= MAX_TEXT_CHARACTERS:
        return
    lengths = lengths or [len(piece) for piece in pieces]
    total = 0
    for index in _STRING_REF.findall(sheet):
        index = int(index)
        if index < len(lengths):
            total += lengths[index]
    if total > MAX_TEXT_CHARACTERS:
        raise _too_much_text()


def _too_wide(rows, columns):
    return SpreadsheetError(
        _(
            "The sheet spreads over %(rows)s rows and up to %(columns)s columns, more than "
            "%(count)s cells: delete what lies beside the table or split it into smaller files."
        )
        % {"rows": rows, "columns": columns, "count": MAX_AREA}
    )


def _too_much_text():
    return SpreadsheetError(
        _(
            "The table holds more than %(count)s million characters of text; "
            "split it into smaller files."
        )
        % {"count": MAX_TEXT_CHARACTERS // 1_000_000}
    )


def _checked_xlsx(data):
    """The name of the first worksheet of .xlsx bytes, once the parts python-calamine reads
    passed the checks above; and the bytes to give it (a copy with a sane sheet when the
    original's ``<dimension>`` is one calamine would refuse)."""
    with _Archive(data) as archive:
        names = set(archive.NameToInfo)
        for part in SMALL_PARTS:
            if part in names:
                _refuse_doctype(archive.inflate(part))
        name, path = _first_sheet(archive, names)
        whole = conf.import_max_uncompressed_bytes
        strings = archive.inflate(SHARED_STRINGS, whole) if SHARED_STRINGS in names else b""
        _refuse_doctype(strings)
        sheet, closed = archive.inflate_sheet(path, whole)
        if path + ".rels" in names:
            archive.inflate(path + ".rels")
        fixed = _check_sheet(sheet, closed)
        _check_strings(strings, sheet)
        if fixed is None:
            return name, data
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as copy:
            for info in archive.infolist():
                if info.filename == path:
                    copy.writestr(info.filename, fixed)
                elif info.filename in SMALL_PARTS or info.filename == SHARED_STRINGS:
                    copy.writestr(info.filename, archive.inflate(info.filename, whole))
        return name, buffer.getvalue()


def _row_number(text):
    """A row's ``r``; outside Excel's rows the sheet is damaged."""
    try:
        number = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise _damaged() from None
        if not number.is_integer():
            raise _damaged() from None
        number = int(number)
    if not 0 < number <= MAX_ROW_NUMBER:
        raise _damaged()
    return number


def _read_calamine(data, collector, sheet_name=None):
    """Hand the rows of a workbook's sheet (the first when no name is given) read by
    python-calamine to ``collector``, each with its row number in the file."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
        if sheet_name is None:
            tables = (SheetTypeEnum.WorkSheet, SheetTypeEnum.MacroSheet)
            names = [sheet.name for sheet in workbook.sheets_metadata if sheet.typ in tables]
            if not names:
                raise SpreadsheetError(_("The workbook has no worksheets."))
            sheet_name = names[0]
        sheet = workbook.get_sheet_by_name(sheet_name)
        start = sheet.start
        if start is None:
            return
        first_row, first_column = start
        if (sheet.height * (first_column + sheet.width)) > MAX_AREA:
            raise _too_wide(sheet.height, first_column + sheet.width)
        pad = [None] * first_column
        add = collector.add
        rows = sheet.to_python(skip_empty_area=True)
        for number, values in enumerate(rows, start=first_row + 1):
            if values.count("") != len(values):  # calamine gives a blank cell as ""
                add(number, pad + values if pad else values)


def read_xlsx(data, name=""):
    """Rows of the first worksheet of .xlsx bytes, as text.

    The zip directory is checked first (sizes, parts); then every part python-calamine will
    read inflates against a byte count and the sheet and its strings are measured; only then
    does calamine read the sheet.
    """
    if not xml_is_defused():
        raise ImproperlyConfigured("openpyxl must use defusedxml to read uploaded workbooks")
    _check_zip(data)
    collector = _Collector(name or "file.xlsx", cell_limit=True)
    try:
        sheet_name, data = _checked_xlsx(data)
        _read_calamine(data, collector, sheet_name)
    except SpreadsheetError:
        raise
    except BaseException as exc:  # a broken part fails in many ways
        raise _broken(exc) from None
    return collector.finish()


# --- .ods and .xls ------------------------------------------------------------------------
# An .ods keeps all its sheets in content.xml, where a row or a cell may say it repeats:
# python-calamine writes every repetition out, so the rows and cells they add up to are
# counted here first. An .xls is read as it is (the file's own size bounds it).

_ODS_ROW = re.compile(rb"<table:table-row\b([^>]*?)(/?)>")
_ODS_ROWS_REPEATED = re.compile(rb'table:number-rows-repeated="(\d+)"')
_ODS_CELL = re.compile(rb"<table:(?:covered-)?table-cell\b([^>]*?)(/?)>")
_ODS_COLUMNS_REPEATED = re.compile(rb'table:number-columns-repeated="(\d+)"')
ODS_PARTS = ("mimetype", "META-INF/manifest.xml", "styles.xml", "meta.xml", "settings.xml")


def _check_ods_content(content):
    """Refuse content whose repeated rows and cells with data add up past the row limit or
    ``MAX_AREA`` cells, before python-calamine writes them out."""
    _refuse_doctype(content)
    rows = area = 0
    for row in _ODS_ROW.finditer(content):
        if row.group(2):  # <table:table-row/>: nothing in it
            continue
        end = content.find(b"</table:table-row>", row.end())
        if end == -1:
            raise _damaged()
        repeated = _ODS_ROWS_REPEATED.search(row.group(1))
        times = int(repeated.group(1)) if repeated else 1
        width = column = 0
        for cell in _ODS_CELL.finditer(content, row.end(), end):
            count = _ODS_COLUMNS_REPEATED.search(cell.group(1))
            column += int(count.group(1)) if count else 1
            if b"office:value-type" in cell.group(1) or not cell.group(2):
                width = column
        if width:
            rows += times
            area += times * width
            if rows > conf.import_max_rows:
                raise _limit_rows(conf.import_max_rows)
            if area > MAX_AREA:
                raise _too_wide(rows, width)


def read_ods(data, name=""):
    """Rows of the first sheet of OpenDocument (.ods) bytes, as text: the zip checked as an
    .xlsx's, content.xml inflated against the limits and measured, then python-calamine."""
    _check_zip(data)
    collector = _Collector(name or "file.ods", cell_limit=True)
    try:
        with _Archive(data) as archive:
            for part in ODS_PARTS:
                if part in archive.NameToInfo:
                    _refuse_doctype(archive.inflate(part))
            if "content.xml" not in archive.NameToInfo:
                raise _damaged()
            content, _rows = archive.inflate_sheet(
                "content.xml", conf.import_max_uncompressed_bytes
            )
            _check_ods_content(content)
        _read_calamine(data, collector)
    except SpreadsheetError:
        raise
    except BaseException as exc:
        raise _broken(exc) from None
    return collector.finish()


def read_xls(data, name=""):
    """Rows of the first worksheet of an old Excel (.xls) workbook, as text."""
    collector = _Collector(name or "file.xls", cell_limit=True)
    try:
        _read_calamine(data, collector)
    except SpreadsheetError:
        raise
    except BaseException as exc:
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
