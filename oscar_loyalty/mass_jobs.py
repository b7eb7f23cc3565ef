"""Mass accrual and mass debit: one amount to every card of a manager's selection.

A job (``oscar_loyalty.jobs``) freezes the ids of the matching cards when it is created. Each
chunk moves the points of its cards in a few set-based statements (``ledger.credit_cards`` /
``ledger.debit_cards``) under the keys ``job:<job id>:card:<card id>``, in the transaction that
also marks the chunk done. So a chunk redelivered by Celery, a job started twice, or a job
resumed after its worker was killed never moves a card's points twice, and never skips one.

Points that become available on a later date are pending until then: each card gets an
accrual of the job (``Accrual.job``; one per card and job, so a rerun adds nothing), and the
periodic ``post_due_accruals`` posts it under the same ledger key when the date comes.
Cards that are blocked, closed or not participating are skipped and listed with the reason;
a mass debit skips cards without enough points and never overdraws one.
"""

import logging
from datetime import datetime, time

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import jobs, keys, ledger
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.notifications import events, records

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

logger = logging.getLogger(__name__)

ACCRUAL, DEBIT = Job.MASS_ACCRUAL, Job.MASS_DEBIT


def available_at(day):
    """The moment points dated ``day`` become available: its start in the shop's time zone."""
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


def create(
    kind,
    cards,
    *,
    amount,
    description,
    note="",
    available_from=None,
    by=None,
    token="",
    query="",
    notify=False,
):
    """Create (not start) a mass accrual or debit job over the cards of queryset ``cards``.

    ``token`` identifies one submission of the manager's form: submitting it again returns
    the job created the first time instead of a second one. ``available_from`` (a date, only
    for accruals) later than today makes the points pending until that day. ``notify``: the
    consenting customers get a message about their points (``oscar_loyalty.notifications``).
    """
    if kind not in (ACCRUAL, DEBIT):
        raise ValueError(kind)
    amount = ledger.to_amount(amount)
    if token:
        existing = Job.objects.filter(kind=kind, params__token=token).first()
        if existing is not None:
            return existing
    when = available_at(available_from) if kind == ACCRUAL else None
    ids = list(cards.order_by("pk").values_list("pk", flat=True).distinct())
    params = {
        "amount": str(amount),
        "description": description,
        "note": note,
        "available_at": when.isoformat() if when else None,
        "token": token,
        "query": query,
        "notify": bool(notify),
    }
    return jobs.create(kind, ids, params=params, by=by)


def _failures(errors):
    """``[(card_id, error)]`` as the job's failure records, with the cards' numbers."""
    numbers = dict(
        Card.objects.filter(pk__in=[pk for pk, _error in errors]).values_list("pk", "number")
    )
    return [{"item": pk, "card": numbers.get(pk, ""), "reason": str(error)} for pk, error in errors]


def _run(job, items, write_many, write_one, event):
    """Move the points of the chunk's cards set-based, or card by card if that fails; with
    the job's ``notify``, record ``event``'s messages to their customers in the same
    transaction (set-based too; a rerun finds them recorded)."""
    ids = list(dict.fromkeys(items))
    notify = job.params.get("notify")
    try:
        with transaction.atomic():
            done, errors = write_many(ids)
            if notify:
                records.for_transfers(event, [keys.job_card(job.pk, pk) for pk in done])
    except (DatabaseError, LoyaltyError):
        logger.warning("Job %s: set-based chunk failed, going card by card", job.pk, exc_info=True)
        cards = Card.objects.filter(pk__in=ids).select_related("program", "account", "debt_account")
        found = {card.pk: card for card in cards}
        done, errors = [], [(pk, _("The card no longer exists.")) for pk in ids if pk not in found]
        for card in found.values():
            try:
                with transaction.atomic():
                    transfer = write_one(card)
                    if notify:
                        records.for_transfer(event, transfer, card)
                done.append(card.pk)
            except LoyaltyError as exc:
                errors.append((card.pk, exc))
    return len(done), _failures(errors)


def _key(job):
    return lambda card_id: keys.job_card(job.pk, card_id)


def _details(job):
    return {
        "description": job.params.get("description", ""),
        "note": job.params.get("note", ""),
        "created_by_id": job.created_by_id,
    }


def mass_accrual(job, items):
    amount = ledger.to_amount(job.params["amount"])
    when = parse_datetime(job.params["available_at"]) if job.params.get("available_at") else None
    if when is not None and when > timezone.now():
        return _pending(job, items, amount, when)
    key, details = _key(job), _details(job)
    return _run(
        job,
        items,
        lambda cards: ledger.credit_cards(cards, amount, key, kind=Transfer.BULK, **details),
        lambda card: ledger.credit_card(card, amount, key(card.pk), kind=Transfer.BULK, **details),
        events.POINTS_CREDITED,
    )


def _pending(job, items, amount, when):
    """Points available later: one pending accrual per card, posted when ``when`` comes."""
    found = Card.objects.filter(pk__in=items).only("id", "number", "status", "participates")
    cards = {card.pk: card for card in found}
    errors = [
        (pk, _("The card no longer exists.")) for pk in dict.fromkeys(items) if pk not in cards
    ]
    usable = []
    for card in cards.values():
        reason = card.refusal()
        if reason:
            errors.append((card.pk, reason))
        else:
            usable.append(card)
    Accrual.objects.bulk_create(
        [
            Accrual(
                card_id=card.pk,
                job_id=job.pk,
                base=0,
                percent=0,
                points=amount,
                available_at=when,
                description=job.params.get("description", ""),
            )
            for card in usable
        ],
        ignore_conflicts=True,
    )
    return len(usable), _failures(errors)


def mass_debit(job, items):
    amount = ledger.to_amount(job.params["amount"])
    key, details = _key(job), _details(job)
    return _run(
        job,
        items,
        lambda cards: ledger.debit_cards(cards, amount, key, kind=Transfer.BULK, **details),
        lambda card: ledger.debit_card(
            card, amount, key(card.pk), kind=Transfer.BULK, to=ledger.ISSUED, **details
        ),
        events.POINTS_DEBITED,
    )
