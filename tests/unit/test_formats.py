"""Points as the reader's language writes numbers (``oscar_loyalty.formats``)."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation

from oscar_loyalty.formats import format_points

D = Decimal
NBSP = "\xa0"  # Django's Russian thousands separator


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("ru", D("1234567.5"), f"1{NBSP}234{NBSP}567,5"),
        ("en", D("1234567.5"), "1,234,567.5"),
        ("ru", D("100.00"), "100"),
        ("en", D("100.00"), "100"),
        ("ru", D("-0.00"), "0"),
        ("en", D("-0"), "0"),
        ("ru", D("-1500.25"), f"-1{NBSP}500,25"),
        ("ru", D("0.50"), "0,5"),
        ("ru", 12000, f"12{NBSP}000"),
        ("ru", "250.00", "250"),
        ("en", 1e30, "1," + ",".join(["000"] * 10)),  # far past any balance: still a number
    ],
)
def test_points_in_the_readers_locale(language, value, shown):
    with translation.override(language):
        assert format_points(value) == shown


@override_settings(USE_THOUSAND_SEPARATOR=False)
def test_thousands_are_grouped_whatever_the_project_setting():
    with translation.override("ru"):
        assert format_points(D("5000")) == f"5{NBSP}000"


def test_what_is_not_a_number_is_shown_as_it_came():
    assert format_points(None) == ""
    assert format_points("") == ""
    assert format_points("12 apples") == "12 apples"


def test_the_template_filter_formats_the_same_way():
    template = Template("{% load loyalty_tags %}{{ value|points }}")
    with translation.override("ru"):
        assert template.render(Context({"value": D("1200.00")})) == f"1{NBSP}200"


def test_messages_with_points_follow_the_locale():
    from oscar_loyalty.exceptions import InsufficientPoints

    with translation.override("ru"):
        message = str(InsufficientPoints(D("1200.50"), D("1500.00")))
    assert f"1{NBSP}200,5" in message and f"1{NBSP}500" in message
    assert "1200.50" not in message and "1500.00" not in message


def test_counts_of_a_job_are_grouped_too():
    from django.template.loader import render_to_string

    with translation.override("ru"):
        shown = render_to_string(
            "oscar_loyalty/dashboard/partials/job_row_progress.html",
            {"record": {"done": 12000, "total": 150000, "percent": 8, "status": "running"}},
        )
    assert f">12{NBSP}000 / 150{NBSP}000<" in shown
