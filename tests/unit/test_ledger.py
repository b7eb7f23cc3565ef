"""The ledger: balances move only by transfers, never below zero, and replays count once."""

from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from oscar_loyalty.audit import audit
from oscar_loyalty.exceptions import (
    CardUnavailable,
    InsufficientPoints,
    InvalidAmount,
    KeyConflict,
    ReversalTooLarge,
)
from tests.factories import make_card, make_customer, make_program, refreshed

Account = get_model("oscar_loyalty", "Account")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
pytestmark = pytest.mark.django_db


def issued(program):
    return ledger.balance(ledger.system_account(program, ledger.ISSUED))


def earn(card, amount, key="earn-1", **details):
    return ledger.credit_card(card, amount, key, **details)


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["10", 10, D("10.5"), "0.01", D("1E+1")])
def test_amounts_are_positive_two_place_decimals(value):
    amount = ledger.to_amount(value)
    assert isinstance(amount, Decimal)
    assert amount == D(str(value))
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value, says",
    [
        ("0", "not a positive amount"),
        ("-5", "not a positive amount"),
        ("1.005", "more than two decimal places"),
        ("abc", "not a number"),
        ("NaN", "not a positive amount"),
        ("Infinity", "not a positive amount"),
        (None, "not a number"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(value, says):
    with pytest.raises(InvalidAmount, match=says):
        ledger.to_amount(value)


def test_floats_never_sneak_in_as_binary_fractions():
    assert ledger.to_amount(0.1) == D("0.10")


# --- earning and spending --------------------------------------------------------------------


def test_credit_moves_points_from_the_programme_into_the_card(card, program):
    transfer = earn(card, "150", description="Welcome points")

    assert refreshed(card).balance == D("150.00")
    assert issued(program) == D("-150.00")
    assert transfer.debit == ledger.system_account(program, ledger.ISSUED)
    assert transfer.credit_id == card.account_id
    assert transfer.kind == Transfer.EARN
    assert audit() == []


def test_debit_takes_points_out_and_history_shows_both_moves_newest_first(card, program):
    earn(card, "100", description="Points for order 1")
    ledger.debit_card(card, "30", "spend-1", description="Paid for order 2")

    card = refreshed(card)
    assert card.balance == D("70.00")
    assert ledger.balance(ledger.system_account(program, ledger.REDEEMED)) == D("30.00")
    moves = [(t.description, t.change) for t in ledger.history(card)]
    assert moves == [("Paid for order 2", D("-30.00")), ("Points for order 1", D("100.00"))]


def test_the_returned_transfer_is_the_row_the_database_holds(card, manager):
    earn(card, "100")
    spend = ledger.debit_card(
        card, "30", "spend-1", order_number="100042", description="Paid", created_by=manager
    )

    stored = Transfer.objects.get(key="spend-1")
    assert spend.pk == stored.pk
    assert not spend._state.adding
    fields = [f.attname for f in Transfer._meta.concrete_fields]
    assert [getattr(spend, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert stored.created is not None and stored.label_code == ""
    with pytest.raises(ValueError, match="immutable"):
        spend.save()


def test_a_spend_larger_than_the_balance_is_refused_and_changes_nothing(card):
    earn(card, "50")

    with pytest.raises(InsufficientPoints) as caught:
        ledger.debit_card(card, "50.01", "spend-too-much")

    assert caught.value.available == D("50.00")
    assert caught.value.wanted == D("50.01")
    assert "50 available" in str(caught.value)
    assert refreshed(card).balance == D("50.00")
    assert not Transfer.objects.filter(key="spend-too-much").exists()


def test_the_whole_balance_can_be_spent(card):
    earn(card, "50")
    ledger.debit_card(card, "50", "spend-all")
    assert refreshed(card).balance == D("0.00")


def test_the_exact_remaining_balance_can_be_spent_after_uneven_moves(card):
    """21.56 - 10.15 is 11.41 exactly, also on SQLite, which stores decimals as floats."""
    earn(card, "21.56")
    ledger.debit_card(card, "10.15", "spend-1")
    ledger.debit_card(card, "11.41", "spend-2")
    assert refreshed(card).balance == D("0.00")
    assert audit() == []


def test_a_stale_card_object_cannot_overspend(card):
    """The balance check is made by the database, not on the Python object."""
    earn(card, "40")
    stale = refreshed(card)
    ledger.debit_card(card, "30", "spend-a")

    with pytest.raises(InsufficientPoints):
        ledger.debit_card(stale, "30", "spend-b")
    assert refreshed(card).balance == D("10.00")


def test_the_database_refuses_a_negative_card_balance(card):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=card.account_id).update(balance=D("-1"))


def test_the_database_refuses_a_positive_debt(card):
    ledger.take_back(card, "5", "refund-1")  # nothing to take: all of it becomes debt
    card.refresh_from_db()
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=card.debt_account_id).update(balance=D("1"))


# --- idempotency -----------------------------------------------------------------------------


def test_the_same_credit_twice_returns_the_first_transfer_and_counts_once(card):
    first = earn(card, "100", key="order:1:earn")
    again = earn(card, "100", key="order:1:earn")

    assert again.pk == first.pk
    assert refreshed(card).balance == D("100.00")
    assert Transfer.objects.filter(key__startswith="order:1:").count() == 1


def test_the_same_debit_twice_counts_once_even_when_the_balance_would_not_allow_it(card):
    earn(card, "100")
    first = ledger.debit_card(card, "80", "order:2:spend")
    again = ledger.debit_card(card, "80", "order:2:spend")

    assert again.pk == first.pk
    assert refreshed(card).balance == D("20.00")


def test_the_same_key_with_another_amount_is_a_conflict(card):
    earn(card, "100", key="order:1:earn")
    with pytest.raises(KeyConflict) as caught:
        earn(card, "101", key="order:1:earn")
    assert caught.value.key == "order:1:earn"
    assert refreshed(card).balance == D("100.00")


def test_the_same_key_for_another_card_is_a_conflict(card, program):
    other = make_card(program, user=make_customer())
    earn(card, "100", key="order:1:earn")
    with pytest.raises(KeyConflict):
        earn(other, "100", key="order:1:earn")
    with pytest.raises(KeyConflict):
        ledger.debit_card(card, "100", "order:1:earn")
    assert refreshed(other).balance == D("0.00")


def test_a_spend_key_reused_with_other_content_is_a_conflict(card):
    earn(card, "100")
    ledger.debit_card(card, "10", "order:3:spend")
    with pytest.raises(KeyConflict):
        ledger.debit_card(card, "20", "order:3:spend")
    assert refreshed(card).balance == D("90.00")


# --- blocked, closed, not participating ------------------------------------------------------


@pytest.mark.parametrize(
    "make_unusable, says",
    [
        (lambda c: cards.block(c, reason="Lost"), "is blocked"),
        (lambda c: cards.close(c), "is closed"),
    ],
)
def test_an_unusable_card_neither_earns_nor_spends_and_says_why(card, make_unusable, says):
    earn(card, "100")
    card = make_unusable(card)

    with pytest.raises(CardUnavailable, match=says):
        earn(card, "10", key="earn-2")
    with pytest.raises(CardUnavailable, match=says):
        ledger.debit_card(card, "10", "spend-1")
    with pytest.raises(CardUnavailable, match=says):
        ledger.hold(card, "10", "hold-1")
    assert refreshed(card).balance == D("100.00")


def test_a_card_that_does_not_participate_cannot_earn_or_spend(card):
    earn(card, "100")
    type(card).objects.filter(pk=card.pk).update(participates=False)
    card = refreshed(card)

    with pytest.raises(CardUnavailable, match="does not take part"):
        earn(card, "10", key="earn-2")
    with pytest.raises(CardUnavailable, match="does not take part"):
        ledger.debit_card(card, "10", "spend-1")


# --- taking back, debt and reversals ---------------------------------------------------------


def test_taking_back_unspent_points_leaves_no_debt(card):
    earn(card, "100")
    ledger.take_back(card, "60", "refund-1", description="Refund on order 1")

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("40.00"), D("0.00"))


def test_taking_back_spent_points_records_the_rest_as_debt(card, program):
    earn(card, "100")
    ledger.debit_card(card, "70", "spend-1")

    first = ledger.take_back(card, "100", "refund-1", description="Refund on order 1")

    card = refreshed(card)
    assert card.balance == D("0.00")
    assert card.debt == D("70.00")
    assert first.key == "refund-1"
    legs = Transfer.objects.filter(key__startswith="refund-1").order_by("id")
    assert [(leg.kind, leg.amount) for leg in legs] == [
        (Transfer.REVERSE, D("30.00")),
        (Transfer.DEBT, D("70.00")),
    ]
    assert issued(program) == D("0.00")  # everything given out came back (as points or debt)
    assert audit() == []


def test_a_card_opens_its_debt_account_with_its_first_debt(card):
    assert card.debt_account_id is None and card.debt == 0

    ledger.take_back(card, "25", "refund-1")
    ledger.take_back(card, "5", "refund-2")

    card = refreshed(card)
    assert card.debt == D("30.00")
    assert Account.objects.filter(kind=Account.DEBT, debt_card=card).count() == 1
    assert audit() == []


def test_a_card_loaded_before_its_first_debt_still_repays_it(card):
    stale = refreshed(card)  # knows no debt account
    ledger.take_back(card, "30", "refund-1")

    earn(stale, "50", key="earn-2")

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("20.00"), D("0.00"))
    assert Transfer.objects.get(key="earn-2:repay").amount == D("30.00")


