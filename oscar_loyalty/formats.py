"""Points written the way the reader's language writes numbers.

Python's ``%s`` of a ``Decimal`` always gives "1234.50", whatever the page's language, and
Django groups thousands only when the project sets ``USE_THOUSAND_SEPARATOR``. Every number of
points shown to a person goes through ``format_points`` instead, so a Russian page reads
"1 234,5" (with a non-breaking space) and an English one "1,234.5". Money is not formatted
here: it always goes with its currency, through Oscar's ``currency`` filter.
"""

from decimal import Decimal, InvalidOperation

from django.utils import formats


def format_points(value):
    """``value`` in the active locale: grouped thousands, no ".00" when whole, never "-0"."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)  # not a number (a raw cell of an import): shown as it came
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value():
        number, places = number.to_integral_value(), 0
    else:
        number = number.normalize()
        places = -number.as_tuple().exponent
    if number.is_zero():
        number = abs(number)
    return formats.number_format(number, places, use_l10n=True, force_grouping=True)
