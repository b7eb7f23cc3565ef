"""Points earned on orders: pending accruals, posting them, voiding and reversing them.

What earns and how it is rounded is ``policies.EarningPolicy``, which a shop may override.
Reversals in proportion are rounded down too; the last reversal takes exactly what is left.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, descriptions, grades, keys, ledger, phones
from oscar_loyalty.exceptions import CardUnavailable
from oscar_loyalty.loading import get_class
from oscar_loyalty.notifications import events, records

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")
logger = logging.getLogger(__name__)


def policy():
    """The shop's ``EarningPolicy`` (its fork's ``policies`` module may override it)."""
    return get_class("policies", "EarningPolicy")()


def cards_for_order(order):
    """The cards an order earns on: the customer's, or a phone card of the address's phone."""
    if order.user_id:
        found = list(cards.cards_of(order.user))
        if found:
            return found
    phone = (
        getattr(order.shipping_address, "phone_number", None) if order.shipping_address_id else None
    )
    if phone:
        canonical = phones.normalise_or_none(str(phone))
        if canonical:
            return list(
                Card.objects.filter(phone=canonical).select_related("program", "grade", "account")
            )
    return []


def create_accruals(order):
    """Record the points ``order`` will earn, pending until it is complete. Idempotent."""
    created = []
    earning_policy = policy()
    for card in cards_for_order(order):
        if not card.program.is_active or card.refusal():
            logger.info("Order %s earns nothing on card %s: %s", order.number, card, card.refusal())
            continue
        base = earning_policy.order_base(order, card.program)
        points = earning_policy.points_for(base, card)
        if points <= 0:
            continue
        accrual, _ = Accrual.objects.get_or_create(
            card=card,
            order_number=order.number,
            defaults={"base": base, "percent": card.grade.earn_percent, "points": points},
        )
        created.append(accrual)
    return created


def _key(accrual, what):
    return keys.accrual(accrual.order_number, what, accrual.card.program.code)


def is_job_accrual(accrual):
    """A mass accrual with a later date (``oscar_loyalty.bulk``) leaves its points pending
    as accruals of its ``job`` (and no order); posting one writes the job's ledger key."""
    return accrual.job_id is not None


def _posting(accrual):
    """Ledger key, transfer kind and details that post ``accrual``."""
    if is_job_accrual(accrual):
        key = keys.job_card(accrual.job_id, accrual.card_id)
        return key, Transfer.BULK, {"description": accrual.description}
    details = {"order_number": accrual.order_number, "description": accrual.description}
    if not accrual.description:
        details["label_code"] = descriptions.ORDER_EARN
    return keys.earn(accrual.order_number, accrual.card.program.code), Transfer.EARN, details


def schedule(order):
    """The order is complete: its points become available after the programme's delay."""
    now = timezone.now()
    due = []
    for accrual in Accrual.objects.filter(
        order_number=order.number, status=Accrual.PENDING, available_at__isnull=True
    ).select_related("card__program"):
        accrual.available_at = now + timedelta(hours=accrual.card.program.accrual_delay_hours)
        accrual.save(update_fields=["available_at"])
        if accrual.available_at <= now:
            due.append(accrual.pk)
    return due


def post(accrual_id):
    """Credit a due accrual to its card. Safe to call again; a blocked card waits."""
    with transaction.atomic():
        accrual = (
            Accrual.objects.select_for_update(of=("self",))
            .select_related("card__program", "card__account", "card__debt_account")
            .get(pk=accrual_id)
        )
        if accrual.status != Accrual.PENDING or accrual.available_at is None:
            return accrual
        if accrual.available_at > timezone.now():
            return accrual
        amount = accrual.remaining
        if amount > 0:
            key, kind, details = _posting(accrual)
            try:
                transfer = ledger.credit_card(accrual.card, amount, key, kind=kind, **details)
            except CardUnavailable as exc:
                logger.info("Accrual %s waits: %s", accrual.pk, exc)
                return accrual
            if not is_job_accrual(accrual):
                records.for_transfer(events.POINTS_EARNED, transfer, accrual.card)
            elif accrual.job.params.get("notify"):
                records.for_transfer(events.POINTS_CREDITED, transfer, accrual.card)
        accrual.status, accrual.posted = Accrual.POSTED, timezone.now()
        accrual.save(update_fields=["status", "posted"])
    if not is_job_accrual(accrual):  # a gift of points changes no spend
        grades.recalculate(accrual.card)
    return accrual


