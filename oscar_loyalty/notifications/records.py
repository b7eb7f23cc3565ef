"""Recording messages in the transaction of their cause; ``sending`` sends them after commit.

One message per channel the customer can be reached on: e-mail (an address), SMS (a phone
and an SMS backend). The copy in the account inbox rides with the e-mail (``inbox``), or is
a message of its own (channel "site") for a customer without an address: one row per
customer and cause, not two, keeps a mass job's recording cheap (benchmarks/). Marketing
messages go only to cards whose customer agreed (``Card.marketing_consent``); ``requested``
ones (a gift card's code) always. Keys: ``msg:<cause>:account|sms``, the cause being a
transfer's key, ``grade:<grade change id>`` or ``card:<card id>:issued``, so the same cause
never records a message twice.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Case, CharField, F, JSONField, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, NullIf
from django.dispatch import Signal
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import conf, lookups
from oscar_loyalty.notifications import events

Account = get_model("oscar_loyalty", "Account")
Message = get_model("oscar_loyalty", "Message")
Transfer = get_model("oscar_loyalty", "Transfer")


ACCOUNT = "account"


def key(cause, channel):
    """The message's key: the account's message (e-mail or inbox only: whichever the address
    allows when it is recorded) ends ``:account``, so a cause recorded again after the
    customer added an address finds it; an SMS ends ``:sms``."""
    return f"msg:{cause}:{channel if channel == Message.SMS else ACCOUNT}"


def language():
    """The language messages are written in: ``OSCAR_LOYALTY_MESSAGE_LANGUAGE``, else the
    shop's ``LANGUAGE_CODE`` (a customer has no language of their own in Oscar)."""
    return conf.message_language or settings.LANGUAGE_CODE


def channels():
    """The channels in use: ``OSCAR_LOYALTY_MESSAGE_CHANNELS``, SMS only with a backend."""
    wanted = conf.message_channels
    return [c for c in wanted if c != Message.SMS or conf.sms_backend]


def _user_phone_field():
    name = conf.user_phone_field
    fields = {f.name for f in get_user_model()._meta.concrete_fields}
    return name if name in fields else None


def recipients(card):
    """``[(channel, address, inbox)]``: how ``card``'s customer can be reached, and which
    message carries the copy in their account inbox."""
    wanted, user, found = channels(), card.user, []
    inbox = Message.SITE in wanted
    if user is not None:
        if Message.EMAIL in wanted and user.email:
            found.append((Message.EMAIL, user.email, inbox))
        elif inbox:
            found.append((Message.SITE, user.email or user.get_username(), True))
    if Message.SMS in wanted:
        field = _user_phone_field()
        phone = card.phone or (str(getattr(user, field) or "") if user and field else "")
        if phone:
            found.append((Message.SMS, phone, False))
    return found


def record(event, card, cause, *, transfer=None, grade_change=None, context=None, requested=False):
    """Record ``event``'s messages to ``card``'s customer, inside the caller's transaction;
    they are sent once it commits. Returns the messages recorded now (none on a replay,
    without consent, or without any channel)."""
    if not (requested or card.marketing_consent):
        return []
    found = recipients(card)
    if not found:
        return []
    balance = Account.objects.values_list("balance", flat=True).get(pk=card.account_id)
    messages = [
        Message(
            key=key(cause, channel),
            event=event,
            channel=channel,
            recipient=address,
            user_id=card.user_id,
            card=card,
            transfer=transfer,
            grade_change=grade_change,
            balance_after=balance,
            context=context or {},
            requested=requested,
            inbox=inbox,
            language=language(),
        )
        for channel, address, inbox in found
    ]
    Message.objects.bulk_create(messages, ignore_conflicts=True)
    new = list(
        Message.objects.filter(key__in=[m.key for m in messages], status=Message.QUEUED).filter(
            created__gte=messages[0].created
        )
    )
    _send_on_commit([m.pk for m in new])
    return new


def for_transfer(event, transfer, card=None, **kwargs):
    """``event``'s messages about ``transfer`` (posted, or found recorded on a replay)."""
    card = card or transfer.card
    return record(event, card, transfer.key, transfer=transfer, **kwargs)


def for_grade_change(change):
    """The customer's card moved to another grade."""
    if change.new_grade_id is None or change.new_grade_id == change.old_grade_id:
        return []
    return record(events.GRADE_CHANGED, change.card, f"grade:{change.pk}", grade_change=change)


