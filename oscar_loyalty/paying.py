"""Paying for orders with points: the programme's policy (``policies.PaymentPolicy``, which a
shop may override), and the hold that carries a payment from the checkout to the order.

Lifecycle, one ``Hold`` row per order number:
    hold      payment is taken: points move to the programme's "held" account;
    capture   the order exists: held points become redeemed;
    release   payment or placing the order failed, or the customer never came back;
    refund    the order was cancelled or some of its lines refunded.
Every movement's key derives from the order number (``order:<number>:hold`` ..., made by
``keys``), so a retried request or a replayed signal counts once. A customer who tries again
after a failed payment gets a new attempt (``order:<number>:hold:2``) on the same row.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, descriptions, earning, keys, ledger
from oscar_loyalty.exceptions import PaymentRefused as PaymentRefused
from oscar_loyalty.loading import get_class
from oscar_loyalty.notifications import events, records
from oscar_loyalty.policies import money_for as money_for
from oscar_loyalty.policies import round_money

Accrual = get_model("oscar_loyalty", "Accrual")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")
Order = get_model("order", "Order")
OrderLine = get_model("order", "Line")
Source = get_model("payment", "Source")
SourceType = get_model("payment", "SourceType")
PaymentTransaction = get_model("payment", "Transaction")

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
SOURCE_TYPE_CODE = "bonus-points"
SOURCE_TYPE_NAME = gettext_noop("Bonus points")

logger = logging.getLogger(__name__)


# --- the customer's card -------------------------------------------------------------------


def payment_card(user):
    """``(card, refusal)``: the card ``user`` pays with, or why they cannot pay with points.

    The card always comes from the logged-in user, never from anything the browser sends.
    With cards in several programmes, the first usable one (by programme name) is used.
    The same query reads the id of the "Bonus points" source type for ``payment_source``:
    placing an order spends no statement on it, and no id is cached that could go stale.
    """
    if user is None or not user.is_authenticated:
        return None, _("Log in to pay with bonus points.")
    source_types = SourceType.objects.filter(code=SOURCE_TYPE_CODE).values("pk")[:1]
    owned = [
        c
        for c in cards.cards_of(user).annotate(payment_source_type_id=Subquery(source_types))
        if c.program.is_active
    ]
    if not owned:
        return None, _("You have no bonus card.")
    for card in owned:
        if card.refusal() is None:
            return card, None
    return owned[0], owned[0].refusal()


# --- the policy ----------------------------------------------------------------------------


def held_for(order_number, card):
    """Points ``card`` already holds for ``order_number`` (a customer back from a payment
    page): they count as available again for that same order."""
    if not order_number or card is None:
        return ZERO
    hold = Hold.objects.filter(order_number=order_number, card=card, status=Hold.HELD).first()
    return hold.points if hold else ZERO


def policy():
    """The shop's ``PaymentPolicy`` (its fork's ``policies`` module may override it)."""
    return get_class("policies", "PaymentPolicy")()


def allowance(card, total, shipping=ZERO, held=ZERO):
    """The most ``card`` may spend on an order of ``total`` money, ``shipping`` included;
    ``held``: points it already holds for this order (``policies.Allowance``)."""
    return policy().allowance(card, total, shipping, held)


def basket_earning(card, basket, shipping=ZERO, paid_with_points=ZERO):
    """Points an order of ``basket`` would earn on ``card``, never counting the part paid
    with points."""
    return earning.policy().basket_points(card, basket, shipping, paid_with_points)


# --- holds ---------------------------------------------------------------------------------


def _attempts(order_number):
    return Transfer.objects.filter(order_number=order_number, kind=Transfer.HOLD).count()


def _locked(order_number):
    return (
        Hold.objects.select_for_update(of=("self",))
        .select_related("card__program", "card__account", "card__debt_account")
        .filter(order_number=order_number)
        .first()
    )


def _release_locked(hold, label_code, description=""):
    ledger.release(
        hold.card,
        hold.points,
        keys.release(hold.order_number, _attempts(hold.order_number)),
        order_number=hold.order_number,
        label_code=label_code,
        description=description,
    )
    hold.status, hold.closed = Hold.RELEASED, timezone.now()
    hold.save(update_fields=["status", "closed"])


def hold_points(card, order_number, points, money):
    """Reserve ``points`` (worth ``money``) of ``card`` for order ``order_number``.

    Asking again for the same thing returns the same hold (and restarts its timeout); asking
    for something else releases the old reservation first. Raises ``InsufficientPoints``,
    ``CardUnavailable`` or ``PaymentRefused``; nothing is reserved then.
    """
    points, money = ledger.to_amount(points), Decimal(money).quantize(CENT)
    try:
        with transaction.atomic():
            return _first_hold(card, order_number, points, money)
    except IntegrityError:
        pass  # the order has its row already (an earlier attempt, a second device)
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _hold(card, order_number, points, money)
        except IntegrityError:
            # A concurrent request created this order's row first: take it from there.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _first_hold(card, order_number, points, money):
    """The usual case, the order's first hold: three statements between BEGIN and COMMIT.

    The row goes first: its unique order number makes any other request for this order wait
    here and then fail, so the transfer's key is new and needs no savepoint. If the row or
    the key exists after all, the whole transaction rolls back with ``IntegrityError`` and
    ``hold_points`` takes the locked way, which replays.
    """
    hold = Hold.objects.create(
        card=card, order_number=order_number, points=points, money=money, status=Hold.HELD
    )
    ledger.hold(
        card,
        points,
        keys.hold(order_number),
        savepoint=False,
        order_number=order_number,
        label_code=descriptions.ORDER_HOLD,
    )
    return hold


def _hold(card, order_number, points, money):
    hold = _locked(order_number)
    now = timezone.now()
    attempt = 1  # the row and the first hold are written together: no row, no earlier hold
    if hold is None:
        hold = Hold(order_number=order_number)
    elif hold.status == Hold.CAPTURED:
        raise PaymentRefused(_("Order %(number)s is already paid.") % {"number": order_number})
    elif hold.status == Hold.HELD:
        if (hold.card_id, hold.points, hold.money) == (card.pk, points, money):
            hold.created = now
            hold.save(update_fields=["created"])
            return hold
        _release_locked(hold, descriptions.HOLD_CHANGED)
    if hold.pk is not None:
        attempt = _attempts(order_number) + 1
    ledger.hold(
        card,
        points,
        keys.hold(order_number, attempt),
        order_number=order_number,
        label_code=descriptions.ORDER_HOLD,
    )
    hold.card, hold.points, hold.money = card, points, money
    hold.status, hold.refunded_points, hold.created, hold.closed = Hold.HELD, ZERO, now, None
    hold.save()
    return hold


def release(order_number, description="", older_than=None):
    """Give the points held for ``order_number`` back, unless the order exists after all
    (then they are captured: the order was paid with them). ``description``: text to show
    as typed instead of the generated one. ``older_than``: only a hold created before that
    moment (the periodic clean-up re-checks under the lock)."""
    with transaction.atomic():
        hold = _locked(order_number)
        if hold is None or hold.status != Hold.HELD:
            return hold
        if older_than is not None and hold.created >= older_than:
            return hold
        order = Order.objects.filter(number=order_number).first()
        if order is None:
            _release_locked(hold, descriptions.ORDER_NOT_PLACED, description)
            return hold
    return capture(order_number)


def capture(order_number):
    """Order ``order_number`` exists: its held points are spent; returns its ``Hold`` (or
    ``None`` if it held nothing). Safe to call any number of times; takes the order's
    number, as ``release`` does, since a release may find the order placed after all.

    A released hold stays released: the order was then placed without points (the customer
    removed them after a failed attempt), or a customer back from a payment page after the
    timeout had them held again by the checkout before the order was written.
    """
    try:
        # Under the hold's row lock a held hold has no capture yet: its key is new.
        return _capture(order_number, savepoint=False)
    except IntegrityError:
        # The key is recorded though the hold says held (a database without row locks, a
        # row restored by hand): that attempt rolled back; this one replays the key.
        return _capture(order_number, savepoint=True)


def _capture(order_number, savepoint):
    with transaction.atomic():
        hold = _locked(order_number)
        if hold is None:
            return None
        if hold.status == Hold.HELD:
            ledger.capture(
                hold.card,
                hold.points,
                keys.capture(order_number),
                savepoint=savepoint,
                order_number=order_number,
                label_code=descriptions.ORDER_CAPTURE,
            )
            hold.status, hold.closed = Hold.CAPTURED, timezone.now()
            hold.save(update_fields=["status", "closed"])
    return hold


def release_stale_holds(now=None):
    """Release holds older than ``conf.hold_timeout_minutes`` whose order never came (the
    process died, the customer left the payment page); capture those whose order exists."""
    cutoff = (now or timezone.now()) - timedelta(minutes=conf.hold_timeout_minutes)
    done = 0
    for number in Hold.objects.filter(status=Hold.HELD, created__lt=cutoff).values_list(
        "order_number", flat=True
    ):
        try:
            release(number, older_than=cutoff)
            done += 1
        except Exception:
            logger.exception("Could not settle the stale hold of order %s", number)
    return done


# --- the order's payment source ------------------------------------------------------------


def source_type():
    """The "Bonus points" payment source type, created on first use.

    Found by its code; named in the shop's ``LANGUAGE_CODE``, as a shop names its other
    payment methods, since Oscar's pages show the stored name (a manager may rename it).
    """
    with translation.override(settings.LANGUAGE_CODE):
        name = _(SOURCE_TYPE_NAME)
    found, _created = SourceType.objects.get_or_create(
        code=SOURCE_TYPE_CODE, defaults={"name": name}
    )
    return found


def payment_source(card, money, currency, order_number):
    """An unsaved "Bonus points" payment source for the checkout to attach to the order.

    It is saved only if the order is (Oscar saves sources with the order), and an order
    that exists has its held points captured, so the money counts as debited from the start;
    refunds are added to it as they happen.
    """
    type_id = getattr(card, "payment_source_type_id", None) or source_type().pk
    source = Source(
        source_type_id=type_id,
        currency=currency,
        amount_allocated=money,
        amount_debited=money,
        reference=card.number,
        label=card.number,
    )
    source.create_deferred_transaction(
        PaymentTransaction.DEBIT, money, reference=keys.hold(order_number)
    )
    return source


def _source(order):
    return order.sources.filter(source_type__code=SOURCE_TYPE_CODE).first()


def _sync_refunds(order, hold, key):
    """Mirror the points returned so far on the order's payment source, if it has one."""
    source = _source(order)
    refunded_money = _refunded_money(hold)
    if source is not None and source.amount_refunded < refunded_money:
        source.refund(refunded_money - source.amount_refunded, reference=key)


