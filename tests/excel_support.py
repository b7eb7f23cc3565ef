# ruff: noqa: E501  (the XML parts of a workbook are long one-line strings)
"""Spreadsheets for the Excel tests: well-formed ones written by openpyxl and hostile ones
written by hand with ``zipfile`` (bombs, entity tricks, huge or broken files)."""

import io
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
    zip (parts may be a generator of millions of rows)."""
    buffer = io.BytesIO()
    extra = dict(extra or {})
    content_types = CONTENT_TYPES
    if shared_strings is not None:
        extra["xl/sharedStrings.xml"] = shared_strings
        content_types = content_types.replace("</Types>", SHARED_STRINGS_TYPE + "</Types>")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        for name, text in extra.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8"?>{prolog}{SHEET_OPEN}'.encode())
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(b"<sheetData>")
            for part in sheet_parts:
                sheet.write(part.encode() if isinstance(part, str) else part)
            sheet.write(b"</sheetData></worksheet>")
    return buffer.getvalue()


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


def lying_zip_bomb_xlsx(megabytes=50):
    """The same bomb with its sheet's sizes rewritten to claim 100 bytes unpacked."""
    data = bytearray(zip_bomb_xlsx(megabytes))
    name = b"xl/worksheets/sheet1.xml"
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
