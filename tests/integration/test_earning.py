"""Earning on Oscar orders, end to end through Oscar's ``OrderCreator`` and status changes.

Celery runs eagerly in tests; tasks are enqueued ``delay_on_commit``, so status changes go
through ``tests.factories.set_status``, which runs on-commit callbacks as a real commit would.
"""

import logging
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test import TestCase, override_settings
from django.utils import timezone
from oscar.apps.order.signals import order_placed, order_status_changed
from oscar.core.loading import get_model

from oscar_loyalty import cards, earning, ledger, paying, tasks
from oscar_loyalty.audit import audit
from tests.factories import (
    grade,
    make_card,
    make_product,
    place_order,
    refreshed,
    set_line_status,
    set_status,
)

Accrual = get_model("oscar_loyalty", "Accrual")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")
Order = get_model("order", "Order")

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def blender(db):
    return make_product("3000", title="Blender")


def accrual_of(order):
    return Accrual.objects.get(order_number=order.number)


def earned(card):
    return list(
        Transfer.objects.filter(card=card, kind=Transfer.EARN).values_list("amount", flat=True)
    )


# --- pending, posted -------------------------------------------------------------------------


def test_a_placed_order_creates_pending_points_at_the_grades_percent(card, customer, kettle):
    order = place_order(customer, [(kettle, 2)])

    accrual = accrual_of(order)
    assert accrual.card == card
    assert (accrual.base, accrual.percent, accrual.points) == (D("2000"), D("3"), D("60"))
    assert accrual.status == Accrual.PENDING
    assert accrual.available_at is None  # not before the order is complete
    assert refreshed(card).balance == D("0.00")


def test_completing_the_order_makes_the_points_available(card, customer, kettle):
    order = place_order(customer, [(kettle, 2)])

    set_status(order, "Complete")

    assert refreshed(card).balance == D("60.00")
    accrual = accrual_of(order)
    assert accrual.status == Accrual.POSTED
    transfer = Transfer.objects.get(card=card, kind=Transfer.EARN)
    assert transfer.order_number == order.number
    assert transfer.label == f"Points for order {order.number}"
    assert transfer.key == f"order:{order.number}:earn:bonus"
    assert audit() == []


def test_a_status_before_complete_posts_nothing(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])
    set_status(order, "Being processed")
    assert accrual_of(order).status == Accrual.PENDING
    assert refreshed(card).balance == D("0.00")


@override_settings(OSCAR_LOYALTY_COMPLETE_STATUSES=("Being processed",))
def test_the_complete_status_is_a_setting(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])
    set_status(order, "Being processed")
    assert refreshed(card).balance == D("30.00")


def test_a_higher_grade_earns_its_own_percent(card, customer, program, kettle):
    type(card).objects.filter(pk=card.pk).update(grade=grade(program, "Gold"))
    order = place_order(customer, [(kettle, 1)])
    assert accrual_of(order).points == D("70.00")


# --- the programme's delay -----------------------------------------------------------------


def test_with_a_delay_points_stay_pending_until_the_periodic_task_runs_after_it(
    card, customer, program, kettle
):
    program.accrual_delay_hours = 4
    program.save()
    order = place_order(customer, [(kettle, 1)])

    set_status(order, "Complete")

    accrual = accrual_of(order)
    assert accrual.status == Accrual.PENDING
    expected = timezone.now() + timedelta(hours=4)
    assert abs(accrual.available_at - expected) < timedelta(minutes=1)
    assert tasks.post_due_accruals.delay().get() == 0
    assert refreshed(card).balance == D("0.00")

    later = timezone.now() + timedelta(hours=4, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert tasks.post_due_accruals.delay().get() == 1
        assert tasks.post_due_accruals.delay().get() == 0

    assert refreshed(card).balance == D("30.00")
    assert accrual_of(order).status == Accrual.POSTED


# --- cancelling ------------------------------------------------------------------------------


def test_cancelling_a_pending_order_voids_its_points(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])

    set_status(order, "Cancelled")

    assert accrual_of(order).status == Accrual.VOIDED
    assert refreshed(card).balance == D("0.00")
    assert not Transfer.objects.filter(card=card).exists()


def test_cancelling_a_completed_order_takes_its_points_back(card, customer, kettle):
    order = place_order(customer, [(kettle, 2)])
    set_status(order, "Complete")

    set_status(order, "Cancelled")

    assert refreshed(card).balance == D("0.00")
    reversal = Transfer.objects.get(card=card, kind=Transfer.REVERSE)
    assert reversal.amount == D("60.00")
    assert reversal.label == f"Order {order.number} cancelled"
    assert audit() == []


# --- refunded lines --------------------------------------------------------------------------


def test_a_refunded_line_takes_back_its_share_of_the_points(card, customer, kettle, blender):
    order = place_order(customer, [(kettle, 1), (blender, 1)])  # 4000 → 120 points
    set_status(order, "Complete")
    assert refreshed(card).balance == D("120.00")

    kettle_line = order.lines.get(product=kettle)
    set_line_status(kettle_line, "Refunded")

    assert refreshed(card).balance == D("90.00")  # 1000 of 4000 → 30 points back
    assert accrual_of(order).reversed_points == D("30.00")
    # The same refund reported again takes nothing more.
    earning.reverse_lines(order, [kettle_line])
    assert refreshed(card).balance == D("90.00")


