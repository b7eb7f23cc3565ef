"""Two checkouts spending the same points at the same time (real PostgreSQL row locks)."""

import threading
import time

import pytest
from django.db import connection
from django.test import Client

from oscar_loyalty import ledger, paying
from oscar_loyalty.exceptions import InsufficientPoints
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
    text,
    to_payment_step,
)
from tests.integration.checkout_support import make_program as new_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(*jobs):
    """Run ``jobs`` in threads released at the same moment; return their results."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def slow_hold(monkeypatch):
    """Keep each hold's transaction open a moment, so the two really overlap."""
    original = ledger.hold

    def hold(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(ledger, "hold", hold)


@pytest.fixture
def card():
    load_shop()
    return card_with_points(new_program(max_pay_percent=D("100")), customer(), 1000)


def test_two_orders_holding_the_same_points_one_wins(card, slow_hold):
    def checkout(number):
        return lambda: paying.hold_points(card, number, D("800"), D("800"))

    results = run_together(checkout("200001"), checkout("200002"))

    held = [r for r in results if isinstance(r, Hold)]
    refused = [r for r in results if isinstance(r, InsufficientPoints)]
    assert len(held) == 1 and len(refused) == 1, results
    assert "Not enough points: 200 available, 800 needed." in str(refused[0])
    assert balance(card) == D("200.00")
    assert Hold.objects.count() == 1
    assert Transfer.objects.filter(kind=Transfer.HOLD).count() == 1


def test_many_small_holds_never_take_the_balance_below_zero(card):
    jobs = [
        (lambda n=n: paying.hold_points(card, f"3000{n:02d}", D("300"), D("300"))) for n in range(6)
    ]
    results = run_together(*jobs)
    assert sum(isinstance(r, Hold) for r in results) == 3  # 3 × 300 of 1,000
    assert balance(card) == D("100.00")
    assert all(isinstance(r, Hold | InsufficientPoints) for r in results), results


def test_same_customer_placing_the_order_twice_at_once_pays_once(card, slow_hold):
    anna = customer()
    phone, laptop = Client(), Client()
    to_payment_step(phone, anna)
    # The same customer on a second device: the same basket, the same order number.
    laptop.force_login(anna)
    laptop.post(
        "/checkout/shipping-address/",
        {"action": "ship_to", "address_id": anna.addresses.get().pk},
        follow=True,
    )
    apply_points(phone, "800")
    apply_points(laptop, "800")

    def place(client):
        return lambda: client.post("/checkout/preview/", {"action": "place_order"}, follow=True)

    first, second = run_together(place(phone), place(laptop))

    assert Order.objects.count() == 1
    assert balance(card) == D("200.00")
    assert Transfer.objects.filter(kind=Transfer.HOLD).count() == 1
    assert Transfer.objects.filter(kind=Transfer.CAPTURE).count() == 1
    assert Hold.objects.get().status == Hold.CAPTURED
    pages = sorted(text(r) for r in (first, second))
    confirmed = [page for page in pages if "Your order has been placed" in page]
    assert len(confirmed) == 1
    # The other one is told why (depending on which step it reached when the first one
    # committed) and pays nothing more.
    (other,) = [page for page in pages if page not in confirmed]
    assert (
        f"Your bonus points could not be used: Order {Order.objects.get().number} is already paid."
        in other
        or "A problem occurred while placing this order" in other
    )
