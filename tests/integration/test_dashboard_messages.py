"""The dashboard's side of messages: the message log and resend, the card page's messages
and consent, consent on issue, and "Notify customers" on mass accruals and debits.

Celery runs eagerly; messages are sent once the transaction commits, so the tests that send
run the commit callbacks (``django_capture_on_commit_callbacks``).
"""

from itertools import count

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from oscar.core.loading import get_model

from oscar_loyalty import cards, keys
from oscar_loyalty.notifications import events
from tests import factories
from tests.integration.dashboard_support import card_for, logged_in, make_staff, page, url
from tests.integration.test_dashboard_mass import run_mass

Card = get_model("oscar_loyalty", "Card")
Message = get_model("oscar_loyalty", "Message")
Notification = get_model("communication", "Notification")

pytestmark = pytest.mark.django_db

_serial = count(1)


def message(card, status=Message.FAILED, event=events.CARD_ISSUED, channel=Message.EMAIL, **extra):
    """A recorded message to ``card``'s customer (failed, by default, after five attempts)."""
    fields = {
        "key": f"test:{next(_serial)}",
        "event": event,
        "channel": channel,
        "recipient": card.user.email if card.user else card.phone,
        "user": card.user,
        "card": card,
        "language": "en",
        "status": status,
        "attempts": 5 if status == Message.FAILED else 1,
        "error": "SMTP server refused" if status == Message.FAILED else "",
    }
    return Message.objects.create(**(fields | extra))


def staff_with(email, *codenames):
    user = make_staff(email, perms=False)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def log_ids(client, **query):
    """The ids of the messages the log lists for ``query``."""
    content = page(client.get(url("loyalty-message-list"), query))
    return {int(part.split('"')[0]) for part in content.split('data-message="')[1:]}


@pytest.fixture
def olga_card(card):
    return card


@pytest.fixture
def petr_card(program):
    return card_for(
        program, "petr@example.com", phone="79123456789", first_name="Pyotr", last_name="Ivanov"
    )


# --- access --------------------------------------------------------------------------------


def test_message_log_needs_view_message(client, customer, staff_without_permission):
    target = url("loyalty-message-list")
    response = client.get(target)
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(customer)
    assert client.get(target).status_code == 403
    logged_in(client, staff_without_permission)
    assert client.get(target).status_code == 403
    client.force_login(staff_with("reader@example.com", "view_message"))
    assert client.get(target).status_code == 200


def test_resend_needs_change_message_and_a_post(client, olga_card, customer):
    failed = message(olga_card)
    target = url("loyalty-message-resend")
    data = {"message": failed.pk}
    response = client.post(target, data)
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(customer)
    assert client.post(target, data).status_code == 403
    client.force_login(staff_with("reader@example.com", "view_message"))
    assert client.post(target, data).status_code == 403
    failed.refresh_from_db()
    assert failed.status == Message.FAILED

    client.force_login(staff_with("sender@example.com", "view_message", "change_message"))
    assert client.get(target, data).status_code == 405  # a GET changes nothing
    failed.refresh_from_db()
    assert failed.status == Message.FAILED
    assert client.post(target, data).status_code == 302
    failed.refresh_from_db()
    assert failed.status == Message.QUEUED and failed.attempts == 0


def test_resend_needs_the_csrf_token(olga_card):
    failed = message(olga_card)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_with("sender@example.com", "view_message", "change_message"))
    assert browser.post(url("loyalty-message-resend"), {"message": failed.pk}).status_code == 403
    failed.refresh_from_db()
    assert failed.status == Message.FAILED


def test_consent_needs_change_card_and_a_post(client, olga_card, customer, card_viewer):
    target = url("loyalty-card-consent", olga_card.pk)
    data = {"consent": "True"}
    response = client.post(target, data)
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(customer)
    assert client.post(target, data).status_code == 403
    client.force_login(card_viewer)
    assert client.post(target, data).status_code == 403
    client.force_login(staff_with("editor@example.com", "view_card", "change_card"))
    assert client.get(target, data).status_code == 405
    assert not factories.refreshed(olga_card).marketing_consent
    assert client.post(target, data).status_code == 302
    assert factories.refreshed(olga_card).marketing_consent


# --- the log and its filters ---------------------------------------------------------------


def test_log_lists_messages_newest_first_with_their_details(manager_client, olga_card):
    older = message(olga_card, status=Message.SENT, event=events.POINTS_CREDITED)
    newer = message(olga_card, error="Mailbox unavailable")
    content = page(manager_client.get(url("loyalty-message-list")))
    assert content.index(f'data-message="{newer.pk}"') < content.index(f'data-message="{older.pk}"')
    assert "Mailbox unavailable" in content
    assert str(events.NAMES[events.POINTS_CREDITED]) in content
    assert olga_card.number in content and url("loyalty-card-detail", olga_card.pk) in content
    assert "olga@example.com" in content


