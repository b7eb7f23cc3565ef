"""Checkpoints stay exact while transfers commit out of id order, on PostgreSQL.

PostgreSQL draws a transfer's id when the row is inserted, before COMMIT: a transaction still
running can hold an id below one already committed. A checkpoint taken at the committed
maximum would then miss that transfer for good once it commits. ``safe_bound`` waits for
such transactions (or gives up and leaves the old checkpoint).
"""

import threading
from decimal import Decimal

import pytest
from django.db import connections, transaction
from oscar.core.loading import get_model

from oscar_loyalty import checkpoints, ledger
from tests.factories import make_card, make_customer
from tests.integration.test_audit import run_audit
from tests.integration.test_ledger_postgres import load

BalanceCheckpoint = get_model("oscar_loyalty", "BalanceCheckpoint")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slow_spend(card):
    """A spend of 10 whose transaction stays open until ``release`` is set."""
    ledger.credit_card(card, "100", "setup")
    inserted, release = threading.Event(), threading.Event()

    def spend():
        try:
            with transaction.atomic():
                ledger.debit_card(load(card), "10", "slow:spend")
                inserted.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=spend)
    thread.start()
    assert inserted.wait(30)
    yield release
    release.set()
    thread.join(30)


def test_a_bound_waits_for_a_transaction_holding_a_lower_id(card, program, slow_spend):
    other = make_card(program, user=make_customer())
    ledger.credit_card(other, "5", "fast:credit")  # committed, with a higher id
    committed = Transfer.objects.get(key="fast:credit").pk

    assert checkpoints.safe_bound(timeout=0.3) is None  # the spend may still commit
    timer = threading.Timer(0.5, slow_spend.set)
    timer.start()
    bound = checkpoints.safe_bound(timeout=20)  # returns once the spend has committed
    timer.join()

    assert bound >= committed
    assert Transfer.objects.filter(key="slow:spend", pk__lt=committed).exists()
    checkpoints.take(bound)
    redeemed = ledger.system_account(program, ledger.REDEEMED)
    assert BalanceCheckpoint.objects.get(account=redeemed).balance == D("10.00")
    assert ledger.balance(redeemed) == D("10.00")
    assert run_audit()[0]
