"""Paying with points in a real browser, against the sandbox shop and its demo data: anna
pays part of an order with points, sees her balance drop and the pending points; a manager
cancels the order in Oscar's dashboard and the points come back."""

import re
from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from tests.integration.checkout_support import KETTLE, customer, product

Card = get_model("oscar_loyalty", "Card")
Order = get_model("order", "Order")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def anna_balance():
    return Card.objects.select_related("account").get(user=customer()).account.balance


def log_in(page, live_server, email, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login-username", email)
    page.fill("#id_login-password", password)
    page.click("button[name=login_submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def points_shown(locator):
    """Points as an English page writes them ("1,197") read back as a number."""
    return Decimal(locator.inner_text().replace(",", ""))


def shown_balance(page, live_server):
    page.goto(f"{live_server.url}/accounts/bonus-cards/")
    return points_shown(page.locator(".loyalty-balance").first)


def test_customer_pays_with_points_and_manager_cancels(new_page, live_server, demo):
    start = anna_balance()
    assert start >= Decimal("500")  # the demo leaves anna points to spend

    anna = new_page()
    log_in(anna, live_server, "anna@example.com", "anna")
    assert shown_balance(anna, live_server) == start

    # A kettle (3,200 ₽) into the basket; the basket says what it earns.
    anna.goto(live_server.url + product(KETTLE).get_absolute_url())
    anna.click("#add_to_basket_form button[type=submit]")
    anna.goto(f"{live_server.url}/basket/")
    assert "This basket earns" in anna.locator("#basket_totals").inner_text()

    # Checkout: the default address, then the payment step with the points panel.
    anna.click("text=Proceed to checkout")
    anna.click("button.ship-address")
    anna.wait_for_url(re.compile(r"/checkout/payment-details/$"))
    panel = anna.locator("#loyalty-panel")
    assert "Pay with bonus points" in panel.inner_text()
    assert points_shown(panel.locator(".loyalty-balance")) == start

    anna.fill("#id_points", "500")
    anna.click("#loyalty-apply")
    assert "Left to pay: RUB2,700.00." in anna.locator(".loyalty-applied").inner_text()

    anna.click("#view_preview")
    anna.wait_for_url(re.compile(r"/checkout/preview/$"))
    summary = anna.locator(".loyalty-summary").inner_text()
    assert "Paid with points: 500 points" in summary
    assert "You will earn" in summary

    anna.click("#place-order")
    anna.wait_for_url(re.compile(r"/checkout/thank-you/$"))
    confirmation = anna.locator(".loyalty-summary").inner_text()
    assert "Paid with points: 500 points" in confirmation
    assert "Left to pay: RUB2,700.00" in confirmation
    order = Order.objects.get(user=customer(), number__startswith="1")

    # The balance dropped and the order's points are pending.
    assert shown_balance(anna, live_server) == start - 500
    pending = anna.locator(".loyalty-pending").inner_text()
    assert f"for order {order.number}" in pending

    # The manager cancels the order in Oscar's dashboard.
    manager = new_page()
    log_in(manager, live_server, "manager@example.com", "manager")
    manager.goto(f"{live_server.url}/dashboard/orders/{order.number}/")
    points = manager.locator(".loyalty-order-points")
    assert "500" in points.locator(".loyalty-spent").inner_text()
    manager.select_option("#id_new_status", "Cancelled")
    manager.click("#order_status_form button[type=submit]")
    manager.wait_for_load_state()
    assert manager.locator(".loyalty-order-points .loyalty-returned").inner_text() == "500"

    # The points are back, and nothing is pending for the cancelled order.
    assert shown_balance(anna, live_server) == start
    assert f"for order {order.number}" not in anna.locator(".loyalty-pending").inner_text()
    assert anna_balance() == start
