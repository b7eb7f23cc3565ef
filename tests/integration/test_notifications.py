"""What a customer hears about their points: every event, consent, replays, templates.

Celery runs eagerly; a message is sent by ``tasks.send_messages`` once its cause commits,
so each cause runs inside ``committed()`` (on-commit callbacks executed, as a real commit
would). What the customer gets is read where they get it: Django's ``mail.outbox``, Oscar's
``Notification`` (the account inbox) and an SMS backend that keeps what it was given.
"""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from oscar.apps.order.signals import order_status_changed
from oscar.core.loading import get_model

from oscar_loyalty import cards, earning, grades, jobs, ledger, mass_jobs, paying, tasks
from oscar_loyalty.notifications import events, sending
from tests import factories
from tests.factories import make_product, place_order, refreshed, set_line_status, set_status
from tests.integration import checkout_support

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
CommunicationEventType = get_model("communication", "CommunicationEventType")
JobChunk = get_model("oscar_loyalty", "JobChunk")
Message = get_model("oscar_loyalty", "Message")
Notification = get_model("communication", "Notification")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
pytestmark = pytest.mark.django_db

SMS_BACKEND = "tests.integration.test_notifications.KeptSMS"
ACCOUNT_URL = "http://example.com" + reverse("loyalty-account-cards")


class KeptSMS:
    """An SMS gateway that keeps what it is given: ``(phone, text)``."""

    outbox = []

    def send(self, phone, text):
        self.outbox.append((phone, text))
        return f"sms-{len(self.outbox)}"


class RefusingBackend(EmailBackend):
    """An ESP that takes the connection but refuses every message."""

    def send_messages(self, messages):
        raise ConnectionError("550 mailbox unavailable")


class DownBackend(EmailBackend):
    """An SMTP server that cannot be reached at all."""

    def open(self):
        raise ConnectionRefusedError("connection refused by smtp.example.com")

    def send_messages(self, messages):
        self.open()


@pytest.fixture(autouse=True)
def _kept_sms(settings):
    settings.OSCAR_LOYALTY_SMS_BACKEND = SMS_BACKEND
    KeptSMS.outbox = []


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the commit of the cause starts (the sending task), as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def olga(customer):
    customer.first_name, customer.last_name = "Olga", "Petrova"
    customer.save()
    return customer


@pytest.fixture
def agreed(card, olga):
    """Olga's card; she agreed to the programme's messages."""
    cards.set_consent(card, True)
    return refreshed(card)


@pytest.fixture
def kettle(db):
    return make_product("1000", title="Kettle")


def mails_to(address):
    return [m for m in mail.outbox if address in m.to]


def only_mail_to(address):
    found = mails_to(address)
    assert len(found) == 1, [m.subject for m in found]
    return found[0]


def inbox(user):
    return list(Notification.objects.filter(recipient=user).order_by("pk"))


def only_inbox(user):
    found = inbox(user)
    assert len(found) == 1, [n.subject for n in found]
    return found[0]


def sent_events(card):
    return sorted(
        Message.objects.filter(card=card, status=Message.SENT).values_list("event", "channel")
    )


def the_email_row(card, **filters):
    """The one message of ``card`` (and ``filters``): an e-mail carrying the inbox copy,
    with no message of channel "site" beside it."""
    assert not Message.objects.filter(card=card, channel=Message.SITE).exists()
    message = Message.objects.get(card=card, channel=Message.EMAIL, **filters)
    assert message.inbox and message.inbox_sent is not None
    return message


def html_of(email):
    return email.alternatives[0][0] if email.alternatives else ""


# --- points earned on an order ------------------------------------------------------------


