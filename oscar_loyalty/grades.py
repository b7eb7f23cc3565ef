"""Grades: lifetime spend, automatic upgrades, manual grades and their history."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Sum
from django.utils.translation import gettext as _
from oscar.core.loading import get_model
from oscar.templatetags.currency_filters import currency

from oscar_loyalty import conf
from oscar_loyalty.exceptions import GradeError
from oscar_loyalty.notifications import records

Card = get_model("oscar_loyalty", "Card")
Grade = get_model("oscar_loyalty", "Grade")
GradeChange = get_model("oscar_loyalty", "GradeChange")
Order = get_model("order", "Order")
Line = get_model("order", "Line")

ZERO = Decimal("0.00")


def complete_statuses():
    """Order statuses that count as complete (setting, else Oscar's last non-cancelled one).

    A last status is one the pipeline leads to and out of which it leads nowhere: a key with
    no next statuses, or a status only named as a next one (Oscar's documented pipeline ends
    in "Processed" without listing it as a key).
    """
    if conf.complete_statuses:
        return tuple(conf.complete_statuses)
    from django.conf import settings

    pipeline = getattr(settings, "OSCAR_ORDER_STATUS_PIPELINE", {}) or {}
    named = list(pipeline) + [s for nexts in pipeline.values() for s in nexts]
    finals = [s for s in dict.fromkeys(named) if not pipeline.get(s)]
    return tuple(s for s in finals if s not in conf.cancelled_statuses) or ("Complete",)


def counted_spend(card):
    """Money the customer paid in completed orders since the programme's history start,
    net of cancelled and refunded lines (the spend the shop's records can prove)."""
    if card.user_id is None:
        return ZERO
    orders = Order.objects.filter(user_id=card.user_id, status__in=complete_statuses())
    if card.program.history_start:
        orders = orders.filter(date_placed__date__gte=card.program.history_start)
    total = orders.aggregate(s=Sum("total_incl_tax"))["s"] or ZERO
    refunded = (
        Line.objects.filter(order__in=orders, status__in=conf.refunded_line_statuses).aggregate(
            s=Sum("line_price_incl_tax")
        )["s"]
        or ZERO
    )
    return total - refunded


def last_order_date(card):
    """When the customer placed their last completed order (the dashboard filters on it)."""
    if card.user_id is None:
        return None
    orders = Order.objects.filter(user_id=card.user_id, status__in=complete_statuses())
    return orders.aggregate(m=Max("date_placed"))["m"]


def grade_for_spend(program, spend):
    """The highest grade whose threshold ``spend`` reaches."""
    return (
        Grade.objects.filter(program=program, spend_from__lte=spend).order_by("-spend_from").first()
    )


def next_grade(card):
    """The next grade up and the spend still needed for it, or ``(None, None)``."""
    if card.grade is None:
        return None, None
    grade = (
        Grade.objects.filter(program_id=card.program_id, spend_from__gt=card.grade.spend_from)
        .order_by("spend_from")
        .first()
    )
    if grade is None:
        return None, None
    return grade, max(grade.spend_from - card.lifetime_spend, ZERO)


def _locked_with_spend(card):
    """The card locked (its own row only), its counted purchases and last order read anew."""
    card = (
        Card.objects.select_for_update(of=("self",))
        .select_related("grade", "program")
        .get(pk=card.pk)
    )
    card.lifetime_spend = counted_spend(card) + card.spend_adjustment
    card.last_order_at = last_order_date(card)
    return card


def recalculate(card):
    """Refresh the card's lifetime spend and raise its grade if it reached a higher one.

    Grades never go down automatically, and a grade a manager set is left as it is.
    """
    with transaction.atomic():
        card = _locked_with_spend(card)
        card.save(update_fields=["lifetime_spend", "last_order_at"])
        if card.grade_is_manual or not card.participates:
            return card
        target = grade_for_spend(card.program, card.lifetime_spend)
        if target and (card.grade is None or target.spend_from > card.grade.spend_from):
            change = GradeChange.objects.create(
                card=card,
                old_grade=card.grade,
                new_grade=target,
                automatic=True,
                reason=_("Spend reached %(spend)s") % {"spend": currency(card.lifetime_spend)},
            )
            card.grade = target
            card.save(update_fields=["grade"])
            records.for_grade_change(change)
    return card


def set_grade(card, grade, *, by, reason, participates=True, spend_adjustment=None):
    """A manager's grade for ``card``; it stays until a manager changes it.

    ``participates=False`` means "not participating": the card earns nothing and cannot spend.
    ``spend_adjustment`` records spend made before the shop's records (the source documents'
    "already accumulated"); it cannot bring the total below what the records prove, and a
    grade above what the total reaches is refused, as the source documents do.
    """
    if grade is not None and grade.program_id != card.program_id:
        raise GradeError(_("The grade belongs to another programme."))
    with transaction.atomic():
        card = Card.objects.select_for_update(of=("self",)).select_related("grade").get(pk=card.pk)
        counted = counted_spend(card)
        if spend_adjustment is not None:
            if spend_adjustment < counted:
                raise GradeError(
                    _("The accumulated sum cannot be less than the actual one (%(actual)s).")
                    % {"actual": currency(counted)}
                )
            card.spend_adjustment = spend_adjustment - counted
        total = counted + card.spend_adjustment
        if spend_adjustment is not None and grade is not None and grade.spend_from > total:
            raise GradeError(
                _("The accumulated sum cannot be outside the limits of the chosen grade.")
            )
        change = GradeChange.objects.create(
            card=card,
            old_grade=card.grade,
            new_grade=grade,
            participates=participates,
            automatic=False,
            reason=reason,
            created_by=by,
        )
        card.grade = grade if grade is not None else card.grade
        card.participates = participates
        card.grade_is_manual = True
        card.lifetime_spend = total
        card.save(
            update_fields=[
                "grade",
                "participates",
                "grade_is_manual",
                "spend_adjustment",
                "lifetime_spend",
            ]
        )
        records.for_grade_change(change)
    return card


def release_manual_grade(card, *, by, reason):
    """Let the card's grade follow its purchases again, starting now.

    The grade is recomputed from what the card's purchases reach (the "already accumulated"
    sum a manager entered included), so a manager's grade above it goes down and one below
    it goes up; a card that was not participating takes part again. The change is recorded
    from the manager's grade to the computed one, with ``reason`` and ``by``.
    """
    with transaction.atomic():
        card = _locked_with_spend(card)
        target = grade_for_spend(card.program, card.lifetime_spend) or card.program.lowest_grade()
        GradeChange.objects.create(
            card=card,
            old_grade=card.grade,
            new_grade=target or card.grade,
            automatic=False,
            reason=reason,
            created_by=by,
        )
        card.grade = target or card.grade
        card.grade_is_manual, card.participates = False, True
        card.save(
            update_fields=[
                "grade",
                "grade_is_manual",
                "participates",
                "lifetime_spend",
                "last_order_at",
            ]
        )
    return card


def delete_grade(grade, *, move_to=None, by=None):
    """Delete ``grade``; its cards move to ``move_to`` first, each with a recorded change.

    Returns how many cards moved. A grade with cards and nowhere to move them is refused.
    """
    with transaction.atomic():
        card_ids = list(
            Card.objects.select_for_update().filter(grade=grade).values_list("pk", flat=True)
        )
        if card_ids:
            if move_to is None or move_to.program_id != grade.program_id or move_to == grade:
                raise GradeError(
                    _("Cards have the grade “%(name)s”; choose another grade for them first.")
                    % {"name": grade.name}
                )
            reason = _("Grade “%(name)s” deleted") % {"name": grade.name}
            GradeChange.objects.bulk_create(
                GradeChange(
                    card_id=pk,
                    old_grade=grade,
                    new_grade=move_to,
                    reason=reason,
                    created_by=by,
                )
                for pk in card_ids
            )
            Card.objects.filter(grade=grade).update(grade=move_to)
        grade.delete()
    return len(card_ids)