def test_refunding_every_line_takes_back_everything_the_order_earned(card, customer):
    # 495 + 495 = 990 → 29.70 → 29 points; each half is 14.5 → 14 when rounded down alone.
    first, second = make_product("495"), make_product("495")
    order = place_order(customer, [(first, 1), (second, 1)])
    set_status(order, "Complete")
    assert refreshed(card).balance == D("29.00")

    for line in order.lines.all():
        set_line_status(line, "Refunded")

    assert accrual_of(order).remaining == D("0.00")
    assert refreshed(card).balance == D("0.00")


def test_a_line_refunded_before_completion_reduces_what_will_be_posted(
    card, customer, kettle, blender
):
    order = place_order(customer, [(kettle, 1), (blender, 1)])
    earning.reverse_lines(order, [order.lines.get(product=blender)])  # 90 of 120 points

    set_status(order, "Complete")

    assert earned(card) == [D("30.00")]
    assert refreshed(card).balance == D("30.00")


def test_cancelling_after_a_line_refund_takes_back_only_what_is_left(
    card, customer, kettle, blender
):
    order = place_order(customer, [(kettle, 1), (blender, 1)])
    set_status(order, "Complete")
    set_line_status(order.lines.get(product=kettle), "Refunded")

    set_status(order, "Cancelled")

    assert refreshed(card).balance == D("0.00")
    taken = Transfer.objects.filter(card=card, kind=Transfer.REVERSE)
    assert sorted(t.amount for t in taken) == [D("30.00"), D("90.00")]


# --- debt ------------------------------------------------------------------------------------


def test_a_refund_of_points_already_spent_leaves_a_visible_debt_repaid_by_the_next_order(
    card, customer, kettle, blender
):
    order = place_order(customer, [(kettle, 1), (blender, 1)])
    set_status(order, "Complete")  # +120
    ledger.debit_card(refreshed(card), "100", "manual:spend", description="Paid at the till")

    set_status(order, "Cancelled")  # -120: 20 from the balance, 100 owed

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("0.00"), D("100.00"))
    debt = Transfer.objects.get(card=card, kind=Transfer.DEBT)
    assert (debt.amount, debt.order_number) == (D("100.00"), order.number)

    next_order = place_order(customer, [(blender, 1), (blender, 1)])  # 6000 → 180
    set_status(next_order, "Complete")

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("80.00"), D("0.00"))
    assert audit() == []


# --- what earns ------------------------------------------------------------------------------


def test_shipping_does_not_earn_by_default(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)], shipping="500")
    assert order.total_incl_tax == D("1500.00")
    assert accrual_of(order).points == D("30.00")


def test_shipping_earns_when_the_programme_says_so(card, customer, program, kettle):
    program.shipping_earns = True
    program.save()
    order = place_order(customer, [(kettle, 1)], shipping="500")
    assert accrual_of(order).points == D("45.00")


def test_an_excluded_product_earns_nothing(card, customer, program, kettle, blender):
    program.excluded_products.add(blender)
    order = place_order(customer, [(kettle, 1), (blender, 1)])
    assert accrual_of(order).base == D("1000.00")
    assert accrual_of(order).points == D("30.00")


def test_an_order_of_excluded_products_only_earns_nothing(card, customer, program, blender):
    program.excluded_products.add(blender)
    order = place_order(customer, [(blender, 1)])
    assert not Accrual.objects.filter(order_number=order.number).exists()


def test_products_of_an_excluded_category_earn_nothing(card, customer, program, kettle):
    certificate = make_product("5000", category="Gift certificates")
    program.excluded_categories.add(certificate.get_categories().get())
    order = place_order(customer, [(kettle, 1), (certificate, 1)])
    assert accrual_of(order).points == D("30.00")


def test_products_of_a_subcategory_of_an_excluded_category_earn_nothing(
    card, customer, program, kettle
):
    wine = make_product("2000", category="Alcohol > Wine")
    program.excluded_categories.add(wine.get_categories().get().get_parent())
    order = place_order(customer, [(kettle, 1), (wine, 1)])
    assert accrual_of(order).points == D("30.00")


def test_the_part_paid_with_points_never_earns(card, customer, kettle):
    ledger.credit_card(card, "400", "manual:gift", kind=Transfer.ADJUST)
    paying.hold_points(refreshed(card), "777", D("400"), D("400"))  # the checkout's payment

    order = place_order(customer, [(kettle, 1)], number="777")

    assert Hold.objects.get(order_number="777").status == Hold.CAPTURED
    assert accrual_of(order).base == D("600.00")
    assert accrual_of(order).points == D("18.00")