def test_a_completed_order_tells_the_customer_the_points_it_earned(agreed, olga, kettle):
    order = place_order(olga, [(kettle, 2)])
    assert mail.outbox == []  # pending points are not news yet

    set_status(order, "Complete")  # runs the on-commit tasks: post, then send

    email = only_mail_to("olga@example.com")
    assert email.subject == f"60 points for your order {order.number}"
    assert "Hello Olga Petrova," in email.body
    assert f"Your order {order.number} earned 60 points on your card {agreed.number}." in (
        email.body
    )
    assert "Your balance: 60 points." in email.body
    assert ACCOUNT_URL in email.body
    assert ACCOUNT_URL in html_of(email)
    note = only_inbox(olga)
    assert note.subject == email.subject
    assert f"Your order {order.number} earned 60 points" in note.body
    # One message: the e-mail, which carried the inbox copy.
    assert sent_events(agreed) == [(events.POINTS_EARNED, Message.EMAIL)]
    message = the_email_row(agreed)
    assert message.channel_label == "E-mail + account inbox"
    assert message.transfer.key == f"order:{order.number}:earn:bonus"
    assert message.balance_after == D("60.00")


def test_a_card_with_a_phone_gets_the_sms_too(agreed, olga, kettle):
    cards.change_phone(agreed, "8 (916) 123-45-67")
    order = place_order(olga, [(kettle, 1)])

    set_status(order, "Complete")

    assert KeptSMS.outbox == [("79161234567", KeptSMS.outbox[0][1])]
    text = KeptSMS.outbox[0][1]
    assert "30" in text and order.number in text
    assert Message.objects.get(card=agreed, channel=Message.SMS).status == Message.SENT


# --- credited and debited by a manager --------------------------------------------------------


def test_a_managers_credit_and_debit_tell_the_amount_balance_and_description(
    agreed, olga, manager, committed
):
    with committed():
        cards.adjust(agreed, "150", "adjust:1", by=manager, description="Birthday gift")

    email = only_mail_to("olga@example.com")
    assert email.subject == "150 points added to your card"
    assert f"We have added 150 points to your card {agreed.number}." in email.body
    assert "Birthday gift" in email.body
    assert "Your balance: 150 points." in email.body
    assert "Birthday gift" in html_of(email)
    assert only_inbox(olga).subject == "150 points added to your card"

    mail.outbox.clear()
    with committed():
        cards.adjust(agreed, "-40.50", "adjust:2", by=manager, description="Correction")

    email = only_mail_to("olga@example.com")
    assert email.subject == "40.5 points taken from your card"
    assert "Correction" in email.body
    assert "Your balance: 109.5 points." in email.body
    assert [n.subject for n in inbox(olga)][-1] == "40.5 points taken from your card"


def test_a_note_for_staff_never_reaches_the_customer(agreed, olga, manager, committed):
    with committed():
        cards.adjust(
            agreed, "10", "adjust:1", by=manager, description="Gift", note="complained twice"
        )
    email = only_mail_to("olga@example.com")
    assert "complained twice" not in email.body
    assert "complained twice" not in html_of(email)
    assert "complained twice" not in only_inbox(olga).body


# --- mass accrual and mass debit --------------------------------------------------------------


@pytest.fixture
def crowd(program, agreed):
    """Olga's consenting card, two more consenting customers and one who never agreed."""
    found = [agreed]
    for name in ("ivan", "pavel", "quiet"):
        card = factories.make_card(program, user=factories.make_customer(f"{name}@example.com"))
        if name != "quiet":
            cards.set_consent(card, True)
        found.append(card)
    return found


def mass_job(kind, crowd, notify, amount="25", chunk_size=2, **params):
    """A job over ``crowd`` in chunks of ``chunk_size`` (several chunks for four cards)."""
    ids = Card.objects.filter(pk__in=[c.pk for c in crowd])
    job = mass_jobs.create(
        kind, ids, amount=amount, description="Shop anniversary", notify=notify, **params
    )
    items = list(ids.order_by("pk").values_list("pk", flat=True))
    params = dict(job.params)
    job.delete()
    return jobs.create(kind, items, params=params, chunk_size=chunk_size)


