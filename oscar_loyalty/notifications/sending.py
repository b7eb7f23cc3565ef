"""Sending recorded messages: claim, render, send, mark; safe to run twice for one message.

A message is claimed (``queued`` → ``sending``) in a transaction of its own before anything
goes out, so a redelivered task or a second worker finds it taken and sends nothing. The
inbox copy is written once, in a transaction of its own before the e-mail that carries it
is tried (or, for a message of channel "site", in the one that marks it sent). A failure
leaves the message queued with the error, due again later
(``OSCAR_LOYALTY_MESSAGE_RETRY_SECONDS``, doubled each time) until
``OSCAR_LOYALTY_MESSAGE_MAX_ATTEMPTS``, then failed for a manager to resend.
"""

import logging
from datetime import timedelta

from django.contrib.sites.models import Site
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape, linebreaks
from django.utils.translation import gettext as _
from oscar.core.loading import get_class, get_model

from oscar_loyalty import conf, descriptions, phones
from oscar_loyalty.formats import format_points
from oscar_loyalty.notifications import records, sms

CommunicationEventType = get_model("communication", "CommunicationEventType")
Message = get_model("oscar_loyalty", "Message")
Dispatcher = get_class("communication.utils", "Dispatcher")

logger = logging.getLogger(__name__)

# A message left ``sending`` this long was interrupted (its worker died mid-send).
STALE_SENDING = timedelta(minutes=10)


def _claim(ids):
    """Take the queued messages of ``ids`` for this worker; the others are left alone."""
    with transaction.atomic():
        rows = Message.objects.filter(pk__in=ids, status=Message.QUEUED)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        claimed = list(rows.values_list("pk", flat=True))
        Message.objects.filter(pk__in=claimed).update(
            status=Message.SENDING, attempts=F("attempts") + 1, due=timezone.now()
        )
    return (
        Message.objects.filter(pk__in=claimed)
        .select_related("card__program", "card__grade", "user", "transfer", "grade_change")
        .select_related("grade_change__old_grade", "grade_change__new_grade")
        .order_by("pk")
    )


def account_url(site):
    path = reverse("loyalty-account-cards")
    return f"{conf.message_url_scheme}://{site.domain}{path}"


def context(message, site):
    """What the message's templates may use (``events.VARIABLES``)."""
    card, user, transfer = message.card, message.user, message.transfer
    values = {
        "site": site,
        "message": message,
        "customer_name": (user.get_full_name() or user.email) if user else "",
        "account_url": account_url(site),
        "balance": format_points(message.balance_after)
        if message.balance_after is not None
        else "",
    }
    if card is not None:
        values.update(
            card_number=card.number,
            program=card.program.name,
            grade=card.grade.name if card.grade_id else "",
        )
    if transfer is not None:
        values.update(
            amount=format_points(transfer.amount),
            order_number=transfer.order_number,
            description=descriptions.describe(
                transfer.label_code, transfer.order_number, transfer.description
            ),
        )
    change = message.grade_change
    if change is not None:
        values.update(
            grade=change.new_grade.name if change.new_grade_id else "",
            old_grade=change.old_grade.name if change.old_grade_id else "",
        )
    values.update(message.context)
    return values


def event_type(code, known=None):
    """The ``CommunicationEventType`` of ``code`` (unsaved if no row: the files' texts), as
    Oscar's ``get_and_render`` finds it; ``known`` keeps those of a batch, read once each."""
    if known is not None and code in known:
        return known[code]
    found = CommunicationEventType.objects.filter(code=code).first()
    found = found or CommunicationEventType(code=code)
    if known is not None:
        known[code] = found
    return found


def render(message, site=None, event_types=None):
    """``{"subject", "body", "html", "sms"}`` of ``message`` in its language.
    ``event_types``: a dict shared by a batch's messages, so each template row is read once
    (a query per message was a quarter of the time to send 10,000 e-mails)."""
    site = site or Site.objects.get_current()
    commtype = event_type(message.event, event_types)
    with translation.override(message.language):
        return commtype.get_messages(context(message, site))


