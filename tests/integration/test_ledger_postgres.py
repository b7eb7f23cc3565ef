"""The ledger's guarantees under real concurrency and faults, on PostgreSQL.

SQLite does not lock rows, so these run on PostgreSQL only (`make test-postgres`). Every test
uses ``transaction=True``: each thread has its own connection and really commits, so a write
the ledger forgot to wrap in its transaction would stay behind and be seen here. The
``program`` and ``card`` fixtures come from tests/conftest.py.
"""

import threading
from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from oscar.core.loading import get_model

from oscar_loyalty import _ledger_sql, audit, earning, grades, ledger, paying
from oscar_loyalty.exceptions import InsufficientPoints, ReversalTooLarge

Account = get_model("oscar_loyalty", "Account")
Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = Decimal
SPENDERS = 50  # the issue asks for at least 50 concurrent spends on one card


def load(card):
    """The card as a new request would load it (each thread needs its own objects)."""
    return Card.objects.select_related("program", "account", "debt_account").get(pk=card.pk)


def balances(card):
    """Points and debt account balances (a card that never owed has no debt account)."""
    card = load(card)
    return card.account.balance, card.debt_account.balance if card.debt_account else D("0.00")


def assert_audit_clean():
    """The ledger's own checks: these tests hold points without the checkout's Hold rows."""
    assert audit.audit(audit.LEDGER_CHECKS) == []


def run_together(count, operation):
    """Run ``operation(i)`` in ``count`` threads released at the same moment.

    Each thread uses its own database connection (Django's are per thread) and closes it.
    Returns ``("ok", result)`` or ``("error", exception)`` per thread.
    """
    start = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            start.wait(timeout=60)
            results[index] = ("ok", operation(index))
        except Exception as exc:  # reported to the test, never swallowed
            results[index] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a ledger call hung"
    return results


def errors_of(results):
    return [value for outcome, value in results if outcome == "error"]


def values_of(results):
    return [value for outcome, value in results if outcome == "ok"]


# --- concurrent spends ---------------------------------------------------------------------


def test_concurrent_spends_on_one_card_never_overdraw(card):
    ledger.credit_card(card, D("255.00"), "setup:credit")

    results = run_together(
        SPENDERS, lambda i: ledger.debit_card(load(card), D("10.00"), f"spend:{i}")
    )

    spent = values_of(results)
    refused = errors_of(results)
    assert len(spent) == 25  # floor(255 / 10)
    assert len(refused) == SPENDERS - 25
    assert all(isinstance(exc, InsufficientPoints) for exc in refused), refused
    assert balances(card) == (D("5.00"), D("0.00"))
    assert Transfer.objects.filter(kind=Transfer.SPEND).count() == 25
    assert ledger.balance(ledger.system_account(card.program, ledger.REDEEMED)) == D("250.00")
    assert_audit_clean()


def test_mixed_concurrent_operations_on_one_card_keep_the_books_balanced(card):
    """Credits, spends, holds and take-backs at once: no deadlock, no negative balance."""
    ledger.credit_card(card, D("100.00"), "setup:credit")
    ledger.take_back(card, D("130.00"), "setup:debt")  # 100 taken, 30 owed
    assert balances(card) == (D("0.00"), D("-30.00"))

    def operation(i):
        fresh = load(card)
        match i % 4:
            case 0:
                return ledger.credit_card(fresh, D("20.00"), f"mix:credit:{i}")
            case 1:
                return ledger.debit_card(fresh, D("15.00"), f"mix:spend:{i}")
            case 2:
                return ledger.hold(fresh, D("5.00"), f"mix:hold:{i}")
            case _:
                return ledger.take_back(fresh, D("25.00"), f"mix:back:{i}")

    results = run_together(SPENDERS + 2, operation)

    unexpected = [e for e in errors_of(results) if not isinstance(e, InsufficientPoints)]
    assert unexpected == []
    balance, debt = balances(card)
    assert balance >= 0 and debt <= 0
    assert Transfer.objects.filter(key__startswith="mix:credit:", kind=Transfer.EARN).count() == 13
    assert_audit_clean()