def test_a_mass_accrual_with_notify_tells_each_consenting_customer(crowd, committed):
    job = mass_job(mass_jobs.ACCRUAL, crowd, notify=True)
    assert job.chunks.count() == 2

    with committed():
        tasks.start_job(job)

    for card in crowd[:3]:
        email = only_mail_to(card.user.email)
        assert email.subject == "25 points added to your card"
        assert "Shop anniversary" in email.body
        assert card.number in email.body
        assert "Your balance: 25 points." in email.body
        assert only_inbox(card.user).subject == "25 points added to your card"
        the_email_row(card, status=Message.SENT)
    assert mails_to("quiet@example.com") == []
    assert inbox(crowd[3].user) == []
    assert refreshed(crowd[3]).balance == D("25.00")  # credited all the same
    # 3 cards × one e-mail each, carrying the inbox copy.
    assert Message.objects.filter(status=Message.SENT).count() == 3
    assert Message.objects.count() == 3


def test_a_mass_debit_with_notify_tells_the_amount_taken(crowd, committed):
    for card in crowd:
        ledger.credit_card(card, "100", f"test:{card.pk}", kind=Transfer.ADJUST)
    job = mass_job(mass_jobs.DEBIT, crowd, notify=True, amount="30")

    with committed():
        tasks.start_job(job)

    email = only_mail_to("olga@example.com")
    assert email.subject == "30 points taken from your card"
    assert "Shop anniversary" in email.body
    assert "Your balance: 70 points." in email.body
    assert len(mails_to("ivan@example.com")) == len(mails_to("pavel@example.com")) == 1
    assert mails_to("quiet@example.com") == []


@pytest.mark.parametrize("kind", [mass_jobs.ACCRUAL, mass_jobs.DEBIT])
def test_a_mass_job_without_notify_tells_nobody(crowd, committed, kind):
    for card in crowd:
        ledger.credit_card(card, "100", f"test:{card.pk}", kind=Transfer.ADJUST)
    job = mass_job(kind, crowd, notify=False)

    with committed():
        tasks.start_job(job)

    job.refresh_from_db()
    assert job.succeeded == 4
    assert mail.outbox == []
    assert not Notification.objects.exists()
    assert not Message.objects.exists()


def test_a_dated_mass_accrual_tells_when_the_points_are_posted(crowd, committed):
    tomorrow = timezone.localdate() + timedelta(days=1)
    job = mass_job(mass_jobs.ACCRUAL, crowd, notify=True, available_from=tomorrow)
    assert date.fromisoformat(job.params["available_at"][:10]) == tomorrow

    with committed():
        tasks.start_job(job)
    assert mail.outbox == []  # pending until tomorrow
    assert not Message.objects.exists()

    Accrual.objects.filter(job=job).update(available_at=timezone.now() - timedelta(minutes=1))
    with committed():
        tasks.post_due_accruals.delay()
        tasks.post_due_accruals.delay()  # the next beat finds nothing more to say

    email = only_mail_to("olga@example.com")
    assert email.subject == "25 points added to your card"
    assert "Shop anniversary" in email.body
    assert len(mails_to("ivan@example.com")) == 1
    assert mails_to("quiet@example.com") == []


def test_a_dated_mass_accrual_without_notify_posts_silently(crowd, committed):
    tomorrow = timezone.localdate() + timedelta(days=1)
    job = mass_job(mass_jobs.ACCRUAL, crowd, notify=False, available_from=tomorrow)
    with committed():
        tasks.start_job(job)
    Accrual.objects.filter(job=job).update(available_at=timezone.now() - timedelta(minutes=1))

    with committed():
        tasks.post_due_accruals.delay()

    assert refreshed(crowd[0]).balance == D("25.00")
    assert mail.outbox == []
    assert not Message.objects.exists()


# --- points paid at checkout returned; earned points taken back --------------------------------


def paid_with_points(card, user, product, points, number="777"):
    """An order of ``product`` that ``points`` of ``card`` paid for in part."""
    ledger.credit_card(card, "1000", f"test:{number}", kind=Transfer.ADJUST)
    paying.hold_points(refreshed(card), number, D(points), D(points))
    return place_order(user, [(product, 1)], number=number)


def test_cancelling_an_order_returns_the_points_paid_and_says_so(agreed, olga, kettle):
    order = paid_with_points(agreed, olga, kettle, "400")

    set_status(order, "Cancelled")

    email = only_mail_to("olga@example.com")
    assert email.subject == "400 points returned to your card"
    assert f"The 400 points you paid with are back on your card {agreed.number}." in email.body
    assert order.number in email.body  # the description: "Order 777 cancelled: ..."
    assert "Your balance: 1,000 points." in email.body
    assert only_inbox(olga).subject == "400 points returned to your card"


