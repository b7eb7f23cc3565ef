"""What the customer reads about getting a card and about a blocked card, as the shop is
configured and as the manager wrote it."""

import html
import re

import pytest
from django.test import override_settings

from oscar_loyalty import cards
from tests import factories
from tests.integration.dashboard_support import url

pytestmark = pytest.mark.django_db

PAGE = "/accounts/bonus-cards/"


def seen(response):
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    assert response.status_code == 200, response.status_code
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- a customer without a card -------------------------------------------------------------


def test_no_card_text_names_what_really_gets_one_in_a_stock_oscar_shop(customer_client, program):
    page = seen(customer_client.get(PAGE))
    assert "You have no bonus card yet." in page
    assert "register with your phone" not in page  # stock Oscar registration has no phone
    assert "Ask the shop to issue you a card." in page
    assert "place an order with that phone number in the delivery address" in page
    # Stock Oscar's user has no phone field: saving the profile attaches nothing.
    assert "account details" not in page


def test_the_order_phone_way_the_text_names_does_attach_the_card(
    customer_client, customer, program
):
    phone_card = factories.make_card(program, phone="79161234567")
    factories.place_order(customer, [(factories.make_product("100"), 1)], phone="+79161234567")
    assert f"card {phone_card.number}" in seen(customer_client.get(PAGE))


def test_no_card_text_follows_the_shop_configuration(customer_client, program):
    program.issue_on_registration = True
    program.save()
    # A user model with the configured phone field (any existing field stands for it here).
    with override_settings(OSCAR_LOYALTY_USER_PHONE_FIELD="last_name"):
        page = seen(customer_client.get(PAGE))
    assert "New customers get a card when they register." in page
    assert "Ask the shop to issue you a card." not in page
    assert "save that phone number in your account details" in page


# --- a blocked card ------------------------------------------------------------------------


def test_block_form_labels_the_internal_reason_and_the_message(manager_client, card):
    page = seen(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "Internal reason (staff only)" in page
    assert "Message to the customer (optional)" in page
    content = manager_client.get(url("loyalty-card-detail", card.pk)).content.decode()
    assert '<label for="reason_block"' in content and '<label for="message_block"' in content


def test_customer_reads_the_message_never_the_internal_reason(
    manager_client, customer_client, card
):
    manager_client.post(
        url("loyalty-card-status", card.pk),
        {"action": "block", "reason": "Lost card", "message": "Call us on 8 800 100-20-30."},
    )
    card = factories.refreshed(card)
    assert (card.status, card.status_reason, card.status_message) == (
        card.BLOCKED,
        "Lost card",
        "Call us on 8 800 100-20-30.",
    )
    manager_page = seen(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "Lost card" in manager_page and "Call us on 8 800 100-20-30." in manager_page

    page = seen(customer_client.get(PAGE))
    assert f"The card {card.number} is blocked. Call us on 8 800 100-20-30." in page
    assert "Lost card" not in page


def test_without_a_message_the_customer_reads_a_neutral_text(customer_client, card):
    cards.block(card, reason="Lost card")
    page = seen(customer_client.get(PAGE))
    assert f"The card {card.number} is blocked. For details, please contact the shop." in page
    assert "Lost card" not in page


def test_unblocking_clears_the_message(manager_client, customer_client, card):
    cards.block(card, reason="Fraud check", message="We are checking your card.")
    manager_client.post(url("loyalty-card-status", card.pk), {"action": "unblock", "reason": "OK"})
    card = factories.refreshed(card)
    assert (card.status, card.status_message) == (card.ACTIVE, "")
    assert "We are checking your card." not in seen(customer_client.get(PAGE))
