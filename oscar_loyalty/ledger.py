"""The points ledger: the only code that writes balances.

Double entry: every transfer moves an amount from a debit account to a credit account of the
same programme and unit, so the balances of one unit always sum to zero. Card and debt
accounts cache their balance, changed in the transfer's own database transaction; system
accounts derive theirs from transfers, so no transfer waits on a shared row.

Every operation takes an idempotency key. Repeating it with the same content returns what was
recorded the first time; with other content it raises ``KeyConflict``. An operation that needs
more than one transfer writes the first under ``key`` and the others under ``key:<leg>``, all
in one database transaction. Inside a caller's transaction each operation spends a savepoint,
so that a key found recorded (its INSERT fails) can still be replayed there. ``hold`` and
``capture`` take ``savepoint=False`` from a caller that knows its key is new (the checkout,
under the order's hold row): a recorded key then raises ``IntegrityError``, the caller's
transaction rolls back whole, and the caller asks again with the default, which replays.

A replay is compared leg by leg: kind, debit and credit accounts, card and the transfer
reversed, and the legs' amounts must add up to the amount asked. A transfer is never reversed
for more than is left of it.

Amounts are ``Decimal`` with two places that the amount column holds; anything finer is
refused rather than rounded here (callers round on purpose, e.g. ``earning`` rounds down to
the programme's step), and so is anything larger than the column's digits.

A card's status is checked by the database in the statement that moves its points (the
conditional UPDATE of its account), never on the caller's card object, which may be stale.
``check`` says what an operation needs: ``USABLE`` (earning, spending, holding: an active,
participating card), ``OPEN`` (a manager's adjustment: any card but a closed one) or ``None``
(refunds, releases, captures and take-backs, which never depend on the card's state).
"""

from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Round
from django.utils.translation import gettext
from oscar.core.loading import get_model

from oscar_loyalty import _ledger_sql, checkpoints, keys, lookups
from oscar_loyalty.exceptions import (
    CardUnavailable,
    InsufficientPoints,
    InvalidAmount,
    KeyConflict,
    ReversalTooLarge,
)
from oscar_loyalty.formats import format_points

Account = get_model("oscar_loyalty", "Account")
Card = get_model("oscar_loyalty", "Card")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")
_AMOUNT = Transfer._meta.get_field("amount")
CENT = Decimal(1).scaleb(-_AMOUNT.decimal_places)  # 0.01
# The first amount the column cannot hold: 10 ** 12 for 14 digits with two decimal places.
TOO_LARGE = Decimal(10) ** (_AMOUNT.max_digits - _AMOUNT.decimal_places)

# What an operation needs of the card's status (``check=``); see the module's docstring.
USABLE, OPEN = Card.USABLE, Card.OPEN

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
    """Return ``value`` as a positive two-place ``Decimal`` or raise ``InvalidAmount``.

    Refused: what is not a number (``True`` included), NaN, infinities, zero and below,
    anything of more than two decimal places (never rounded here) and anything the amount
    column cannot hold (``TOO_LARGE`` and above).
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidAmount(gettext("“%(value)s” is not a number.") % {"value": value}) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount(
            gettext("%(value)s is not a positive amount.") % {"value": format_points(value)}
        )
    if amount >= TOO_LARGE:
        raise InvalidAmount(
            gettext("%(value)s is too large: amounts stay below %(limit)s.")
            % {"value": format_points(value), "limit": format_points(TOO_LARGE)}
        )
    if amount != amount.quantize(CENT):
        raise InvalidAmount(
            gettext("%(value)s has more than two decimal places.") % {"value": format_points(value)}
        )
    return amount.quantize(CENT)


def system_account(program, code, unit="points"):
    """The programme's system account ``code``, created on first use.

    Operations call it inside their transaction, so a creation rolls back with them; the
    account is cached only once that transaction commits (a cached row that was rolled back
    would break every later transfer of this process).
    """
    cache_key = (program.pk, unit, code)
    account = _system_accounts.get(cache_key)
    if account is None:
        account, _ = Account.objects.get_or_create(
            program=program, unit=unit, kind=Account.SYSTEM, code=code
        )
        transaction.on_commit(lambda: _system_accounts.setdefault(cache_key, account))
    return account


def open_card_account(program):
    """Create the points account a new card owns. Its debt account comes with its first debt
    (``take_back``): most cards never owe anything."""
    return Account.objects.create(program=program, kind=Account.POINTS)


def lock_balances(cards):
    """Lock the points accounts of ``cards`` (``(card id, points account id)`` pairs), then
    their debt accounts, each in id order, and return ``(balances by account id, debt account
    id by card id)``.

    A debt account is created under its card's points lock, so it is looked up once that
    lock is held: a card read before may not know it yet.
    """
    if not cards:
        return {}, {}
    card_ids, account_ids = zip(*cards, strict=True)
    locked = Account.objects.select_for_update().order_by("pk")
    balances = dict(
        locked.filter(lookups.among(Account, "id", account_ids)).values_list("pk", "balance")
    )
    debts = dict(
        Card.objects.filter(lookups.among(Card, "id", card_ids))
        .exclude(debt_account=None)
        .values_list("pk", "debt_account_id")
    )
    if debts:
        balances.update(
            locked.filter(lookups.among(Account, "id", debts.values())).values_list("pk", "balance")
        )
    return balances, debts


def _debt_account(card):
    """The card's debt account, opened now if this is its first debt (under the card's lock)."""
    if card.debt_account_id is None:
        card.debt_account = Account.objects.create(program_id=card.program_id, kind=Account.DEBT)
        type(card).objects.filter(pk=card.pk).update(debt_account=card.debt_account)
    return card.debt_account


# --- reading -------------------------------------------------------------------------------


def derived_balance(account):
    """Credits minus debits of ``account``, from its transfers: its checkpoint plus the
    transfers after it (``oscar_loyalty.checkpoints``), so the cost does not grow with
    the account's history."""
    return checkpoints.balances([account])[account.pk]