def test_a_first_debt_that_rolls_back_leaves_no_debt_account_behind(card):
    with mock.patch.object(ledger, "_apply", side_effect=DatabaseError("connection lost")):
        with pytest.raises(DatabaseError):
            ledger.take_back(card, "10", "refund-1")
    assert Account.objects.filter(kind=Account.DEBT).count() == 0

    ledger.take_back(card, "10", "refund-1")  # asked again with the same card object

    assert refreshed(card).debt == D("10.00")
    assert Account.objects.filter(kind=Account.DEBT).count() == 1
    assert audit() == []


def test_taking_back_from_an_empty_card_is_all_debt(card):
    first = ledger.take_back(card, "25", "refund-1")
    assert (first.key, first.kind) == ("refund-1", Transfer.DEBT)
    assert Transfer.objects.filter(key__startswith="refund-1").count() == 1
    assert refreshed(card).debt == D("25.00")


def test_later_earnings_repay_debt_first(card):
    ledger.take_back(card, "70", "refund-1")

    earn(card, "50", key="earn-2")
    card = refreshed(card)
    assert (card.balance, card.debt) == (D("0.00"), D("20.00"))

    earn(card, "50", key="earn-3")
    card = refreshed(card)
    assert (card.balance, card.debt) == (D("30.00"), D("0.00"))
    repays = Transfer.objects.filter(kind=Transfer.REPAY).order_by("id")
    assert [(t.key, t.amount) for t in repays] == [("earn-2:repay", 50), ("earn-3:repay", 20)]
    assert audit() == []


