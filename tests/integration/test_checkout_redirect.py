"""A gateway that redirects to a third-party page: the points hold survives the trip and is
released if the customer never comes back."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import paying
from tests.integration import checkout_gateway as gateway
from tests.integration.checkout_support import (
    D,
    Hold,
    Order,
    Transfer,
    apply_points,
    balance,
    customer,
    to_payment_step,
)

Basket = get_model("basket", "Basket")

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.integration.checkout_gateway")]


@pytest.fixture
def away(client, anna_card):
    """The customer chose 500 points and was sent to the gateway's page."""
    to_payment_step(client, customer())
    apply_points(client, "500")
    response = client.post(gateway.preview_url(), {"action": "place_order"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://pay.example.com/")
    return client


def test_hold_is_made_before_the_redirect_and_the_gateway_charges_the_rest(away, anna_card):
    hold = Hold.objects.get()
    assert (hold.status, hold.points) == (Hold.HELD, D("500.00"))
    assert balance(anna_card) == D("1500.00")
    assert gateway.CHARGED[hold.order_number] == D("2700.00")
    assert not Order.objects.exists()


def test_coming_back_places_the_order_and_captures_the_points(away, anna_card):
    response = away.get(gateway.return_url())
    assert response.status_code == 302
    assert response["Location"] == reverse("checkout:thank-you")
    order = Order.objects.get()
    assert Hold.objects.get().status == Hold.CAPTURED
    assert balance(anna_card) == D("1500.00")
    sources = {s.source_type.name: s for s in order.sources.all()}
    assert sources["Gateway"].amount_debited == D("2700.00")
    assert sources["Bonus points"].amount_debited == D("500.00")
    # The hold was asked for twice (before and after the redirect) but counted once.
    assert Transfer.objects.filter(order_number=order.number, kind=Transfer.HOLD).count() == 1


def test_never_coming_back_releases_the_points_after_the_timeout(away, anna_card):
    assert paying.release_stale_holds(now=timezone.now() + timedelta(minutes=60)) == 0
    assert balance(anna_card) == D("1500.00")
    assert paying.release_stale_holds(now=timezone.now() + timedelta(minutes=121)) == 1
    assert Hold.objects.get().status == Hold.RELEASED
    assert balance(anna_card) == D("2000.00")


def test_coming_back_after_the_timeout_reserves_the_points_again(away, anna_card):
    paying.release_stale_holds(now=timezone.now() + timedelta(minutes=121))
    assert balance(anna_card) == D("2000.00")
    away.get(gateway.return_url())
    order = Order.objects.get()
    assert Hold.objects.get().status == Hold.CAPTURED
    assert balance(anna_card) == D("1500.00")
    assert Transfer.objects.get(key=f"order:{order.number}:hold:2").amount == D("500.00")


def test_cancelled_at_the_gateway_the_customer_can_choose_again(away, anna_card):
    # The gateway's "cancel" link thaws the basket and sends the customer back.
    Basket.objects.get(status=Basket.FROZEN).thaw()
    response = away.get(reverse("checkout:payment-details"))
    # The 500 points held for this very order count as available again.
    assert response.context["loyalty"].allowance.balance == D("2000.00")
    apply_points(away, "300")
    away.post(gateway.preview_url(), {"action": "place_order"})
    hold = Hold.objects.get()
    assert (hold.status, hold.points) == (Hold.HELD, D("300.00"))
    assert balance(anna_card) == D("1700.00")
    kinds = Transfer.objects.filter(order_number=hold.order_number).values_list("key", "kind")
    assert sorted(k for k, _ in kinds) == sorted(
        [f"order:{hold.order_number}:{what}" for what in ("hold", "release", "hold:2")]
    )
    away.get(gateway.return_url())
    assert balance(anna_card) == D("1700.00")
    assert Hold.objects.get().status == Hold.CAPTURED
