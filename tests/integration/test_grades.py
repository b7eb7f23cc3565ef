"""Grades follow lifetime spend of completed orders, go up by themselves, never down by
themselves, and a manager's grade stays until a manager changes it."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import grades, ledger
from oscar_loyalty.exceptions import CardUnavailable, GradeError
from tests.factories import (
    grade,
    make_customer,
    make_product,
    make_program,
    place_order,
    refreshed,
    set_line_status,
    set_status,
)

Accrual = get_model("oscar_loyalty", "Accrual")
GradeChange = get_model("oscar_loyalty", "GradeChange")

D = Decimal
pytestmark = pytest.mark.django_db


def completed_order(customer, price, **fields):
    order = place_order(customer, [(make_product(price), 1)], **fields)
    return set_status(order, "Complete")


def grade_name(card):
    return refreshed(card).grade.name


# --- spend and automatic upgrades ----------------------------------------------------------


def test_completed_orders_raise_the_grade_when_spend_crosses_a_threshold(card, customer):
    completed_order(customer, "6000")
    assert (refreshed(card).lifetime_spend, grade_name(card)) == (D("6000"), "Base")
    assert not GradeChange.objects.filter(card=card).exists()

    completed_order(customer, "4000")

    card = refreshed(card)
    assert (card.lifetime_spend, card.grade.name) == (D("10000"), "Silver")
    change = GradeChange.objects.get(card=card)
    assert (change.old_grade.name, change.new_grade.name) == ("Base", "Silver")
    assert change.automatic and change.created_by is None
    assert change.reason == "Spend reached RUB10,000.00"
    assert change.created is not None


def test_orders_not_complete_do_not_count(card, customer):
    place_order(customer, [(make_product("50000"), 1)])
    processing = place_order(customer, [(make_product("50000"), 1)])
    set_status(processing, "Being processed")
    grades.recalculate(card)
    assert (refreshed(card).lifetime_spend, grade_name(card)) == (D("0"), "Base")


def test_a_big_order_can_skip_a_grade(card, customer):
    completed_order(customer, "35000")
    assert grade_name(card) == "Gold"
    assert GradeChange.objects.get(card=card).old_grade.name == "Base"


def test_the_order_that_crosses_a_threshold_earns_at_the_old_grade_the_next_at_the_new(
    card, customer
):
    first = completed_order(customer, "10000")
    second = place_order(customer, [(make_product("1000"), 1)])
    assert Accrual.objects.get(order_number=first.number).percent == D("3")
    assert Accrual.objects.get(order_number=second.number).points == D("50")


def test_orders_before_the_history_start_do_not_count(card, customer, program):
    program.history_start = date(2024, 1, 1)
    program.save()
    old = datetime(2023, 12, 31, 12, 0, tzinfo=timezone.get_current_timezone())
    completed_order(customer, "20000", date_placed=old)
    completed_order(customer, "5000")
    assert (refreshed(card).lifetime_spend, grade_name(card)) == (D("5000"), "Base")


def test_refunded_lines_are_taken_off_the_spend_but_the_grade_stays(card, customer):
    order = place_order(customer, [(make_product("3000"), 1), (make_product("9000"), 1)])
    set_status(order, "Complete")
    assert grade_name(card) == "Silver"

    set_line_status(order.lines.get(line_price_incl_tax=D("9000")), "Refunded")

    card = refreshed(card)
    assert card.lifetime_spend == D("3000")
    assert card.grade.name == "Silver"  # never downgraded automatically


def test_a_cancelled_order_stops_counting_but_the_grade_stays(card, customer):
    order = completed_order(customer, "12000")
    set_status(order, "Cancelled")
    card = refreshed(card)
    assert (card.lifetime_spend, card.grade.name) == (D("0"), "Silver")


def test_the_spend_is_counted_per_customer(card, customer, program):
    other = make_customer()
    completed_order(other, "50000")
    grades.recalculate(card)
    assert refreshed(card).lifetime_spend == D("0")


# --- the next grade ---------------------------------------------------------------------------


def test_the_next_grade_and_the_spend_still_needed(card, customer, program):
    completed_order(customer, "4000")
    assert grades.next_grade(refreshed(card)) == (grade(program, "Silver"), D("6000"))

    completed_order(customer, "27000")
    assert grades.next_grade(refreshed(card)) == (None, None)


# --- a manager's grade ------------------------------------------------------------------------


def test_a_grade_set_by_a_manager_stays_whatever_the_spend(card, customer, program, manager):
    grades.set_grade(card, grade(program, "Gold"), by=manager, reason="Opening VIP")
    completed_order(customer, "12000")
    assert grade_name(card) == "Gold"

    grades.set_grade(card, grade(program, "Base"), by=manager, reason="Staff card ended")
    completed_order(customer, "30000")

    card = refreshed(card)
    assert (card.grade.name, card.grade_is_manual) == ("Base", True)
    changes = list(GradeChange.objects.filter(card=card).order_by("id"))
    assert [(c.new_grade.name, c.created_by, c.reason, c.automatic) for c in changes] == [
        ("Gold", manager, "Opening VIP", False),
        ("Base", manager, "Staff card ended", False),
    ]


def test_releasing_a_manual_grade_lets_the_spend_raise_it_again(card, customer, program, manager):
    grades.set_grade(card, grade(program, "Base"), by=manager, reason="Probation")
    completed_order(customer, "12000")
    assert grade_name(card) == "Base"

    grades.release_manual_grade(card, by=manager, reason="Probation over")

    card = refreshed(card)
    assert (card.grade.name, card.grade_is_manual) == ("Silver", False)
    assert GradeChange.objects.filter(card=card, created_by=manager).count() == 2


def test_a_card_not_participating_earns_nothing_and_cannot_spend(card, customer, manager):
    ledger.credit_card(card, "100", "manual:gift")
    grades.set_grade(card, None, by=manager, reason="Employee", participates=False)

    order = place_order(customer, [(make_product("5000"), 1)])
    assert not Accrual.objects.filter(order_number=order.number).exists()
    with pytest.raises(CardUnavailable, match="does not take part"):
        ledger.debit_card(refreshed(card), "10", "manual:spend")

    change = GradeChange.objects.get(card=card)
    assert (change.participates, change.created_by, change.reason) == (False, manager, "Employee")
    card = refreshed(card)
    assert card.grade.name == "Base"  # kept for when the card takes part again


def test_spend_made_before_the_shops_records_counts_towards_grades(
    card, customer, program, manager
):
    completed_order(customer, "2000")
    grades.set_grade(
        card, grade(program, "Silver"), by=manager, reason="Paper card", spend_adjustment=D("15000")
    )
    card = refreshed(card)
    assert card.lifetime_spend == D("15000")

    grades.release_manual_grade(card, by=manager, reason="Follow spend")
    completed_order(customer, "15000")
    card = refreshed(card)
    assert (card.lifetime_spend, card.grade.name) == (D("30000"), "Gold")


def test_the_accumulated_sum_cannot_go_below_what_the_orders_prove(
    card, customer, program, manager
):
    completed_order(customer, "2000")
    with pytest.raises(GradeError, match=r"less than the actual one \(RUB2,000.00\)"):
        grades.set_grade(
            card, grade(program, "Base"), by=manager, reason="x", spend_adjustment=D("1000")
        )
    assert not GradeChange.objects.filter(card=card).exists()


def test_a_grade_beyond_the_accumulated_sum_is_refused(card, program, manager):
    with pytest.raises(GradeError, match="outside the limits"):
        grades.set_grade(
            card, grade(program, "Gold"), by=manager, reason="x", spend_adjustment=D("5000")
        )
    assert grade_name(card) == "Base"


def test_a_grade_of_another_programme_is_refused(card, manager):
    other = make_program(code="coffee", name="Coffee")
    with pytest.raises(GradeError, match="another programme"):
        grades.set_grade(card, grade(other, "Gold"), by=manager, reason="x")


def test_grade_history_is_newest_first_with_when(card, customer, program, manager):
    completed_order(customer, "10000")
    grades.set_grade(card, grade(program, "Gold"), by=manager, reason="Promotion")
    changes = list(refreshed(card).grade_changes.all())
    assert [c.new_grade.name for c in changes] == ["Gold", "Silver"]
    assert changes[0].created >= changes[1].created
    assert timezone.now() - changes[0].created < timedelta(minutes=1)