def test_a_replayed_credit_does_not_repay_debt_twice(card):
    ledger.take_back(card, "30", "refund-1")
    earn(card, "50", key="earn-2")
    earn(card, "50", key="earn-2")

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("20.00"), D("0.00"))
    assert Transfer.objects.filter(key__startswith="earn-2").count() == 2


def test_taking_back_works_on_a_blocked_card(card):
    """A refund never depends on the card's state."""
    earn(card, "100")
    card = cards.block(card)
    ledger.take_back(card, "100", "refund-1")
    assert refreshed(card).balance == D("0.00")


def test_reversing_an_earning_points_at_it_and_keeps_its_description(card):
    earning = earn(card, "100", description="Points for order 7", order_number="7")

    reversal = ledger.reverse(earning, "order:7:reverse")

    assert reversal.reverses == earning
    assert reversal.description == "Points for order 7"
    assert reversal.order_number == "7"
    assert refreshed(card).balance == D("0.00")
    assert list(earning.reversals.all()) == [reversal]


def test_a_partial_reversal_of_a_spent_earning_becomes_debt(card):
    earning = earn(card, "100")
    ledger.debit_card(card, "90", "spend-1")

    ledger.reverse(earning, "reverse-1", amount="40")

    card = refreshed(card)
    assert (card.balance, card.debt) == (D("0.00"), D("30.00"))


