"""Sending a batch of e-mails reads each template once, and a manager's edit made between two
batches is what the next batch's customers get (the texts are not kept beyond a batch)."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_model

from oscar_loyalty import cards
from oscar_loyalty.notifications import events, sending
from tests.factories import make_customer, make_program

CommunicationEventType = get_model("communication", "CommunicationEventType")
Message = get_model("oscar_loyalty", "Message")

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings):
    """``make(n)``: ``n`` customers credited by a manager; the ids of their queued e-mails
    (nothing is sent yet: the test's transaction never commits)."""
    settings.OSCAR_LOYALTY_MESSAGE_CHANNELS = ("email",)
    program = make_program()

    def make(n):
        for _ in range(n):
            customer = make_customer(first_name="Vera")
            card = cards.issue_card(program, user=customer, consent=True)
            cards.adjust(card, "40", f"manual:{card.pk}", description="Welcome")
        return list(
            Message.objects.filter(event=events.POINTS_CREDITED, status=Message.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    return make


def edit(body):
    CommunicationEventType.objects.update_or_create(
        code=events.POINTS_CREDITED,
        defaults={
            "name": "credited",
            "email_subject_template": "{{ amount }} points for you",
            "email_body_template": body,
            "email_body_html_template": "<p>{{ amount }}</p>",
        },
    )


def test_a_batch_reads_the_template_once_not_once_an_email(queued):
    edit("{{ customer_name }}, {{ amount }} points.")
    ids = queued(4)
    with CaptureQueriesContext(connection) as queries:
        assert sending.send(ids) == (4, 0)
    table = CommunicationEventType._meta.db_table
    reads = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    assert len(reads) == 1
    assert [m.body for m in mail.outbox] == ["Vera, 40 points."] * 4


def test_the_next_batch_gets_the_managers_new_text(queued):
    edit("First text: {{ amount }}.")
    assert sending.send(queued(1)) == (1, 0)
    edit("Second text: {{ amount }}.")
    assert sending.send(queued(1)) == (1, 0)
    assert [m.body for m in mail.outbox] == ["First text: 40.", "Second text: 40."]
