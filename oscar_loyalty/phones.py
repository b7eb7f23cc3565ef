"""Phone numbers as one canonical string, so "8 912 345-67-89" and "+7 912 345 67 89" match.

The canonical form is the international number as digits without "+": 79123456789.
"""

import phonenumbers
from django.utils.translation import gettext as _

from oscar_loyalty import conf
from oscar_loyalty.exceptions import PhoneInvalid


def normalise(raw, region=None):
    """Return the canonical digits of ``raw`` or raise ``PhoneInvalid`` saying why."""
    text = str(raw or "").strip()
    if not text:
        raise PhoneInvalid(_("The phone is empty."))
    region = region or conf.phone_region
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


def display(canonical):
    """A readable form of a canonical phone: +7 912 345-67-89."""
    if not canonical:
        return ""
    try:
        number = phonenumbers.parse("+" + canonical)
    except phonenumbers.NumberParseException:
        return canonical
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