def test_reversing_a_spend_gives_the_points_back(card, program):
    earn(card, "100")
    spend = ledger.debit_card(card, "40", "spend-1")

    reversal = ledger.reverse(spend, "spend-1:reverse")

    assert reversal.credit_id == card.account_id
    assert reversal.debit == ledger.system_account(program, ledger.REDEEMED)
    assert refreshed(card).balance == D("100.00")
    assert ledger.reverse(spend, "spend-1:reverse").pk == reversal.pk
    assert refreshed(card).balance == D("100.00")


# --- checkout holds --------------------------------------------------------------------------


def test_hold_then_capture_pays_with_the_held_points(card, program):
    earn(card, "100")
    ledger.hold(card, "60", "order:9:hold")
    assert refreshed(card).balance == D("40.00")
    assert ledger.balance(ledger.system_account(program, ledger.HELD)) == D("60.00")

    ledger.capture(card, "60", "order:9:capture")

    assert refreshed(card).balance == D("40.00")
    assert ledger.balance(ledger.system_account(program, ledger.HELD)) == D("0.00")
    assert ledger.balance(ledger.system_account(program, ledger.REDEEMED)) == D("60.00")
    assert audit() == []


def test_a_released_hold_gives_the_points_back_once(card):
    earn(card, "100")
    ledger.hold(card, "60", "order:9:hold")
    ledger.release(card, "60", "order:9:release")
    ledger.release(card, "60", "order:9:release")
    assert refreshed(card).balance == D("100.00")


def test_a_hold_cannot_reserve_more_than_the_balance(card):
    earn(card, "10")
    with pytest.raises(InsufficientPoints):
        ledger.hold(card, "11", "order:9:hold")
    assert refreshed(card).balance == D("10.00")


def test_a_refund_returns_paid_points_even_to_a_blocked_card(card, program):
    earn(card, "100")
    ledger.hold(card, "60", "order:9:hold")
    ledger.capture(card, "60", "order:9:capture")
    card = cards.block(card)

    ledger.refund(card, "25", "order:9:refund:line:1")
    ledger.refund(card, "25", "order:9:refund:line:1")

    assert refreshed(card).balance == D("65.00")
    assert ledger.balance(ledger.system_account(program, ledger.REDEEMED)) == D("35.00")


# --- programmes are separate -----------------------------------------------------------------


def test_each_programme_has_its_own_system_accounts(card, program, customer):
    other_program = make_program(
        code="coffee", name="Coffee club", grades=[("All", "0", "10", "#000000")]
    )
    other = make_card(other_program, user=customer)
    earn(card, "100", key="a")
    earn(other, "7", key="b")

    assert issued(program) == D("-100.00")
    assert issued(other_program) == D("-7.00")
    assert audit() == []


# --- immutability ----------------------------------------------------------------------------


def test_a_transfer_cannot_be_changed_or_deleted_through_the_model(card):
    transfer = earn(card, "100")
    transfer.amount = D("1000")
    with pytest.raises(ValueError, match="immutable"):
        transfer.save()
    with pytest.raises(ValueError, match="immutable"):
        transfer.delete()
    assert Transfer.objects.get(pk=transfer.pk).amount == D("100.00")


@pytest.mark.postgres
def test_the_database_refuses_to_update_or_delete_a_transfer(card):
    transfer = earn(card, "100")
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Transfer.objects.filter(pk=transfer.pk).update(amount=D("1000"))
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM oscar_loyalty_transfer WHERE id = %s", [transfer.pk])
    assert Transfer.objects.get(pk=transfer.pk).amount == D("100.00")


