"""Messages sent end to end through the SMS Aero backend and the fake gateway: what the
customer receives after a manager's credit, and what happens when the gateway fails,
when a task is redelivered, when a cause is replayed, and when a send was interrupted."""

from datetime import timedelta
from decimal import Decimal
from smtplib import SMTPServerDisconnected

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone, translation
from django.utils.translation import gettext
from oscar.core.loading import get_model

from oscar_loyalty import cards, tasks
from oscar_loyalty.notifications import events, records, sending
from tests.factories import make_customer, make_program

Account = get_model("oscar_loyalty", "Account")
Message = get_model("oscar_loyalty", "Message")
Transfer = get_model("oscar_loyalty", "Transfer")
Notification = get_model("communication", "Notification")

pytestmark = pytest.mark.django_db

PHONE = "79123456789"


@pytest.fixture
def customer():
    return make_customer(email="anna@example.com", first_name="Anna", last_name="Petrova")


@pytest.fixture
def card(customer):
    """Anna's card with her phone; she agreed to the programme's messages."""
    card = cards.issue_card(make_program(), user=customer, phone="+7 912 345-67-89")
    cards.set_consent(card, True)
    return card


@pytest.fixture
def credit(django_capture_on_commit_callbacks):
    """A manager's credit, committed: its messages are sent as after a real commit."""

    def run(card, amount="150", key="manual:1", **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return cards.adjust(card, amount, key, description="Birthday gift", **kwargs)

    return run


def sms_of(card):
    return Message.objects.get(card=card, channel=Message.SMS)


def email_of(card):
    """The customer's e-mail, which carries the copy in the account inbox."""
    return Message.objects.get(card=card, channel=Message.EMAIL)


def inbox(user):
    return Notification.objects.filter(recipient=user)


def balance(card):
    return Account.objects.get(pk=card.account_id).balance


def make_due(message):
    """The retry delay has passed."""
    Message.objects.filter(pk=message.pk).update(due=timezone.now() - timedelta(seconds=1))


# --- what the customer receives ------------------------------------------------------------


def test_a_managers_credit_sends_one_sms_with_the_amount_and_the_balance(sms_aero, card, credit):
    credit(card, "100", key="manual:0")
    sms_aero.forget()

    credit(card, "150")

    assert len(sms_aero.sent) == 1
    sent = sms_aero.sent[0]
    assert sent["number"] == PHONE
    assert sent["sign"] == "Shop"
    assert "+150 points." in sent["text"]
    assert "Birthday gift" in sent["text"]
    assert "Balance: 250." in sent["text"]
    message = Message.objects.get(card=card, channel=Message.SMS, transfer__key="manual:1")
    assert message.status == Message.SENT
    assert message.recipient == PHONE and message.error == ""


def test_the_same_credit_reaches_the_mailbox_and_the_account_inbox(sms_aero, card, credit):
    credit(card, "150")

    assert [m.to for m in mail.outbox] == [["anna@example.com"]]
    assert "150" in mail.outbox[0].body
    assert inbox(card.user).count() == 1
    assert inbox(card.user).get().subject == mail.outbox[0].subject
    assert set(Message.objects.filter(card=card).values_list("status", flat=True)) == {Message.SENT}
    # One message carries both: no row of its own for the inbox.
    assert not Message.objects.filter(card=card, channel=Message.SITE).exists()
    email = email_of(card)
    assert email.inbox and email.inbox_sent is not None


def test_russian_sms_when_messages_are_written_in_russian(sms_aero, card, credit, settings):
    settings.OSCAR_LOYALTY_MESSAGE_LANGUAGE = "ru"
    with translation.override("ru"):
        points = gettext("+%(amount)s points.") % {"amount": "150"}
        balance_line = gettext("Balance: %(balance)s.") % {"balance": "150"}
    if points == "+150 points.":
        pytest.skip("the Russian translation of the SMS templates is not in the catalogue yet")

    credit(card, "150")

    (sent,) = sms_aero.sent
    assert points in sent["text"] and balance_line in sent["text"]
    assert "points" not in sent["text"]
    assert sms_of(card).language == "ru"


# --- a gateway that fails ------------------------------------------------------------------


def test_a_failing_gateway_leaves_the_sms_queued_to_retry_and_the_email_goes(
    sms_aero, card, credit, settings
):
    settings.OSCAR_LOYALTY_MESSAGE_RETRY_SECONDS = 60
    sms_aero.fail(times=1, status=503, message="Service temporarily unavailable")
    before = timezone.now()

    transfer = credit(card, "150")

    message = sms_of(card)
    assert message.status == Message.QUEUED
    assert message.attempts == 1
    assert "HTTP 503: Service temporarily unavailable" in message.error
    assert before + timedelta(seconds=55) < message.due < timezone.now() + timedelta(seconds=65)
    assert sms_aero.sent == []
    # The cause stands and the other channels went out.
    assert Transfer.objects.filter(pk=transfer.pk).exists()
    assert balance(card) == Decimal("150")
    assert len(mail.outbox) == 1
    assert inbox(card.user).count() == 1


def test_a_refusal_is_recorded_with_what_the_gateway_said(sms_aero, card, credit):
    sms_aero.refuse("Not enough money on the balance")

    credit(card, "150")

    message = sms_of(card)
    assert message.status == Message.QUEUED
    assert "Not enough money on the balance" in message.error


def test_send_due_messages_waits_for_the_retry_delay_then_sends_when_the_gateway_is_back(
    sms_aero, card, credit
):
    sms_aero.fail(times=1)
    credit(card, "150")
    message = sms_of(card)

    tasks.send_due_messages()  # too early: the retry is not due yet
    assert len(sms_aero.requests) == 1

    make_due(message)
    tasks.send_due_messages()

    message.refresh_from_db()
    assert message.status == Message.SENT
    assert message.attempts == 2
    assert message.error == ""
    assert len(sms_aero.sent) == 1
    assert "+150 points." in sms_aero.sent[0]["text"]
    assert len(mail.outbox) == 1  # the e-mail was not sent again


def test_after_the_last_attempt_the_sms_is_failed_and_no_longer_retried(
    sms_aero, card, credit, settings
):
    settings.OSCAR_LOYALTY_MESSAGE_MAX_ATTEMPTS = 3
    sms_aero.refuse("Number is blacklisted")
    credit(card, "150")
    message = sms_of(card)

    for _ in range(2):
        make_due(message)
        tasks.send_due_messages()

    message.refresh_from_db()
    assert message.status == Message.FAILED
    assert message.attempts == 3
    assert "Number is blacklisted" in message.error
    make_due(message)
    sms_aero.recover()
    tasks.send_due_messages()
    assert len(sms_aero.requests) == 3
    assert sms_aero.sent == []


def test_a_gateway_that_hangs_does_not_hold_up_the_credit(sms_aero, card, credit, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = sms_aero.settings(TIMEOUT=0.3)
    sms_aero.hang()

    transfer = credit(card, "150")

    assert transfer.amount == Decimal("150")
    assert balance(card) == Decimal("150")
    message = sms_of(card)
    assert message.status == Message.QUEUED
    assert "did not answer" in message.error
    assert len(mail.outbox) == 1


def test_an_unconfigured_gateway_fails_the_sms_only(sms_aero, card, credit, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = {}

    credit(card, "150")

    message = sms_of(card)
    assert message.status == Message.QUEUED
    assert "EMAIL and API_KEY" in message.error
    assert len(mail.outbox) == 1


def second_card():
    """Boris, another consenting customer with a phone."""
    boris = make_customer(email="boris@example.com")
    card = cards.issue_card(make_program(code="second"), user=boris, phone="79123456780")
    cards.set_consent(card, True)
    return card


def test_a_gateway_that_hangs_costs_one_timeout_per_batch_not_one_per_sms(sms_aero, card, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = sms_aero.settings(TIMEOUT=0.3)
    other = second_card()
    cards.adjust(card, "150", "manual:1")  # recorded; sent below as one batch
    cards.adjust(other, "70", "manual:2")
    ids = list(Message.objects.values_list("pk", flat=True))
    sms_aero.hang()

    assert len(ids) == 4  # per customer: the e-mail carrying the inbox copy, and the SMS

    assert sending.send(ids) == (2, 2)

    assert len(sms_aero.requests) == 1  # the second SMS was not tried
    first, second = Message.objects.filter(channel=Message.SMS).order_by("pk")
    assert (first.status, second.status) == (Message.QUEUED, Message.QUEUED)
    assert "did not answer" in first.error
    assert second.error.startswith("Not tried: the SMS gateway failed on an earlier message")
    assert len(mail.outbox) == 2
    assert (inbox(card.user).count(), inbox(other.user).count()) == (1, 1)
    sms_aero.recover()
    for message in (first, second):
        make_due(message)
    tasks.send_due_messages()
    assert sorted(s["number"] for s in sms_aero.sent) == ["79123456780", PHONE]
    assert len(mail.outbox) == 2
    assert (inbox(card.user).count(), inbox(other.user).count()) == (1, 1)


def test_one_refused_sms_does_not_stop_the_next(sms_aero, card):
    other = second_card()
    cards.adjust(card, "150", "manual:1")
    cards.adjust(other, "70", "manual:2")
    ids = list(Message.objects.filter(channel=Message.SMS).values_list("pk", flat=True))
    sms_aero.fail(times=1, status=400, message="Invalid number")

    assert sending.send(ids) == (1, 1)

    assert len(sms_aero.requests) == 2 and len(sms_aero.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_gateway_never_breaks_the_committed_credit(sms_aero, customer):
    """A real commit: the sending task runs eagerly after it, and its failure stays there."""
    card = cards.issue_card(make_program(), user=customer, phone=PHONE)
    cards.set_consent(card, True)
    sms_aero.fail(times=5, status=500, message="Internal Server Error")

    transfer = cards.adjust(card, "150", "manual:1", description="Birthday gift")

    assert Transfer.objects.filter(pk=transfer.pk, amount=Decimal("150")).exists()
    assert balance(card) == Decimal("150")
    message = sms_of(card)
    assert message.status == Message.QUEUED
    assert "HTTP 500" in message.error
    assert len(sms_aero.requests) == 1
    assert len(mail.outbox) == 1


# --- never twice ---------------------------------------------------------------------------


def test_a_redelivered_send_sends_nothing_twice(sms_aero, card, credit):
    credit(card, "150")
    ids = list(Message.objects.filter(card=card).values_list("pk", flat=True))
    assert len(ids) == 2  # the e-mail carrying the inbox copy, and the SMS

    assert sending.send(ids) == (0, 0)
    tasks.send_messages(ids)

    assert len(sms_aero.sent) == 1
    assert len(mail.outbox) == 1
    assert inbox(card.user).count() == 1


def test_the_same_ids_sent_twice_before_any_send_go_once(sms_aero, card):
    cards.adjust(card, "150", "manual:1")  # recorded; its commit never comes in this test
    ids = list(Message.objects.filter(card=card).values_list("pk", flat=True))

    first, second = sending.send(ids), sending.send(ids)

    assert (first, second) == ((2, 0), (0, 0))  # the e-mail (with the inbox copy), the SMS
    assert len(sms_aero.sent) == 1
    assert len(mail.outbox) == 1
    assert inbox(card.user).count() == 1


def test_a_replayed_credit_with_the_same_key_sends_nothing_more(sms_aero, card, credit):
    first = credit(card, "150")
    again = credit(card, "150")

    assert again.pk == first.pk
    assert balance(card) == Decimal("150")
    assert Message.objects.filter(card=card).count() == 2  # the e-mail and the SMS
    assert len(sms_aero.sent) == 1
    assert len(mail.outbox) == 1
    assert inbox(card.user).count() == 1


def test_a_replay_after_a_failure_does_not_send_the_queued_sms_early(sms_aero, card, credit):
    sms_aero.fail(times=1)
    credit(card, "150")
    sms_aero.recover()

    credit(card, "150")

    assert sms_aero.sent == []
    assert sms_of(card).status == Message.QUEUED


def test_a_failing_email_still_writes_its_inbox_copy_once_across_retries(
    sms_aero, customer, credit, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The copy is written before the e-mail is tried: the customer reads it in the account
    while the mail server is down, and neither the retries, nor a manager's resend after the
    last attempt, nor the e-mail finally going out write it again."""
    settings.OSCAR_LOYALTY_MESSAGE_MAX_ATTEMPTS = 3
    card = cards.issue_card(make_program(), user=customer)
    cards.set_consent(card, True)

    def mail_server_down(backend, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailBackend, "send_messages", mail_server_down)

    credit(card, "150")

    message = email_of(card)
    assert (message.status, message.attempts) == (Message.QUEUED, 1)
    assert "Connection unexpectedly closed" in message.error
    assert message.inbox_sent is not None
    (copy,) = inbox(customer)
    assert copy.subject and "150" in copy.body
    for _ in range(2):
        make_due(message)
        tasks.send_due_messages()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.FAILED, 3)
    assert inbox(customer).count() == 1
    assert mail.outbox == []

    monkeypatch.undo()  # the mail server is back; a manager resends
    with django_capture_on_commit_callbacks(execute=True):
        sending.resend(Message.objects.filter(pk=message.pk))

    message.refresh_from_db()
    assert message.status == Message.SENT
    assert [m.to for m in mail.outbox] == [["anna@example.com"]]
    assert list(inbox(customer)) == [copy]


def test_a_customer_without_an_email_address_gets_an_account_inbox_message(sms_aero, credit):
    """No address: a message of channel "site", which is only the copy in the account inbox,
    sent as soon as it is written; no e-mail."""
    boris = get_user_model().objects.create_user(username="boris", email="", password="secret")
    card = cards.issue_card(make_program(), user=boris)
    cards.set_consent(card, True)

    credit(card, "150")

    (message,) = Message.objects.filter(card=card)
    assert (message.channel, message.inbox, message.recipient) == (Message.SITE, True, "boris")
    assert message.status == Message.SENT and message.inbox_sent is not None
    assert mail.outbox == [] and sms_aero.requests == []
    (copy,) = inbox(boris)
    assert "150" in copy.body
    tasks.send_messages([message.pk])  # redelivered: nothing more
    assert inbox(boris).count() == 1

    boris.email = "boris@example.com"  # he adds an address; the same credit is replayed
    boris.save()
    card.refresh_from_db()
    credit(card, "150")
    assert list(Message.objects.filter(card=card)) == [message]
    assert mail.outbox == [] and inbox(boris).count() == 1


# --- who gets what -------------------------------------------------------------------------


def test_no_phone_no_sms_message(sms_aero, customer, credit):
    card = cards.issue_card(make_program(), user=customer)
    cards.set_consent(card, True)

    credit(card, "150")

    channels = list(Message.objects.filter(card=card).values_list("channel", flat=True))
    assert channels == [Message.EMAIL]
    assert email_of(card).inbox
    assert sms_aero.requests == []
    assert len(mail.outbox) == 1
    assert inbox(customer).count() == 1


def test_no_consent_no_message_at_all(sms_aero, customer, credit):
    card = cards.issue_card(make_program(), user=customer, phone=PHONE)

    credit(card, "150")

    assert balance(card) == Decimal("150")
    assert not Message.objects.filter(card=card).exists()
    assert sms_aero.requests == [] and mail.outbox == []
    assert inbox(customer).count() == 0


def test_consent_withdrawn_stops_the_messages(sms_aero, card, credit):
    cards.set_consent(card, False)

    credit(card, "150")

    assert not Message.objects.filter(card=card).exists()
    assert sms_aero.requests == []


def test_a_requested_message_goes_without_consent(
    sms_aero, customer, django_capture_on_commit_callbacks
):
    card = cards.issue_card(make_program(), user=customer, phone=PHONE)

    with django_capture_on_commit_callbacks(execute=True):
        recorded = records.record(
            events.CARD_ISSUED, card, f"card:{card.pk}:requested", requested=True
        )

    assert sorted((m.channel, m.inbox) for m in recorded) == [
        (Message.EMAIL, True),
        (Message.SMS, False),
    ]
    assert len(sms_aero.sent) == 1 and sms_aero.sent[0]["number"] == PHONE
    assert len(mail.outbox) == 1
    assert inbox(customer).count() == 1


# --- interrupted sends ---------------------------------------------------------------------


def test_a_message_left_sending_too_long_is_failed_as_interrupted_and_not_resent(sms_aero, card):
    cards.adjust(card, "150", "manual:1")  # recorded, not sent
    message = sms_of(card)
    claimed = timezone.now() - sending.STALE_SENDING - timedelta(minutes=1)
    Message.objects.filter(pk=message.pk).update(status=Message.SENDING, attempts=1, due=claimed)

    tasks.send_due_messages()

    message.refresh_from_db()
    assert message.status == Message.FAILED
    assert "interrupted" in message.error
    tasks.send_due_messages()
    sending.send([message.pk])
    assert sms_aero.requests == []
    message.refresh_from_db()
    assert message.status == Message.FAILED and message.attempts == 1


def test_a_message_being_sent_now_is_left_to_its_worker(sms_aero, card):
    cards.adjust(card, "150", "manual:1")
    message = sms_of(card)
    Message.objects.filter(pk=message.pk).update(
        status=Message.SENDING, attempts=1, due=timezone.now() - timedelta(minutes=1)
    )

    tasks.send_due_messages()
    sending.send([message.pk])

    message.refresh_from_db()
    assert message.status == Message.SENDING and message.error == ""
    assert sms_aero.requests == []
