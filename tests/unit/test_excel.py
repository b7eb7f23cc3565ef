"""Reading spreadsheets safely and writing them without formula injection (``excel``)."""

import csv
import io
import time

import openpyxl
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation

from oscar_loyalty import excel
from tests import excel_support as files


def read(data, name="cards.xlsx"):
    return excel.read_file(data, name)


def refused(data, name="cards.xlsx"):
    with pytest.raises(excel.SpreadsheetError) as info:
        read(data, name)
    return str(info.value)


# --- cells come back as the manager typed them -------------------------------------------


def test_card_numbers_and_phones_are_read_as_text():
    data = files.xlsx(
        [
            ["Телефон", "Номер карты", "Пополнение"],
            ["79123456789", "0012345678903", "100"],  # text cells keep their leading zeros
            [79123456790, 1234567890123452, 12.5],  # number cells: no exponent, no ".0"
            [None, 1.23e15, 0.1],
        ]
    )
    table = read(data)
    assert table.rows == [
        (1, ("Телефон", "Номер карты", "Пополнение")),
        (2, ("79123456789", "0012345678903", "100")),
        (3, ("79123456790", "1234567890123452", "12.5")),
        (4, ("", "1230000000000000", "0.1")),
    ]


def test_blank_rows_are_skipped_but_rows_keep_their_numbers():
    table = excel.read_pasted("Телефон\tПополнение\n\n79123456789\t5\n\t\n79123456790\t6\n")
    assert [n for n, _cells in table.rows] == [1, 3, 5]
    assert table.width == 2


def test_pasted_cells_with_quotes_and_line_breaks_as_excel_copies_them():
    text = 'Phone\tNote\r\n79123456789\t"two\r\nlines"\r\n79123456790\t"say ""hi"""\r\n'
    table = excel.read_pasted(text)
    assert table.rows[1] == (2, ("79123456789", "two\r\nlines"))
    assert table.rows[2] == (3, ("79123456790", 'say "hi"'))


def test_russian_excel_csv_in_windows_1251_with_semicolons():
    data = "Телефон;Номер карты;Пополнение\n79123456789;0012345678903;1 000,50\n".encode("cp1251")
    table = read(data, "cards.csv")
    assert table.rows[0][1] == ("Телефон", "Номер карты", "Пополнение")
    assert table.rows[1][1] == ("79123456789", "0012345678903", "1 000,50")


def test_utf8_csv_with_a_bom_and_commas():
    data = "\ufeffPhone,Card number\n79123456789,0012345678903\n".encode()
    assert read(data, "cards.csv").rows[0][1] == ("Phone", "Card number")


def test_an_apostrophe_our_export_put_before_a_formula_is_taken_off():
    table = excel.read_pasted("'-50\t'=1+1\t'0012\n")
    assert table.rows[0][1] == ("-50", "=1+1", "'0012")