def test_credits_racing_a_first_debt_still_repay_it(card):
    """The debt account is opened by the first take-back; credits that loaded the card before
    must still see that debt and repay it first, and only one debt account may appear."""

    def operation(i):
        fresh = load(card)  # no debt account yet when most threads load it
        if i % 2:
            return ledger.credit_card(fresh, D("20.00"), f"race:credit:{i}")
        return ledger.take_back(fresh, D("25.00"), f"race:back:{i}")

    results = run_together(30, operation)

    assert errors_of(results) == []
    balance, debt = balances(card)
    assert balance - (-debt) == 15 * D("20.00") - 15 * D("25.00")  # every call counted once
    assert balance == 0 or debt == 0, (balance, debt)  # a debt is repaid before points stay
    assert Account.objects.filter(kind=Account.DEBT, debt_card=card).count() == 1
    assert_audit_clean()


# --- the same key at once ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["spend", "credit"])
def test_reversals_of_one_transfer_at_once_never_give_back_more_than_it_moved(card, kind):
    """Ten threads each reverse 4 of a 10-point transfer: two fit, the others are refused."""
    ledger.credit_card(card, D("100.00"), "setup:credit")
    if kind == "spend":
        original = ledger.debit_card(load(card), D("10.00"), "setup:original")
    else:
        original = ledger.credit_card(load(card), D("10.00"), "setup:original")
    before = balances(card)[0]

    results = run_together(
        10,
        lambda i: ledger.reverse(
            Transfer.objects.get(pk=original.pk), f"race:reverse:{i}", amount=D("4.00")
        ),
    )

    assert len(values_of(results)) == 2
    assert all(isinstance(error, ReversalTooLarge) for error in errors_of(results))
    assert Transfer.objects.filter(reverses=original).count() == 2
    change = D("8.00") if kind == "spend" else D("-8.00")
    assert balances(card) == (before + change, D("0.00"))
    assert_audit_clean()


def test_same_spend_key_from_many_threads_counts_once(card):
    ledger.credit_card(card, D("100.00"), "setup:credit")

    results = run_together(
        20, lambda i: ledger.debit_card(load(card), D("30.00"), "order:100042:spend")
    )

    assert errors_of(results) == []
    assert len({transfer.pk for transfer in values_of(results)}) == 1
    assert Transfer.objects.filter(key__startswith="order:100042:").count() == 1
    assert balances(card) == (D("70.00"), D("0.00"))
    assert_audit_clean()


def test_same_credit_key_from_many_threads_counts_once_and_repays_debt_once(card):
    ledger.credit_card(card, D("10.00"), "setup:credit")
    ledger.take_back(card, D("50.00"), "setup:debt")  # 10 taken, 40 owed

    results = run_together(
        20, lambda i: ledger.credit_card(load(card), D("100.00"), "order:100043:earn")
    )

    assert errors_of(results) == []
    assert len({transfer.pk for transfer in values_of(results)}) == 1
    assert sorted(
        Transfer.objects.filter(key__startswith="order:100043:").values_list("key", "amount")
    ) == [("order:100043:earn", D("100.00")), ("order:100043:earn:repay", D("40.00"))]
    assert balances(card) == (D("60.00"), D("0.00"))
    assert_audit_clean()


def test_same_take_back_key_from_many_threads_counts_once(card):
    ledger.credit_card(card, D("30.00"), "setup:credit")

    results = run_together(
        20, lambda i: ledger.take_back(load(card), D("50.00"), "order:100044:cancel")
    )

    assert errors_of(results) == []
    assert {t.pk for t in values_of(results)} == {
        Transfer.objects.get(key="order:100044:cancel").pk
    }
    assert Transfer.objects.filter(key__startswith="order:100044:").count() == 2
    assert balances(card) == (D("0.00"), D("-20.00"))
    assert_audit_clean()


# --- faults inside an operation ------------------------------------------------------------


class Fault(Exception):
    pass


class FailAfterWrite:
    """A database execute wrapper that raises right after the ``nth`` write has run."""

    def __init__(self, nth=None):
        self.nth, self.writes = nth, 0

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.writes += 1
            if self.writes == self.nth:
                raise Fault(f"injected after write {self.nth}: {sql[:50]}")
        return result


