"""The points ledger: the only code that writes balances.

Double entry: every transfer moves an amount from a debit account to a credit account of the
same programme and unit, so the balances of one unit always sum to zero. Card and debt
accounts cache their balance, changed in the transfer's own database transaction; system
accounts derive theirs from transfers, so no transfer waits on a shared row.

Every operation takes an idempotency key. Repeating it with the same content returns what was
recorded the first time; with other content it raises ``KeyConflict``. An operation that needs
more than one transfer writes the first under ``key`` and the others under ``key:<leg>``, all
in one database transaction.

Amounts are ``Decimal`` with two places; anything finer is refused rather than rounded here
(callers round on purpose, e.g. ``earning`` rounds down to the programme's step).
"""

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Case, DecimalField, F, Sum, Value, When
from oscar.core.loading import get_model

from oscar_loyalty.exceptions import (
    CardUnavailable,
    InsufficientPoints,
    InvalidAmount,
    KeyConflict,
)

Account = get_model("oscar_loyalty", "Account")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

# System accounts of each programme: the other side of every card movement.
ISSUED = "issued"  # points given out (earned, adjusted, imported) come from here
HELD = "held"  # points reserved for an order being paid
REDEEMED = "redeemed"  # points paid for orders
EXPIRED = "expired"  # points that lapsed
SYSTEM_CODES = (ISSUED, HELD, REDEEMED, EXPIRED)

_system_accounts = {}


def clear_cache():
    """Forget cached system accounts (tests roll back the rows they point to)."""
    _system_accounts.clear()