def test_log_pages_by_keyset(manager_client, olga_card, monkeypatch):
    from oscar_loyalty.dashboard.notifications import views

    monkeypatch.setattr(views, "LOG_PAGE", 2)
    shown = [message(olga_card).pk for _ in range(3)]
    assert log_ids(manager_client) == set(shown[1:])
    assert log_ids(manager_client, before=shown[1]) == {shown[0]}


def test_filters_narrow_the_log(manager_client, program, olga_card, petr_card):
    olga_failed = message(olga_card)
    olga_sent = message(olga_card, status=Message.SENT, event=events.POINTS_CREDITED)
    petr_sms = message(petr_card, status=Message.SENT, channel=Message.SMS, recipient="79123456789")
    petr_site = message(petr_card, status=Message.QUEUED, channel=Message.SITE)
    everyone = {olga_failed.pk, olga_sent.pk, petr_sms.pk, petr_site.pk}
    assert log_ids(manager_client) == everyone
    petr = {petr_sms.pk, petr_site.pk}
    assert log_ids(manager_client, q="petr@example.com") == petr
    assert log_ids(manager_client, q="Ivanov") == petr
    assert log_ids(manager_client, q="8 912 345-67-89") == petr
    assert log_ids(manager_client, q=petr_card.number) == petr
    assert log_ids(manager_client, event=events.POINTS_CREDITED) == {olga_sent.pk}
    assert log_ids(manager_client, channel=Message.SMS) == {petr_sms.pk}
    assert log_ids(manager_client, status=Message.FAILED) == {olga_failed.pk}
    assert log_ids(manager_client, card=olga_card.pk) == {olga_failed.pk, olga_sent.pk}
    assert log_ids(manager_client, card=olga_card.pk, status=Message.SENT) == {olga_sent.pk}
    assert log_ids(manager_client, status="lost") == set()  # not a status: nothing, and said


def test_the_account_inbox_filter_finds_the_emails_carrying_its_copy(
    manager_client, olga_card, petr_card
):
    carrying = message(olga_card, status=Message.SENT, inbox=True)
    plain = message(olga_card, status=Message.SENT)  # an e-mail without the copy
    own = message(petr_card, status=Message.SENT, channel=Message.SITE, inbox=True)
    message(petr_card, status=Message.SENT, channel=Message.SMS, recipient="79123456789")
    assert log_ids(manager_client, channel=Message.SITE) == {carrying.pk, own.pk}
    assert log_ids(manager_client, channel=Message.EMAIL) == {carrying.pk, plain.pk}

    rows = {
        int(row.split('"')[0]): row.split("</tr>")[0]
        for row in page(manager_client.get(url("loyalty-message-list"))).split('data-message="')[1:]
    }
    assert "<td>E-mail + account inbox</td>" in rows[carrying.pk]
    assert "<td>E-mail</td>" in rows[plain.pk]
    assert "<td>Account inbox</td>" in rows[own.pk]
    section = page(manager_client.get(url("loyalty-card-detail", olga_card.pk)))
    assert section.split('id="card_messages"')[1].count("E-mail + account inbox") == 1


def test_log_filtered_by_a_mass_job(manager_client, olga_card, petr_card):
    of_job = message(olga_card, key=f"msg:{keys.job_card(7, olga_card.pk)}:email")
    message(petr_card, key=f"msg:{keys.job_card(17, petr_card.pk)}:email")
    assert log_ids(manager_client, job=7) == {of_job.pk}


# --- resend --------------------------------------------------------------------------------


def test_resend_all_failed_of_the_filter_sends_only_failed_ones(
    manager_client, olga_card, petr_card, django_capture_on_commit_callbacks
):
    olga_failed = message(olga_card)
    olga_sent = message(olga_card, status=Message.SENT)
    olga_queued = message(olga_card, status=Message.QUEUED)
    petr_failed = message(petr_card)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            url("loyalty-message-resend"),
            {"all": "1", "query": f"card={olga_card.pk}"},
            follow=True,
        )
    assert response.redirect_chain[-1][0] == url("loyalty-message-list") + f"?card={olga_card.pk}"
    assert "1 failed message queued to be sent again." in page(response)
    assert [m.to for m in mail.outbox] == [["olga@example.com"]]
    statuses = {m.pk: m.status for m in Message.objects.all()}
    assert statuses == {
        olga_failed.pk: Message.SENT,
        olga_sent.pk: Message.SENT,
        olga_queued.pk: Message.QUEUED,  # waits for its own sending, not taken by a resend
        petr_failed.pk: Message.FAILED,  # outside the filter
    }


