"""The customer's "Bonus card" page in Oscar's account area, as the customer reads it."""

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone

from oscar_loyalty import cards, grades, ledger
from tests.factories import (
    make_card,
    make_customer,
    make_product,
    make_program,
    place_order,
    refreshed,
    set_status,
)

D = Decimal
pytestmark = pytest.mark.django_db

PAGE = "/accounts/bonus-cards/"


def section(response, card):
    """The HTML of one card's panel on the page."""
    content = response.content.decode()
    match = re.search(
        rf'<section[^>]*data-card="{card.number}"[^>]*>(.*?)</section>', content, re.S
    )
    assert match, f"no panel for card {card.number}"
    return match.group(1)


def text(fragment):
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_page_is_where_oscar_account_pages_are_and_has_its_tab(customer_client, card):
    assert reverse("loyalty-account-cards") == PAGE
    response = customer_client.get(reverse("customer:summary"), follow=True)
    assert f'href="{PAGE}"' in response.content.decode()
    assert "Bonus card" in response.content.decode()


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client, card):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert reverse("customer:login") in response["Location"]


def test_balance_grade_and_spend_to_the_next_grade(customer_client, card, customer):
    order = place_order(customer, [(make_product("4000"), 1)])
    set_status(order, "Complete")

    response = customer_client.get(PAGE)

    assert response.status_code == 200
    panel = text(section(response, card))
    assert f"Bonus programme · card {card.number}" in panel
    assert "Balance 120 points" in panel
    assert "Grade Base (you earn 3% of what you pay)" in panel
    assert "Your purchases RUB4,000.00" in panel
    assert "RUB6,000.00 more to reach Silver" in panel


def test_pending_points_show_when_they_become_available(customer_client, card, customer, program):
    program.accrual_delay_hours = 3
    program.save()
    waiting = place_order(customer, [(make_product("1000"), 1)])
    completed = set_status(place_order(customer, [(make_product("2000"), 1)]), "Complete")

    panel = text(section(customer_client.get(PAGE), card))

    available_at = refreshed(card).accruals.get(order_number=completed.number).available_at
    assert available_at - timezone.now() > timedelta(hours=2)
    shown = date_filter(timezone.localtime(available_at), "DATETIME_FORMAT")
    assert f"60 points for order {completed.number}: available from {shown}" in panel
    assert f"30 points for order {waiting.number}: available once the order is complete" in panel
    assert "Balance 0 points" in panel


def test_history_lists_each_movement_with_its_description_and_order_link(
    customer_client, card, customer
):
    order = set_status(place_order(customer, [(make_product("1000"), 1)]), "Complete")
    ledger.debit_card(refreshed(card), "10", "manual:1", description="Paid at the shop's till")

    fragment = section(customer_client.get(PAGE), card)

    rows = re.findall(r"<tr>(.*?)</tr>", fragment.split("<tbody>")[1], re.S)
    texts = [text(row) for row in rows]
    assert texts[0].endswith("Paid at the shop's till -10")
    assert texts[1].endswith(f"Points for order {order.number} +30")
    order_url = reverse("customer:order", kwargs={"order_number": order.number})
    assert f'href="{order_url}"' in rows[1]


def test_the_order_link_opens_the_customers_order(customer_client, card, customer):
    order = set_status(place_order(customer, [(make_product("1000"), 1)]), "Complete")
    response = customer_client.get(reverse("customer:order", kwargs={"order_number": order.number}))
    assert response.status_code == 200


def test_a_debt_is_shown_with_what_it_means(customer_client, card, customer):
    order = set_status(place_order(customer, [(make_product("4000"), 1)]), "Complete")
    ledger.debit_card(refreshed(card), "100", "manual:1", description="Paid at the shop's till")
    set_status(order, "Cancelled")

    panel = text(section(customer_client.get(PAGE), card))

    assert "Balance 0 points" in panel
    assert "Debt 100 points" in panel
    assert "Your next points repay it first" in panel
    assert "(100 recorded as debt)" in panel


def test_a_customer_with_cards_of_several_programmes_sees_each(customer_client, card, customer):
    coffee = make_program(
        code="coffee", name="Coffee club", grades=[("Bean", "0", "10", "#6f4e37")]
    )
    coffee_card = make_card(coffee, user=customer)
    set_status(place_order(customer, [(make_product("1000"), 1)]), "Complete")

    response = customer_client.get(PAGE)

    assert "Balance 30 points" in text(section(response, card))
    coffee_panel = text(section(response, coffee_card))
    assert f"Coffee club · card {coffee_card.number}" in coffee_panel
    assert "Balance 100 points" in coffee_panel
    assert "Grade Bean (you earn 10% of what you pay)" in coffee_panel
    content = response.content.decode()
    assert content.index("Bonus programme") < content.index("Coffee club")


def test_a_blocked_card_says_so(customer_client, card):
    cards.block(card, reason="Reported lost.", message="A new card is on its way.")
    panel = text(section(customer_client.get(PAGE), card))
    assert f"The card {card.number} is blocked. A new card is on its way." in panel
    assert "Reported lost." not in panel  # the reason is for staff


def test_a_card_not_participating_says_so(customer_client, card):
    grades.set_grade(card, None, by=None, reason="Employee", participates=False)
    panel = text(section(customer_client.get(PAGE), card))
    assert "Grade Not participating" in panel
    assert "does not take part in the programme" in panel


def test_a_customer_sees_only_their_own_cards(customer_client, card, program):
    stranger = make_card(program, user=make_customer())
    phone_card = make_card(program, phone="79123456789")
    content = customer_client.get(PAGE).content.decode()
    assert card.number in content
    assert stranger.number not in content
    assert phone_card.number not in content


def test_a_customer_without_a_card_is_told_how_to_get_one(client, db):
    client.force_login(make_customer())
    response = client.get(PAGE)
    assert "You have no bonus card yet" in response.content.decode()