def balance(account):
    """An account's balance: cached for card accounts, derived for system accounts."""
    if account.kind == Account.SYSTEM:
        return derived_balance(account)
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


def system_balances(accounts):
    """``{account id: balance}`` of several system accounts in a constant number of queries."""
    return checkpoints.balances(accounts)


def recorded(keys):
    """The keys of ``keys`` the ledger has recorded a transfer under (one query).

    For a caller whose movement depends on a balance it reads first (an import row that
    sets a balance): a row whose key is recorded was applied, and asking again would compare
    a movement computed from the balance it left. Others let ``post_movements`` replay.
    """
    return set(
        Transfer.objects.filter(lookups.among(Transfer, "key", keys)).values_list("key", flat=True)
    )


def history(card, customer_view=False):
    """Transfers of a card, newest first, each annotated with ``change``: its effect on
    the card's balance (zero for legs that only move debt).

    ``customer_view`` leaves out bookkeeping legs that neither change the balance nor record
    a debt (a checkout hold turning into a payment), which would only puzzle a customer.
    """
    transfers = Transfer.objects.filter(card=card)
    if card.replaced_by_id:  # what moved out is recorded on the replacement (``move_card``)
        transfers = Transfer.objects.filter(
            Q(card=card) | Q(card_id=card.replaced_by_id, kind=Transfer.MOVE)
        )
    if customer_view:
        transfers = transfers.filter(
            Q(credit_id=card.account_id) | Q(debit_id=card.account_id) | Q(kind=Transfer.DEBT)
        )
    return (
        transfers.annotate(
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


def _shape(transfer):
    """What a replay compares of one leg, besides the amount."""
    return (
        transfer.kind,
        transfer.debit_id,
        transfer.credit_id,
        transfer.card_id,
        transfer.reverses_id,
    )


def _main(legs):
    """The legs an operation is compared by: ``:repay`` legs depend on the card's debt at the
    time and are extra."""
    return [leg for leg in legs if not keys.is_repay(leg.key)]


def _replay(key, amount, shapes):
    """The legs recorded under ``key`` if this operation was done already, else ``None``.

    Raises ``KeyConflict`` unless every main leg recorded has one of ``shapes()`` (called
    only when the key is found) and their amounts add up to ``amount``.
    """
    wanted = [key, keys.repay(key), keys.debt(key)]
    recorded = list(Transfer.objects.filter(key__in=wanted).order_by("id"))
    if not any(t.key == key for t in recorded):
        return None
    main, allowed = _main(recorded), shapes()
    if sum((t.amount for t in main), ZERO) != amount or any(_shape(t) not in allowed for t in main):
        raise KeyConflict(key)
    return recorded


def _apply(legs, check=None):
    """Insert ``legs`` and move cached balances, in the caller's transaction.

    Balances are changed with conditional UPDATEs in account order, so two operations never
    wait on each other in opposite orders and no balance leaves its allowed side of zero.
    With ``check`` the card's points account moves (by zero, if need be) only while the card's
    status allows it.
    """
    for leg in legs:
        _ledger_sql.insert_one(leg)
    deltas = {}
    accounts = {}
    for leg in legs:
        for account, sign in ((leg.debit, -1), (leg.credit, 1)):
            if account.kind != Account.SYSTEM:
                deltas[account.pk] = deltas.get(account.pk, ZERO) + sign * leg.amount
                accounts[account.pk] = account
    for pk in sorted(deltas):
        delta, account = deltas[pk], accounts[pk]
        guard = check if account.kind == Account.POINTS else None
        if (delta or guard) and not _move_balance(account, delta, guard):
            raise _why_not_moved(account, delta, guard)
        account.balance += delta  # keep the caller's object current


def _refusal(card, check):
    """Why ``card``'s status refuses an operation that needs ``check``, or ``None``."""
    return card.refusal(check)


def _why_not_moved(account, delta, check):
    """The error for a conditional UPDATE that moved nothing: the card's status (read now,
    in the operation's transaction), else its balance."""
    if check:
        reason = _refusal(Card.objects.get(account_id=account.pk), check)
        if reason:
            return CardUnavailable(reason)
    available = Account.objects.values_list("balance", flat=True).get(pk=account.pk)
    return InsufficientPoints(abs(available), -delta)


def _status_condition(check):
    """SQL (and its parameters) that holds while a card's status allows ``check``."""
    quote = connection.ops.quote_name
    status = quote(Card._meta.get_field("status").column)
    if check == USABLE:
        participates = quote(Card._meta.get_field("participates").column)
        return f"{status} = %s AND {participates} = %s", [Card.ACTIVE, True]
    return f"{status} <> %s", [Card.CLOSED]


def _move_balance(account, delta, check=None):
    """Add ``delta`` to a card's points or debt balance unless that takes it past zero, or
    (with ``check``) the card's status refuses it; return whether it moved.

    One conditional UPDATE, the statement every spend runs. It is written in SQL because the
    ORM's ``filter().update()`` costs about four times as much Python as the query itself,
    which was most of a spend's CPU (see benchmarks/README.md).

    ``ROUND``: SQLite keeps decimals as binary floats, so 21.56 - 10.15 would be stored as
    11.409999999999998 and then fail ``balance >= 11.41``. Rounding each write keeps the
    stored value the float nearest to the exact amount; on PostgreSQL (exact numeric) it
    changes nothing.
    """
    table = connection.ops.quote_name(Account._meta.db_table)
    balance = connection.ops.quote_name(Account._meta.get_field("balance").column)
    pk = connection.ops.quote_name(Account._meta.pk.column)
    sql = f"UPDATE {table} SET {balance} = ROUND({balance} + %s, 2) WHERE {pk} = %s"
    params = [delta, account.pk]
    if delta < 0 and account.kind == Account.POINTS:
        sql += f" AND {balance} >= %s"
        params.append(-delta)
    elif delta > 0 and account.kind == Account.DEBT:
        sql += f" AND {balance} <= %s"
        params.append(-delta)
    if check:
        condition, values = _status_condition(check)
        cards = connection.ops.quote_name(Card._meta.db_table)
        owner = connection.ops.quote_name(Card._meta.get_field("account").column)
        sql += f" AND EXISTS (SELECT 1 FROM {cards} WHERE {owner} = %s AND {condition})"
        params += [account.pk, *values]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _write(key, card, amount, build_legs, shapes=None, check=None, lock=False, savepoint=True):
    """Run one idempotent operation: replay it, or build its legs and apply them atomically.

    ``shapes()``: what the main legs of this operation may look like (``_shape``), for a
    replay; by default those ``build_legs()`` would write. ``check``: what the card's status
    must allow (see the module's docstring).

    ``lock`` takes the card's rows first, for operations whose legs depend on its balance
    or debt; single-leg spends rely on the conditional UPDATE alone.

    ``savepoint=False`` saves the SAVEPOINT and RELEASE of a call inside the caller's
    transaction. A key already recorded then cannot be replayed here (PostgreSQL refuses
    every statement after the failed INSERT): the ``IntegrityError`` goes up, the caller's
    transaction rolls back whole, and nothing is counted twice. Outside a transaction it
    changes nothing.
    """
    if shapes is None:

        def shapes():
            return {_shape(leg) for leg in _main(build_legs())}

    try:
        with transaction.atomic(savepoint=savepoint):
            if lock and card is not None:
                balances, debts = lock_balances([(card.pk, card.account_id)])
                card.account.balance = balances[card.account_id]
                debt_id = debts.get(card.pk)
                if debt_id != card.debt_account_id:  # opened, or rolled back, since it was read
                    card.debt_account = Account.objects.get(pk=debt_id) if debt_id else None
                if debt_id:
                    card.debt_account.balance = balances[debt_id]
            recorded = _replay(key, amount, shapes) if lock else None
            if recorded is not None:
                return recorded
            legs = build_legs()
            _apply(legs, check)
            return legs
    except IntegrityError:
        if connection.in_atomic_block and connection.needs_rollback:
            raise  # no savepoint: the caller's transaction must roll back first
        # The same key committed by a concurrent call: the loser returns the winner's legs.
        recorded = _replay(key, amount, shapes)
        if recorded is None:
            raise
        return recorded


def _first(legs):
    return legs[0]


def credit_card(card, amount, key, kind=Transfer.EARN, check=USABLE, **details):
    """Give ``card`` points from the programme, repaying its debt first; return the transfer.

    The main leg (``key``) always carries the whole amount into the card; a ``key:repay`` leg
    then moves what the card owes into its debt account, so a replay compares like with like.
    """
    amount = to_amount(amount)

    def legs():
        issued = system_account(card.program, ISSUED)
        result = [_leg(key, kind, issued, card.account, amount, card, **details)]
        repay = min(card.debt, amount)
        if repay > 0:
            result.append(
                _leg(
                    keys.repay(key),
                    Transfer.REPAY,
                    card.account,
                    card.debt_account,
                    repay,
                    card,
                    **details,
                )
            )
        return result

    return _first(_write(key, card, amount, legs, check=check, lock=True))


def debit_card(
    card, amount, key, kind=Transfer.SPEND, to=REDEEMED, check=USABLE, savepoint=True, **details
):
    """Take ``amount`` from ``card`` into system account ``to``, never below zero; return the
    transfer. ``savepoint``: see ``_write``."""
    amount = to_amount(amount)

    def legs():
        target = system_account(card.program, to)
        return [_leg(key, kind, card.account, target, amount, card, **details)]

    return _first(_write(key, card, amount, legs, check=check, savepoint=savepoint))


def take_back(card, amount, key, kind=Transfer.REVERSE, reverses=None, **details):
    """Take back points a card was given; what it has already spent becomes its debt.
    Returns the transfer recorded under ``key`` (a ``key:debt`` leg may follow it).

    Works on blocked and closed cards too: a refund must never depend on the card's state.
    """
    amount = to_amount(amount)

    def shapes():
        issued = system_account(card.program, ISSUED).pk
        rev = reverses.pk if reverses else None
        return {
            (kind, card.account_id, issued, card.pk, rev),
            (Transfer.DEBT, card.debt_account_id, issued, card.pk, rev),
        }

    def legs():
        issued = system_account(card.program, ISSUED)
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
                    keys.debt(key) if result else key,
                    Transfer.DEBT,
                    _debt_account(card),
                    issued,
                    owed,
                    card,
                    reverses=reverses,
                    **details,
                )
            )
        return result

    return _first(_write(key, card, amount, legs, shapes, lock=True))