def test_a_transfer_needs_two_different_accounts_and_a_positive_amount(card, program):
    issued_account = ledger.system_account(program, ledger.ISSUED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(
            key="bad-1", kind=Transfer.EARN, debit=issued_account, credit=issued_account, amount=1
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(
            key="bad-2", kind=Transfer.EARN, debit=issued_account, credit=card.account, amount=0
        )


# --- issue 9: the ledger's contract ---------------------------------------------------------


@pytest.mark.parametrize(
    "value, says",
    [
        ("1e30", "too large"),
        (D("1e12"), "too large"),
        ("999999999999.995", "more than two decimal places"),
        ("sNaN", "not a positive amount"),
        ("-Infinity", "not a positive amount"),
        ("-0", "not a positive amount"),
        ("12 points", "not a number"),
        ("", "not a number"),
        (True, "not a number"),
    ],
)
def test_amounts_out_of_the_columns_range_or_not_numbers_are_invalid(value, says):
    with pytest.raises(InvalidAmount, match=says):
        ledger.to_amount(value)


def test_the_largest_amount_the_column_holds_is_accepted(card):
    assert ledger.to_amount("999999999999.99") == D("999999999999.99")
    with pytest.raises(InvalidAmount):
        earn(card, "1e12")
    assert not Transfer.objects.exists()


def test_a_credit_key_replayed_as_a_debit_is_a_conflict(card, program):
    earn(card, "100", key="manual:K", kind=Transfer.ADJUST)

    with pytest.raises(KeyConflict):
        ledger.debit_card(card, "100", "manual:K", kind=Transfer.ADJUST, to=ledger.ISSUED)

    assert refreshed(card).balance == D("100.00")
    assert Transfer.objects.count() == 1


def test_a_debit_key_replayed_into_another_system_account_is_a_conflict(card):
    earn(card, "100")
    ledger.debit_card(card, "10", "order:5:spend")

    with pytest.raises(KeyConflict):
        ledger.debit_card(card, "10", "order:5:spend", to=ledger.EXPIRED)
    with pytest.raises(KeyConflict):
        ledger.hold(card, "10", "order:5:spend")  # another kind, another account
    assert refreshed(card).balance == D("90.00")


def test_a_take_back_key_replayed_as_a_credit_is_a_conflict(card):
    earn(card, "100")
    ledger.take_back(card, "40", "order:6:back")

    with pytest.raises(KeyConflict):
        earn(card, "40", key="order:6:back", kind=Transfer.REVERSE)
    assert refreshed(card).balance == D("60.00")


def test_a_reversal_key_replayed_for_another_transfer_is_a_conflict(card):
    earn(card, "100")
    first = ledger.debit_card(card, "10", "spend-1")
    second = ledger.debit_card(card, "10", "spend-2")
    ledger.reverse(first, "undo")

    with pytest.raises(KeyConflict):
        ledger.reverse(second, "undo")
    assert refreshed(card).balance == D("90.00")


def test_identical_replays_of_every_operation_still_return_the_first_transfer(card):
    earn(card, "100")
    ops = [
        lambda: ledger.debit_card(card, "10", "r:spend"),
        lambda: ledger.hold(card, "10", "r:hold"),
        lambda: ledger.capture(card, "10", "r:capture"),
        lambda: ledger.refund(card, "5", "r:refund"),
        lambda: ledger.take_back(card, "5", "r:back"),
        lambda: cards.adjust(card, "-3", "r:adjust"),
    ]
    firsts = [op() for op in ops]
    balance = refreshed(card).balance

    assert [op().pk for op in ops] == [t.pk for t in firsts]
    assert refreshed(card).balance == balance
    assert audit() == []


@pytest.mark.parametrize("asked", [["10", "10", "10"], ["500"]])
def test_a_spend_is_never_reversed_for_more_than_it_took(card, asked):
    earn(card, "100")
    spend = ledger.debit_card(card, "10", "spend-1")

    with pytest.raises(InvalidAmount, match="left to reverse"):
        for n, amount in enumerate(asked):
            ledger.reverse(spend, f"spend-1:reverse:{n}", amount=amount)

    expected = D("100.00") if len(asked) > 1 else D("90.00")  # the first 10 went back
    assert refreshed(card).balance == expected
    assert sum(t.amount for t in spend.reversals.all()) <= spend.amount


def test_a_credit_is_reversed_at_most_once_in_parts(card):
    earning = earn(card, "100")
    ledger.reverse(earning, "rev-1", amount="60")
    ledger.reverse(earning, "rev-2", amount="40")
    assert ledger.reverse(earning, "rev-1", amount="60").key == "rev-1"  # a replay still is

    with pytest.raises(InvalidAmount, match="Only 0 of"):
        ledger.reverse(earning, "rev-3", amount="0.01")
    card = refreshed(card)
    assert (card.balance, card.debt) == (D("0.00"), D("0.00"))
    assert audit() == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: ledger.debit_card(c, "10", "stale:spend"),
        lambda c: ledger.hold(c, "10", "stale:hold"),
        lambda c: ledger.credit_card(c, "10", "stale:earn"),
    ],
)
def test_a_stale_object_of_a_blocked_card_can_neither_spend_hold_nor_earn(card, operation):
    earn(card, "100")
    stale = refreshed(card)
    cards.block(refreshed(card), reason="Lost")

    with pytest.raises(CardUnavailable, match="is blocked"):
        operation(stale)

    assert refreshed(card).balance == D("100.00")
    assert not Transfer.objects.filter(key__startswith="stale:").exists()