def for_card_issued(card):
    return record(events.CARD_ISSUED, card, f"card:{card.pk}:issued")


# --- many cards at once ------------------------------------------------------------------


def _account_slot(wanted):
    """The customer's account's message as ``recipients`` picks it, in SQL: ``(channel,
    address, inbox, reachable)`` expressions and the key's suffix, or ``None`` if neither
    channel is used."""
    email, inbox = Message.EMAIL in wanted, Message.SITE in wanted
    has_email = ~Q(card__user__email="")
    customer = Q(card__user__isnull=False)
    if email and not inbox:
        return (
            Value(Message.EMAIL),
            F("card__user__email"),
            Value(False),
            customer & has_email,
            ACCOUNT,
        )
    if not inbox:
        return None
    name = NullIf(F("card__user__email"), Value(""))
    address = Coalesce(name, Cast(F(f"card__user__{get_user_model().USERNAME_FIELD}"), CharField()))
    channel = Value(Message.SITE)
    if email:
        channel = Case(
            When(has_email, then=Value(Message.EMAIL)), default=channel, output_field=CharField()
        )
    return channel, address, Value(True), customer, ACCOUNT


def _sms_slot():
    field = _user_phone_field()
    phone = NullIf(F("card__phone"), Value(""))
    if field:
        phone = Coalesce(phone, NullIf(Cast(F(f"card__user__{field}"), CharField()), Value("")))
    reachable = Q(card__phone__gt="") | (Q(**{f"card__user__{field}__gt": ""}) if field else Q())
    return Value(Message.SMS), phone, Value(False), reachable, Message.SMS


def for_transfers(event, transfer_keys):
    """``event``'s messages about the transfers ``transfer_keys`` (one card each; a mass
    job's chunk), to the consenting customers: one ``INSERT ... SELECT`` of their accounts'
    messages (e-mail with the inbox copy) and their SMS, in the caller's transaction. Keys already
    recorded are skipped. Returns the new messages' ids, queued to be sent once the
    transaction commits."""
    transfer_keys = list(transfer_keys)
    if not transfer_keys:
        return []
    connection = connections[router.db_for_write(Message)]
    quote = connection.ops.quote_name
    opts = Message._meta
    now, lang = timezone.now(), language()
    wanted, selects = channels(), []
    slots = [_account_slot(wanted), _sms_slot() if Message.SMS in wanted else None]
    for channel, address, inbox, reachable, suffix in filter(None, slots):
        values = {
            "key": Concat(Value("msg:"), F("key"), Value(f":{suffix}"), output_field=CharField()),
            "event": Value(event),
            "channel": channel,
            "recipient": address,
            "user_id": F("card__user_id"),
            "card_id": F("card_id"),
            "transfer_id": F("id"),
            "balance_after": F("card__account__balance"),
            "context": Cast(Value("{}"), JSONField()),
            "requested": Value(False),
            "inbox": inbox,
            "language": Value(lang),
            "status": Value(Message.QUEUED),
            "attempts": Value(0),
            "error": Value(""),
            "created": Value(now),
            "due": Value(now),
        }
        selects.append(
            Transfer.objects.filter(lookups.among(Transfer, "key", transfer_keys))
            .filter(reachable, card__marketing_consent=True)
            .annotate(**{f"m_{name}": expression for name, expression in values.items()})
            .values_list(*(f"m_{name}" for name in values))
            .order_by()
        )
    if not selects:
        return []
    # One statement for every slot: the rows of all of them in one INSERT (``WHERE 1 = 1``
    # tells SQLite's parser that ON CONFLICT is the upsert clause, not a join's).
    sql, params = selects[0].union(*selects[1:], all=True).query.sql_with_params()
    columns = ", ".join(quote(opts.get_field(n.removesuffix("_id")).column) for n in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(opts.db_table)} ({columns}) SELECT * FROM ({sql}) AS m "
            f"WHERE 1 = 1 ON CONFLICT ({quote('key')}) DO NOTHING "
            f"RETURNING {quote(opts.pk.column)}",
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    _send_on_commit(ids)
    return ids


# Sent with ``ids`` of messages recorded (or queued again) in the current transaction. The
# package's receiver (``receivers.queue_messages``) queues the Celery task that sends them
# once it commits: services stay below the tasks that call them (DESIGN.md, Layout).
messages_queued = Signal()


def _send_on_commit(ids):
    if ids:
        messages_queued.send(sender=Message, ids=ids)