def reverse(transfer, key, amount=None, **details):
    """Undo ``transfer`` (wholly, or ``amount`` of it) by a new transfer pointing at it.

    Never more than is left of it after its earlier reversals (``ReversalTooLarge``). The
    card's points account is locked first (the original's row if it has no card), so
    reversals of one transfer at once take their turns and each sees the others'.
    Reversing a credit to a card uses ``take_back``, so spent points become debt.
    """
    amount = to_amount(amount if amount is not None else transfer.amount)
    card = transfer.card
    details.setdefault("description", transfer.description)
    details.setdefault("label_code", transfer.label_code)
    details.setdefault("order_number", transfer.order_number)
    with transaction.atomic():
        if card is not None:
            locked = Account.objects.filter(pk=card.account_id)
        else:
            locked = Transfer.objects.filter(pk=transfer.pk)
        list(locked.select_for_update().values_list("pk"))
        if not Transfer.objects.filter(key=key).exists():  # a replay is judged by _write
            taken = transfer.reversals.aggregate(s=Sum("amount"))["s"] or ZERO
            if amount > transfer.amount - taken:
                raise ReversalTooLarge(transfer, transfer.amount - taken)
        if card is not None and transfer.credit_id == card.account_id:
            return take_back(card, amount, key, reverses=transfer, **details)

        def legs():
            return [
                _leg(
                    key,
                    Transfer.REVERSE,
                    transfer.credit,
                    transfer.debit,
                    amount,
                    card,
                    reverses=transfer,
                    **details,
                )
            ]

        return _first(_write(key, card, amount, legs))