def test_a_stale_object_of_a_card_that_left_the_programme_cannot_spend(card):
    earn(card, "100")
    stale = refreshed(card)
    type(card).objects.filter(pk=card.pk).update(participates=False)

    with pytest.raises(CardUnavailable, match="does not take part"):
        ledger.debit_card(stale, "10", "stale:spend")
    assert refreshed(card).balance == D("100.00")


def test_a_stale_object_of_an_unblocked_card_spends(card):
    earn(card, "100")
    cards.block(card)
    stale = refreshed(card)
    cards.unblock(refreshed(card))

    ledger.debit_card(stale, "10", "spend-1")
    assert refreshed(card).balance == D("90.00")


def test_a_spend_recorded_before_the_block_still_replays(card):
    earn(card, "100")
    first = ledger.debit_card(card, "10", "order:1:spend")
    cards.block(refreshed(card))
    assert ledger.debit_card(card, "10", "order:1:spend").pk == first.pk


# --- manual adjustments ----------------------------------------------------------------------


def test_an_adjustment_by_sign_accrues_or_debits_with_its_details(card, program):
    manager = make_customer("manager@example.com", is_staff=True)
    plus = cards.adjust(card, "25", "manual:a", by=manager, description="Gift", note="asked")
    minus = cards.adjust(card, D("-5"), "manual:b", by=manager, description="Fix")

    assert (plus.kind, plus.credit_id, plus.created_by, plus.note) == (
        Transfer.ADJUST,
        card.account_id,
        manager,
        "asked",
    )
    assert (minus.kind, minus.debit_id, minus.amount) == (Transfer.ADJUST, card.account_id, 5)
    assert minus.credit == ledger.system_account(program, ledger.ISSUED)
    assert refreshed(card).balance == D("20.00")
    with pytest.raises(KeyConflict):
        cards.adjust(card, "-25", "manual:a", by=manager)
    with pytest.raises(InvalidAmount):
        cards.adjust(card, "0", "manual:c")


def test_a_blocked_card_takes_manual_debits_only_and_a_closed_one_nothing(card):
    """A blocked card earns nothing, by hand neither (README, card page), but a manager may
    still debit it; a closed one takes nothing. Checked on the database's status, not on the
    caller's stale card."""
    stale = refreshed(card)
    cards.adjust(stale, "10", "manual:a")
    cards.block(refreshed(card))
    with pytest.raises(CardUnavailable, match="is blocked"):
        cards.adjust(stale, "10", "manual:b")
    cards.adjust(stale, "-4", "manual:c")
    cards.close(refreshed(card))

    with pytest.raises(CardUnavailable, match="is closed"):
        cards.adjust(stale, "10", "manual:d")
    with pytest.raises(CardUnavailable, match="is closed"):
        cards.adjust(stale, "-5", "manual:e")
    assert refreshed(card).balance == D("6.00")


def test_a_checkout_hold_with_a_stale_object_of_a_blocked_card_records_nothing(card):
    """The checkout's first hold runs without a savepoint: the refusal rolls back its row."""
    from oscar_loyalty import paying

    earn(card, "100")
    stale = refreshed(card)
    cards.block(refreshed(card))

    with pytest.raises(CardUnavailable, match="is blocked"):
        paying.hold_points(stale, "100077", D("10"), D("10"))

    assert not paying.Hold.objects.exists()
    assert refreshed(card).balance == D("100.00")


def test_a_mass_credit_key_recorded_as_a_debit_is_a_conflict(card):
    earn(card, "50")
    done, failures = ledger.debit_cards([card.pk], "10", lambda pk: f"job:1:card:{pk}")
    assert done == [card.pk]

    done, failures = ledger.credit_cards([card.pk], "10", lambda pk: f"job:1:card:{pk}")

    assert done == []
    assert [(pk, type(error)) for pk, error in failures] == [(card.pk, KeyConflict)]
    assert refreshed(card).balance == D("40.00")


