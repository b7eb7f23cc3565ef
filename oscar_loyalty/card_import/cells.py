"""The cells of an import table: which column holds what, and amounts and consents as a manager
types them.

No database access and no models: header guessing and amount parsing run on any table.
"""

import re
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from oscar_loyalty import phones
from oscar_loyalty.card_numbers import clean_number
from oscar_loyalty.exceptions import LoyaltyError, PhoneInvalid

PHONE, NUMBER, TOPUP, BALANCE, CONSENT = "phone", "number", "topup", "balance", "consent"
ROLES = (PHONE, NUMBER, TOPUP, BALANCE, CONSENT)
ROLE_LABELS = {
    PHONE: gettext_lazy("Phone"),
    NUMBER: gettext_lazy("Card number"),
    TOPUP: gettext_lazy("Top-up"),
    BALANCE: gettext_lazy("Actual balance"),
    CONSENT: gettext_lazy("Consent to messages"),
}
MAX_AMOUNT = Decimal("1000000000000")
CENT = Decimal("0.01")

# Header words (lower case, letters and digits only, "ё" read as "е") that name each column.
HEADERS = {
    PHONE: set(
        "телефон тел номертелефона мобильный моб телефонклиента "
        "phone phonenumber mobile tel telephone mobilephone".split()
    ),
    NUMBER: set(
        "номеркарты карта номер карталояльности cardnumber card cardno number loyaltycard".split()
    ),
    TOPUP: set("пополнение пополнить начислить начисление topup add addpoints credit".split()),
    BALANCE: set(
        "актуальныйбаланс баланс остаток текущийбаланс баллы бонусы "
        "actualbalance balance currentbalance points".split()
    ),
    CONSENT: set(
        "согласие согласиенарассылку согласиенасообщения рассылка подписка "
        "consent marketingconsent consenttomessages optin subscribed".split()
    ),
}
# Consent first: "Согласие на рассылку по карте" names the consent, not the card number.
HEADER_STEMS = (
    (CONSENT, ("соглас", "consent", "рассылк")),
    (PHONE, ("телефон", "phone", "mobile")),
    (NUMBER, ("карт", "card")),
    (TOPUP, ("пополн", "topup", "начисл")),
    (BALANCE, ("баланс", "balance", "остат")),
)


def column_letter(index):
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _header_key(text):
    return re.sub(r"[^0-9a-zа-я]", "", str(text).lower().replace("ё", "е"))


def role_of_header(text):
    """The role a header cell names, or ``""``."""
    key = _header_key(text)
    if not key:
        return ""
    for role, words in HEADERS.items():
        if key in words:
            return role
    for role, stems in HEADER_STEMS:
        if any(stem in key for stem in stems):
            return role
    return ""


class AmountError(ValueError):
    pass


class ConsentError(ValueError):
    pass


# Lower case, spaces dropped; Excel's own TRUE/FALSE read as 1/0 (``excel.cell_text``), and
# a Russian Excel shows them as ИСТИНА/ЛОЖЬ when the cell holds text.
CONSENT_VALUES = {
    **dict.fromkeys("yes y true 1 + да д истина".split(), True),
    **dict.fromkeys("no n false 0 - \u2212 \u2013 нет н ложь".split(), False),
}


def parse_consent(text):
    """A consent cell as a manager types it: ``True``, ``False``, or ``None`` when blank
    (the card's consent is left as it is). Anything else is refused, not guessed."""
    key = "".join(str(text).split()).lower().replace("ё", "е")
    if not key:
        return None
    try:
        return CONSENT_VALUES[key]
    except KeyError:
        raise ConsentError(
            _("“%(value)s” is not a yes or a no: write yes or no, да or нет, 1 or 0, + or −.")
            % {"value": text}
        ) from None


_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009\u2007'")