def test_formula_cells_give_their_value_never_the_formula():
    workbook = openpyxl.Workbook()
    workbook.active.append(["79123456789", "=1+1"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stores no cached value, so the cell reads as blank rather than "=1+1".
    assert read(buffer.getvalue()).rows == [(1, ("79123456789",))]


def test_dates_booleans_and_rich_text_read_as_excel_shows_them():
    from datetime import date, datetime

    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    workbook = openpyxl.Workbook()
    workbook.active.append(
        [
            datetime(2024, 1, 2, 3, 4, 5),
            date(2023, 5, 6),
            True,
            CellRichText("Анна ", TextBlock(InlineFont(b=True), "Петрова")),
        ]
    )
    workbook.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read(buffer.getvalue()).rows == [
        (1, ("2024-01-02 03:04:05", "2023-05-06 00:00:00", "1", "Анна Петрова"))
    ]


def test_hand_written_sheet_xml_cells_in_any_order_and_phonetic_runs_left_out():
    strings = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<si><r><t>Ив</t></r><r><t>анов</t></r><rPh sb="0" eb="1"><t>ива</t></rPh></si></sst>'
    )
    rows = [
        '<row r="2"><c r="C2"><v>5</v></c><c r="A2" t="s"><v>0</v></c>'
        '<c r="B2" t="str"><f>A2</f><v>cached</v></c></row>',
        '<row><c t="inlineStr"><is><t>без номера</t></is></c><c t="e"><v>#N/A</v></c></row>',
    ]
    table = read(files.hand_xlsx(rows, shared_strings=strings))
    assert table.rows == [(2, ("Иванов", "cached", "5")), (3, ("без номера", "#N/A"))]


def test_a_chart_sheet_before_the_table_is_passed_over():
    workbook = openpyxl.Workbook()
    workbook.create_chartsheet("Chart", 0)
    workbook["Sheet"].append(["79123456789", 100])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read(buffer.getvalue()).rows == [(1, ("79123456789", "100"))]


def test_columns_beyond_fifty_are_ignored_with_a_note():
    table = excel.read_pasted("\t".join(str(i) for i in range(60)))
    assert table.width == excel.MAX_COLUMNS
    assert table.notes


# --- limits and hostile files ----------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_FILE_BYTES = 1000
    message = refused(b"7" * 1001, "cards.csv")
    assert "larger than" in message


def test_pasted_text_over_the_size_limit_is_refused(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_FILE_BYTES = 1000
    with pytest.raises(excel.SpreadsheetError, match="larger than"):
        excel.read_pasted("7" * 1001)


def test_zip_bomb_is_refused_before_anything_unpacks():
    data = files.zip_bomb_xlsx(megabytes=300)
    assert len(data) < 1024 * 1024  # 300 MB of XML in a third of a megabyte
    started = time.perf_counter()
    message = refused(data)
    assert "unpacks to more than 200 MB" in message
    assert time.perf_counter() - started < 1


def test_zip_bomb_that_lies_about_its_size_is_cut_short():
    message = refused(files.lying_zip_bomb_xlsx(megabytes=50))
    assert "damaged" in message


def test_uncompressed_limit_is_a_setting(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024
    assert "unpacks to more than 2 MB" in refused(files.zip_bomb_xlsx(megabytes=3))


def test_xml_entity_bomb_is_refused():
    started = time.perf_counter()
    assert refused(files.entity_bomb_xlsx()) == (
        "The workbook contains XML entity declarations, which are not allowed."
    )
    assert time.perf_counter() - started < 1


def test_entity_in_shared_strings_is_refused_too():
    strings = (
        f'<?xml version="1.0"?>{files.ENTITY_BOMB}'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>&h;</t></si></sst>"
    )
    data = files.hand_xlsx(['<row r="1"><c t="s"><v>0</v></c></row>'], shared_strings=strings)
    assert "entity" in refused(data)


def test_external_entities_are_refused():
    prolog = '<!DOCTYPE worksheet [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    data = files.hand_xlsx(
        ['<row r="1"><c t="inlineStr"><is><t>&secret;</t></is></c></row>'], prolog
    )
    assert "entity" in refused(data)


def test_a_million_row_workbook_is_refused_by_its_declared_size():
    data = files.million_rows_xlsx()
    started = time.perf_counter()
    assert "more than 200000 rows" in refused(data)
    assert time.perf_counter() - started < 1


def test_a_million_row_workbook_that_hides_its_size_is_counted(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_ROWS = 5000
    data = files.million_rows_xlsx(dimension=False)
    started = time.perf_counter()
    assert "more than 5000 rows" in refused(data)
    # openpyxl would parse all 60 MB of XML just to learn the size; the count stops early.
    assert time.perf_counter() - started < 2


def test_a_million_row_csv_is_refused():
    data = b"".join(b"7912%07d;1\n" % n for n in range(1_000_000))
    assert "more than 200000 rows" in refused(data, "cards.csv")


def test_a_workbook_with_a_wrong_dimension_is_read_whole():
    rows = [[f"7912345678{n}"] for n in range(5)]
    data = files.hand_xlsx(files.rows_xml(rows), dimension="A1:A1")
    assert len(read(data).rows) == 5


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"", "cards.csv", "The file is empty."),
        (bytes(range(256)) * 10, "cards.bin", "neither an .xlsx workbook nor a text .csv"),
        (b"PK\x03\x04" + b"\x00" * 100, "cards.xlsx", "not a valid .xlsx workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "cards.xls", "Old .xls"),
        (b"just text", "cards.xlsx", "not a valid .xlsx workbook"),
        (b"\n\n ; ;\n", "cards.csv", "no rows with data"),
    ],
)
def test_broken_files_are_refused_with_a_reason(data, name, message):
    assert message in refused(data, name)


def test_a_truncated_workbook_is_refused():
    data = files.xlsx([["79123456789"]] * 50)
    assert "not a valid .xlsx" in refused(data[: len(data) // 2])


def test_a_zip_that_is_not_a_workbook_is_refused():
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "zip archive, not an Excel workbook" in refused(buffer.getvalue())


def test_a_workbook_with_malformed_xml_is_refused():
    data = files.hand_xlsx(['<row r="1"><c t="inlineStr"><is><t>7912</t></is></c>'])
    assert "damaged" in refused(data)


# --- start-up check --------------------------------------------------------------------------


def test_system_check_passes_with_defusedxml():
    assert excel.xml_is_defused()
    assert excel.check_defusedxml() == []


def test_system_check_fails_and_reading_stops_without_defusedxml(monkeypatch):
    import openpyxl.xml

    monkeypatch.setattr(openpyxl.xml, "DEFUSEDXML", False)
    errors = excel.check_defusedxml()
    assert [error.id for error in errors] == ["oscar_loyalty.E001"]
    with pytest.raises(ImproperlyConfigured):
        read(files.xlsx([["79123456789"]]))


def test_the_check_is_registered_with_django():
    from django.core import checks

    assert excel.check_defusedxml in checks.registry.registry.registered_checks


# --- writing: formula injection --------------------------------------------------------------

DANGEROUS = ["=1+1", "+79123456789", "-5", "@SUM(A1)", "\tcmd", "\rcmd"]


def test_xlsx_text_that_looks_like_a_formula_gets_an_apostrophe():
    buffer = io.BytesIO()
    excel.write_table(buffer, "xlsx", ["Name", "Points"], [(text, -5) for text in DANGEROUS])
    rows = files.read_back(buffer.getvalue())
    assert rows[0] == ["Name", "Points"]
    # (XML turns a carriage return into a line feed; the apostrophe still comes first)
    expected = ["'" + text.replace("\r", "\n") for text in DANGEROUS]
    assert [row[0] for row in rows[1:]] == expected
    assert {row[1] for row in rows[1:]} == {-5}  # numbers stay numbers


def test_no_xlsx_cell_is_stored_as_a_formula():
    buffer = io.BytesIO()
    excel.write_table(buffer, "xlsx", ["=HEADER"], [(text,) for text in DANGEROUS])
    workbook = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))
    for row in workbook.active.iter_rows():
        for cell in row:
            assert cell.data_type != "f"


def test_csv_text_that_looks_like_a_formula_gets_an_apostrophe():
    buffer = io.BytesIO()
    with translation.override("en"):
        excel.write_table(buffer, "csv", ["Name"], [(text,) for text in DANGEROUS])
    text = buffer.getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[0] for row in rows[1:]] == ["'" + text for text in DANGEROUS]


def test_csv_for_russian_excel_uses_semicolons_and_decimal_commas():
    from decimal import Decimal

    buffer = io.BytesIO()
    with translation.override("ru"):
        excel.write_table(buffer, "csv", ["Номер", "Баланс"], [("0012345678903", Decimal("12.50"))])
    data = buffer.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    assert data.decode("utf-8-sig").splitlines() == ["Номер;Баланс", "0012345678903;12,50"]


def test_an_exported_table_reads_back_the_same():
    buffer = io.BytesIO()
    excel.write_table(
        buffer, "xlsx", ["Телефон", "Номер карты"], [("79123456789", "0012345678903")]
    )
    assert read(buffer.getvalue()).rows[1] == (2, ("79123456789", "0012345678903"))