def test_resend_one_message(manager_client, olga_card, django_capture_on_commit_callbacks):
    first, second = message(olga_card), message(olga_card)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            url("loyalty-message-resend"), {"message": second.pk}, follow=True
        )
    assert "1 failed message queued to be sent again." in page(response)
    assert len(mail.outbox) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Message.FAILED, Message.SENT)


def test_resend_of_a_sent_message_sends_nothing(
    manager_client, olga_card, django_capture_on_commit_callbacks
):
    sent = message(olga_card, status=Message.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            url("loyalty-message-resend"), {"message": sent.pk}, follow=True
        )
    assert "This message has not failed: nothing was resent." in page(response)
    assert mail.outbox == []


def test_resend_button_only_on_failed_messages(manager_client, olga_card):
    failed, sent = message(olga_card), message(olga_card, status=Message.SENT)
    content = page(manager_client.get(url("loyalty-message-list")))
    assert f'name="message" value="{failed.pk}"' in content
    assert f'name="message" value="{sent.pk}"' not in content
    reader = Client()
    reader.force_login(staff_with("reader@example.com", "view_message"))
    content = page(reader.get(url("loyalty-message-list")))
    assert "loyalty-resend-form" not in content and "resend_all_form" not in content


# --- the card page -------------------------------------------------------------------------


def test_card_page_lists_the_customers_messages(manager_client, olga_card, petr_card):
    own = message(olga_card, event=events.POINTS_CREDITED, error="Gateway timeout")
    message(petr_card, event=events.GRADE_CHANGED)
    content = page(manager_client.get(url("loyalty-card-detail", olga_card.pk)))
    section = content.split('id="card_messages"')[1]
    assert str(events.NAMES[events.POINTS_CREDITED]) in section
    assert "Gateway timeout" in section
    assert str(events.NAMES[events.GRADE_CHANGED]) not in section
    assert url("loyalty-message-list") + f"?card={olga_card.pk}" in section
    assert own.recipient in section


def test_card_page_hides_messages_without_view_message(client, olga_card, card_viewer):
    message(olga_card)
    logged_in(client, card_viewer, password="manager")
    content = page(client.get(url("loyalty-card-detail", olga_card.pk)))
    assert 'id="card_messages"' not in content
    assert "consent_form" not in content  # viewing is not changing
    assert "Does not receive them" in content


def test_consent_post_records_who_and_when(manager_client, manager, olga_card):
    content = page(manager_client.get(url("loyalty-card-detail", olga_card.pk)))
    assert "Does not receive them" in content and "Never given" in content
    response = manager_client.post(
        url("loyalty-card-consent", olga_card.pk), {"consent": "True"}, follow=True
    )
    card = factories.refreshed(olga_card)
    assert card.marketing_consent
    assert card.consent_changed_by == manager and card.consent_changed is not None
    assert card.consent_source == Card.CONSENT_MANAGER
    content = page(response)
    assert "now receives messages" in content
    panel = content.split('id="consent_panel"')[1].split("</tr>")[0]
    assert "Agrees to receive them" in panel and "a manager" in panel
    assert "manager@example.com" in panel

    manager_client.post(url("loyalty-card-consent", olga_card.pk), {"consent": "False"})
    assert not factories.refreshed(olga_card).marketing_consent


# --- issuing a card ------------------------------------------------------------------------


def issue(client, program, email, **extra):
    data = {"program": program.pk, "email": email, "new_customer": "on"} | extra
    return client.post(url("loyalty-card-create"), data)


def test_issue_form_records_consent_and_tells_the_customer(
    manager_client, manager, program, django_capture_on_commit_callbacks
):
    assert 'name="consent"' in page(manager_client.get(url("loyalty-card-create")))
    with django_capture_on_commit_callbacks(execute=True):
        assert issue(manager_client, program, "vera@example.com", consent="on").status_code == 302
    card = Card.objects.get(user__email="vera@example.com")
    assert card.marketing_consent and card.consent_changed_by == manager
    assert [m.to for m in mail.outbox] == [["vera@example.com"]]
    assert Message.objects.filter(card=card, event=events.CARD_ISSUED).exists()