# --- checkout holds ------------------------------------------------------------------------


def hold(card, amount, key, savepoint=True, **details):
    """Reserve points for an order being paid. ``savepoint``: see ``_write``."""
    return debit_card(
        card, amount, key, kind=Transfer.HOLD, to=HELD, savepoint=savepoint, **details
    )


def capture(card, amount, key, savepoint=True, **details):
    """Turn a hold into a payment once the order exists. ``savepoint``: see ``_write``."""
    amount = to_amount(amount)

    def legs():
        held = system_account(card.program, HELD)
        redeemed = system_account(card.program, REDEEMED)
        return [_leg(key, Transfer.CAPTURE, held, redeemed, amount, card, **details)]

    return _first(_write(key, card, amount, legs, savepoint=savepoint))


def release(card, amount, key, **details):
    """Give held points back to the card (payment failed or the customer never returned)."""
    amount = to_amount(amount)

    def legs():
        held = system_account(card.program, HELD)
        return [_leg(key, Transfer.RELEASE, held, card.account, amount, card, **details)]

    return _first(_write(key, card, amount, legs))


def refund(card, amount, key, **details):
    """Return points paid for an order (cancelled or refunded lines); works on any card."""
    amount = to_amount(amount)

    def legs():
        redeemed = system_account(card.program, REDEEMED)
        return [_leg(key, Transfer.REFUND, redeemed, card.account, amount, card, **details)]

    return _first(_write(key, card, amount, legs))


