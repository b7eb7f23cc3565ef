"""Reading an import table's cells: amounts, phones, card numbers, headers
(``card_import.cells``, ``card_import.rows``)."""

import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from oscar_loyalty import excel, phones
from oscar_loyalty.card_import import cells, rows
from oscar_loyalty.exceptions import PhoneInvalid

D = Decimal


def test_the_cells_of_a_table_are_read_without_django_set_up_or_a_database():
    """``cells`` guesses columns and parses amounts on any table: it loads no models."""
    code = (
        "import sys; from decimal import Decimal; from oscar_loyalty.card_import import cells; "
        "assert cells.parse_amount('1 000,50') == Decimal('1000.50'); "
        "print(sorted(m for m in sys.modules if m.startswith(('django.db', 'oscar.'))))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "text, value",
    [
        ("", None),
        ("100", D("100")),
        ("1 000", D("1000")),
        ("1\u00a0000,50", D("1000.50")),  # Excel's no-break space and decimal comma
        ("12,5", D("12.5")),
        ("12.5", D("12.5")),
        ("-50", D("-50")),
        ("\u221250", D("-50")),  # a typographic minus
        ("+20", D("20")),
        ("1,234.56", D("1234.56")),
        ("1.234,56", D("1234.56")),
        ("1.000.000", D("1000000")),
        ("0", D("0")),
    ],
)
def test_amounts_as_managers_type_them(text, value):
    assert cells.parse_amount(text) == value


@pytest.mark.parametrize(
    "text, reason",
    [
        ("abc", "is not a number"),
        ("10 руб", "is not a number"),
        ("1,500", "ambiguous"),
        ("12.345", "ambiguous"),
        ("0.125", "ambiguous"),
        ("1.5.5", "is not a number"),
        ("-", "is not a number"),
        ("1,005.255", "more than two decimal places"),
        ("10000000000000", "too large"),
    ],
)
def test_amounts_refused_with_a_reason(text, reason):
    with pytest.raises(cells.AmountError, match=reason):
        cells.parse_amount(text)


@pytest.mark.parametrize(
    "header, role",
    [
        ("Телефон", cells.PHONE),
        ("Номер карты", cells.NUMBER),
        ("Пополнение", cells.TOPUP),
        ("Актуальный баланс", cells.BALANCE),
        ("Phone", cells.PHONE),
        ("Card number", cells.NUMBER),
        ("Top-up", cells.TOPUP),
        ("Actual balance", cells.BALANCE),
        ("ТЕЛЕФОН КЛИЕНТА", cells.PHONE),
        ("Баланс, баллы", cells.BALANCE),
        ("Комментарий", ""),
        ("", ""),
    ],
)
def test_header_words_in_russian_or_english(header, role):
    assert cells.role_of_header(header) == role


def table(text):
    return excel.read_pasted(text)


def test_mapping_is_guessed_from_the_header_in_any_order():
    t = table("Актуальный баланс\tКомментарий\tТелефон\tНомер карты\n5\tx\t79123456789\t\n")
    assert cells.guess_header(t)
    assert cells.guess_mapping(t, True) == [cells.BALANCE, "", cells.PHONE, cells.NUMBER]


def test_mapping_is_guessed_from_the_cells_without_a_header():
    t = table("100\t79123456789\t4000000000006\t500\n\t79123456790\t\t-5\n")
    assert not cells.guess_header(t)
    mapping = cells.guess_mapping(t, False)
    assert mapping == [cells.TOPUP, cells.PHONE, cells.NUMBER, cells.BALANCE]


def test_columns_the_header_does_not_name_are_guessed_from_their_cells():
    t = table(
        "Контакт\tКлиент\tАктуальный баланс\tБонусы за март\n"
        "79123456789\tОльга\t500\t20\n8 912 345-67-90\tИван\t10\t\n"
    )
    assert cells.guess_mapping(t, True) == [cells.PHONE, "", cells.BALANCE, cells.TOPUP]


def test_a_header_of_unknown_words_is_still_a_header():
    t = table("Клиент\tДеньги\n79123456789\t5\n")
    assert cells.guess_header(t)


def test_mapping_errors():
    assert cells.mapping_errors([cells.PHONE, cells.PHONE])
    assert cells.mapping_errors([cells.TOPUP, ""])
    assert not cells.mapping_errors([cells.NUMBER, cells.BALANCE])


