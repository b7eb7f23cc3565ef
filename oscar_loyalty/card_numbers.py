"""Card numbers as text: cleaning what a manager typed and the Luhn check digit.

No database here, so that reading a spreadsheet's cells can check numbers without models.
``cards`` issues and generates numbers with these.
"""

from django.utils.translation import gettext as _

from oscar_loyalty import conf
from oscar_loyalty.exceptions import CardNumberInvalid

# Luhn doubles every other digit from the right, subtracting 9 above 9: 5 -> 10 -> 1.
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def check_digit(body):
    """The Luhn digit that makes ``body`` (ASCII digits) + digit pass ``is_valid_number``.

    Summed as bytes (each digit is its code, 48 + value): an import checks and generates
    a hundred thousand numbers, and this is several times faster than a loop of ``int``."""
    backwards = body[::-1].encode("ascii")
    total = sum(backwards[0::2].translate(_DOUBLED)) + sum(backwards[1::2]) - 48 * len(backwards)
    return str(-total % 10)


def is_valid_number(number):
    return number.isascii() and number.isdigit() and check_digit(number[:-1]) == number[-1]


def clean_number(raw):
    """Return a card number without spaces or dashes, or raise ``CardNumberInvalid``."""
    number = "".join(str(raw).split()).replace("-", "")
    if not (number.isascii() and number.isdigit()):
        raise CardNumberInvalid(
            _("The card number “%(number)s” must contain digits only.") % {"number": raw}
        )
    if not 6 <= len(number) <= 32:
        raise CardNumberInvalid(
            _("The card number “%(number)s” must have from 6 to 32 digits.") % {"number": raw}
        )
    if conf.card_number_check_digit and not is_valid_number(number):
        raise CardNumberInvalid(
            _("The card number “%(number)s” is mistyped: its check digit does not match.")
            % {"number": raw}
        )
    return number