def test_a_refunded_line_returns_its_share_of_the_points_paid(agreed, olga, kettle):
    blender = make_product("3000", title="Blender")
    ledger.credit_card(agreed, "1000", "test:gift", kind=Transfer.ADJUST)
    paying.hold_points(refreshed(agreed), "778", D("400"), D("400"))
    order = place_order(olga, [(kettle, 1), (blender, 1)], number="778")

    set_line_status(order.lines.get(product=kettle), "Cancelled")

    email = only_mail_to("olga@example.com")
    assert email.subject == "100 points returned to your card"  # 400 × 1000 / 4000
    assert "Your balance: 700 points." in email.body
    assert order.number in email.body


def test_cancelling_a_completed_order_says_its_points_are_taken_back(agreed, olga, kettle):
    order = place_order(olga, [(kettle, 2)])
    set_status(order, "Complete")
    mail.outbox.clear()

    set_status(order, "Cancelled")

    email = only_mail_to("olga@example.com")
    assert email.subject == f"60 points for order {order.number} taken back"
    assert (
        f"The 60 points your order {order.number} earned are taken back from your card "
        f"{agreed.number}."
    ) in email.body
    assert "Your balance: 0 points." in email.body
    assert inbox(olga)[-1].subject == email.subject


def test_a_refunded_line_takes_back_its_share_of_the_earned_points(agreed, olga, kettle):
    blender = make_product("3000", title="Blender")
    order = place_order(olga, [(kettle, 1), (blender, 1)])  # 4000 → 120 points
    set_status(order, "Complete")
    mail.outbox.clear()

    set_line_status(order.lines.get(product=kettle), "Refunded")

    email = only_mail_to("olga@example.com")
    assert email.subject == f"30 points for order {order.number} taken back"
    assert "Your balance: 90 points." in email.body


def test_cancelling_a_pending_order_says_nothing(agreed, olga, kettle):
    order = place_order(olga, [(kettle, 1)])
    set_status(order, "Cancelled")  # the points were never posted: nothing to take back
    assert mail.outbox == []
    assert not Message.objects.exists()


# --- grades -----------------------------------------------------------------------------------


def test_an_automatic_raise_of_the_grade_is_announced(agreed, olga, program):
    order = place_order(olga, [(make_product("10000"), 1)])  # Silver from 10 000

    set_status(order, "Complete")

    assert refreshed(agreed).grade.name == "Silver"
    raised = [m for m in mails_to("olga@example.com") if m.subject == "Your card is now Silver"]
    assert len(raised) == 1
    assert f"Your card {agreed.number} has moved from Base to Silver." in raised[0].body
    assert ACCOUNT_URL in raised[0].body
    assert "Your card is now Silver" in [n.subject for n in inbox(olga)]
    assert (events.GRADE_CHANGED, Message.EMAIL) in sent_events(agreed)
    # The next order's recalculation finds the grade where it is: nothing more to say.
    set_status(place_order(olga, [(make_product("10"), 1)]), "Complete")
    assert len([m for m in mail.outbox if m.subject.startswith("Your card is now")]) == 1


def test_a_managers_grade_is_announced(agreed, olga, program, manager, committed):
    gold = factories.grade(program, "Gold")

    with committed():
        grades.set_grade(agreed, gold, by=manager, reason="VIP customer")

    email = only_mail_to("olga@example.com")
    assert email.subject == "Your card is now Gold"
    assert f"Your card {agreed.number} has moved from Base to Gold." in email.body
    assert "VIP customer" not in email.body  # the reason is for staff
    assert only_inbox(olga).subject == "Your card is now Gold"


def test_a_managers_change_of_participation_alone_says_nothing(agreed, manager, committed):
    with committed():
        grades.set_grade(agreed, None, by=manager, reason="Staff card", participates=False)
    assert mail.outbox == []


# --- cards issued and replaced ------------------------------------------------------------------


