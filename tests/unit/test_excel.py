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


def number_cells(*values):
    return files.hand_xlsx(
        ['<row r="1">' + "".join(f"<c><v>{v}</v></c>" for v in values) + "</row>"]
    )


def test_float_noise_below_a_cent_is_read_as_excel_shows_the_number():
    data = number_cells("0.30000000000000004", "1234.5678", "2.6749999999999998", "-0.1")
    assert read(data).rows == [(1, ("0.3", "1234.5678", "2.675", "-0.1"))]


def test_long_numbers_keep_their_digits_when_rounding_would_move_them_a_cent():
    data = number_cells("12345678901234.56", "1.234567890123452E+15", "100.0")
    # the second is a 16-digit card number Excel kept as a number: the import refuses it
    assert read(data).rows == [(1, ("12345678901234.56", "1234567890123452", "100"))]


def test_rows_out_of_order_in_the_sheet_are_all_read_in_order():
    rows = [
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>7912000000{n}</t></is></c></row>'
        for n in (1, 3, 2, 5)
    ]
    table = read(files.hand_xlsx(rows))
    assert table.rows == [(n, (f"7912000000{n}",)) for n in (1, 2, 3, 5)]


def test_a_row_number_given_twice_is_refused_with_its_number():
    rows = [f'<row r="{n}"><c t="inlineStr"><is><t>{n}</t></is></c></row>' for n in (1, 2, 1)]
    assert "Row 1 appears twice" in refused(files.hand_xlsx(rows))


def test_an_empty_formatted_last_row_as_excel_writes_it_counts_for_nothing():
    rows = [*files.rows_xml([["Телефон"], ["79123456789"]])]
    rows.append('<row r="1048576" spans="1:4" s="1" customFormat="1" ht="15"/>')
    data = files.hand_xlsx(rows, dimension="A1:D1048576")
    assert read(data).rows == [(1, ("Телефон",)), (2, ("79123456789",))]