def parse(values, mapping=(cells.PHONE, cells.NUMBER, cells.TOPUP, cells.BALANCE)):
    return rows.parse_row(2, tuple(values), list(mapping), phones.Reader("RU"))


def test_a_row_is_read_by_the_mapping():
    row = parse(["8 (912) 345-67-89", "4000 0000 0000 6", "-10,5", "0"])
    assert row.errors == []
    assert (row.phone, row.number, row.topup, row.balance) == (
        "79123456789",
        "4000000000006",
        D("-10.50"),
        D("0"),
    )


def test_a_zero_top_up_means_nothing_and_blank_cells_stay_blank():
    row = parse(["79123456789", "", "0", ""])
    assert (row.number, row.topup, row.balance) == ("", None, None)


@pytest.mark.parametrize(
    "values, column, reason",
    [
        (["12345", "", "", ""], cells.PHONE, "not a valid phone number"),
        (["79123456789", "4000000000007", "", ""], cells.NUMBER, "check digit"),
        (["79123456789", "12ab", "", ""], cells.NUMBER, "digits only"),
        (["79123456789", "", "", "-5"], cells.BALANCE, "cannot be negative"),
        (["79123456789", "", "1,500", ""], cells.TOPUP, "ambiguous"),
        (["", "", "5", ""], cells.PHONE, "Fill in the phone or the card number"),
    ],
)
def test_row_errors_say_which_column_and_why(values, column, reason):
    row = parse(values)
    assert [role for role, _message in row.errors] == [column]
    assert reason in row.errors[0][1]


def test_a_card_number_excel_cut_to_fifteen_digits_says_so():
    row = parse(["79123456789", "1234567890123450", "", ""])
    assert "15 digits" in row.errors[0][1]


# --- the fast phone path agrees with phones.normalise ---------------------------------------


def _slow(text, region):
    try:
        return phones.normalise(text, region)
    except PhoneInvalid:
        return None


def _fast(reader, text):
    try:
        return reader.normalise(text)
    except PhoneInvalid:
        return None


@pytest.mark.parametrize("region", ["RU", "KZ", "GB", "US", "DE"])
def test_phone_reader_matches_phones_normalise(region):
    reader = phones.Reader(region)
    code = reader.code
    generator = random.Random(region)
    samples = []
    for _ in range(4000):
        length = generator.choice([9, 10, 10, 10, 11, 12])
        digits = "".join(generator.choice("0123456789") for _ in range(length))
        samples.append(code + digits)
        samples.append("+" + code + " " + digits[:3] + " " + digits[3:])
        samples.append("8" + digits)
    samples += ["79123456789", "+7 (912) 345-67-89", "77012345678", "78001234567", "7800123456"]
    disagreements = [s for s in samples if _fast(reader, s) != _slow(s, region)]
    assert disagreements == []
    assert sum(1 for s in samples if _slow(s, region)) > 100  # the sample has valid phones


def test_phone_reader_takes_the_fast_path_for_canonical_phones(monkeypatch):
    reader = phones.Reader("RU")
    monkeypatch.setattr(phones, "normalise", lambda *a, **k: pytest.fail("slow path taken"))
    assert reader.normalise("79123456789") == "79123456789"
    assert reader.normalise("+7 912 345-67-89") == "79123456789"


@pytest.mark.parametrize(
    "phone, reason",
    [
        ("+7 912 ABC-68-62", "has letters"),
        ("+7 916 000-00-35;10", "has an extension (10)"),
        ("+7 916 000-00-35 доб. 12", "has an extension (12)"),
    ],
)
def test_a_phone_with_letters_or_an_extension_is_an_error_of_the_phone_column(phone, reason):
    row = parse([phone, "", "100", ""])
    assert row.phone == ""
    assert [role for role, _message in row.errors] == [cells.PHONE]
    assert reason in row.errors[0][1]


def test_a_nul_anywhere_in_a_csv_is_refused_with_its_line():
    lines = ["79123456789;100\n"] * 500 + ["79123456780;1\x0000\n"]
    data = "".join(lines).encode()
    assert data.index(b"\x00") > 4096  # past the part read to tell text from binary
    with pytest.raises(excel.SpreadsheetError, match="Line 501 holds a NUL character"):
        excel.read_file(data, "cards.csv")
    with pytest.raises(excel.SpreadsheetError, match="Line 2 holds a NUL character"):
        excel.read_pasted("79123456789\t100\n\x00\n")
