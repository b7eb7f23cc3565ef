"""What the customer reads about points: the payment step and the preview say what will
really happen, and the order page and confirmation e-mail say what the points did."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from oscar_loyalty import cards
from tests.integration.checkout_support import (
    TOWELS,
    D,
    Hold,
    Order,
    apply_points,
    balance,
    card_with_points,
    fill_basket,
    place_order,
    text,
    to_payment_step,
)
from tests.integration.test_checkout_queries import plain_templates

pytestmark = pytest.mark.django_db


def seen(response):
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text(response))).split())


def points_field(response):
    return re.search(r'<input[^>]*name="points"[^>]*>', text(response)).group(0)


# --- the payment step and the preview ------------------------------------------------------


def test_continue_without_apply_uses_no_points_and_every_page_says_so(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    payment = to_payment_step(client, anna)  # a 3,200.00 kettle: up to 1,600 points

    # The field is empty: nothing is shown as used that "Continue" would not use.
    assert 'value=""' in points_field(payment)
    assert "No points are used on this order yet" in seen(payment)

    preview = client.get(reverse("checkout:preview"))  # the "Continue" link
    page = seen(preview)
    assert "No bonus points are used on this order." in page
    assert f'href="{reverse("checkout:payment-details")}#loyalty-panel"' in text(preview)
    assert "Use points" in page

    place_order(client)
    assert balance(card) == D("2000.00")
    assert not Hold.objects.exists()


def test_preview_states_the_points_applied_with_a_link_to_change_them(client, shop_program, anna):
    card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    payment = apply_points(client, "500")
    assert 'value="500.00"' in points_field(payment)
    assert "No points are used" not in seen(payment)

    preview = client.get(reverse("checkout:preview"))
    page = seen(preview)
    assert "Paid with points: 500 points" in page
    assert "Left to pay: RUB2,700.00" in page
    assert "No bonus points are used" not in page
    assert "Change the points used" in page


def test_preview_warns_when_the_chosen_points_no_longer_fit(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    apply_points(client, "1600")
    card.account.balance = D("0")  # spent elsewhere meanwhile (another order, a manager)
    card.account.save(update_fields=["balance"])
    page = seen(client.get(reverse("checkout:preview")))
    assert "The points you chose no longer fit this order" in page
    assert not Order.objects.exists()


def test_payment_step_tells_a_customer_without_a_card_how_to_get_one(client, anna, shop_program):
    page = seen(to_payment_step(client, anna))
    assert "You have no bonus card." in page
    assert "place an order with that phone number in the delivery address" in page


def test_payment_step_shows_the_blocked_card_message_not_the_reason(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    cards.block(card, reason="Lost card", message="Your card is being replaced.")
    page = seen(to_payment_step(client, anna))
    assert f"The card {card.number} is blocked. Your card is being replaced." in page
    assert "Lost card" not in page


# --- the order page and the confirmation e-mail --------------------------------------------


def pay_500_of_the_kettle(client, shop_program, anna):
    card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    apply_points(client, "500")
    place_order(client)
    return Order.objects.get(user=anna)


def test_order_page_shows_points_paid_left_to_pay_and_earned(client, shop_program, anna):
    order = pay_500_of_the_kettle(client, shop_program, anna)
    page = seen(client.get(reverse("customer:order", kwargs={"order_number": order.number})))
    assert "Paid with points: 500 points (RUB500.00)" in page
    assert "Left to pay: RUB2,700.00" in page
    assert "You will earn 135 points for this order." in page


def test_order_page_of_an_order_without_points_says_nothing_of_them(client, shop_program, anna):
    to_payment_step(client, anna)
    place_order(client)
    order = Order.objects.get(user=anna)
    page = seen(client.get(reverse("customer:order", kwargs={"order_number": order.number})))
    assert "Bonus points" not in page and "Paid with points" not in page


def test_confirmation_email_shows_the_points_in_text_and_html(
    client, shop_program, anna, mailoutbox
):
    pay_500_of_the_kettle(client, shop_program, anna)
    (message,) = mailoutbox
    body = " ".join(message.body.split())
    assert "Order Total: RUB3,200.00 Bonus points Paid with points: 500 points" in body
    assert "Left to pay: RUB2,700.00" in body
    assert "You will earn 135 points for this order." in body
    ((html_body, _mime),) = message.alternatives
    page = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_body)).split())
    assert "Paid with points: 500 points (RUB500.00)" in page
    assert "Left to pay: RUB2,700.00" in page
    assert "You will earn 135 points for this order." in page


def test_order_page_reads_the_points_in_two_queries_whatever_the_lines(client, shop_program, anna):
    card_with_points(shop_program, anna, 5000)
    client.force_login(anna)
    fill_basket(client, TOWELS, 2)
    to_payment_step(client, anna)  # the kettle and the towels: two lines
    apply_points(client, "500")
    place_order(client)
    url = reverse("customer:order", kwargs={"order_number": Order.objects.get().number})

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    queries()  # warm up per-process caches
    with override_settings(TEMPLATES=plain_templates()):
        oscar_alone = queries()
    assert queries() - oscar_alone == 2  # the order's hold, its accruals


def test_a_russian_customer_reads_the_preview_and_order_page_in_russian(client, shop_program, anna):
    card_with_points(shop_program, anna, 2000)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    to_payment_step(client, anna)
    assert "Бонусные баллы в этом заказе не используются." in seen(
        client.get(reverse("checkout:preview"))
    )
    apply_points(client, "500")
    place_order(client)
    order = Order.objects.get(user=anna)
    page = seen(client.get(reverse("customer:order", kwargs={"order_number": order.number})))
    assert "Оплата баллами: 500" in page
