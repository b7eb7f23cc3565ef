"""Phone numbers as one canonical string, so "8 912 345-67-89" and "+7 912 345 67 89" match.

The canonical form is the international number as digits without "+": 79123456789.
"""

import re

import phonenumbers
from django.utils.translation import gettext as _

from oscar_loyalty import conf
from oscar_loyalty.exceptions import PhoneInvalid

# What may stand between the digits of a phone: spaces and the usual separators. Anything
# else is refused rather than read the way ``phonenumbers`` would: it takes letters for keypad
# digits ("+7 912 ABC-68-62" is 79122226862) and drops an extension ("...;10", "доб. 12").
_PUNCTUATION = frozenset(" ()-.\u2010\u2011\u2012\u2013\u2014\u2015\u2212")


def _odd_characters(text):
    """Whether ``text`` holds more than digits, separators and one leading "+"."""
    body = text[1:] if text.startswith("+") else text
    return not all(ch.isdigit() or ch.isspace() or ch in _PUNCTUATION for ch in body)


def _refusal(raw, text, region):
    """Why a phone with characters other than digits and separators is refused."""
    try:
        extension = phonenumbers.parse(text, region).extension
    except phonenumbers.NumberParseException:
        extension = None
    if extension:
        return _("“%(phone)s” has an extension (%(extension)s); write the phone without it.") % {
            "phone": raw,
            "extension": extension,
        }
    if any(ch.isalpha() for ch in text) and any(ch.isdigit() for ch in text):
        return _("“%(phone)s” has letters; write the phone in digits.") % {"phone": raw}
    return _("“%(phone)s” is not a phone number.") % {"phone": raw}


def normalise(raw, region=None):
    """Return the canonical digits of ``raw`` or raise ``PhoneInvalid`` saying why."""
    text = str(raw or "").strip()
    if not text:
        raise PhoneInvalid(_("The phone is empty."))
    region = region or conf.phone_region
    if _odd_characters(text):
        raise PhoneInvalid(_refusal(raw, text, region))
    digits = "".join(ch for ch in text if ch.isdigit())
    # A national number written with its country code but no "+" (79123456789).
    if not text.startswith("+") and region:
        code = str(phonenumbers.country_code_for_region(region))
        if digits.startswith(code) and len(digits) > 10:
            text = "+" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise PhoneInvalid(_("“%(phone)s” is not a phone number.") % {"phone": raw}) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneInvalid(_("“%(phone)s” is not a valid phone number.") % {"phone": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def normalise_or_none(raw, region=None):
    try:
        return normalise(raw, region)
    except PhoneInvalid:
        return None


class Reader:
    """``normalise`` for many rows at a time (the import reads its phones with this).

    The full parser costs about 45 µs a phone. A phone written the canonical way for the
    default region (``79123456789``, ``+7 912 345-67-89``) is checked here against the
    region's compiled number patterns with exactly the rules ``phonenumbers.is_valid_number``
    applies; anything else (``8 912...``, letters, extensions) goes to ``normalise``.
    Tests compare both on many numbers.
    """

    _SHAPE = re.compile(r"\+?[0-9 ()\-.]+")

    def __init__(self, region=None):
        self.region = region or conf.phone_region
        self.code = str(phonenumbers.country_code_for_region(self.region)) if self.region else ""
        self.regions = []
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(self.code or 0), ()):
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
            if metadata is not None:
                self.regions.append(self._compile(metadata))

    @staticmethod
    def _desc(desc):
        if desc is None or not desc.national_number_pattern:
            return None
        return (frozenset(desc.possible_length), re.compile(desc.national_number_pattern))

    def _compile(self, metadata):
        # Mobile and fixed-line first: most phones are one of them, and the order of the
        # types does not change whether one of them matches.
        types = [
            self._desc(getattr(metadata, name))
            for name in (
                "mobile",
                "fixed_line",
                "premium_rate",
                "toll_free",
                "shared_cost",
                "voip",
                "personal_number",
                "pager",
                "uan",
                "voicemail",
            )
        ]
        prefix = metadata.national_prefix_for_parsing
        return (
            re.compile(metadata.leading_digits) if metadata.leading_digits else None,
            self._desc(metadata.general_desc),
            [t for t in types if t is not None],
            re.compile(prefix) if prefix else None,
        )

    @staticmethod
    def _matches(desc, national):
        lengths, pattern = desc
        return (not lengths or len(national) in lengths) and pattern.fullmatch(national)

    def _valid(self, national):
        for leading, general, types, _prefix in self.regions:
            if leading is not None:
                if not leading.match(national):
                    continue
            elif not (general and self._matches(general, national)):
                continue
            if not (general and self._matches(general, national)):
                return False
            for desc in types:
                if self._matches(desc, national):
                    return True
            return False
        return False

    _SEPARATORS = str.maketrans("", "", "+ ()-.")

    def _fast(self, text):
        if not self.code or not self.regions:
            return None
        if text.isascii() and text.isdigit():
            digits = text
        elif self._SHAPE.fullmatch(text):
            digits = text.translate(self._SEPARATORS)
        else:
            return None
        if not digits.startswith(self.code) or len(digits) <= 10:
            return None
        national = digits[len(self.code) :]
        if national.startswith("0"):
            return None
        for _leading, _general, _types, prefix in self.regions:
            if prefix is not None and prefix.match(national):
                return None  # a national prefix phonenumbers might strip: let it decide
        return digits if self._valid(national) else False

    def normalise(self, raw):
        text = str(raw or "").strip()
        fast = self._fast(text)
        if fast:
            return fast
        return normalise(text, self.region)


def e164(canonical):
    """A canonical phone as Oscar's phone fields store it (E.164: "+" and the digits), to
    find it on customers' accounts, addresses and orders."""
    return "+" + canonical


def display(canonical):
    """A readable form of a canonical phone: +7 912 345-67-89."""
    if not canonical:
        return ""
    try:
        number = phonenumbers.parse("+" + canonical)
    except phonenumbers.NumberParseException:
        return canonical
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