def test_rows_with_data_are_counted_not_row_numbers(settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_ROWS = 2
    rows = ['<row r="5"><c><v>1</v></c></row>', '<row r="900000"><c><v>2</v></c></row>']
    assert [n for n, _cells in read(files.hand_xlsx(rows)).rows] == [5, 900000]
    rows.append('<row r="900001"><c><v>3</v></c></row>')
    assert "more than 2 rows" in refused(files.hand_xlsx(rows))


def test_a_row_past_the_last_row_of_excel_is_refused_as_damaged():
    data = files.hand_xlsx(['<row r="1048577"><c><v>1</v></c></row>'])
    assert "damaged" in refused(data)


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


def test_a_workbook_is_refused_once_its_rows_pass_the_limit():
    assert "more than 200000 rows" in refused(files.million_rows_xlsx(300_000))


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


# --- hostile workbooks stay cheap --------------------------------------------------------
# Each file is built small on disk. ``files.bounded_read`` reads it in a child process that
# is stopped past 300 MB above its start-up size or after 30 seconds.

SMALL_PARTS = [
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
]


@pytest.fixture
def inflated(monkeypatch):
    """A running count of the bytes ``zipfile`` inflates."""
    import zipfile

    count = [0]
    real = zipfile._get_decompressor

    class Counting:
        def __init__(self, decompressor):
            self.decompressor = decompressor

        def decompress(self, data, max_length=0):
            out = self.decompressor.decompress(data, max_length)
            count[0] += len(out)
            return out

        def __getattr__(self, name):
            return getattr(self.decompressor, name)

    monkeypatch.setattr(zipfile, "_get_decompressor", lambda kind: Counting(real(kind)))
    return count


@pytest.mark.parametrize("part", SMALL_PARTS)
def test_a_small_part_that_lies_about_its_size_is_not_inflated_whole(part, inflated):
    data = files.lying_zip_bomb_xlsx(megabytes=64, part=part)
    assert len(data) < 1024 * 1024
    inflated[0] = 0
    assert "damaged" in refused(data)
    assert inflated[0] < 1024 * 1024  # not 64 MB


# A comment of a megabyte: padding that keeps a part valid XML.
PADDING = "<!--" + " " * (1024 * 1024) + "-->"
STYLES = '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'


@pytest.mark.parametrize("part", SMALL_PARTS)
def test_a_small_part_of_valid_xml_past_its_limit_is_refused_before_it_is_parsed(part):
    text = {
        "[Content_Types].xml": files.CONTENT_TYPES,
        "xl/workbook.xml": files.WORKBOOK,
        "xl/_rels/workbook.xml.rels": files.WORKBOOK_RELS,
        "xl/styles.xml": STYLES,
    }[part]
    # valid XML, twice the part limit and far under the unpacked one (190 MB costs the same)
    data = files.hand_xlsx(files.rows_xml([["79123456789"]]), extra={part: [text, *[PADDING] * 8]})
    assert len(data) < 1024 * 1024
    result = files.bounded_read(data)
    assert result["refused"] == (
        f"The part {part} of the workbook unpacks to more than 2 MB, far more than a real "
        "workbook holds."
    )


def test_the_small_part_limit_is_a_setting(settings):
    data = files.hand_xlsx(
        files.rows_xml([["79123456789"]]), extra={"xl/styles.xml": [STYLES, PADDING]}
    )
    settings.OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES = 1024 * 1024
    assert "xl/styles.xml of the workbook unpacks to more than 1 MB" in refused(data)
    settings.OSCAR_LOYALTY_IMPORT_MAX_PART_BYTES = 2 * 1024 * 1024
    assert read(data).rows == [(1, ("79123456789",))]


VALUES = ["45000", "45000", "45000.5", "1.5"]


def test_the_styles_still_tell_which_numbers_are_dates():
    styles = (
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
        '<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>'
        '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="14"/>'
        '<xf numFmtId="46"/></cellXfs>'
        '<dxfs count="1"><dxf><numFmt numFmtId="165" formatCode="yyyy"/></dxf></dxfs></styleSheet>'
    )
    cells = [f'<c s="{style}"><v>{value}</v></c>' for style, value in enumerate(VALUES)]
    data = files.hand_xlsx(
        ['<row r="1">' + "".join(cells) + "</row>"], extra={"xl/styles.xml": styles}
    )
    assert read(data).rows == [
        (1, ("45000", "2023-03-15 00:00:00", "2023-03-15 12:00:00", "1 day, 12:00:00"))
    ]


SHARED_OPEN = '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def shared(*strings):
    return SHARED_OPEN + "".join(f"<si><t>{text}</t></si>" for text in strings) + "</sst>"


def test_a_50_mb_shared_string_is_refused():
    strings = [SHARED_OPEN, "<si><t>7912</t></si><si><t>", *["a" * (1024 * 1024)] * 50]
    strings.append("</t></si></sst>")
    data = files.hand_xlsx(['<row r="1"><c t="s"><v>1</v></c></row>'], shared_strings=strings)
    assert len(data) < 1024 * 1024
    assert files.bounded_read(data)["refused"] == (
        "Text number 2 of the workbook's shared strings is longer than 32767 characters, "
        "more than Excel allows in a cell."
    )


def test_a_1_mb_shared_string_referenced_by_a_thousand_cells_is_refused():
    cells = '<c t="s"><v>0</v></c>' * 10
    rows = [f'<row r="{n}">{cells}</row>' for n in range(1, 101)]
    data = files.hand_xlsx(rows, shared_strings=shared("7" * (1024 * 1024)))
    message = files.bounded_read(data)["refused"]
    assert message.startswith("Text number 1 of the workbook's shared strings is longer")


def test_a_cell_of_excels_largest_text_is_read():
    data = files.hand_xlsx(files.rows_xml([["7" * 32767, "x"]]), shared_strings=shared("7" * 32767))
    assert [len(cell) for cell in read(data).rows[0][1]] == [32767, 1]


def test_a_huge_inline_text_is_refused_with_its_row_and_column():
    blocks = [
        '<row r="3"><c r="B3" t="inlineStr"><is><t>',
        *["7" * (1024 * 1024)] * 20,
        "</t></is></c></row>",
    ]
    result = files.bounded_read(files.hand_xlsx(blocks))
    assert result["refused"] == (
        "Row 3, column B holds more than 32767 characters, more than Excel allows in a cell."
    )


def test_one_long_shared_string_in_every_cell_is_refused_past_the_text_limit():
    cells = "".join('<c t="s"><v>0</v></c>' for _ in range(50))
    rows = [f'<row r="{n}">{cells}</row>' for n in range(1, 41)]
    data = files.hand_xlsx(rows, shared_strings=shared("7" * 32000 + " "))
    assert refused(data) == (
        "The table holds more than 50 million characters of text; split it into smaller files."
    )


def test_a_table_past_the_cell_limit_is_refused(monkeypatch):
    monkeypatch.setattr(excel, "MAX_CELLS", 5)
    assert len(excel.read_pasted("1\t2\n3\t\t4\n").rows) == 2  # the blank between counts
    assert refused(b"1,2\n3,,4\n5\n", "cards.csv") == (
        "The table has more than 5 cells; delete the columns the import does not need or "
        "split it into smaller files."
    )


def test_a_crafted_dimension_costs_nothing():
    data = files.hand_xlsx(
        files.rows_xml([["79123456789"]]), dimension="A1:A" + "1" * 100_000 + "x"
    )
    assert len(data) < 10_000
    assert files.bounded_read(data)["rows"] == 1


def test_an_encrypted_workbook_is_refused_as_protected_by_a_password():
    assert refused(files.encrypted_workbook(), "cards.xlsx") == (
        "This workbook is protected with a password: save it without a password and upload it "
        "again."
    )


def test_the_refusal_of_an_encrypted_workbook_is_translated():
    with translation.override("ru"):
        message = refused(files.encrypted_workbook())
    assert message == "Книга защищена паролем: сохраните её без пароля и загрузите снова."


def test_an_old_xls_that_merely_mentions_the_stream_name_is_still_an_old_xls():
    data = bytearray(files.encrypted_workbook())
    data[512 + 128 * 2 + 64] = 0  # the entry's name length no longer matches
    assert "Old .xls" in refused(bytes(data), "cards.xls")


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
