"""After the order: cancelling returns spent points, refunded lines return their share, and
the dashboard's order page shows what the order spent, earns and returned."""

import pytest
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import paying
from tests.integration.checkout_support import (
    TOWELS,
    D,
    Hold,
    Order,
    Transfer,
    apply_points,
    balance,
    customer,
    fill_basket,
    place_order,
    text,
    to_payment_step,
)

Accrual = get_model("oscar_loyalty", "Accrual")

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_admin_client(shop):
    """A client logged in as the shop's admin, who runs Oscar's order dashboard."""
    client = Client()
    client.force_login(customer("admin@example.com"))
    return client


def order_paid_with(client, points, towels=0):
    """Anna buys a kettle (3,200) and ``towels`` × 1,490, paying ``points`` with points."""
    client.force_login(customer())
    if towels:
        fill_basket(client, TOWELS, towels)
    to_payment_step(client, customer())
    apply_points(client, points)
    place_order(client)
    return Order.objects.get()


def dashboard_page(shop_admin_client, order):
    return shop_admin_client.get(reverse("dashboard:order-detail", kwargs={"number": order.number}))


def set_order_status(shop_admin_client, order, status):
    response = shop_admin_client.post(
        reverse("dashboard:order-detail", kwargs={"number": order.number}),
        {"order_action": "change_order_status", "new_status": status},
    )
    assert response.status_code == 302


def set_line_status(shop_admin_client, order, line, status):
    response = shop_admin_client.post(
        reverse("dashboard:order-detail", kwargs={"number": order.number}),
        {
            "line_action": "change_line_statuses",
            "selected_line": [line.pk],
            f"selected_line_qty_{line.pk}": line.quantity,
            "new_status": status,
        },
    )
    assert response.status_code == 302


def test_cancelling_the_order_returns_the_spent_points(client, anna_card, shop_admin_client):
    order = order_paid_with(client, "500")
    assert balance(anna_card) == D("1500.00")

    set_order_status(shop_admin_client, order, "Cancelled")

    assert balance(anna_card) == D("2000.00")
    hold = Hold.objects.get()
    assert hold.refunded_points == D("500.00")
    source = order.sources.get(source_type__code="bonus-points")
    assert source.amount_refunded == D("500.00")
    refund = Transfer.objects.get(key=f"order:{order.number}:refund:all")
    assert refund.label == f"Order {order.number} cancelled: points returned"
    # The pending points of the order are voided too.
    assert Accrual.objects.get(order_number=order.number).status == Accrual.VOIDED
    # A replayed signal returns nothing more.
    paying.refund_order(order)
    assert balance(anna_card) == D("2000.00")


def test_refunded_lines_return_their_share_and_the_last_one_the_rest(
    client, anna_card, shop_admin_client
):
    order = order_paid_with(client, "1000", towels=1)  # 3,200 + 1,490 = 4,690
    kettle, towels = sorted(order.lines.all(), key=lambda line: line.line_price_incl_tax)[::-1]
    assert balance(anna_card) == D("1000.00")

    set_line_status(shop_admin_client, order, towels, "Cancelled")
    # 1,000 × 1,490 / 4,690 = 317.697... rounded down.
    assert balance(anna_card) == D("1317.69")
    assert Hold.objects.get().refunded_points == D("317.69")

    set_line_status(shop_admin_client, order, kettle, "Cancelled")
    assert balance(anna_card) == D("2000.00")  # nothing lost to rounding

    set_order_status(shop_admin_client, order, "Cancelled")
    assert balance(anna_card) == D("2000.00")
    assert order.sources.get(source_type__code="bonus-points").amount_refunded == D("1000.00")


def test_refund_of_a_completed_line(
    client, anna_card, shop_admin_client, django_capture_on_commit_callbacks
):
    order = order_paid_with(client, "1000", towels=1)
    with django_capture_on_commit_callbacks(execute=True):
        set_order_status(shop_admin_client, order, "Complete")
    towels = order.lines.get(line_price_incl_tax=D("1490.00"))
    # Paid 1,000 with points; earned 5% of 3,690 = 184 on completion.
    assert balance(anna_card) == D("1184.00")
    set_line_status(shop_admin_client, order, towels, "Refunded")
    # Back: the line's share of the spent points (317.69); taken: its share of the earned
    # points (184 × 1,490 / 3,690 = 74.29, rounded down to whole points).
    assert balance(anna_card) == D("1184.00") + D("317.69") - D("74.00")
    assert Transfer.objects.filter(key=f"order:{order.number}:refund:{towels.pk}").exists()


def test_dashboard_order_page_shows_the_orders_points(client, anna_card, shop_admin_client):
    order = order_paid_with(client, "500")
    page = text(dashboard_page(shop_admin_client, order))
    assert "Bonus points" in page
    assert anna_card.number in page
    # spent 500 (captured), pending 135 (5% of 2,700), nothing returned yet
    assert '<td class="loyalty-spent">' in page and "500.00" in page
    assert '<td class="loyalty-pending">135</td>' in page
    assert '<td class="loyalty-returned">0</td>' in page

    set_order_status(shop_admin_client, order, "Cancelled")
    page = text(dashboard_page(shop_admin_client, order))
    assert '<td class="loyalty-returned">500</td>' in page
    assert '<td class="loyalty-pending">0</td>' in page


def test_dashboard_order_page_without_points_shows_no_block(client, anna_card, shop_admin_client):
    client.force_login(customer("boris@example.com"))
    to_payment_step(client, customer("boris@example.com"))
    place_order(client)
    order = Order.objects.get()
    assert "loyalty-order-points" not in text(dashboard_page(shop_admin_client, order))
