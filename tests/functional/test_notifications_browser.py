"""A manager rewrites the "points credited" message in Oscar's template editor, credits a
customer's card, and the customer reads the rewritten text, with the amount, in the account
inbox: the dashboard's Content → Email templates is where loyalty messages are edited."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from oscar.core.loading import get_model

from oscar_loyalty import cards
from oscar_loyalty.notifications import events
from tests import factories
from tests.functional.test_checkout_browser import log_in as customer_logs_in
from tests.functional.test_dashboard_browser import log_in as manager_logs_in
from tests.integration.dashboard_support import make_staff

CommunicationEventType = get_model("communication", "CommunicationEventType")
Message = get_model("oscar_loyalty", "Message")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EDITED = "Olga, {{ amount }} points from the spring fair are on your card. See you soon!"


@pytest.fixture
def shop(program):
    # Seeded by migration 0012, but an earlier transactional test may have flushed them.
    seeding = importlib.import_module("oscar_loyalty.migrations.0012_message_event_types")
    seeding.create(apps, None)
    customer = factories.make_customer("olga@example.com", password="secret", first_name="Olga")
    card = cards.issue_card(program, user=customer, consent=True)
    manager = make_staff(first_name="Maria", last_name="Manager")
    # Oscar's template editor asks for its own permissions, beside the loyalty ones.
    manager.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="communication",
            codename__in=["view_communicationeventtype", "change_communicationeventtype"],
        )
    )
    return card


def test_a_manager_edits_the_message_the_customer_reads(new_page, live_server, shop, mailoutbox):
    manager = new_page()
    manager_logs_in(manager, live_server)

    # Content → Email templates → "Loyalty: points credited by the shop".
    manager.click("#bottom_nav_bar a.dropdown-toggle:has-text('Content')")
    manager.click("#bottom_nav_bar a.dropdown-item:has-text('Email templates')")
    row = manager.locator("tr", has_text=str(events.NAMES[events.POINTS_CREDITED]))
    row.locator("a.btn:has-text('Edit')").click()
    manager.wait_for_selector("#update_communication_event_form")
    # Oscar's form wants a subject, a text and an HTML body: the seeded ones are there.
    assert manager.input_value("#id_email_subject_template")
    assert manager.input_value("#id_email_body_html_template")
    manager.fill("#id_email_body_template", EDITED)
    manager.click("#update_communication_event_form .form-actions button[type=submit]")
    manager.wait_for_selector(".alert-success:has-text('Email saved')")
    assert CommunicationEventType.objects.get(code=events.POINTS_CREDITED).email_body_template == (
        EDITED
    )

    # The customer's card in the loyalty dashboard: credit 250 points.
    manager.goto(f"{live_server.url}/dashboard/loyalty/cards/{shop.pk}/")
    manager.check("#adjust_form input[value=accrue]")
    manager.fill("#adjust_form [name=amount]", "250")
    manager.fill("#adjust_form [name=description]", "Spring fair")
    manager.click("#adjust_form button[type=submit]")
    manager.wait_for_selector("text=250 points accrued")

    # The customer opens the account inbox and reads the edited text with the amount.
    customer = new_page()
    customer_logs_in(customer, live_server, "olga@example.com", "secret")
    customer.goto(f"{live_server.url}/accounts/notifications/inbox/")
    subject = "250 points added to your card"
    customer.wait_for_selector(f"text={subject}")
    customer.click(f"tr:has-text('{subject}') a:has-text('View')")
    customer.wait_for_selector("text=See you soon!")
    text = customer.inner_text("body")
    assert "Olga, 250 points from the spring fair are on your card. See you soon!" in text
    assert "We have added" not in text  # the package's own wording, replaced by the manager's
    # The e-mail of the same message carries the manager's text too, and went out once.
    credited = [m for m in mailoutbox if m.subject == subject]
    assert len(credited) == 1
    assert "Olga, 250 points from the spring fair are on your card." in credited[0].body
    # One message, the e-mail, carried the inbox copy: the inbox shows it once.
    sent = Message.objects.filter(event=events.POINTS_CREDITED, status=Message.SENT)
    assert list(sent.values_list("channel", "inbox")) == [(Message.EMAIL, True)]
    customer.goto(f"{live_server.url}/accounts/notifications/inbox/")
    customer.wait_for_selector(f"text={subject}")
    assert customer.locator(f"tr:has-text('{subject}')").count() == 1