def due_accruals():
    """Accruals ready to post; those of blocked or closed cards wait and are not listed."""
    return Accrual.objects.filter(
        status=Accrual.PENDING,
        available_at__lte=timezone.now(),
        card__status=Card.ACTIVE,
    ).values_list("pk", flat=True)


def take_back(accrual, points, key_suffix, label_code):
    """Take ``points`` of an accrual back: less to post if pending, a reversal if posted."""
    with transaction.atomic():
        accrual = (
            Accrual.objects.select_for_update(of=("self",))
            .select_related("card__program", "card__account", "card__debt_account")
            .get(pk=accrual.pk)
        )
        points = min(points, accrual.remaining)
        if points <= 0 or accrual.status == Accrual.VOIDED or key_suffix in accrual.reversal_keys:
            return ZERO
        if accrual.status == Accrual.POSTED:
            transfer = ledger.take_back(
                accrual.card,
                points,
                _key(accrual, key_suffix),
                order_number=accrual.order_number,
                label_code=label_code,
            )
            records.for_transfer(events.POINTS_TAKEN_BACK, transfer, accrual.card)
        accrual.reversed_points += points
        accrual.reversal_keys.append(key_suffix)
        if accrual.status == Accrual.PENDING and accrual.remaining <= 0:
            accrual.status = Accrual.VOIDED
        accrual.save(update_fields=["reversed_points", "reversal_keys", "status"])
    return points


def cancel(order):
    """The whole order was cancelled: void or reverse everything it earned."""
    for accrual in Accrual.objects.filter(order_number=order.number):
        take_back(accrual, accrual.remaining, keys.CANCEL, descriptions.ORDER_CANCEL)
        grades.recalculate(accrual.card)


def reverse_lines(order, lines):
    """Some lines were cancelled or refunded: take back their share of the points.

    Each line is taken back once, under a key of its own, however often this is called.
    Shares are rounded down; once every earning line is gone, the last takes what is left.
    """
    lines = list(lines)
    earning_policy = policy()
    for accrual in Accrual.objects.filter(order_number=order.number).select_related(
        "card__program"
    ):
        program = accrual.card.program
        excluded = earning_policy.excluded(program)
        earning_lines = [
            line
            for line in order.lines.all()
            if earning_policy.line_earns(line.product, program, excluded)
        ]
        gone = {line.pk for line in lines} | {
            line.pk for line in earning_lines if line.status in conf.refunded_line_statuses
        }
        earning_pks = {line.pk for line in earning_lines}
        mine = [line for line in lines if line.pk in earning_pks]
        last_line = mine[-1] if mine and earning_pks <= gone else None
        for line in lines:
            if not earning_policy.line_earns(line.product, program, excluded) or accrual.base <= 0:
                continue
            if line is last_line:  # every earning line is gone: take exactly what is left
                share = accrual.points
            else:
                share = earning_policy.round_points(
                    accrual.points * min(line.line_price_incl_tax / accrual.base, Decimal(1)),
                    program,
                )
            if share > 0:
                take_back(accrual, share, keys.line_reversal(line.pk), descriptions.LINE_CANCEL)
        grades.recalculate(accrual.card)


def pending_points(card):
    """Points on the way, with the date the soonest become available (``None``: not yet)."""
    rows = card.accruals.filter(status=Accrual.PENDING).select_related("job")
    return [(a, a.remaining, a.available_at) for a in rows.order_by("created") if a.remaining > 0]