def to_amount(value):
    """Return ``value`` as a positive two-place ``Decimal`` or raise ``InvalidAmount``."""
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidAmount(f"{value!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount(f"{value} is not a positive amount")
    if amount != amount.quantize(CENT):
        raise InvalidAmount(f"{value} has more than two decimal places")
    return amount.quantize(CENT)


def system_account(program, code, unit="points"):
    """The programme's system account ``code``, created on first use."""
    cache_key = (program.pk, unit, code)
    account = _system_accounts.get(cache_key)
    if account is None:
        account, _ = Account.objects.get_or_create(
            program=program, unit=unit, kind=Account.SYSTEM, code=code
        )
        _system_accounts[cache_key] = account
    return account


def open_card_accounts(program):
    """Create the points and debt accounts a new card owns."""
    return (
        Account.objects.create(program=program, kind=Account.POINTS),
        Account.objects.create(program=program, kind=Account.DEBT),
    )


# --- reading -------------------------------------------------------------------------------


def derived_balance(account):
    """Credits minus debits of ``account``, from its transfers."""
    credits = Transfer.objects.filter(credit=account).aggregate(s=Sum("amount"))["s"] or ZERO
    debits = Transfer.objects.filter(debit=account).aggregate(s=Sum("amount"))["s"] or ZERO
    return credits - debits


def balance(account):
    """An account's balance: cached for card accounts, derived for system accounts."""
    if account.kind == Account.SYSTEM:
        return derived_balance(account)
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


def history(card):
    """Transfers of a card, newest first, each annotated with ``change``: its effect on
    the card's balance (zero for legs that only move debt)."""
    return (
        Transfer.objects.filter(card=card)
        .annotate(
            change=Case(
                When(credit_id=card.account_id, then=F("amount")),
                When(debit_id=card.account_id, then=F("amount") * -1),
                default=Value(ZERO),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            )
        )
        .select_related("created_by")
        .order_by("-created", "-id")
    )


# --- writing -------------------------------------------------------------------------------


def _leg(key, kind, debit, credit, amount, card=None, **details):
    return Transfer(
        key=key, kind=kind, debit=debit, credit=credit, amount=amount, card=card, **details
    )


def _same_content(recorded, kind, card, amount):
    """Whether recorded legs are the operation asked for again (``:repay`` legs are extra)."""
    main = [t for t in recorded if not t.key.endswith(":repay")]
    total = sum((t.amount for t in main), ZERO)
    card_ids = {t.card_id for t in main}
    return (
        total == amount
        and {t.kind for t in main} <= {kind, Transfer.DEBT}
        and card_ids == {card.pk if card else None}
    )


def _replay(key, kind, card, amount):
    """The legs recorded under ``key`` if the operation was done already, else ``None``."""
    keys = [key, f"{key}:repay", f"{key}:debt"]
    recorded = list(Transfer.objects.filter(key__in=keys).order_by("id"))
    if not recorded:
        return None
    if not _same_content(recorded, kind, card, amount):
        raise KeyConflict(key)
    return recorded


def _apply(legs):
    """Insert ``legs`` and move cached balances, in the caller's transaction.

    Balances are changed with conditional UPDATEs in account order, so two operations never
    wait on each other in opposite orders and no balance leaves its allowed side of zero.
    """
    for leg in legs:
        leg.save(force_insert=True)
    deltas = {}
    accounts = {}
    for leg in legs:
        for account, sign in ((leg.debit, -1), (leg.credit, 1)):
            if account.kind != Account.SYSTEM:
                deltas[account.pk] = deltas.get(account.pk, ZERO) + sign * leg.amount
                accounts[account.pk] = account
    for pk in sorted(deltas):
        delta, account = deltas[pk], accounts[pk]
        rows = Account.objects.filter(pk=pk)
        if delta < 0 and account.kind == Account.POINTS:
            rows = rows.filter(balance__gte=-delta)
        elif delta > 0 and account.kind == Account.DEBT:
            rows = rows.filter(balance__lte=-delta)
        if delta and not rows.update(balance=F("balance") + delta):
            available = Account.objects.values_list("balance", flat=True).get(pk=pk)
            raise InsufficientPoints(abs(available), -delta)
        account.balance += delta  # keep the caller's object current


def _write(key, kind, card, amount, build_legs, lock=False):
    """Run one idempotent operation: replay it, or build its legs and apply them atomically.

    ``lock`` takes the card's rows first, for operations whose legs depend on its balance
    or debt; single-leg spends rely on the conditional UPDATE alone.
    """
    try:
        with transaction.atomic():
            if lock and card is not None:
                locked = {
                    a.pk: a.balance
                    for a in Account.objects.select_for_update()
                    .filter(pk__in=[card.account_id, card.debt_account_id])
                    .order_by("pk")
                }
                card.account.balance = locked[card.account_id]
                card.debt_account.balance = locked[card.debt_account_id]
            recorded = _replay(key, kind, card, amount) if lock else None
            if recorded is not None:
                return recorded
            legs = build_legs()
            _apply(legs)
            return legs
    except IntegrityError:
        # The same key committed by a concurrent call: the loser returns the winner's legs.
        recorded = _replay(key, kind, card, amount)
        if recorded is None:
            raise
        return recorded


def _check_usable(card):
    reason = card.refusal()
    if reason:
        raise CardUnavailable(reason)


def _first(legs):
    return legs[0]


def credit_card(card, amount, key, kind=Transfer.EARN, check=True, **details):
    """Give ``card`` points from the programme, repaying its debt first.

    The main leg (``key``) always carries the whole amount into the card; a ``key:repay`` leg
    then moves what the card owes into its debt account, so a replay compares like with like.
    """
    amount = to_amount(amount)
    if check:
        _check_usable(card)
    issued = system_account(card.program, ISSUED)

    def legs():
        result = [_leg(key, kind, issued, card.account, amount, card, **details)]
        repay = min(-card.debt_account.balance, amount)
        if repay > 0:
            result.append(
                _leg(
                    f"{key}:repay",
                    Transfer.REPAY,
                    card.account,
                    card.debt_account,
                    repay,
                    card,
                    **details,
                )
            )
        return result

    return _first(_write(key, kind, card, amount, legs, lock=True))


def debit_card(card, amount, key, kind=Transfer.SPEND, to=REDEEMED, check=True, **details):
    """Take ``amount`` from ``card`` into system account ``to``; never below zero."""
    amount = to_amount(amount)
    if check:
        _check_usable(card)
    target = system_account(card.program, to)
    leg = _leg(key, kind, card.account, target, amount, card, **details)
    return _first(_write(key, kind, card, amount, lambda: [leg]))


def take_back(card, amount, key, kind=Transfer.REVERSE, reverses=None, **details):
    """Take back points a card was given; what it has already spent becomes its debt.

    Works on blocked and closed cards too: a refund must never depend on the card's state.
    """
    amount = to_amount(amount)
    issued = system_account(card.program, ISSUED)

    def legs():
        from_balance = min(card.account.balance, amount)
        owed = amount - from_balance
        result = []
        if from_balance > 0:
            result.append(
                _leg(
                    key,
                    kind,
                    card.account,
                    issued,
                    from_balance,
                    card,
                    reverses=reverses,
                    **details,
                )
            )
        if owed > 0:
            result.append(
                _leg(
                    f"{key}:debt" if result else key,
                    Transfer.DEBT,
                    card.debt_account,
                    issued,
                    owed,
                    card,
                    reverses=reverses,
                    **details,
                )
            )
        return result

    return _write(key, kind, card, amount, legs, lock=True)


def reverse(transfer, key, amount=None, **details):
    """Undo ``transfer`` (wholly, or ``amount`` of it) by a new transfer pointing at it.

    Reversing a credit to a card uses ``take_back``, so spent points become debt.
    """
    amount = to_amount(amount if amount is not None else transfer.amount)
    card = transfer.card
    details.setdefault("description", transfer.description)
    details.setdefault("order_number", transfer.order_number)
    if card is not None and transfer.credit_id == card.account_id:
        return take_back(card, amount, key, reverses=transfer, **details)[0]
    leg = _leg(
        key,
        Transfer.REVERSE,
        transfer.credit,
        transfer.debit,
        amount,
        card,
        reverses=transfer,
        **details,
    )
    return _first(_write(key, Transfer.REVERSE, card, amount, lambda: [leg]))


# --- checkout holds ------------------------------------------------------------------------


def hold(card, amount, key, **details):
    """Reserve points for an order being paid."""
    return debit_card(card, amount, key, kind=Transfer.HOLD, to=HELD, **details)


def capture(card, amount, key, **details):
    """Turn a hold into a payment once the order exists."""
    amount = to_amount(amount)
    held, redeemed = system_account(card.program, HELD), system_account(card.program, REDEEMED)
    leg = _leg(key, Transfer.CAPTURE, held, redeemed, amount, card, **details)
    return _first(_write(key, Transfer.CAPTURE, card, amount, lambda: [leg]))


def release(card, amount, key, **details):
    """Give held points back to the card (payment failed or the customer never returned)."""
    amount = to_amount(amount)
    held = system_account(card.program, HELD)
    leg = _leg(key, Transfer.RELEASE, held, card.account, amount, card, **details)
    return _first(_write(key, Transfer.RELEASE, card, amount, lambda: [leg]))


def refund(card, amount, key, **details):
    """Return points paid for an order (cancelled or refunded lines); works on any card."""
    amount = to_amount(amount)
    redeemed = system_account(card.program, REDEEMED)
    leg = _leg(key, Transfer.REFUND, redeemed, card.account, amount, card, **details)
    return _first(_write(key, Transfer.REFUND, card, amount, lambda: [leg]))