def test_a_card_issued_with_consent_welcomes_the_customer(program, committed, manager):
    boris = factories.make_customer("boris@example.com", first_name="Boris")

    with committed():
        card = cards.issue_card(program, user=boris, consent=True, by=manager)

    email = only_mail_to("boris@example.com")
    assert email.subject == "Your Bonus programme card"
    assert f"Welcome to Bonus programme! Your card number is {card.number}." in email.body
    assert "Hello Boris," in email.body
    assert only_inbox(boris).subject == "Your Bonus programme card"
    card.refresh_from_db()
    assert card.marketing_consent
    assert card.consent_changed_by == manager
    assert card.consent_source == Card.CONSENT_MANAGER


def test_a_card_issued_without_consent_says_nothing(program, committed):
    boris = factories.make_customer("boris@example.com")
    with committed():
        card = cards.issue_card(program, user=boris)
    assert not card.marketing_consent
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_a_replacement_card_keeps_the_consent_and_announces_its_number(
    agreed, olga, manager, committed
):
    with committed():
        cards.adjust(agreed, "80", "adjust:1", by=manager)
    mail.outbox.clear()

    with committed():
        new = cards.replace(agreed, reason="Lost", by=manager)

    assert new.number != agreed.number
    assert refreshed(new).marketing_consent
    email = only_mail_to("olga@example.com")
    assert email.subject == "Your Bonus programme card"
    assert f"Your card number is {new.number}." in email.body
    # The new card speaks for itself afterwards.
    mail.outbox.clear()
    with committed():
        cards.adjust(refreshed(new), "5", "adjust:2", by=manager)
    email = only_mail_to("olga@example.com")
    assert new.number in email.body
    assert "Your balance: 85 points." in email.body


def test_a_replacement_of_a_card_without_consent_says_nothing(card, manager, committed):
    with committed():
        new = cards.replace(card, reason="Lost", by=manager)
    assert not refreshed(new).marketing_consent
    assert mail.outbox == []
    assert not Message.objects.exists()


# --- consent ----------------------------------------------------------------------------------


def test_without_consent_nothing_is_recorded_or_sent(card, customer, kettle, manager, committed):
    assert not card.marketing_consent  # off by default
    order = place_order(customer, [(kettle, 1)])
    set_status(order, "Complete")
    with committed():
        cards.adjust(card, "10", "adjust:1", by=manager)
        grades.set_grade(card, factories.grade(card.program, "Gold"), by=manager, reason="VIP")

    assert refreshed(card).balance == D("40.00")
    assert mail.outbox == []
    assert not Notification.objects.exists()
    assert not Message.objects.exists()
    assert KeptSMS.outbox == []


def test_consent_given_then_withdrawn_turns_messages_on_and_off(card, customer, manager, committed):
    with committed():
        cards.adjust(card, "10", "adjust:1", by=manager)
    assert mail.outbox == []

    assert cards.set_consent(card, True) is True
    assert cards.set_consent(card, True) is False  # nothing changed the second time
    card.refresh_from_db()
    assert card.consent_source == Card.CONSENT_CUSTOMER and card.consent_changed is not None
    with committed():
        cards.adjust(card, "20", "adjust:2", by=manager)
    assert [m.subject for m in mails_to(customer.email)] == ["20 points added to your card"]
    assert "Your balance: 30 points." in mail.outbox[0].body

    cards.set_consent(card, False, by=manager)
    with committed():
        cards.adjust(card, "5", "adjust:3", by=manager)
    assert len(mail.outbox) == 1
    # The e-mail of the one consented credit, with its inbox copy.
    assert Message.objects.count() == 1
    assert [n.subject for n in inbox(customer)] == ["20 points added to your card"]
    the_email_row(card)


def test_a_customer_without_an_email_address_gets_the_inbox_copy_only(program, manager, committed):
    nameless = factories.make_customer("nameless@example.com")
    nameless.email = ""
    nameless.save()
    with committed():
        card = cards.issue_card(program, user=nameless, consent=True)
        cards.adjust(card, "10", "adjust:1", by=manager)
    assert mail.outbox == []
    assert [n.subject for n in inbox(nameless)] == [
        "Your Bonus programme card",
        "10 points added to your card",
    ]


