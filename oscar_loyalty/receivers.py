"""Receivers of Oscar's signals. They never raise into Oscar's checkout or dashboard: a
failure is logged and leaves a state the periodic tasks or a manager can recover from."""

import functools
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from oscar.apps.customer.signals import user_registered
from oscar.apps.order.signals import order_line_status_changed, order_placed, order_status_changed

from oscar_loyalty import cards, conf, earning, grades, paying, tasks
from oscar_loyalty.notifications import records

logger = logging.getLogger(__name__)


def never_raise(receiver):
    """Log instead of raising; the savepoint keeps a failed statement from aborting the
    shop's surrounding transaction (PostgreSQL refuses every later query otherwise)."""

    @functools.wraps(receiver)
    def wrapper(*args, **kwargs):
        try:
            with transaction.atomic():
                receiver(*args, **kwargs)
        except Exception:
            logger.exception("Loyalty receiver %s failed", receiver.__name__)

    return wrapper


@never_raise
def on_order_placed(sender, order, user=None, **kwargs):
    if order.user_id and order.shipping_address_id and order.shipping_address.phone_number:
        cards.attach_phone_cards(order.user, str(order.shipping_address.phone_number))
    earning.create_accruals(order)


@never_raise
def on_order_status_changed(sender, order, old_status, new_status, **kwargs):
    if new_status in grades.complete_statuses():
        for accrual_id in earning.schedule(order):
            tasks.post_accrual.delay_on_commit(accrual_id)
        if order.user_id:
            for card in cards.cards_of(order.user):
                tasks.recalculate_grade.delay_on_commit(card.pk)
    elif new_status in conf.cancelled_statuses:
        earning.cancel(order)


@never_raise
def on_line_status_changed(sender, line, old_status, new_status, **kwargs):
    if new_status in conf.refunded_line_statuses:
        earning.reverse_lines(line.order, [line])


@never_raise
def capture_points(sender, order, **kwargs):
    """The order exists: points held for it at checkout are spent (idempotent)."""
    paying.capture(order.number)


@never_raise
def return_points_on_cancel(sender, order, old_status, new_status, **kwargs):
    if new_status in conf.cancelled_statuses:
        paying.refund_order(order)


@never_raise
def return_points_on_line_refund(sender, line, old_status, new_status, **kwargs):
    if new_status in conf.refunded_line_statuses:
        paying.refund_lines(line.order, [line])


@never_raise
def on_user_registered(sender, request=None, user=None, **kwargs):
    phone = request.POST.get("phone") if request is not None else None
    phone = phone or getattr(user, conf.user_phone_field, None)
    if phone:
        cards.attach_phone_cards(user, str(phone))
    cards.issue_on_registration(user)


def queue_messages(sender, ids, **kwargs):
    """Send recorded messages once their cause commits. ``robust``: a broker that is down
    must not raise into the committed checkout or job; ``send_due_messages`` sends them."""
    transaction.on_commit(lambda: tasks.send_messages.delay(ids), robust=True)


@never_raise
def on_user_saved(sender, instance, **kwargs):
    phone = getattr(instance, conf.user_phone_field, None)
    if phone:
        cards.attach_phone_cards(instance, str(phone))


def connect():
    uid = "oscar_loyalty"
    order_placed.connect(capture_points, dispatch_uid=f"{uid}.capture_points")
    order_placed.connect(on_order_placed, dispatch_uid=f"{uid}.order_placed")
    order_status_changed.connect(return_points_on_cancel, dispatch_uid=f"{uid}.return_points")
    order_line_status_changed.connect(
        return_points_on_line_refund, dispatch_uid=f"{uid}.return_line_points"
    )
    order_status_changed.connect(on_order_status_changed, dispatch_uid=f"{uid}.status")
    order_line_status_changed.connect(on_line_status_changed, dispatch_uid=f"{uid}.line_status")
    user_registered.connect(on_user_registered, dispatch_uid=f"{uid}.registered")
    records.messages_queued.connect(queue_messages, dispatch_uid=f"{uid}.messages")
    if hasattr(get_user_model(), conf.user_phone_field):
        post_save.connect(
            on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid=f"{uid}.user_saved"
        )