class _Batch:
    """One run over claimed messages: one mail connection, one SMS backend."""

    def __init__(self):
        self.mail = get_connection()
        self.dispatcher = Dispatcher(mail_connection=self.mail)
        self.sms = None
        self.sms_down = None  # a GatewayUnavailable: the batch's other SMS wait for a retry

    def inbox_copy(self, message, texts, sent=False):
        """Write the account inbox's copy once (``inbox_sent``), in the transaction that
        records it: before the e-mail, so a failing mail server does not hold it back.
        ``sent``: the copy is the whole message (channel "site"), marked sent with it."""
        body = linebreaks(escape(texts["body"].strip()))
        with transaction.atomic():
            self.dispatcher.notify_user(message.user, texts["subject"], body=body)
            Message.objects.filter(pk=message.pk).update(inbox_sent=timezone.now())
            if sent:
                _mark_sent([message.pk])

    def send(self, message, texts):
        """Send ``message``; ``False`` if it is marked sent already (an inbox-only one)."""
        if message.channel == Message.SITE:
            self.inbox_copy(message, texts, sent=True)
            return False
        if message.channel == Message.EMAIL and not (
            texts["subject"] and (texts["body"] or texts["html"])
        ):
            raise ValueError(_("The template %s has no e-mail subject or text.") % message.event)
        if message.inbox and message.inbox_sent is None and message.user_id:
            self.inbox_copy(message, texts)
        if message.channel == Message.EMAIL:
            self.dispatcher.send_email_messages(message.recipient, texts)
        elif message.channel == Message.SMS:
            if not texts["sms"].strip():
                raise ValueError(_("The template %s has no SMS text.") % message.event)
            if self.sms_down is not None:
                raise sms.SMSError(
                    _("Not tried: the SMS gateway failed on an earlier message (%s)")
                    % self.sms_down
                )
            self.sms = self.sms or sms.get_backend()
            try:
                self.sms.send(phones.normalise(message.recipient), texts["sms"].strip())
            except sms.GatewayUnavailable as error:
                self.sms_down = error
                raise
        return True


def _mark_sent(ids):
    Message.objects.filter(pk__in=ids, status=Message.SENDING).update(
        status=Message.SENT, sent=timezone.now(), error=""
    )


def _mark_failed(message, error):
    """Back to the queue, due after a doubling wait, or failed after the last attempt."""
    last = message.attempts >= conf.message_max_attempts
    wait = timedelta(seconds=conf.message_retry_seconds * 2 ** (message.attempts - 1))
    Message.objects.filter(pk=message.pk, status=Message.SENDING).update(
        status=Message.FAILED if last else Message.QUEUED,
        error=str(error)[:2000] or error.__class__.__name__,
        due=timezone.now() + wait,
    )


def send(ids):
    """Send the queued messages of ``ids`` (others are skipped); returns ``(sent, failed)``
    counts. A failing channel never stops the others: its messages go back to the queue."""
    claimed = list(_claim(ids))
    if not claimed:
        return 0, 0
    site = Site.objects.get_current()
    batch, sent, failed, event_types = _Batch(), [], 0, {}
    try:
        batch.mail.open()  # one connection for the batch; if it fails each send says why
    except Exception:
        logger.warning("Mail connection failed", exc_info=True)
    try:
        for message in claimed:
            try:
                if batch.send(message, render(message, site, event_types)):
                    sent.append(message.pk)
            except Exception as error:  # a gateway's or a template's: recorded, retried
                logger.warning("Message %s not sent: %s", message.pk, error, exc_info=True)
                _mark_failed(message, error)
                failed += 1
    finally:
        batch.mail.close()
    _mark_sent(sent)
    return len(claimed) - failed, failed


def due_ids(limit):
    """Queued messages due now: retries, and any whose task was lost. Messages left
    ``sending`` by a worker that died are marked failed: they may have gone out, so only a
    manager, who can check, sends them again."""
    now = timezone.now()
    Message.objects.filter(status=Message.SENDING, due__lt=now - STALE_SENDING).update(
        status=Message.FAILED,
        error=_("The sending was interrupted; check whether it arrived before resending."),
    )
    return list(
        Message.objects.filter(status=Message.QUEUED, due__lte=now)
        .order_by("due")
        .values_list("pk", flat=True)[:limit]
    )


def resend(messages):
    """A manager's resend of failed messages: queued again now, with their attempts reset.
    Returns the ids queued (sent once the caller's transaction commits)."""
    ids = list(messages.filter(status=Message.FAILED).values_list("pk", flat=True))
    Message.objects.filter(pk__in=ids, status=Message.FAILED).update(
        status=Message.QUEUED, attempts=0, due=timezone.now()
    )
    if ids:
        records.messages_queued.send(sender=Message, ids=ids)
    return ids


def of_customer(card):
    """The condition of the messages of ``card`` and of its customer."""
    return Q(card_id=card.pk) | Q(user_id=card.user_id) if card.user_id else Q(card_id=card.pk)


def customer_messages(card):
    """The messages of ``card`` and of its customer, newest first (the card page's list)."""
    return Message.objects.filter(of_customer(card)).order_by("-id")
