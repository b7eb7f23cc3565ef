"""What a Russian reader must not see: numbers written with a decimal point."""

import re

DATE = re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{2,4}\b")  # 02.12.2026, Russian's date format
DECIMAL_POINT = re.compile(r"\d+\.\d+")


def decimal_points(text):
    """The numbers of ``text`` written with a decimal point ("1197.00", "0.5"), dates aside."""
    return DECIMAL_POINT.findall(DATE.sub(" ", text))