def test_a_phone_card_without_a_customer_gets_the_sms_only(program, manager, committed):
    card = cards.issue_card(program, phone="+7 916 555-00-11")
    cards.set_consent(card, True, by=manager)
    with committed():
        cards.adjust(card, "10", "adjust:1", by=manager, description="Welcome")
    assert mail.outbox == []
    assert [phone for phone, _text in KeptSMS.outbox] == ["79165550011"]
    assert "Welcome" in KeptSMS.outbox[0][1]


# --- replays never send twice -----------------------------------------------------------------


def test_a_replayed_status_signal_and_a_second_post_send_nothing_more(
    agreed, olga, kettle, committed
):
    order = place_order(olga, [(kettle, 1)])
    set_status(order, "Complete")
    accrual = Accrual.objects.get(order_number=order.number)

    set_status(order, "Complete")  # the dashboard's save again
    with committed():
        order_status_changed.send(
            sender=order, order=order, old_status="Being processed", new_status="Complete"
        )
        earning.post(accrual.pk)
        earning.post(accrual.pk)
        tasks.post_accrual.delay(accrual.pk)

    assert len(mails_to("olga@example.com")) == 1
    assert len(inbox(olga)) == 1
    assert Message.objects.count() == 1
    the_email_row(agreed)


def test_a_mass_job_chunk_run_again_sends_nothing_more(crowd, committed):
    job = mass_job(mass_jobs.ACCRUAL, crowd, notify=True)
    with committed():
        tasks.start_job(job)
    assert len(mail.outbox) == 3

    chunks = list(job.chunks.values_list("pk", flat=True))
    with committed():
        for chunk_id in chunks:  # a redelivery: the chunk is done, nothing happens
            jobs.run_chunk(chunk_id)
        # A redelivery that finds the chunk not marked done (its worker died after the
        # transfers' commit, say): the transfers and the messages are found recorded.
        JobChunk.objects.filter(job=job).update(done=False)
        for chunk_id in chunks:
            jobs.run_chunk(chunk_id)
        tasks.start_job(job)

    assert len(mail.outbox) == 3
    assert Message.objects.count() == 3  # one e-mail, with its inbox copy, per card
    assert Notification.objects.count() == 3
    for card in crowd[:3]:
        only_inbox(card.user)
    assert refreshed(crowd[0]).balance == D("25.00")


def test_a_redelivered_sending_task_sends_each_message_once(agreed, olga, manager, committed):
    cards.adjust(agreed, "10", "adjust:1", by=manager)  # recorded, its commit not yet run
    ids = list(Message.objects.values_list("pk", flat=True))
    assert len(ids) == 1 and mail.outbox == [] and inbox(olga) == []

    assert tasks.send_messages.delay(ids).get() == (1, 0)
    assert tasks.send_messages.delay(ids).get() == (0, 0)  # redelivered
    assert tasks.send_due_messages.delay().get() == (0, 0)  # and the periodic sweep

    assert len(mail.outbox) == 1
    assert len(inbox(olga)) == 1
    assert set(Message.objects.values_list("status", flat=True)) == {Message.SENT}
    the_email_row(agreed)


def test_the_same_adjustment_submitted_twice_is_told_once(agreed, manager, committed):
    for _attempt in range(2):
        with committed():
            cards.adjust(agreed, "10", "adjust:form-token", by=manager)
    assert len(mail.outbox) == 1


# --- Russian ----------------------------------------------------------------------------------


CYRILLIC = re.compile("[А-Яа-яЁё]")


@override_settings(OSCAR_LOYALTY_MESSAGE_LANGUAGE="ru")
def test_messages_are_written_in_the_shops_message_language(agreed, olga, manager, committed):
    with committed():
        cards.adjust(agreed, "150", "adjust:1", by=manager, description="Подарок")

    email = only_mail_to("olga@example.com")
    assert Message.objects.filter(language="ru").count() == 1 == Message.objects.count()
    assert "150" in email.subject
    assert CYRILLIC.search(email.subject), email.subject
    assert "points" not in email.subject
    assert "points" not in email.body and "Hello" not in email.body
    assert CYRILLIC.search(email.body)
    assert agreed.number in email.body and "Подарок" in email.body
    assert CYRILLIC.search(only_inbox(olga).subject)