# --- replacing a card ----------------------------------------------------------------------


def move_card(card, to_card, key, **details):
    """Move all that ``card`` holds, its points and its debt, to ``to_card`` (a lost card's
    replacement); return the legs recorded.

    Card to card, nothing through the programme: the points leg (``key``) goes from
    ``card``'s account to ``to_card``'s, the debt leg (``key:debt``, or ``key`` alone) from
    ``to_card``'s debt account to ``card``'s, so ``card`` ends with nothing and owing nothing.
    Both legs belong to ``to_card``; ``history`` shows them on ``card`` too once it is
    ``replaced_by`` it. Both cards' accounts are locked first, so a spend racing the move
    either happens before it or finds the points gone. A key recorded before between these
    two cards is a replay and returns its legs; recorded for other cards, ``KeyConflict``.
    Nothing held: no legs.
    """
    with transaction.atomic():
        balances, debts = lock_balances(
            [(card.pk, card.account_id), (to_card.pk, to_card.account_id)]
        )
        recorded = list(Transfer.objects.filter(key__in=[key, keys.debt(key)]).order_by("id"))
        if recorded:
            if any(t.kind != Transfer.MOVE or t.card_id != to_card.pk for t in recorded):
                raise KeyConflict(key)
            return recorded
        points = balances[card.account_id]
        debt_id = debts.get(card.pk)
        owed = -balances[debt_id] if debt_id else ZERO
        legs = []
        if points > 0:
            legs.append(
                _leg(key, Transfer.MOVE, card.account, to_card.account, points, to_card, **details)
            )
        if owed > 0:
            if debt_id != card.debt_account_id:  # opened since the caller read the card
                card.debt_account = Account.objects.get(pk=debt_id)
            legs.append(
                _leg(
                    keys.debt(key) if legs else key,
                    Transfer.MOVE,
                    _debt_account(to_card),
                    card.debt_account,
                    owed,
                    to_card,
                    **details,
                )
            )
        _apply(legs)
        return legs


# --- many cards at once (mass jobs, the card import and its undo) --------------------------


class Movement(NamedTuple):
    """One card's change in a bulk operation (``post_movements``).

    ``amount`` is signed: positive credits the card from its programme's "issued" account,
    negative debits it back there. ``reverses`` is the id of a transfer this movement takes
    back (an import's undo); ``label_code`` and ``note`` are that movement's own.
    """

    card_id: int
    amount: Decimal
    key: str
    kind: str
    label_code: str = ""
    note: str = ""
    reverses: int | None = None


# What the rules of a bulk movement read of a card.
_MANY_FIELDS = ("id", "status", "participates", "program_id", "account_id")
# The columns of every leg a bulk operation writes, in ``_bulk_leg`` order.
_LEG_COLUMNS = (
    "key",
    "kind",
    "debit_id",
    "credit_id",
    "amount",
    "card_id",
    "label_code",
    "note",
    "reverses_id",
)


class _ManyCard:
    """The few columns of a card a bulk movement needs (no model instance per card)."""

    __slots__ = _MANY_FIELDS

    def __init__(self, row):
        for name, value in zip(_MANY_FIELDS, row, strict=True):
            setattr(self, name, value)

    @property
    def pk(self):
        return self.id


def _refuses(check, status, participates):
    """Whether a card of ``status`` refuses an operation that needs ``check``."""
    return Card.refusal_of("", status, participates, check) is not None


@contextmanager
def bulk_transaction():
    """The database settings of one chunk of a bulk job, for the chunk's own transaction.

    Enter it inside the transaction that also marks the chunk done (``jobs.run_chunk``).
    On PostgreSQL:

    - The transaction commits without waiting for its WAL flush. The chunk's rows and its
      ``done`` mark commit together: a server crash before the flush loses both, and the
      stalled job is resumed from that chunk, so nothing is applied twice or lost.
    - Foreign keys are checked as each statement ends instead of at COMMIT. The job's
      progress row is updated last and stays locked until COMMIT; with the checks of
      thousands of rows left for COMMIT, a second worker's chunk would wait for all of them.
      A violation then also surfaces inside the savepoint that goes row by row.

    Both are ``SET LOCAL``: they end with the transaction. Outside a transaction (nothing
    would commit with a done mark) it changes nothing.
    """
    connection = connections[router.db_for_write(Transfer)]
    chunk = connection.in_atomic_block
    with transaction.atomic():
        if chunk and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield


def _load_many(ids, check):
    """``({card id: _ManyCard}, {card id: error})``: the cards ``ids`` that exist and whose
    status allows ``check``, and why each of the others is refused."""
    rows = Card.objects.filter(lookups.among(Card, "id", ids)).values_list(*_MANY_FIELDS)
    cards = {row[0]: _ManyCard(row) for row in rows}
    gone = gettext("The card no longer exists.")
    refused = {pk: CardUnavailable(gone) for pk in ids if pk not in cards}
    if check:  # the usual case is decided here; refusal() words the others' reason
        others = [c.pk for c in cards.values() if _refuses(check, c.status, c.participates)]
        for card in Card.objects.filter(pk__in=others):
            reason = _refusal(card, check)
            if reason:
                refused[card.pk] = CardUnavailable(reason)
                del cards[card.pk]
    return cards, refused


def _reversible(movements):
    """``{transfer id: (transfer, amount left to reverse)}`` of the transfers ``movements``
    reverse: its amount minus its reversals so far."""
    wanted = {m.reverses for m in movements if m.reverses}
    if not wanted:
        return {}
    originals = Transfer.objects.filter(lookups.among(Transfer, "id", wanted)).only(
        "id", "key", "amount"
    )
    taken = dict(
        Transfer.objects.filter(lookups.among(Transfer, "reverses_id", wanted))
        .values("reverses_id")
        .annotate(s=Sum("amount"))
        .values_list("reverses_id", "s")
    )
    return {t.pk: (t, t.amount - taken.get(t.pk, ZERO)) for t in originals}


def post_movements(movements, *, check=USABLE, **details):
    """Move the points of many cards in a handful of statements; ``movements`` are
    ``Movement``s, in the order they apply (a card may have more than one).

    The rules of the single-card operations hold movement by movement, each refused alone:

    - the card must exist and its status allow ``check`` (``CardUnavailable``);
    - a key recorded before with the same content (amount, kind, card, accounts, transfer
      reversed) is done already and written again by nothing; other content: ``KeyConflict``;
    - a debit never takes a balance below zero (``InsufficientPoints``, nothing written);
    - a credit repays the card's debt first (a ``key:repay`` leg, as ``credit_card``), unless
      it gives back what a reversed debit took;
    - a reversal never takes back more than is left of its transfer (``ReversalTooLarge``).

    The system account is the programme's "issued" one. The cards' balances are locked
    (``lock_balances``) before they are read, and the database's check constraints back
    every sign. ``details`` are Transfer columns by attname shared by every movement
    (``description``, ``created_by_id``). One transaction: everything or nothing.

    Returns ``(done, failures)``: the movements done now or before, and
    ``[(movement, error)]`` for the others.
    """
    movements = list(movements)
    done, failures = [], []
    if not movements:
        return done, failures
    Program = get_model("oscar_loyalty", "Program")
    with transaction.atomic():
        cards, refused = _load_many(list(dict.fromkeys(m.card_id for m in movements)), check)
        if refused:
            failures = [(m, refused[m.card_id]) for m in movements if m.card_id in refused]
            movements = [m for m in movements if m.card_id in cards]
        if not movements:
            return done, failures
        balances, debts = lock_balances([(pk, c.account_id) for pk, c in cards.items()])
        recorded = {
            key: content
            for key, *content in Transfer.objects.filter(
                lookups.among(Transfer, "key", {m.key for m in movements})
            ).values_list(
                "key", "amount", "kind", "card_id", "debit_id", "credit_id", "reverses_id"
            )
        }
        reversible = _reversible(movements)
        programs = {c.program_id for c in cards.values()}
        issued = {
            pk: system_account(p, ISSUED).pk for pk, p in Program.objects.in_bulk(programs).items()
        }
        legs, deltas, amounts = [], {}, {}
        for movement in movements:
            error = _bulk_legs(
                movement,
                cards[movement.card_id],
                issued,
                (recorded, reversible, amounts),
                balances,
                debts,
                legs,
                deltas,
            )
            if error is None:
                done.append(movement)
            else:
                failures.append((movement, error))
        columns = (*_LEG_COLUMNS, *details)
        extra = tuple(details.values())
        _ledger_sql.insert(Transfer, columns, [(*leg, *extra) for leg in legs], keys=False)
        _move_cached(deltas, kinds={pk: Account.DEBT for pk in debts.values()})
    return done, failures


