"""The customer's card page and the manager's card page write numbers as Russian does."""

import html
import re
from decimal import Decimal

import pytest
from django.utils import translation

from oscar_loyalty import ledger
from tests import factories
from tests.integration.dashboard_support import url
from tests.locale_support import decimal_points

D = Decimal
pytestmark = pytest.mark.django_db

NBSP = "\xa0"


def visible_text(response):
    """The page's text as a reader sees it: no scripts, styles or tags; entities decoded."""
    assert response.status_code == 200, response.status_code
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", content))


@pytest.fixture
def busy_card(card, customer):
    """A card with thousands of points, a fraction, money spent and points pending.

    Made in Russian: texts stored when written (the grade change's reason) are in the
    writer's language until they are rendered on reading (section 3's first bullet)."""
    with translation.override("ru"):
        order = factories.place_order(customer, [(factories.make_product("12345.60"), 1)])
        factories.set_status(order, "Complete")  # 3% earned: 370
        ledger.credit_card(card, D("1000.25"), "manual:numbers", kind="adjust")
        factories.place_order(customer, [(factories.make_product("2000.00"), 1)])  # 5%: 100
    return factories.refreshed(card)


def russian(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    return client


def test_customer_card_page_in_russian_has_decimal_commas_and_grouped_thousands(
    client, busy_card, customer
):
    assert busy_card.account.balance == D("1370.25")
    client.force_login(customer)
    text = visible_text(russian(client).get("/accounts/bonus-cards/"))

    assert f"1{NBSP}370,25" in text  # the balance
    assert "+1\u00a0000,25" in text  # the manual accrual in the history
    assert "100 баллов за заказ" in text  # pending points (5% of Silver) without ".00"
    assert f"12{NBSP}345,60{NBSP}₽" in text  # the purchases, as money
    assert decimal_points(text) == []


def test_dashboard_card_page_in_russian_has_decimal_commas_and_grouped_thousands(
    manager_client, busy_card
):
    text = visible_text(russian(manager_client).get(url("loyalty-card-detail", busy_card.pk)))

    assert f"1{NBSP}370,25" in text
    assert f"12{NBSP}345,60{NBSP}₽" in text
    assert decimal_points(text) == []


def test_dashboard_card_list_in_russian(manager_client, busy_card):
    text = visible_text(russian(manager_client).get(url("loyalty-card-list")))

    assert f"1{NBSP}370,25" in text
    assert f"12{NBSP}345,60{NBSP}₽" in text
    assert decimal_points(text) == []


def test_points_report_in_russian(manager_client, busy_card):
    text = visible_text(russian(manager_client).get(url("loyalty-report")))

    assert f"1{NBSP}370,25" in text  # earned in all (370 + 1 000,25), and on cards
    assert f"1{NBSP}370,25{NBSP}₽" in text  # what the points on cards are worth
    assert decimal_points(text) == []
