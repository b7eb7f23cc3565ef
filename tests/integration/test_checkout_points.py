"""Paying part of an order with points through the sandbox's Oscar checkout."""

import pytest
from django.urls import reverse
from oscar.core.loading import get_class, get_model

from oscar_loyalty import cards
from sandbox.checkout.views import PaymentDetailsView
from tests.integration.checkout_support import (
    TOWELS,
    D,
    Hold,
    Order,
    Transfer,
    apply_points,
    balance,
    card_with_points,
    customer,
    fill_basket,
    make_program,
    place_order,
    text,
    to_payment_step,
)

Accrual = get_model("oscar_loyalty", "Accrual")
CheckoutSessionData = get_class("checkout.utils", "CheckoutSessionData")
Source = get_model("payment", "Source")

pytestmark = pytest.mark.django_db


def test_panel_shows_balance_limit_and_policy(client, shop_program, anna):
    card_with_points(shop_program, anna, 2000)
    response = to_payment_step(client, anna)  # a 3,200.00 kettle
    page = text(response)
    assert "Pay with bonus points" in page
    panel = response.context["loyalty"]
    assert panel.allowance.balance == D("2000.00")
    # 50% of 3,200: the programme's limit, below the balance.
    assert panel.allowance.max_points == D("1600.00")
    assert "That is 50% of" in page
    assert "Shipping cannot be paid with points." in page
    assert "Use the maximum (1,600)" in page


def test_limit_is_the_balance_when_it_is_smaller(client, shop_program, anna):
    card_with_points(shop_program, anna, 300)
    response = to_payment_step(client, anna)
    assert response.context["loyalty"].allowance.max_points == D("300.00")
    assert "That is your whole balance." in text(response)


def test_pay_part_with_points_then_the_rest_by_the_shop_method(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)

    response = apply_points(client, "500")
    assert "500 points will pay" in text(response)
    assert response.context["loyalty"].remaining == D("2700.00")

    preview = client.get(reverse("checkout:preview"))
    page = text(preview)
    assert "Paid with points: 500 points" in page
    assert "Left to pay" in page and "2,700.00" in page
    # 5% of what is paid with money only: 2,700 -> 135 points.
    assert "You will earn 135 points for this order." in page

    thanks = place_order(client)
    assert thanks.redirect_chain[-1][0] == reverse("checkout:thank-you")
    page = text(thanks)
    assert "Paid with points: 500 points" in page
    assert "You will earn 135 points for this order." in page

    order = Order.objects.get(user=anna)
    assert order.total_incl_tax == D("3200.00")  # points are a payment, not a discount
    assert balance(card) == D("1500.00")
    hold = Hold.objects.get(order_number=order.number)
    assert (hold.status, hold.points, hold.money) == (Hold.CAPTURED, D("500.00"), D("500.00"))
    points_source = Source.objects.get(order=order, source_type__code="bonus-points")
    assert points_source.amount_allocated == points_source.amount_debited == D("500.00")
    cash = Source.objects.get(order=order, source_type__code="cash-on-delivery")
    assert cash.amount_allocated == D("2700.00")
    assert Accrual.objects.get(order_number=order.number).points == D("135.00")
    keys = set(Transfer.objects.filter(order_number=order.number).values_list("key", flat=True))
    assert keys == {f"order:{order.number}:hold", f"order:{order.number}:capture"}


