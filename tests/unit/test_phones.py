"""Phones: every way a customer writes one number is the same phone."""

import pytest
from django.test import override_settings

from oscar_loyalty import phones
from oscar_loyalty.exceptions import PhoneInvalid


@pytest.mark.parametrize(
    "raw",
    [
        "8 912 345-67-89",
        "+7 (912) 345 67 89",
        "79123456789",
        "+79123456789",
        "8(912)3456789",
        "912 345 67 89",
        "  +7-912-345-67-89  ",
        "7 912 345 67 89",
    ],
)
def test_every_spelling_of_a_russian_mobile_is_one_phone(raw):
    assert phones.normalise(raw) == "79123456789"


def test_a_moscow_landline_in_national_form():
    assert phones.normalise("8 (495) 123-45-67") == "74951234567"


@override_settings(OSCAR_LOYALTY_PHONE_REGION="GB")
def test_the_default_region_is_a_setting():
    assert phones.normalise("07400 123456") == "447400123456"
    # Written with "+", a number keeps its own country whatever the default region.
    assert phones.normalise("+7 912 345-67-89") == "79123456789"


def test_an_explicit_region_wins_over_the_setting():
    assert phones.normalise("020 7946 0018", region="GB") == "442079460018"


@pytest.mark.parametrize(
    "raw, says",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not a phone", "is not a phone number"),
        ("12345", "is not a valid phone number"),
        ("+7 912 345", "is not a valid phone number"),
        ("8 912 345-67-89-00", "is not a valid phone number"),
    ],
)
def test_a_wrong_phone_is_refused_saying_what_is_wrong(raw, says):
    with pytest.raises(PhoneInvalid, match=says) as caught:
        phones.normalise(raw)
    if raw.strip():
        assert raw in str(caught.value)


def test_normalise_or_none_answers_none_for_a_wrong_phone():
    assert phones.normalise_or_none("12345") is None
    assert phones.normalise_or_none(None) is None
    assert phones.normalise_or_none("8 912 345-67-89") == "79123456789"


def test_a_canonical_phone_is_shown_readably():
    assert phones.display("79123456789") == "+7 912 345-67-89"
    assert phones.display("") == ""


@pytest.mark.parametrize("raw", ["+7 912 ABC-68-62", "8 800 FLOWERS", "+7 912 345-67-89 / x 12"])
def test_a_phone_with_letters_is_refused_not_read_as_keypad_digits(raw):
    with pytest.raises(PhoneInvalid, match="has letters") as caught:
        phones.normalise(raw)
    assert raw in str(caught.value)


@pytest.mark.parametrize(
    "raw, extension",
    [
        ("+7 916 000-00-35;10", "10"),
        ("+7 916 000-00-35 доб. 12", "12"),
        ("+7 916 000-00-35 ext. 5", "5"),
        ("+7 916 000-00-35 x123", "123"),
        ("8 916 000-00-35#7", "7"),
    ],
)
def test_a_phone_with_an_extension_is_refused_not_stored_without_it(raw, extension):
    with pytest.raises(PhoneInvalid, match=f"has an extension \\({extension}\\)"):
        phones.normalise(raw)


@pytest.mark.parametrize("raw", ["79123456789, 79123456780", "+7 912 345 67 89 *", "7+9123456789"])
def test_a_phone_with_other_characters_is_refused(raw):
    with pytest.raises(PhoneInvalid, match="is not a phone number"):
        phones.normalise(raw)


@pytest.mark.parametrize("raw", ["8 (912) 345–67–89", "+7\u00a0912\u00a0345\u00a067\u00a089"])
def test_typographic_dashes_and_no_break_spaces_still_separate_digits(raw):
    assert phones.normalise(raw) == "79123456789"


def test_the_import_reader_refuses_what_normalise_refuses():
    reader = phones.Reader("RU")
    for raw in ("+7 912 ABC-68-62", "+7 916 000-00-35;10", "+7 916 000-00-35 доб. 12"):
        with pytest.raises(PhoneInvalid):
            reader.normalise(raw)