def prepare_debt(card):
    ledger.credit_card(card, D("40.00"), "setup:credit")
    ledger.take_back(card, D("60.00"), "setup:debt")  # 40 taken, 20 owed


def prepare_balance(card):
    ledger.credit_card(card, D("40.00"), "setup:credit")


def earn_on_order(card):
    """Posting an order's points: the ledger's writes and the accrual's in one transaction.

    The grade recalculation that follows commits on its own (a failure there leaves the points
    posted, as it should), so it is left out of the writes counted here.
    """
    accrual = Accrual.objects.create(
        card=card,
        order_number="100050",
        base=D("500.00"),
        percent=D("10.00"),
        points=D("50.00"),
        available_at=card.created,
    )

    def post():
        with mock.patch.object(grades, "recalculate"):
            earning.post(accrual.pk)

    return post


def checkout_hold(card):
    """The checkout's first hold of an order: row and transfer without a savepoint."""
    return lambda: paying.hold_points(load(card), "100060", D("25.00"), D("25.00"))


def prepare_checkout_hold(card):
    prepare_balance(card)
    checkout_hold(card)()


def checkout_capture(card):
    """The order exists: the held points are captured."""
    return lambda: paying.capture("100060")


# (name, setup, operation, writes it makes): every write of each operation gets a fault.
OPERATIONS = {
    "spend": (
        prepare_balance,
        lambda card: lambda: ledger.debit_card(load(card), D("25.00"), "op:spend"),
        3,  # the "redeemed" system account (first use), transfer, card balance
    ),
    "credit repaying debt": (
        prepare_debt,
        lambda card: lambda: ledger.credit_card(load(card), D("50.00"), "op:credit"),
        4,  # main leg, repay leg, card balance, debt balance
    ),
    "take back beyond balance": (
        prepare_balance,
        lambda card: lambda: ledger.take_back(load(card), D("70.00"), "op:back"),
        6,  # balance leg, debt account opened and set on the card, debt leg, both balances
    ),
    "hold": (
        prepare_balance,
        lambda card: lambda: ledger.hold(load(card), D("25.00"), "op:hold"),
        3,  # the "held" system account (first use), transfer, card balance
    ),
    "post an accrual": (
        prepare_debt,
        earn_on_order,
        5,  # credit with repay (4), accrual marked posted
    ),
    "checkout hold": (
        prepare_balance,
        checkout_hold,
        4,  # hold row, the "held" system account (first use), transfer, card balance
    ),
    "checkout capture": (
        prepare_checkout_hold,
        checkout_capture,
        3,  # the "redeemed" system account (first use), transfer, hold marked captured
    ),
}

FAULT_CASES = [
    pytest.param(name, nth, id=f"{name}-after-write-{nth}")
    for name, (_setup, _op, writes) in OPERATIONS.items()
    for nth in range(1, writes + 1)
]


def snapshot():
    return (
        sorted(Transfer.objects.values_list("key", "amount")),
        sorted(Account.objects.values_list("pk", "balance")),
        sorted(Accrual.objects.values_list("pk", "status")),
        sorted(Hold.objects.values_list("order_number", "points", "status")),
    )


@pytest.mark.parametrize("name", OPERATIONS)
def test_fault_cases_cover_every_write(card, name):
    """Guards the parametrisation below: each operation makes exactly the writes listed."""
    setup, make, writes = OPERATIONS[name]
    setup(card)
    operation = make(card)
    counter = FailAfterWrite()
    with connection.execute_wrapper(counter):
        operation()
    assert counter.writes == writes


@pytest.mark.parametrize("name,nth", FAULT_CASES)
def test_fault_after_a_write_leaves_nothing_behind(card, name, nth):
    setup, make, _writes = OPERATIONS[name]
    setup(card)
    operation = make(card)
    before = snapshot()

    fault = FailAfterWrite(nth)
    with pytest.raises(Fault), connection.execute_wrapper(fault):
        operation()

    assert fault.writes == nth
    assert snapshot() == before
    assert_audit_clean()

    # Nothing half-recorded blocks the retry: the same key now succeeds, once.
    operation()
    operation()
    assert_audit_clean()
    assert len(snapshot()[0]) > len(before[0])