def test_use_the_maximum_and_remove(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    response = apply_points(client, "", action="max")
    assert response.context["loyalty"].points == D("1600.00")

    response = apply_points(client, "", action="remove")
    assert response.context["loyalty"].points == 0
    assert "no longer used" in text(response)

    place_order(client)
    assert balance(card) == D("2000.00")
    assert not Hold.objects.exists()
    order = Order.objects.get(user=anna)
    assert not order.sources.filter(source_type__code="bonus-points").exists()


@pytest.mark.parametrize(
    "points, message",
    [
        ("1700", "At most 1,600 points can be used on this order."),
        ("abc", "Enter the number of points, for example 150."),
        ("-5", "Enter a positive number of points"),
        ("10.555", "Use at most two decimal places."),
    ],
)
def test_bad_amounts_are_refused_with_the_reason(client, shop_program, anna, points, message):
    card = card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    response = apply_points(client, points)
    assert response.status_code == 200
    assert message in text(response)
    assert response.context["loyalty"].points == 0
    place_order(client)
    assert balance(card) == D("2000.00")


def test_least_points_at_once(client, anna):
    program = make_program(min_spend_points=D("100"))
    card_with_points(program, anna, 2000)
    to_payment_step(client, anna)
    assert "At least 100 points can be used at once." in text(apply_points(client, "50"))
    assert "At least 100 points at once." in text(client.get(reverse("checkout:payment-details")))


def test_points_covering_everything_ask_for_no_other_payment(client, anna):
    program = make_program(max_pay_percent=D("100"))
    card = card_with_points(program, anna, 5000)
    to_payment_step(client, anna)
    response = apply_points(client, "", action="max")
    assert response.context["loyalty"].covers_total
    assert "Nothing is left to pay." in text(response)
    assert "Your points pay for the whole order: nothing else to pay." in text(response)
    # The hook a shop's own payment form asks before validating card details.
    view = PaymentDetailsView()
    view.setup(response.wsgi_request)
    view.checkout_session = CheckoutSessionData(response.wsgi_request)
    assert view.loyalty_covers_total()

    place_order(client)
    order = Order.objects.get(user=anna)
    assert [s.source_type.code for s in order.sources.all()] == ["bonus-points"]
    assert balance(card) == D("1800.00")
    # Nothing is paid with money, so nothing earns.
    assert not Accrual.objects.filter(order_number=order.number).exists()


def test_guest_sees_a_reason_instead_of_the_panel(client, shop_program):
    fill_basket(client)
    client.post(
        reverse("checkout:index"), {"username": "guest@example.com", "options": "anonymous"}
    )
    client.post(
        reverse("checkout:shipping-address"),
        {
            "first_name": "Guest",
            "last_name": "Buyer",
            "line1": "ул. Ленина, 1",
            "line4": "Москва",
            "postcode": "101000",
            "country": "RU",
            "phone_number": "+79161112233",
        },
        follow=True,
    )
    response = client.get(reverse("checkout:payment-details"))
    assert response.status_code == 200
    assert "Log in to pay with bonus points." in text(response)
    # A guest cannot choose points by posting the form either.
    response = apply_points(client, "100")
    assert "Log in to pay with bonus points." in text(response)
    assert not Hold.objects.exists()


def test_customer_without_a_card_sees_a_reason(client, shop_program, anna):
    response = to_payment_step(client, anna)
    assert "You have no bonus card." in text(response)
    assert "Use the maximum" not in text(response)


@pytest.mark.parametrize("state", ["blocked", "not participating"])
def test_unusable_card_sees_a_reason(client, shop_program, anna, state):
    card = card_with_points(shop_program, anna, 2000)
    if state == "blocked":
        cards.block(card, reason="lost")
        expected = f"The card {card.number} is blocked."
    else:
        card.participates = False
        card.save()
        expected = f"The card {card.number} does not take part in the programme."
    response = to_payment_step(client, anna)
    assert expected in text(response)
    assert expected in text(apply_points(client, "100"))
    assert not Hold.objects.exists()


def test_card_blocked_after_choosing_points_refuses_at_payment(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    to_payment_step(client, anna)
    apply_points(client, "500")
    cards.block(card, reason="fraud check")
    response = place_order(client)
    assert f"The card {card.number} is blocked." in text(response)
    assert not Order.objects.exists()
    assert balance(card) == D("2000.00")


def test_no_card_has_nothing_to_spend(client, shop_program, anna):
    card_with_points(shop_program, anna, 0)
    response = to_payment_step(client, anna)
    assert "You have no points to spend yet." in text(response)


def test_forged_card_id_spends_only_the_customers_own_card(client, shop_program, anna):
    own = card_with_points(shop_program, anna, 1000)
    other = card_with_points(shop_program, customer("boris@example.com"), 3000)
    to_payment_step(client, anna)
    # Boris's card is richer; whatever names it in the request is ignored.
    response = apply_points(
        client, "1500", card=other.pk, card_id=other.pk, card_number=other.number
    )
    assert "At most 1,000 points can be used on this order." in text(response)
    apply_points(client, "800", card=other.pk, card_number=other.number)
    place_order(client, card=other.pk, card_number=other.number)
    assert balance(own) == D("200.00")
    assert balance(other) == D("3000.00")
    assert Hold.objects.get().card == own


def test_basket_page_shows_points_it_would_earn(client, shop_program, anna):
    card_with_points(shop_program, anna, 0)
    client.force_login(anna)
    fill_basket(client, TOWELS, 2)  # 2 × 1,490 = 2,980 -> 5% = 149
    response = client.get(reverse("basket:summary"))
    assert "This basket earns 149 bonus points." in text(response)


def test_basket_page_of_a_guest_shows_no_points(client, shop_program):
    fill_basket(client, TOWELS, 2)
    assert "bonus points" not in text(client.get(reverse("basket:summary")))


def test_choice_shrinks_with_the_basket(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 5000)
    to_payment_step(client, anna, TOWELS, 2)  # 2,980: at most 1,490
    apply_points(client, "1490")
    basket = client.get(reverse("basket:summary")).context["basket"]
    line = basket.all_lines()[0]
    client.post(
        reverse("basket:summary"),
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-MIN_NUM_FORMS": 0,
            "form-MAX_NUM_FORMS": 1000,
            "form-0-id": line.pk,
            "form-0-quantity": 1,
        },
    )
    response = client.get(reverse("checkout:payment-details"))
    assert "The points you chose no longer fit this order" in text(response)
    response = place_order(client)
    assert "Your bonus points could not be used" in text(response)
    assert not Order.objects.exists()
    assert balance(card) == D("5000.00")


def test_russian_customer_types_points_with_a_comma(client, shop_program, anna):
    card = card_with_points(shop_program, anna, 2000)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    to_payment_step(client, anna)
    response = apply_points(client, "500,50")
    assert response.context["loyalty"].points == D("500.50")
    assert 'value="500,50"' in text(response)
    place_order(client)
    assert balance(card) == D("1499.50")
