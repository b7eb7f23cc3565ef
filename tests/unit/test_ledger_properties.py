"""Property test of the ledger: random sequences of operations keep every invariant.

A hypothesis state machine drives three cards of one programme through earn, spend, adjust,
take back, reverse, hold / capture / release, refund, block / unblock and replays of earlier
operations. A plain Python model predicts each card's balance and debt; after every step the
database must agree with it, no points balance is negative, no debt positive, the programme
sums to zero and ``audit()`` finds nothing.
"""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from oscar_loyalty.audit import LEDGER_CHECKS, audit
from oscar_loyalty.exceptions import CardUnavailable, InsufficientPoints
from tests.factories import make_card, make_customer, make_program, refreshed

Account = get_model("oscar_loyalty", "Account")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
ZERO = D("0.00")
CARDS = 3

amounts = st.decimals(min_value=D("0.01"), max_value=D("300"), places=2)


class LedgerMachine(RuleBasedStateMachine):
    # Each bundle item is (card index, transfer pk, amount) of something that can be undone.
    credits = Bundle("credits")
    spends = Bundle("spends")
    holds = Bundle("holds")
    captured = Bundle("captured")

    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown: no data leaks between them.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        ledger.clear_cache()
        self.program = make_program(code="prop")
        self.cards = [
            make_card(self.program, user=make_customer(f"p{i}@example.com")) for i in range(CARDS)
        ]
        self.balance = [ZERO] * CARDS
        self.debt = [ZERO] * CARDS
        self.blocked = [False] * CARDS
        self.done = []  # (callable, args, kwargs, first transfer pk) of every recorded op
        self.serial = 0

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)
        ledger.clear_cache()

    # --- helpers -------------------------------------------------------------------------

    def key(self, what):
        self.serial += 1
        return f"prop:{self.serial}:{what}"

    def card(self, i):
        self.cards[i] = refreshed(self.cards[i])
        return self.cards[i]

    def record(self, func, args, kwargs, result):
        first = result[0] if isinstance(result, list) else result
        self.done.append((func, args, kwargs, first.pk))
        return first

    def model_credit(self, i, amount):
        repay = min(self.debt[i], amount)
        self.debt[i] -= repay
        self.balance[i] += amount - repay

    def model_take_back(self, i, amount):
        from_balance = min(self.balance[i], amount)
        self.balance[i] -= from_balance
        self.debt[i] += amount - from_balance

    # --- operations ----------------------------------------------------------------------

    @rule(target=credits, i=st.integers(0, CARDS - 1), amount=amounts, adjust=st.booleans())
    def earn(self, i, amount, adjust):
        kind = Transfer.ADJUST if adjust else Transfer.EARN
        args = (self.card(i), amount, self.key(kind))
        kwargs = {"kind": kind, "description": "earned"}
        if self.blocked[i]:
            with pytest.raises(CardUnavailable):
                ledger.credit_card(*args, **kwargs)
            return multiple()
        transfer = self.record(
            ledger.credit_card, args, kwargs, ledger.credit_card(*args, **kwargs)
        )
        self.model_credit(i, amount)
        return (i, transfer.pk, amount)

    @rule(target=spends, i=st.integers(0, CARDS - 1), amount=amounts, adjust=st.booleans())
    def spend(self, i, amount, adjust):
        kind = Transfer.ADJUST if adjust else Transfer.SPEND
        args = (self.card(i), amount, self.key(kind))
        kwargs = {"kind": kind}
        if self.blocked[i]:
            with pytest.raises(CardUnavailable):
                ledger.debit_card(*args, **kwargs)
            return multiple()
        if amount > self.balance[i]:
            with pytest.raises(InsufficientPoints):
                ledger.debit_card(*args, **kwargs)
            return multiple()
        transfer = self.record(ledger.debit_card, args, kwargs, ledger.debit_card(*args, **kwargs))
        self.balance[i] -= amount
        return (i, transfer.pk, amount)

    @rule(i=st.integers(0, CARDS - 1), amount=amounts)
    def take_back(self, i, amount):
        args = (self.card(i), amount, self.key("take_back"))
        self.record(ledger.take_back, args, {}, ledger.take_back(*args))
        self.model_take_back(i, amount)

    @rule(credit=consumes(credits), part=st.integers(1, 100))
    def reverse_credit(self, credit, part):
        i, pk, amount = credit
        amount = max((amount * part / 100).quantize(D("0.01")), D("0.01"))
        args = (Transfer.objects.get(pk=pk), self.key("reverse"))
        kwargs = {"amount": amount}
        self.record(ledger.reverse, args, kwargs, ledger.reverse(*args, **kwargs))
        self.model_take_back(i, amount)

    @rule(spend=consumes(spends))
    def reverse_spend(self, spend):
        i, pk, amount = spend
        args = (Transfer.objects.get(pk=pk), self.key("reverse"))
        self.record(ledger.reverse, args, {}, ledger.reverse(*args))
        self.balance[i] += amount

    @rule(target=holds, i=st.integers(0, CARDS - 1), amount=amounts)
    def hold(self, i, amount):
        args = (self.card(i), amount, self.key("hold"))
        if self.blocked[i]:
            with pytest.raises(CardUnavailable):
                ledger.hold(*args)
            return multiple()
        if amount > self.balance[i]:
            with pytest.raises(InsufficientPoints):
                ledger.hold(*args)
            return multiple()
        transfer = self.record(ledger.hold, args, {}, ledger.hold(*args))
        self.balance[i] -= amount
        return (i, transfer.pk, amount)

    @rule(target=captured, held=consumes(holds))
    def capture(self, held):
        i, pk, amount = held
        args = (self.card(i), amount, self.key("capture"))
        transfer = self.record(ledger.capture, args, {}, ledger.capture(*args))
        return (i, transfer.pk, amount)

    @rule(held=consumes(holds))
    def release(self, held):
        i, _pk, amount = held
        args = (self.card(i), amount, self.key("release"))
        self.record(ledger.release, args, {}, ledger.release(*args))
        self.balance[i] += amount

    @rule(paid=consumes(captured), part=st.integers(1, 100))
    def refund(self, paid, part):
        i, _pk, amount = paid
        amount = max((amount * part / 100).quantize(D("0.01")), D("0.01"))
        args = (self.card(i), amount, self.key("refund"))
        self.record(ledger.refund, args, {}, ledger.refund(*args))
        self.balance[i] += amount

    @rule(i=st.integers(0, CARDS - 1))
    def block_or_unblock(self, i):
        if self.blocked[i]:
            cards.unblock(self.card(i))
        else:
            cards.block(self.card(i), reason="property test")
        self.blocked[i] = not self.blocked[i]

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def replay(self, data):
        """Any earlier operation called again with its key changes nothing."""
        func, args, kwargs, first_pk = data.draw(st.sampled_from(self.done))
        before = self.snapshot()
        transfers = Transfer.objects.count()
        # Refresh the card (or transfer) so the replay sees today's balances, not the old ones.
        target = args[0]
        if isinstance(target, Transfer):
            target = Transfer.objects.select_related("card").get(pk=target.pk)
            card = target.card
        else:
            target = card = refreshed(target)
        args = (target, *args[1:])
        try:
            result = func(*args, **kwargs)
        except CardUnavailable:
            # An earning or spend on a card blocked since is refused, as a new one would be.
            assert card.refusal()
        else:
            first = result[0] if isinstance(result, list) else result
            assert first.pk == first_pk
        assert Transfer.objects.count() == transfers
        assert self.snapshot() == before

    # --- invariants ----------------------------------------------------------------------

    def snapshot(self):
        return dict(Account.objects.filter(program=self.program).values_list("pk", "balance"))

    @invariant()
    def balances_match_the_model(self):
        for i, card in enumerate(self.cards):
            card = refreshed(card)
            assert card.balance == self.balance[i], f"card {i} balance"
            assert card.debt == self.debt[i], f"card {i} debt"

    @invariant()
    def no_balance_leaves_its_side_of_zero(self):
        accounts = Account.objects.filter(program=self.program)
        assert not accounts.filter(kind=Account.POINTS, balance__lt=0).exists()
        assert not accounts.filter(kind=Account.DEBT, balance__gt=0).exists()

    @invariant()
    def the_programme_sums_to_zero_and_audit_is_clean(self):
        accounts = Account.objects.filter(program=self.program)
        total = sum((ledger.balance(a) for a in accounts), ZERO)
        assert total == ZERO
        assert audit(LEDGER_CHECKS) == []  # holds here are the ledger's, with no Hold rows


@pytest.mark.django_db
def test_random_operations_keep_every_ledger_invariant():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