def test_failing_second_leg_save_leaves_the_first_leg_out(card, monkeypatch):
    prepare_debt(card)
    before = snapshot()
    original_insert = _ledger_sql.insert_one

    def insert_one(transfer, *args, **kwargs):
        if transfer.key.endswith(":repay"):
            raise Fault("repay leg refused")
        return original_insert(transfer, *args, **kwargs)

    monkeypatch.setattr(_ledger_sql, "insert_one", insert_one)
    with pytest.raises(Fault):
        ledger.credit_card(load(card), D("50.00"), "op:credit")

    assert snapshot() == before
    assert not Transfer.objects.filter(key="op:credit").exists()
    assert_audit_clean()


def test_caller_rolling_back_takes_the_ledger_writes_with_it(card):
    """A ledger call inside the caller's transaction commits nothing of its own."""
    prepare_balance(card)
    before = snapshot()

    with pytest.raises(Fault), transaction.atomic():
        ledger.debit_card(load(card), D("10.00"), "op:inside")
        raise Fault("the order could not be saved")

    assert snapshot() == before
    assert_audit_clean()


def test_a_recorded_key_without_a_savepoint_rolls_the_callers_transaction_back(card):
    """``savepoint=False`` never counts a key twice: inside the caller's transaction a repeat
    raises and takes the caller's own writes with it; on its own it returns the first."""
    prepare_balance(card)
    first = ledger.hold(load(card), D("25.00"), "op:hold")
    before = snapshot()

    with pytest.raises(IntegrityError), transaction.atomic():
        ledger.credit_card(load(card), D("5.00"), "op:caller")
        ledger.hold(load(card), D("25.00"), "op:hold", savepoint=False)

    assert snapshot() == before
    assert ledger.hold(load(card), D("25.00"), "op:hold", savepoint=False) == first
    assert snapshot() == before
    assert_audit_clean()


def test_rolled_back_first_use_of_a_system_account_is_not_remembered(card):
    """The first spend of a programme creates its "redeemed" account; if the caller's
    transaction rolls back, the next spend must not point at the vanished row."""
    prepare_balance(card)

    with pytest.raises(Fault), transaction.atomic():
        ledger.debit_card(load(card), D("10.00"), "op:first")
        raise Fault("payment failed")
    ledger.debit_card(load(card), D("10.00"), "op:second")

    assert balances(card) == (D("30.00"), D("0.00"))
    assert_audit_clean()


# --- the database itself refuses ----------------------------------------------------------


def raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_database_refuses_to_update_or_delete_a_transfer(card):
    transfer = ledger.credit_card(card, D("10.00"), "setup:credit")
    table = Transfer._meta.db_table

    with pytest.raises(DatabaseError, match="immutable"):
        raw(f"UPDATE {table} SET amount = 1000 WHERE id = %s", [transfer.pk])
    with pytest.raises(DatabaseError, match="immutable"):
        raw(f"DELETE FROM {table} WHERE id = %s", [transfer.pk])

    assert Transfer.objects.get(pk=transfer.pk).amount == D("10.00")
    assert_audit_clean()


def test_database_refuses_balances_on_the_wrong_side_of_zero(card):
    table = Account._meta.db_table
    ledger.take_back(card, D("5.00"), "setup:debt")  # opens the debt account
    ledger.credit_card(card, D("15.00"), "setup:credit")
    card = load(card)
    issued = ledger.system_account(card.program, ledger.ISSUED)

    with pytest.raises(IntegrityError, match="loyalty_points_never_negative"):
        raw(f"UPDATE {table} SET balance = -1 WHERE id = %s", [card.account_id])
    with pytest.raises(IntegrityError, match="loyalty_debt_never_positive"):
        raw(f"UPDATE {table} SET balance = 1 WHERE id = %s", [card.debt_account_id])
    with pytest.raises(IntegrityError, match="loyalty_system_balance_derived"):
        raw(f"UPDATE {table} SET balance = 5 WHERE id = %s", [issued.pk])

    assert balances(card) == (D("10.00"), D("0.00"))
    assert_audit_clean()