# --- templates a manager edited ----------------------------------------------------------------


def test_the_template_a_manager_edited_is_what_goes_out(agreed, olga, manager, committed):
    CommunicationEventType.objects.filter(code=events.POINTS_CREDITED).update(
        email_subject_template="Bonus! +{{ amount }} on {{ card_number }}",
        email_body_template="Dear {{ customer_name }}, now {{ balance }}. {{ description }}",
        email_body_html_template="<p>Dear {{ customer_name }}, now {{ balance }}.</p>",
    )

    with committed():
        cards.adjust(agreed, "70", "adjust:1", by=manager, description="Sorry for the delay")

    email = only_mail_to("olga@example.com")
    assert email.subject == f"Bonus! +70 on {agreed.number}"
    assert email.body == "Dear Olga Petrova, now 70. Sorry for the delay"
    assert html_of(email) == "<p>Dear Olga Petrova, now 70.</p>"
    note = only_inbox(olga)
    assert note.subject == f"Bonus! +70 on {agreed.number}"
    assert "Dear Olga Petrova, now 70." in note.body


def test_a_template_emptied_to_null_falls_back_to_the_file(agreed, manager, committed):
    CommunicationEventType.objects.filter(code=events.POINTS_CREDITED).update(
        email_subject_template="Edited {{ amount }}", email_body_template="Edited"
    )
    with committed():
        cards.adjust(agreed, "1", "adjust:1", by=manager)
    assert mail.outbox[-1].subject == "Edited 1"

    CommunicationEventType.objects.filter(code=events.POINTS_CREDITED).update(
        email_subject_template=None, email_body_template=None, email_body_html_template=None
    )
    with committed():
        cards.adjust(agreed, "2", "adjust:2", by=manager)

    email = mail.outbox[-1]
    assert email.subject == "2 points added to your card"
    assert f"We have added 2 points to your card {agreed.number}." in email.body


def test_the_event_types_are_listed_where_managers_edit_oscars_templates(db):
    codes = set(CommunicationEventType.objects.values_list("code", flat=True))
    assert set(events.NAMES) <= codes
    credited = CommunicationEventType.objects.get(code=events.POINTS_CREDITED)
    assert "points added to your card" in credited.email_subject_template


# --- a failing e-mail backend ------------------------------------------------------------------


@pytest.fixture
def admin_client(shop):
    """The shop's admin, who completes orders in Oscar's order dashboard."""
    client = Client()
    client.force_login(checkout_support.customer("admin@example.com"))
    return client


@pytest.mark.parametrize("backend", ["RefusingBackend", "DownBackend"])
def test_a_failing_email_backend_never_breaks_the_order(
    anna_card, anna, admin_client, committed, settings, backend
):
    """Anna pays part of an order with points at checkout; the order is completed from
    Oscar's dashboard while the mail server is failing: the order completes, the points are
    posted, the e-mail waits in the queue with the error and goes out once the server is back."""
    cards.set_consent(anna_card, True)
    client = Client()
    checkout_support.to_payment_step(client, anna)
    checkout_support.apply_points(client, "500")
    checkout_support.place_order(client)
    order = get_model("order", "Order").objects.get(user=anna)
    mail.outbox.clear()
    settings.EMAIL_BACKEND = f"tests.integration.test_notifications.{backend}"

    with committed():
        response = admin_client.post(
            reverse("dashboard:order-detail", kwargs={"number": order.number}),
            {"order_action": "change_order_status", "new_status": "Complete"},
        )

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "Complete"
    assert refreshed(anna_card).balance == D("1500.00") + D("135.00")  # 5% of 3 200 − 500
    email = Message.objects.get(card=anna_card, channel=Message.EMAIL)
    assert email.status == Message.QUEUED
    assert email.attempts == 1
    assert "refused" in email.error or "unavailable" in email.error
    assert email.due > timezone.now()
    # The inbox copy does not depend on the mail server: written before the e-mail's try.
    subject = f"135 points for your order {order.number}"
    assert only_inbox(anna).subject == subject
    assert email.inbox and email.inbox_sent is not None
    assert not Message.objects.filter(card=anna_card, channel=Message.SITE).exists()
    assert mail.outbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Message.objects.filter(pk=email.pk).update(due=timezone.now())
    assert tasks.send_due_messages.delay().get() == (1, 0)
    assert only_mail_to("anna@example.com").subject == subject
    assert Message.objects.get(pk=email.pk).status == Message.SENT
    assert only_inbox(anna).subject == subject  # not written again by the retry