# --- one bulk operation: post_movements ------------------------------------------------------


def test_bulk_movements_replay_by_content_and_refuse_other_content_per_movement(card, program):
    other = make_card(program, user=make_customer())
    first = [
        ledger.Movement(card.pk, D("10"), "bulk:1", Transfer.IMPORT),
        ledger.Movement(other.pk, D("5"), "bulk:2", Transfer.IMPORT),
    ]
    done, failures = ledger.post_movements(first)
    assert (done, failures) == (first, [])

    again = [first[0], ledger.Movement(other.pk, D("6"), "bulk:2", Transfer.IMPORT)]
    done, failures = ledger.post_movements(again)

    assert done == [first[0]]  # the same content: done before, written again by nothing
    assert [(m.key, type(error)) for m, error in failures] == [("bulk:2", KeyConflict)]
    assert (refreshed(card).balance, refreshed(other).balance) == (D("10.00"), D("5.00"))
    assert Transfer.objects.filter(key__startswith="bulk:").count() == 2
    assert audit() == []


def test_a_bulk_debit_beyond_the_balance_is_refused_alone_with_nothing_half_applied(card):
    earn(card, "30")
    movements = [
        ledger.Movement(card.pk, D("-20"), "take:1", Transfer.IMPORT),
        ledger.Movement(card.pk, D("-20"), "take:2", Transfer.IMPORT),  # only 10 left now
        ledger.Movement(card.pk, D("-10"), "take:3", Transfer.IMPORT),
    ]
    done, failures = ledger.post_movements(movements)

    assert [m.key for m in done] == ["take:1", "take:3"]
    ((refused, error),) = failures
    assert refused.key == "take:2" and isinstance(error, InsufficientPoints)
    assert refreshed(card).balance == D("0.00")
    assert not Transfer.objects.filter(key="take:2").exists()
    assert audit() == []


def test_a_bulk_reversal_never_takes_back_more_than_is_left_of_its_transfer(card):
    original = earn(card, "50")
    ledger.reverse(original, "earn-1:rev", amount="20")  # 30 left to reverse
    too_much = ledger.Movement(
        card.pk, D("-31"), "earn-1:undo", Transfer.REVERSE, reverses=original.pk
    )
    done, failures = ledger.post_movements([too_much], check=None)
    assert done == [] and isinstance(failures[0][1], ReversalTooLarge)
    assert refreshed(card).balance == D("30.00")

    rest = too_much._replace(amount=D("-30"))
    again = rest._replace(key="earn-1:undo2")  # the cap counts what this call reversed too
    done, failures = ledger.post_movements([rest, again], check=None)
    assert done == [rest] and isinstance(failures[0][1], ReversalTooLarge)
    assert refreshed(card).balance == D("0.00")
    assert audit() == []


def test_a_bulk_credit_repays_the_cards_debt_first(card):
    ledger.take_back(card, "30", "refund-1")  # nothing to take: 30 owed
    movement = ledger.Movement(card.pk, D("100"), "bulk:gift", Transfer.BULK, note="Gift")

    done, failures = ledger.post_movements([movement])

    card = refreshed(card)
    assert (done, failures) == ([movement], [])
    assert (card.balance, card.debt) == (D("70.00"), D("0.00"))
    repay = Transfer.objects.get(key="bulk:gift:repay")
    assert (repay.kind, repay.amount, repay.note) == (Transfer.REPAY, D("30.00"), "Gift")
    assert ledger.post_movements([movement]) == ([movement], [])  # a replay repays nothing more
    assert refreshed(card).balance == D("70.00")
    assert audit() == []


def test_bulk_movements_of_an_unusable_card_are_refused_with_the_reason(card):
    cards.block(card)
    movement = ledger.Movement(card.pk, D("10"), "bulk:blocked", Transfer.BULK)
    done, failures = ledger.post_movements([movement])
    assert done == [] and isinstance(failures[0][1], CardUnavailable)
    assert "is blocked" in str(failures[0][1])
    assert refreshed(card).balance == D("0.00")