def _refunded_money(hold):
    if hold.refunded_points >= hold.points:
        return hold.money
    return round_money(hold.money * hold.refunded_points / hold.points)


# --- after the order -----------------------------------------------------------------------


def _refund(order, key, amount_of, label_code):
    with transaction.atomic():
        hold = _locked(order.number)
        if hold is not None and hold.status == Hold.HELD:
            hold = capture(order.number)
        if hold is None or hold.status != Hold.CAPTURED:
            return ZERO
        if Transfer.objects.filter(key=key).exists():
            return ZERO
        amount = min(amount_of(hold), hold.points - hold.refunded_points)
        if amount <= 0:
            return ZERO
        transfer = ledger.refund(
            hold.card, amount, key, order_number=order.number, label_code=label_code
        )
        records.for_transfer(events.POINTS_RETURNED, transfer, hold.card)
        hold.refunded_points += amount
        hold.save(update_fields=["refunded_points"])
        _sync_refunds(order, hold, key)
    return amount


def refund_order(order):
    """The order was cancelled: every point spent on it that is not back yet returns."""
    return _refund(
        order, keys.order_refund(order.number), lambda hold: hold.points, descriptions.ORDER_REFUND
    )


def refund_lines(order, lines):
    """Some lines were cancelled or refunded: their share of the spent points returns.

    A line's share is its part of what points could pay for (its price against all lines,
    plus shipping if shipping was payable), rounded down; once every line is refunded the
    rest returns, so nothing is lost to rounding.
    """
    # Not ``order.lines``: the dashboard's order may carry them prefetched, statuses stale.
    all_lines = list(OrderLine.objects.filter(order_id=order.pk))
    refunded = set(conf.refunded_line_statuses)
    everything_back = all(line.status in refunded for line in all_lines)
    lines_total = sum((line.line_price_incl_tax for line in all_lines), ZERO)
    returned = ZERO
    for line in lines:

        def share(hold, line=line):
            if everything_back:
                return hold.points
            base = lines_total + (
                order.shipping_incl_tax if hold.card.program.shipping_payable else ZERO
            )
            if base <= 0:
                return ZERO
            return round_money(hold.points * min(line.line_price_incl_tax / base, Decimal(1)))

        key = keys.line_refund(order.number, line.pk)
        returned += _refund(order, key, share, descriptions.LINE_REFUND)
    return returned


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPoints:
    """Points of one order, for the customer's and the manager's pages."""

    hold: object  # Hold or None
    accruals: list
    total: Decimal = ZERO  # the order total

    @property
    def left_to_pay(self):
        return max(self.total - self.spent_money, ZERO)

    @property
    def spent(self):
        return self.hold.points if self.hold and self.hold.status != Hold.RELEASED else ZERO

    @property
    def spent_money(self):
        return self.hold.money if self.hold and self.hold.status != Hold.RELEASED else ZERO

    @property
    def returned(self):
        return self.hold.refunded_points if self.hold else ZERO

    @property
    def earned(self):
        return sum((a.points for a in self.accruals), ZERO)

    @property
    def pending(self):
        return sum((a.remaining for a in self.accruals if a.status == a.PENDING), ZERO)

    @property
    def posted(self):
        return sum((a.remaining for a in self.accruals if a.status == a.POSTED), ZERO)

    @property
    def taken_back(self):
        return sum((a.reversed_points for a in self.accruals), ZERO)

    def __bool__(self):
        return bool(self.spent or self.accruals)


def order_points(order):
    """What ``order`` spent, earns and returned, in two queries."""
    hold = Hold.objects.filter(order_number=order.number).select_related("card").first()
    accruals = list(Accrual.objects.filter(order_number=order.number).select_related("card"))
    return OrderPoints(hold=hold, accruals=accruals, total=order.total_incl_tax)
