"""Whatever fails between choosing points and the order, no point is lost or spent twice."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from oscar.apps.order.utils import OrderCreator
from oscar.apps.payment.exceptions import PaymentError, UnableToTakePayment

from oscar_loyalty import ledger, paying, receivers, tasks
from sandbox.checkout.views import CashOnDeliveryPaymentDetailsView, PaymentDetailsView
from tests.integration.checkout_support import (
    D,
    Hold,
    Order,
    Transfer,
    apply_points,
    balance,
    card_with_points,
    customer,
    load_shop,
    make_program,
    place_order,
    text,
    to_payment_step,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def at_payment(client, anna_card):
    to_payment_step(client, customer())
    apply_points(client, "500")
    return client


def keys(number):
    return sorted(Transfer.objects.filter(order_number=number).values_list("key", flat=True))


def refuse(exc):
    def handle_payment(self, order_number, total, **kwargs):
        raise exc

    return handle_payment


@pytest.mark.parametrize(
    "exc, message",
    [
        (UnableToTakePayment("The bank declined the card."), "The bank declined the card."),
        (PaymentError("gateway down"), "no payment has been taken"),
        (RuntimeError("bug"), "no payment has been taken"),
    ],
)
def test_gateway_refusal_releases_the_points_at_once(
    at_payment, anna_card, monkeypatch, exc, message
):
    monkeypatch.setattr(CashOnDeliveryPaymentDetailsView, "handle_payment", refuse(exc))
    response = place_order(at_payment)
    assert message in text(response)
    assert not Order.objects.exists()
    assert balance(anna_card) == D("2000.00")
    hold = Hold.objects.get()
    assert hold.status == Hold.RELEASED
    assert keys(hold.order_number) == [
        f"order:{hold.order_number}:hold",
        f"order:{hold.order_number}:release",
    ]


def test_retry_after_a_refusal_is_a_new_attempt_that_counts_once(
    at_payment, anna_card, monkeypatch
):
    monkeypatch.setattr(
        CashOnDeliveryPaymentDetailsView, "handle_payment", refuse(UnableToTakePayment("no"))
    )
    place_order(at_payment)
    monkeypatch.undo()

    response = place_order(at_payment)
    assert response.redirect_chain[-1][0] == reverse("checkout:thank-you")
    order = Order.objects.get()
    assert balance(anna_card) == D("1500.00")
    n = order.number
    assert keys(n) == sorted(
        [f"order:{n}:hold", f"order:{n}:release", f"order:{n}:hold:2", f"order:{n}:capture"]
    )
    assert Hold.objects.get().status == Hold.CAPTURED


def test_points_removed_after_a_refusal_stay_with_the_customer(at_payment, anna_card, monkeypatch):
    monkeypatch.setattr(
        CashOnDeliveryPaymentDetailsView, "handle_payment", refuse(UnableToTakePayment("no"))
    )
    place_order(at_payment)
    monkeypatch.undo()
    apply_points(at_payment, "", action="remove")

    response = place_order(at_payment)
    assert response.redirect_chain[-1][0] == reverse("checkout:thank-you")
    order = Order.objects.get()
    assert balance(anna_card) == D("2000.00")
    assert Hold.objects.get().status == Hold.RELEASED
    assert not order.sources.filter(source_type__code="bonus-points").exists()
    # Nothing was paid with points, so the whole order earns.
    assert order.total_incl_tax == D("3200.00")


def test_order_placement_failure_releases_the_points(at_payment, anna_card, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ValueError("database trouble")

    monkeypatch.setattr(OrderCreator, "create_order_model", broken)
    response = place_order(at_payment)
    assert "A problem occurred while placing this order" in text(response)
    assert not Order.objects.exists()
    assert Hold.objects.get().status == Hold.RELEASED
    assert balance(anna_card) == D("2000.00")


def test_failure_after_the_order_exists_keeps_the_points_spent(at_payment, anna_card, monkeypatch):
    def broken(self, order):
        raise RuntimeError("mail server down")

    monkeypatch.setattr(PaymentDetailsView, "send_order_placed_email", broken)
    place_order(at_payment)
    order = Order.objects.get()
    hold = Hold.objects.get()
    assert hold.status == Hold.CAPTURED
    assert balance(anna_card) == D("1500.00")
    assert f"order:{order.number}:release" not in keys(order.number)


def test_process_dying_between_hold_and_order_is_cleaned_up_later(
    at_payment, anna_card, monkeypatch
):
    def dies(self, *args, **kwargs):
        raise SystemExit("killed")  # not an Exception: nothing in the request can react

    monkeypatch.setattr(OrderCreator, "place_order", dies)
    with pytest.raises(SystemExit):
        place_order(at_payment)
    hold = Hold.objects.get()
    assert hold.status == Hold.HELD
    assert balance(anna_card) == D("1500.00")

    # Not yet stale: left alone (the customer may still be paying).
    assert paying.release_stale_holds() == 0
    assert Hold.objects.get().status == Hold.HELD

    later = timezone.now() + timedelta(minutes=121)
    assert paying.release_stale_holds(now=later) == 1
    assert Hold.objects.get().status == Hold.RELEASED
    assert balance(anna_card) == D("2000.00")
    # Running it again changes nothing.
    paying.release_stale_holds(now=later)
    assert balance(anna_card) == D("2000.00")


def test_stale_hold_of_an_order_that_exists_is_captured_not_released(
    at_payment, anna_card, monkeypatch
):
    # The order was written but the process died before anything captured the points.
    monkeypatch.setattr(paying, "capture", lambda order: None)
    place_order(at_payment)
    monkeypatch.undo()
    order = Order.objects.get()
    assert Hold.objects.get().status == Hold.HELD

    Hold.objects.update(created=timezone.now() - timedelta(hours=3))
    tasks.release_stale_holds.delay()
    hold = Hold.objects.get()
    assert hold.status == Hold.CAPTURED
    assert balance(anna_card) == D("1500.00")
    source = order.sources.get(source_type__code="bonus-points")
    assert source.amount_debited == D("500.00")


# Real transactions: the checkout writes its hold and capture without savepoints and, should a
# key be recorded already, rolls back and replays; here that rollback is a real one.


@pytest.mark.django_db(transaction=True)
def test_hold_transfer_recorded_without_its_row_is_replayed_not_taken_twice(anna_card):
    ledger.hold(anna_card, D("500"), "order:600001:hold", order_number="600001")
    assert balance(anna_card) == D("1500.00")

    hold = paying.hold_points(anna_card, "600001", D("500"), D("500"))

    assert (hold.status, hold.points) == (Hold.HELD, D("500.00"))
    assert Hold.objects.get().pk == hold.pk
    assert keys("600001") == ["order:600001:hold"]
    assert balance(anna_card) == D("1500.00")


def settle_by_receiver(order):
    receivers.capture_points(sender=None, order=order)


def settle_by_periodic_task(order):
    Hold.objects.update(created=timezone.now() - timedelta(hours=3))
    tasks.release_stale_holds.delay()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("settle", [settle_by_receiver, settle_by_periodic_task])
def test_capture_recorded_without_the_holds_status_is_replayed_once(
    at_payment, anna_card, monkeypatch, settle
):
    monkeypatch.setattr(paying, "capture", lambda order: None)
    place_order(at_payment)
    monkeypatch.undo()
    order = Order.objects.get()
    ledger.capture(anna_card, D("500"), f"order:{order.number}:capture", order_number=order.number)
    assert Hold.objects.get().status == Hold.HELD

    settle(order)

    assert Hold.objects.get().status == Hold.CAPTURED
    assert keys(order.number) == [f"order:{order.number}:capture", f"order:{order.number}:hold"]
    assert balance(anna_card) == D("1500.00")


def test_timeout_is_configurable(at_payment, anna_card, monkeypatch, settings):
    monkeypatch.setattr(
        OrderCreator, "place_order", lambda *a, **k: (_ for _ in ()).throw(SystemExit)
    )
    with pytest.raises(SystemExit):
        place_order(at_payment)
    settings.OSCAR_LOYALTY_HOLD_TIMEOUT_MINUTES = 5
    assert paying.release_stale_holds(now=timezone.now() + timedelta(minutes=6)) == 1
    assert balance(anna_card) == D("2000.00")


def test_repeating_capture_and_release_changes_nothing(at_payment, anna_card):
    place_order(at_payment)
    order = Order.objects.get()
    for _ in range(3):
        paying.capture(order.number)
        paying.release(order.number)
    assert balance(anna_card) == D("1500.00")
    assert Hold.objects.get().status == Hold.CAPTURED
    assert order.sources.get(source_type__code="bonus-points").amount_debited == D("500.00")


KILLED_CHECKOUT = """
import os
import django

django.setup()
from django.test import Client
from oscar.apps.order.utils import OrderCreator
from tests.integration.checkout_support import apply_points, customer, place_order, to_payment_step

# The process is killed once the points are held, before the order is written.
OrderCreator.place_order = lambda *args, **kwargs: os._exit(9)
client = Client()
to_payment_step(client, customer())
apply_points(client, "500")
place_order(client)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_killed_process_leaves_a_hold_the_periodic_task_releases():
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    load_shop()
    card = card_with_points(make_program(), customer(), 2000)
    db = connection.settings_dict
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": f"{root}{os.pathsep}{root / 'sandbox'}",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    done = subprocess.run([sys.executable, "-c", KILLED_CHECKOUT], cwd=root, env=env, timeout=120)
    assert done.returncode == 9

    hold = Hold.objects.get()
    assert hold.status == Hold.HELD
    assert not Order.objects.exists()
    assert balance(card) == D("1500.00")

    later = timezone.now() + timedelta(minutes=121)
    assert paying.release_stale_holds(now=later) == 1
    assert balance(card) == D("2000.00")
    assert Hold.objects.get().status == Hold.RELEASED