def test_a_message_failing_every_time_ends_failed_for_a_manager(
    agreed, manager, committed, settings
):
    settings.EMAIL_BACKEND = "tests.integration.test_notifications.RefusingBackend"
    settings.OSCAR_LOYALTY_MESSAGE_MAX_ATTEMPTS = 2
    with committed():
        cards.adjust(agreed, "10", "adjust:1", by=manager)
    email = Message.objects.get(channel=Message.EMAIL)
    Message.objects.filter(pk=email.pk).update(due=timezone.now())
    assert tasks.send_due_messages.delay().get() == (0, 1)

    email.refresh_from_db()
    assert (email.status, email.attempts) == (Message.FAILED, 2)
    assert "550" in email.error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with committed():
        assert sending.resend(Message.objects.filter(pk=email.pk)) == [email.pk]
    assert Message.objects.get(pk=email.pk).status == Message.SENT
    assert len(mail.outbox) == 1


def test_a_failing_email_gets_its_inbox_copy_written_once_across_retries(
    agreed, olga, manager, committed, settings
):
    settings.EMAIL_BACKEND = "tests.integration.test_notifications.RefusingBackend"
    settings.OSCAR_LOYALTY_MESSAGE_MAX_ATTEMPTS = 3
    with committed():
        cards.adjust(agreed, "10", "adjust:1", by=manager)

    email = Message.objects.get()  # the one message: the e-mail carrying the inbox copy
    assert (email.channel, email.inbox, email.status, email.attempts) == (
        Message.EMAIL,
        True,
        Message.QUEUED,
        1,
    )
    assert email.inbox_sent is not None  # written although the e-mail was refused
    written = email.inbox_sent
    assert only_inbox(olga).subject == "10 points added to your card"

    for attempt in (2, 3):  # the retries, refused too: the last one ends failed
        Message.objects.filter(pk=email.pk).update(due=timezone.now())
        assert tasks.send_due_messages.delay().get() == (0, 1)
        email.refresh_from_db()
        assert email.attempts == attempt
        assert email.inbox_sent == written
        assert len(inbox(olga)) == 1
    assert email.status == Message.FAILED and "550" in email.error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with committed():
        assert sending.resend(Message.objects.filter(pk=email.pk)) == [email.pk]
    email.refresh_from_db()
    assert email.status == Message.SENT
    assert email.inbox_sent == written
    assert only_mail_to("olga@example.com").subject == "10 points added to your card"
    assert only_inbox(olga).subject == "10 points added to your card"  # still once
    assert Message.objects.count() == 1


def test_a_customer_without_an_email_address_gets_a_site_message(program, manager, committed):
    nameless = factories.make_customer("nameless@example.com")
    nameless.email, nameless.username = "", "nameless"
    nameless.save()
    card = cards.issue_card(program, user=nameless)
    cards.set_consent(card, True, by=manager)

    with committed():
        cards.adjust(card, "10", "adjust:1", by=manager)

    message = Message.objects.get()
    assert message.channel == Message.SITE
    assert message.recipient == "nameless"  # the username: there is no address
    assert message.inbox and message.inbox_sent is not None
    assert message.status == Message.SENT and message.sent is not None
    assert message.channel_label == "Account inbox"
    assert not Message.objects.filter(channel=Message.EMAIL).exists()
    assert mail.outbox == []
    assert only_inbox(nameless).subject == "10 points added to your card"

    # Sent again (a redelivered task): marked sent already, nothing more in the inbox.
    assert tasks.send_messages.delay([message.pk]).get() == (0, 0)
    assert len(inbox(nameless)) == 1