@pytest.mark.parametrize(
    "step, point_value, expected",
    [
        ("1", "1", "29.00"),  # 990 × 3% = 29.70 → 29
        ("0.5", "1", "29.50"),
        ("10", "1", "20.00"),
        ("0.01", "1", "29.70"),
        ("1", "2", "14.00"),  # 29.70 money of points at 2 per point = 14.85 → 14
    ],
)
def test_points_are_rounded_down_to_the_programmes_step(
    card, customer, program, step, point_value, expected
):
    program.earn_step, program.point_value = D(step), D(point_value)
    program.save()
    order = place_order(customer, [(make_product("990"), 1)])
    assert accrual_of(order).points == D(expected)


# --- whose card ------------------------------------------------------------------------------


def test_a_guest_order_earns_on_the_phone_card_of_its_address(program, kettle):
    waiting = make_card(program, phone="79123456789")
    order = place_order(None, [(kettle, 1)], phone="8 912 345-67-89", guest_email="g@example.com")
    assert accrual_of(order).card == waiting


def test_a_customer_without_a_card_earns_nothing(customer, program, kettle):
    order = place_order(customer, [(kettle, 1)])
    assert not Accrual.objects.filter(order_number=order.number).exists()


def test_an_order_earns_on_each_programme_card_of_the_customer(card, customer, kettle):
    from tests.factories import make_program

    coffee = make_program(code="coffee", name="Coffee", grades=[("All", "0", "10", "#000000")])
    make_card(coffee, user=customer)
    order = place_order(customer, [(kettle, 1)])
    set_status(order, "Complete")
    by_programme = {c.program.code: c.account.balance for c in cards.cards_of(customer)}
    assert by_programme == {"bonus": D("30.00"), "coffee": D("100.00")}


# --- blocked cards -----------------------------------------------------------------------------


def test_a_blocked_card_earns_nothing_on_a_new_order(card, customer, kettle):
    cards.block(card)
    order = place_order(customer, [(kettle, 1)])
    assert not Accrual.objects.filter(order_number=order.number).exists()


def test_points_of_a_card_blocked_meanwhile_wait_until_it_is_unblocked(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])
    cards.block(card)

    set_status(order, "Complete")
    assert accrual_of(order).status == Accrual.PENDING
    assert tasks.post_due_accruals.delay().get() == 0

    cards.unblock(card)
    assert tasks.post_due_accruals.delay().get() == 1
    assert refreshed(card).balance == D("30.00")


# --- replays and failures ----------------------------------------------------------------------


def test_replayed_signals_and_tasks_never_count_twice(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])
    order_placed.send(sender=None, order=order, user=customer)
    assert Accrual.objects.filter(order_number=order.number).count() == 1

    set_status(order, "Complete")
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_status_changed.send(
            sender=order, order=order, old_status="Pending", new_status="Complete"
        )
    tasks.post_accrual.delay(accrual_of(order).pk)
    tasks.post_due_accruals.delay()
    earning.post(accrual_of(order).pk)

    assert earned(card) == [D("30.00")]
    assert refreshed(card).balance == D("30.00")

    set_status(order, "Cancelled")
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_status_changed.send(
            sender=order, order=order, old_status="Complete", new_status="Cancelled"
        )
    assert refreshed(card).balance == D("0.00")
    assert Transfer.objects.filter(card=card, kind=Transfer.REVERSE).count() == 1


def test_a_failing_receiver_does_not_break_order_placement(card, customer, kettle, caplog):
    with (
        mock.patch.object(earning, "create_accruals", side_effect=RuntimeError("boom")),
        caplog.at_level(logging.ERROR, logger="oscar_loyalty.receivers"),
    ):
        order = place_order(customer, [(kettle, 1)])

    assert Order.objects.filter(number=order.number).exists()
    assert "on_order_placed failed" in caplog.text
    assert not Accrual.objects.filter(order_number=order.number).exists()


def test_a_database_error_in_a_receiver_leaves_the_shops_transaction_usable(card, customer, kettle):
    """On PostgreSQL a failed statement poisons the surrounding transaction unless the
    receiver ran in its own savepoint; the order and what follows must still work."""

    def broken(order):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    with mock.patch.object(earning, "create_accruals", side_effect=broken):
        order = place_order(customer, [(kettle, 1)])

    set_status(order, "Complete")
    assert Order.objects.get(number=order.number).status == "Complete"


def test_a_failing_status_receiver_does_not_break_the_status_change(card, customer, kettle):
    order = place_order(customer, [(kettle, 1)])
    with mock.patch.object(earning, "schedule", side_effect=RuntimeError("boom")):
        set_status(order, "Complete")
    assert Order.objects.get(number=order.number).status == "Complete"
    # Nothing was lost: the accrual is still pending and can be scheduled again.
    assert accrual_of(order).status == Accrual.PENDING


# --- a shop's own policy -------------------------------------------------------------------


def test_a_forked_earning_policy_decides_what_earns(forked_loyalty, card, customer, kettle):
    wrap = make_product("200", title="Gift wrap")
    order = place_order(customer, [(kettle, 1), (wrap, 1)])
    assert accrual_of(order).base == D("1000.00")
    assert accrual_of(order).points == D("30.00")


def test_without_a_fork_every_line_earns(card, customer, kettle):
    wrap = make_product("200", title="Gift wrap")
    order = place_order(customer, [(kettle, 1), (wrap, 1)])
    assert accrual_of(order).points == D("36.00")