def _bulk_legs(movement, card, issued, known, balances, debts, legs, deltas):
    """Add ``movement``'s legs and balance changes, or return why it is refused (``None``:
    done, now or before). ``balances`` follow the movements already taken; ``known`` are
    the keys recorded, the transfers reversible and the amounts checked so far."""
    recorded, reversible, amounts = known
    amount = amounts.get(movement.amount)
    if amount is None:
        try:
            amount = to_amount(abs(movement.amount) if movement.amount else movement.amount)
        except InvalidAmount as error:
            return error
        amounts[movement.amount] = amount
    system, account = issued[card.program_id], card.account_id
    debit, credit = (system, account) if movement.amount > 0 else (account, system)
    content = [amount, movement.kind, card.pk, debit, credit, movement.reverses]
    first = recorded.get(movement.key)
    if first is not None:
        return None if first == content else KeyConflict(movement.key)
    if movement.reverses in reversible:
        original, left = reversible[movement.reverses]
        if amount > left:
            return ReversalTooLarge(original, left)
    label, note = movement.label_code, movement.note
    change = amount
    if movement.amount < 0:
        if balances[account] < amount:
            return InsufficientPoints(balances[account], amount)
        change = -amount
    if movement.reverses in reversible:  # what this call reverses counts for the next one
        reversible[movement.reverses] = (original, left - amount)
    legs.append(
        (
            movement.key,
            movement.kind,
            debit,
            credit,
            amount,
            card.pk,
            label,
            note,
            movement.reverses,
        )
    )
    debt_id = debts.get(card.pk)
    if change > 0 and debt_id and not movement.reverses:
        repay = min(-balances[debt_id], amount)
        if repay > 0:
            legs.append(
                (
                    keys.repay(movement.key),
                    Transfer.REPAY,
                    account,
                    debt_id,
                    repay,
                    card.pk,
                    label,
                    note,
                    None,
                )
            )
            balances[debt_id] += repay
            deltas[debt_id] = deltas.get(debt_id, ZERO) + repay
            change -= repay
    balances[account] += change
    deltas[account] = deltas.get(account, ZERO) + change
    recorded[movement.key] = content
    return None


def credit_cards(card_ids, amount, key_for, kind=Transfer.BULK, check=USABLE, note="", **details):
    """Give each card of ``card_ids`` ``amount`` points: ``post_movements`` of one amount.

    ``key_for(card_id)`` gives each card's key. Returns ``(done card ids, [(card id,
    error)])``.
    """
    return _same_amount(card_ids, to_amount(amount), key_for, kind, check, note, details)


def debit_cards(card_ids, amount, key_for, kind=Transfer.BULK, check=USABLE, note="", **details):
    """Take ``amount`` from each card of ``card_ids`` back into the programme's "issued"
    account, never below zero; returns ``(done_ids, failures)`` like ``credit_cards``."""
    return _same_amount(card_ids, -to_amount(amount), key_for, kind, check, note, details)


def _same_amount(card_ids, amount, key_for, kind, check, note, details):
    movements = [
        Movement(pk, amount, key_for(pk), kind, note=note) for pk in dict.fromkeys(card_ids)
    ]
    done, failures = post_movements(movements, check=check, **details)
    return [m.card_id for m in done], [(m.card_id, error) for m, error in failures]


def _move_cached(deltas, kinds):
    """Apply ``{account id: delta}`` to cached balances (``kinds``: the debt accounts among
    them; the others are points accounts): one UPDATE per distinct delta when there are few
    (a mass job), else one that joins every account to its own delta (an import)."""
    changes = [(pk, delta) for pk, delta in deltas.items() if delta]
    distinct = {delta for _pk, delta in changes}
    if len(distinct) <= _FEW_DELTAS:
        _move_balances({pk: (kinds.get(pk, Account.POINTS), delta) for pk, delta in changes})
    else:
        _move_balances_each(changes)


# Up to this many distinct deltas, one conditional UPDATE each beats the joined UPDATE.
_FEW_DELTAS = 4


def _move_balances(changes):
    """Apply ``{account_id: (kind, delta)}`` with one conditional UPDATE per distinct delta.

    Rows are locked by the caller; the conditions still guard the sign of every balance.
    """
    groups = {}
    for pk, (kind, delta) in changes.items():
        if delta:
            groups.setdefault((kind, delta), []).append(pk)
    for (kind, delta), ids in groups.items():
        rows = Account.objects.filter(lookups.among(Account, "id", ids))
        if delta < 0 and kind == Account.POINTS:
            rows = rows.filter(balance__gte=-delta)
        elif delta > 0 and kind == Account.DEBT:
            rows = rows.filter(balance__lte=-delta)
        # ROUND as in ``_move_balance``: exact on PostgreSQL, no float drift on SQLite.
        if rows.update(balance=Round(F("balance") + delta, 2)) != len(ids):
            raise InsufficientPoints(ZERO, abs(delta))


