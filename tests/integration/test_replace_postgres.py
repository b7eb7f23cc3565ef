"""Replacing a lost card while the card is in use, on PostgreSQL (real row locks)."""

from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from oscar_loyalty.exceptions import CardUnavailable
from tests.integration.test_ledger_postgres import (
    assert_audit_clean,
    errors_of,
    load,
    run_together,
    values_of,
)

Card = get_model("oscar_loyalty", "Card")
Transfer = get_model("oscar_loyalty", "Transfer")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = Decimal


def test_two_replacements_at_once_make_one_new_card(card):
    ledger.credit_card(card, D("300.00"), "setup:credit")
    results = run_together(2, lambda i: cards.replace(load(card), reason="Lost").pk)
    assert errors_of(results) == []
    assert len(set(values_of(results))) == 1
    new = load(Card.objects.get(replaces=card))
    assert (new.account.balance, load(card).account.balance) == (D("300.00"), D("0.00"))
    assert Transfer.objects.filter(kind=Transfer.MOVE).count() == 1
    assert_audit_clean()


def test_spends_racing_a_replacement_are_either_before_it_or_refused(card):
    ledger.credit_card(card, D("100.00"), "setup:credit")

    def operation(i):
        if i == 0:
            return cards.replace(load(card), reason="Lost")
        return ledger.debit_card(load(card), D("10.00"), f"spend:{i}")

    results = run_together(6, operation)
    refused = errors_of(results)
    assert all(isinstance(exc, CardUnavailable) for exc in refused), [str(e) for e in refused]
    spent = Transfer.objects.filter(kind=Transfer.SPEND).count()
    new = load(Card.objects.get(replaces=card))
    assert new.account.balance == D("100.00") - 10 * spent
    assert load(card).account.balance == D("0.00")
    assert_audit_clean()