def test_issue_form_without_the_tick_gives_no_consent(
    manager_client, program, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert issue(manager_client, program, "vera@example.com").status_code == 302
    card = Card.objects.get(user__email="vera@example.com")
    assert not card.marketing_consent
    assert mail.outbox == [] and not Message.objects.exists()


# --- mass jobs -----------------------------------------------------------------------------


@pytest.fixture
def audience(program):
    """Three cards the job's filter selects (completed orders 1 000); only ann agreed."""
    found = {
        name: card_for(program, f"{name}@example.com", lifetime_spend=1000, balance="10")
        for name in ("ann", "bob", "cid")
    }
    cards.set_consent(found["ann"], True)
    return found


@pytest.mark.parametrize("kind", ["accrue", "debit"])
def test_notify_customers_messages_only_those_who_agreed(
    manager_client, audience, django_capture_on_commit_callbacks, kind
):
    mail.outbox.clear()
    confirmation, job = run_mass(
        manager_client,
        django_capture_on_commit_callbacks,
        kind=kind,
        query="spend_min=1000",
        amount="5",
        notify="on",
    )
    assert "yes: the customers who agreed to receive messages" in confirmation
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    # One message, the e-mail, carries the account inbox's copy, written once.
    (sent,) = Message.objects.all()
    assert (sent.card_id, sent.channel, sent.inbox) == (audience["ann"].pk, Message.EMAIL, True)
    assert Notification.objects.filter(recipient=audience["ann"].user).count() == 1
    assert not Notification.objects.exclude(recipient=audience["ann"].user).exists()
    content = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    line = content.split('id="job_messages"')[1].split("</td>")[0]
    assert "1 recorded · 1 sent · 0 failed" in line
    assert url("loyalty-message-list") + f"?job={job.pk}" in line
    assert log_ids(manager_client, job=job.pk) == set(Message.objects.values_list("pk", flat=True))


def test_notify_customers_without_an_address_reach_their_account_inbox(
    manager_client, audience, django_capture_on_commit_callbacks
):
    """bob agreed but has no e-mail address: his message is the inbox copy alone."""
    bob = audience["bob"]
    cards.set_consent(bob, True)
    type(bob.user).objects.filter(pk=bob.user_id).update(email="", username="bob")
    mail.outbox.clear()
    confirmation, job = run_mass(
        manager_client, django_capture_on_commit_callbacks, query="spend_min=1000", notify="on"
    )
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    rows = Message.objects.values_list("card_id", "channel", "inbox", "recipient", "status")
    assert sorted(rows) == sorted(
        [
            (audience["ann"].pk, Message.EMAIL, True, "ann@example.com", Message.SENT),
            (bob.pk, Message.SITE, True, "bob", Message.SENT),
        ]
    )
    for name in ("ann", "bob"):
        assert Notification.objects.filter(recipient_id=audience[name].user_id).count() == 1
    content = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert "2 recorded · 2 sent · 0 failed" in content.split('id="job_messages"')[1]
    assert len(log_ids(manager_client, job=job.pk, channel=Message.SITE)) == 2


def test_without_notify_a_mass_job_sends_nothing(
    manager_client, audience, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    confirmation, job = run_mass(
        manager_client, django_capture_on_commit_callbacks, query="spend_min=1000", amount="5"
    )
    job.refresh_from_db()
    assert job.succeeded == 3
    assert mail.outbox == [] and not Message.objects.exists()
    content = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert 'id="job_notify">no<' in content and 'id="job_messages"' not in content


# --- in Russian ----------------------------------------------------------------------------


def test_log_and_card_page_in_russian(manager_client, olga_card):
    message(olga_card)
    manager_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    log = page(manager_client.get(url("loyalty-message-list")))
    assert "Сообщения клиентам" in log and "Последняя ошибка" in log
    assert "Отправить снова" in log and "Resend" not in log
    card_page = page(manager_client.get(url("loyalty-card-detail", olga_card.pk)))
    assert "Клиент согласился" in card_page and "все в журнале сообщений" in card_page


def test_log_page_costs_the_same_for_more_messages(manager_client, olga_card, petr_card):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries():
        with CaptureQueriesContext(connection) as captured:
            page(manager_client.get(url("loyalty-message-list")))
        return len(captured)

    message(olga_card)
    few = queries()
    for _ in range(5):
        message(olga_card)
        message(petr_card, channel=Message.SMS, recipient="79123456789")
    assert queries() == few


def test_consent_ticked_for_a_found_phone_card_is_recorded(manager_client, manager, program):
    phone_card = factories.make_card(program, phone="79120000001")
    response = issue(
        manager_client, program, "vera@example.com", phone="+7 912 000-00-01", consent="on"
    )
    assert response["Location"] == url("loyalty-card-detail", phone_card.pk)
    card = factories.refreshed(phone_card)
    assert card.user.email == "vera@example.com"
    assert card.marketing_consent and card.consent_changed_by == manager