def _move_balances_each(deltas, batch=300):
    """Add a different delta to each cached balance: ``UPDATE ... SET balance = balance + CASE``.

    Rows are locked and their signs checked by the caller; the check constraints back them.
    """
    connection = connections[router.db_for_write(Account)]
    quote = connection.ops.quote_name
    table, pk = quote(Account._meta.db_table), quote(Account._meta.pk.column)
    column = quote(Account._meta.get_field("balance").column)
    with lookups.bulk_cursor(connection) as cursor:
        if connection.vendor == "postgresql":  # one join with two arrays, however many rows
            ids = lookups.array_literal(d[0] for d in deltas)
            amounts = lookups.array_literal(d[1] for d in deltas)
            cursor.execute(
                f"UPDATE {table} SET {column} = {column} + v.delta "
                f"FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, delta) "
                f"WHERE {table}.{pk} = v.id",
                [ids, amounts],
            )
            if cursor.rowcount != len(deltas):
                raise IntegrityError("an account to move was not found")
            return
        for start in range(0, len(deltas), batch):
            part = deltas[start : start + batch]
            whens = " ".join(["WHEN %s THEN %s"] * len(part))
            marks = ", ".join(["%s"] * len(part))
            params = [value for pair in part for value in pair] + [pair[0] for pair in part]
            cursor.execute(
                f"UPDATE {table} SET {column} = ROUND({column} + CASE {pk} {whens} END, 2) "
                f"WHERE {pk} IN ({marks})",
                params,
            )
            if cursor.rowcount != len(part):
                raise IntegrityError("an account to move was not found")


def _post_legs(legs, fields=(), **details):
    """Record ready-made single-leg transfers (tests and benchmarks that build a long
    history fast); the callers of the package use ``post_movements``.

    ``legs`` are ``(key, kind, debit_account_id, credit_account_id, amount, card_id, *extra)``
    with ``extra`` the values of the Transfer ``fields``. Keys must be new and balances
    allow the moves: nothing here checks them but the database's constraints.
    """
    if not legs:
        return
    rows, deltas = [], {}
    for key, kind, debit_id, credit_id, amount, card_id, *extra in legs:
        amount = to_amount(amount)
        if debit_id == credit_id:
            raise InvalidAmount(f"{key}: a transfer needs two accounts")
        rows.append((key, kind, debit_id, credit_id, amount, card_id, *extra))
        deltas[debit_id] = deltas.get(debit_id, ZERO) - amount
        deltas[credit_id] = deltas.get(credit_id, ZERO) + amount
    columns = ("key", "kind", "debit_id", "credit_id", "amount", "card_id", *fields)
    _ledger_sql.insert(Transfer, columns, rows, keys=False, **details)
    kinds = dict(
        Account.objects.filter(lookups.among(Account, "id", deltas)).values_list("pk", "kind")
    )
    cached = [(pk, delta) for pk, delta in deltas.items() if delta and kinds[pk] != Account.SYSTEM]
    _move_balances_each(cached)


# --- new cards with opening balances (the card import) --------------------------------------


def open_card_accounts_many(program, openings, card_columns, card_rows, card_values, **details):
    """Many new cards of ``program``, each with its points account opening with an amount,
    and the transfers from the programme's "issued" account that explain those amounts.

    ``openings`` are one ``Movement`` per card (``card_id`` unused, the amount zero or
    positive: zero records no transfer). ``card_rows`` are tuples of the Card ``card_columns``
    (attnames), ``card_values`` a dict of the Card columns every card shares; the ledger adds
    each card's programme and ``account_id``. ``details`` are Transfer columns every
    transfer shares (``created_by_id``). The balances are written with the accounts rather
    than moved by an UPDATE after them; cards, accounts and transfers commit together or not
    at all.
    Returns the new cards' ids, in order.
    """
    amounts = [to_amount(m.amount) if m.amount else ZERO for m in openings]
    with transaction.atomic():
        issued = system_account(program, ISSUED).pk
        points = _ledger_sql.insert(
            Account,
            ("balance",),
            [(a,) for a in amounts],
            program_id=program.pk,
            kind=Account.POINTS,
        )
        card_ids = _ledger_sql.insert(
            Card,
            (*card_columns, "account_id"),
            [(*row, account) for row, account in zip(card_rows, points, strict=True)],
            program_id=program.pk,
            **card_values,
        )
        _ledger_sql.insert(
            Transfer,
            ("key", "kind", "credit_id", "amount", "card_id", "label_code", "note"),
            [
                (m.key, m.kind, account, amount, card, m.label_code, m.note)
                for m, amount, account, card in zip(
                    openings, amounts, points, card_ids, strict=True
                )
                if amount
            ],
            keys=False,
            debit_id=issued,
            **details,
        )
    return card_ids
