"""Old .xls and OpenDocument .ods workbooks read like .xlsx ones (``excel``)."""

import io
import zipfile
from datetime import date, datetime

import pytest
import xlwt

from oscar_loyalty import excel
from tests import excel_support as files

ODS_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
    'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
    'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)


def ods(rows, prolog=""):
    """A minimal .ods: its mimetype first and stored, as the format asks, and the rows'
    XML in content.xml."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Cards">'
        + "".join(rows)
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), excel.ODS_MIMETYPE.decode())
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", ODS_MANIFEST, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def text(value):
    return (
        f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'
    )


def cell(kind, attribute, value):
    return (
        f'<table:table-cell office:value-type="{kind}" office:{attribute}="{value}">'
        f"<text:p>{value}</text:p></table:table-cell>"
    )


def row(*cells, repeated=1):
    extra = f' table:number-rows-repeated="{repeated}"' if repeated > 1 else ""
    return f"<table:table-row{extra}>" + "".join(cells) + "</table:table-row>"


EMPTY_ROW = (
    '<table:table-row><table:table-cell table:number-columns-repeated="3"/></table:table-row>'
)
# LibreOffice ends a sheet with the rest of its rows, empty, in one repeated row.
LIBREOFFICE_TAIL = (
    '<table:table-row table:number-rows-repeated="1048571">'
    '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
)


def test_an_ods_sheet_reads_as_the_manager_sees_it():
    data = ods(
        [
            row(text("Телефон"), text("Пополнение"), text("Дата")),
            EMPTY_ROW,
            row(
                text("79123456789"),
                cell("float", "value", "100"),
                cell("date", "date-value", "2023-05-06"),
                cell("date", "date-value", "2024-01-02T03:04:05"),
                cell("boolean", "boolean-value", "true"),
                cell("float", "value", "12.5"),
            ),
            LIBREOFFICE_TAIL,
        ]
    )
    table = excel.read_file(data, "cards.ods")
    assert table.rows == [
        (1, ("Телефон", "Пополнение", "Дата")),
        (3, ("79123456789", "100", "2023-05-06 00:00:00", "2024-01-02 03:04:05", "1", "12.5")),
    ]


def test_an_ods_with_an_entity_is_refused():
    prolog = '<!DOCTYPE office:document-content [<!ENTITY a "79123456789">]>'
    message = str(_refusal(ods([row(text("&a;"))], prolog), "cards.ods"))
    assert message == "The workbook contains XML entity declarations, which are not allowed."


def test_ods_cells_repeated_past_the_cell_limit_are_refused_before_they_are_written_out():
    repeated = (
        '<table:table-cell table:number-columns-repeated="10000" office:value-type="float"'
        ' office:value="1"><text:p>1</text:p></table:table-cell>'
    )
    data = ods([row(repeated, repeated=1000)])
    assert len(data) < 10_000
    result = files.bounded_read(data)
    assert result["refused"].startswith("The sheet spreads over 1000 rows and up to 10000 columns")


def test_ods_rows_repeated_past_the_row_limit_are_refused(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_ROWS = 100
    data = ods([row(text("79123456789"), repeated=101)])
    assert "more than 100 rows" in str(_refusal(data, "cards.ods"))


def xls(rows):
    """An old Excel workbook written by xlwt: text, numbers and a date with a date format."""
    book = xlwt.Workbook()
    sheet = book.add_sheet("Cards")
    dated = xlwt.easyxf(num_format_str="DD.MM.YYYY")
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, (date, datetime)):
                sheet.write(r, c, value, dated)
            else:
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_an_xls_sheet_reads_as_the_manager_sees_it():
    data = xls(
        [
            ["Телефон", "Номер карты", "Пополнение", "Дата"],
            [],
            ["79123456789", "0012345678903", 100, date(2023, 5, 6)],
            [79123456790, 1234567890123452, 12.5, None],
        ]
    )
    table = excel.read_file(data, "cards.xls")
    assert table.rows == [
        (1, ("Телефон", "Номер карты", "Пополнение", "Дата")),
        (3, ("79123456789", "0012345678903", "100", "2023-05-06 00:00:00")),
        (4, ("79123456790", "1234567890123452", "12.5")),
    ]


def test_an_xls_with_its_extension_changed_to_xlsx_still_reads():
    data = xls([["79123456789", 5]])
    assert excel.read_file(data, "cards.xlsx").rows == [(1, ("79123456789", "5"))]


def test_an_ole_file_that_is_no_workbook_is_refused_as_an_old_xls():
    data = bytearray(files.encrypted_workbook())
    data[512 + 128 * 2 + 64] = 0  # no longer an EncryptedPackage stream: just an OLE file
    message = str(_refusal(bytes(data), "cards.xls"))
    assert message.startswith("Old .xls workbook that could not be read")


def test_a_broken_xls_is_refused_as_damaged():
    data = xls([["79123456789", 5]] * 50)
    message = str(_refusal(data[:2048], "cards.xls"))
    assert "could not be read" in message


def _refusal(data, name):
    with pytest.raises(excel.SpreadsheetError) as info:
        excel.read_file(data, name)
    return info.value
