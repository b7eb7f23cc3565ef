# ruff: noqa: E501  (the XML parts of a workbook are long one-line strings)
"""Spreadsheets for the Excel tests: well-formed ones written by openpyxl and hostile ones
written by hand with ``zipfile`` (bombs, entity tricks, huge or broken files)."""

import io
import itertools
import struct
import zipfile

import openpyxl

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Cards" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)
SHEET_OPEN = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def xlsx(rows, title="Cards"):
    """An ordinary workbook written by openpyxl: ``rows`` of values (str stays text)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _inline(value):
    return f'<c t="inlineStr"><is><t>{value}</t></is></c>'


SHARED_STRINGS_TYPE = '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'


def hand_xlsx(sheet_parts, prolog="", dimension=None, extra=None, shared_strings=None):
    """A minimal workbook whose sheet XML is ``prolog`` + the given parts, streamed into the
    zip (parts may be a generator of millions of rows). ``extra`` adds parts or replaces
    the standard ones; a part's text may be an iterable of blocks, streamed too."""
    buffer = io.BytesIO()
    content_types = CONTENT_TYPES
    if shared_strings is not None:
        content_types = content_types.replace("</Types>", SHARED_STRINGS_TYPE + "</Types>")
    parts = {
        "[Content_Types].xml": content_types,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": WORKBOOK,
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
    }
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    parts.update(extra or {})
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            _stream(archive, name, [text] if isinstance(text, (str, bytes)) else text)
        sheet = [f'<?xml version="1.0" encoding="UTF-8"?>{prolog}{SHEET_OPEN}']
        if dimension:
            sheet.append(f'<dimension ref="{dimension}"/>')
        _stream(
            archive,
            "xl/worksheets/sheet1.xml",
            [*sheet, "<sheetData>"],
            sheet_parts,
            ["</sheetData></worksheet>"],
        )
    return buffer.getvalue()


def _stream(archive, name, *blocks):
    with archive.open(name, "w", force_zip64=True) as part:
        for block in itertools.chain(*blocks):
            part.write(block.encode() if isinstance(block, str) else block)


def rows_xml(rows):
    """``<row>`` elements of inline-string cells."""
    for n, row in enumerate(rows, start=1):
        yield f'<row r="{n}">' + "".join(_inline(v) for v in row) + "</row>"


def million_rows_xlsx(count=1_000_000, dimension=True):
    def parts():
        batch = []
        for n in range(1, count + 1):
            batch.append(f'<row r="{n}"><c t="inlineStr"><is><t>7912{n:07d}</t></is></c></row>')
            if len(batch) == 10_000:
                yield "".join(batch)
                batch = []
        if batch:
            yield "".join(batch)

    return hand_xlsx(parts(), dimension=f"A1:A{count}" if dimension else None)


def zip_bomb_xlsx(megabytes=300):
    """A workbook whose sheet XML unpacks to ``megabytes`` MB of blanks (honest sizes)."""
    block = b" " * (1024 * 1024)
    return hand_xlsx(block for _ in range(megabytes))


def lying_zip_bomb_xlsx(megabytes=50, part="xl/worksheets/sheet1.xml"):
    """A workbook whose ``part`` unpacks to ``megabytes`` MB of blanks, its sizes rewritten
    to claim 100 bytes unpacked."""
    blanks = (b" " * (1024 * 1024) for _ in range(megabytes))
    if part == "xl/worksheets/sheet1.xml":
        data = bytearray(hand_xlsx(blanks))
    else:
        data = bytearray(hand_xlsx([], extra={part: blanks}))
    name = part.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        name_length = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_length] == name:
            if struct.unpack_from("<I", data, local + 22)[0] != 0xFFFFFFFF:
                struct.pack_into("<I", data, local + 22, 100)
            break
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_length] == name:
            size_offset = central + 24
            if struct.unpack_from("<I", data, size_offset)[0] == 0xFFFFFFFF:
                extra_length = struct.unpack_from("<H", data, central + 30)[0]
                extra_start = central + 46 + name_length
                _patch_zip64(data, extra_start, extra_length)
            else:
                struct.pack_into("<I", data, size_offset, 100)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def _patch_zip64(data, start, length):
    """Rewrite the uncompressed size in a zip64 extra field (the first 8-byte value)."""
    position = start
    while position < start + length:
        tag, size = struct.unpack_from("<HH", data, position)
        if tag == 0x0001:
            struct.pack_into("<Q", data, position + 4, 100)
            return
        position += 4 + size


ENTITY_BOMB = (
    '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">'
    '<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">'
    '<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>'
)


def entity_bomb_xlsx():
    return hand_xlsx(['<row r="1"><c t="inlineStr"><is><t>&h;</t></is></c></row>'], ENTITY_BOMB)


def read_back(data):
    """Values of the first sheet of .xlsx bytes (header included)."""
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def encrypted_workbook():
    """The shape Excel saves a password-protected .xlsx in: an OLE compound file whose
    directory holds ``EncryptionInfo`` and ``EncryptedPackage`` streams (contents left out:
    only the directory tells what the file is)."""
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIII", header, 44, 1, 0, 0, 0x1000, 0xFFFFFFFE)  # FAT, directory
    struct.pack_into("<I", header, 76, 1)  # the FAT is sector 1
    directory = b"".join(
        _ole_entry(name, kind, size)
        for name, kind, size in (
            ("Root Entry", 5, 0),
            ("EncryptionInfo", 2, 0),
            ("EncryptedPackage", 2, 0),
        )
    )
    directory += b"\x00" * (512 - len(directory))
    fat = struct.pack("<II", 0xFFFFFFFE, 0xFFFFFFFD) + b"\xff" * 504
    return bytes(header) + directory + fat


def _ole_entry(name, kind, size):
    encoded = (name + "\x00").encode("utf-16-le")
    entry = bytearray(128)
    entry[: len(encoded)] = encoded
    struct.pack_into("<HBB", entry, 64, len(encoded), kind, 1)
    struct.pack_into("<III", entry, 68, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    struct.pack_into("<IQ", entry, 116, 0xFFFFFFFE, size)
    return bytes(entry)


_CHILD = """
import json, os, resource, sys, time
import django
django.setup()
from django.utils import translation
from oscar_loyalty import excel
translation.activate("en")
data = open(sys.argv[1], "rb").read()
with open("/proc/self/statm") as statm:
    size = int(statm.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + int(sys.argv[2]) * 2**20, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    result = {"rows": len(excel.read_file(data, "cards.xlsx").rows)}
except excel.SpreadsheetError as exc:
    result = {"refused": str(exc)}
result["seconds"] = time.perf_counter() - started
result["megabytes"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(result))
"""


def bounded_read(data, megabytes=300, seconds=30):
    """``excel.read_file`` of ``data`` in a child process that may grow ``megabytes`` above
    its size after start-up and is killed after ``seconds`` (the test then fails, as it
    does when memory runs out). Returns ``{"refused": message}`` or ``{"rows": count}``,
    with the seconds the read took and its peak memory growth in MB."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{root / 'sandbox'}")
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as file:
        file.write(data)
        file.flush()
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, file.name, str(megabytes)],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds,
            cwd=root,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])