def parse_amount(text):
    """An amount as the manager typed it: ``1 234,50``, ``-100``, ``−5``, ``+20``, ``1,234.5``.

    Returns ``None`` for a blank cell. A lone separator followed by three digits (``1,500``)
    is refused as ambiguous rather than guessed.
    """
    if text.isascii() and text.isdigit():  # "250": most cells, read without the rules below
        return _checked_amount(Decimal(text), text)
    raw = text
    text = text.translate(_SPACES).replace("\u2212", "-").replace("\u2013", "-")
    if not text:
        return None
    sign = ""
    if text[0] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:]
    if not text or not re.fullmatch(r"[0-9.,]+", text):
        raise AmountError(_("“%(value)s” is not a number.") % {"value": raw})
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal_mark == "," else ",", "")
        text = text.replace(",", ".")
    elif "," in text or "." in text:
        mark = "," if "," in text else "."
        parts = text.split(mark)
        if len(parts) > 2:
            if all(len(p) == 3 for p in parts[1:]) and parts[0]:
                text = "".join(parts)  # thousands separators: 1.000.000
            else:
                raise AmountError(_("“%(value)s” is not a number.") % {"value": raw})
        elif len(parts[1]) == 3:
            raise AmountError(
                _("“%(value)s” is ambiguous: write it without a thousands separator.")
                % {"value": raw}
            )
        else:
            text = text.replace(",", ".")
    try:
        value = Decimal(sign + text)
    except InvalidOperation:
        raise AmountError(_("“%(value)s” is not a number.") % {"value": raw}) from None
    return _checked_amount(value, raw)


def _checked_amount(value, raw):
    # size first: quantizing a 30-digit number would raise InvalidOperation
    if abs(value) >= MAX_AMOUNT:
        raise AmountError(_("“%(value)s” is too large.") % {"value": raw})
    if value != value.quantize(CENT):
        raise AmountError(_("“%(value)s” has more than two decimal places.") % {"value": raw})
    return value.quantize(CENT)


# --- guessing the layout ---------------------------------------------------------------------


def guess_header(table):
    """Whether the first row looks like column names."""
    first = table.rows[0][1]
    if any(role_of_header(cell) for cell in first):
        return True
    if len(table.rows) < 2:
        return False
    has_digits = any(any(ch.isdigit() for ch in cell) for cell in first)
    second = table.rows[1][1]
    return not has_digits and any(any(ch.isdigit() for ch in cell) for cell in second)


def guess_mapping(table, has_header):
    """A role (or ``""``) per column: from the header words, then, for the columns and roles
    the header left open, from what the cells hold."""
    width = table.width
    mapping = [""] * width
    if has_header:
        for index, cell in enumerate(table.rows[0][1]):
            role = role_of_header(cell)
            if role and role not in mapping:
                mapping[index] = role
    sample = [cells for _n, cells in table.rows[1 if has_header else 0 :][:200]]
    reader = phones.Reader()

    def share(index, test):
        values = [c[index] for c in sample if index < len(c) and c[index]]
        if not values:
            return 0
        return sum(1 for v in values if test(v)) / len(values)

    def is_phone(value):
        try:
            reader.normalise(value)
        except PhoneInvalid:
            return False
        return True

    def is_number(value):
        try:
            clean_number(value)
        except LoyaltyError:
            return False
        return True

    def is_amount(value):
        try:
            return parse_amount(value) is not None
        except AmountError:
            return False

    for role, test in ((PHONE, is_phone), (NUMBER, is_number)):
        if role in mapping:
            continue
        scores = [(share(i, test), i) for i in range(width) if not mapping[i]]
        best, index = max(scores, default=(0, None))
        if best >= 0.5:
            mapping[index] = role

    def is_consent_word(value):
        # 1/0 and +/- read as amounts too: only words make a column look like consent
        try:
            return parse_consent(value) is not None and not is_amount(value)
        except ConsentError:
            return False

    if CONSENT not in mapping:
        scores = [(share(i, is_consent_word), i) for i in range(width) if not mapping[i]]
        best, index = max(scores, default=(0, None))
        if best >= 0.8:
            mapping[index] = CONSENT
    amounts = [i for i in range(width) if not mapping[i] and share(i, is_amount) >= 0.8]
    open_roles = [role for role in (TOPUP, BALANCE) if role not in mapping]
    for role, index in zip(open_roles, amounts, strict=False):
        mapping[index] = role
    return mapping


def mapping_errors(mapping):
    errors = []
    for role in ROLES:
        if mapping.count(role) > 1:
            errors.append(
                _("“%(column)s” is chosen for more than one column.")
                % {"column": ROLE_LABELS[role]}
            )
    if PHONE not in mapping and NUMBER not in mapping:
        errors.append(_("Choose the column with phones or the one with card numbers."))
    return errors
