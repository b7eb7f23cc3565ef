"""Messages on PostgreSQL: a mass job's messages created set-based with its chunks, once per
consenting card and channel however the chunks are redelivered (the e-mail carries the
account inbox's copy: no message of channel "site" beside it); two senders at once send
each message once; a real Celery worker on Redis sends them.

The worker is a `celery -A sandbox worker` subprocess against the test database, with the
settings of ``notification_worker_settings``: what it sends itself goes to this module's
queue, and its e-mail is written to files, since locmem mail stays in one process.
"""

import email
import os
import uuid
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from django.core import mail
from django.db.models import Q
from oscar.core.loading import get_model

from oscar_loyalty import cards, jobs, mass_jobs, tasks
from oscar_loyalty.notifications import records, sending
from tests import factories
from tests.conftest import redis_broker_url
from tests.integration.test_ledger_postgres import errors_of, run_together, values_of
from tests.integration.test_tasks_worker import (
    SANDBOX,
    database_url,
    started_worker,
    wait_for,
)

Card = get_model("oscar_loyalty", "Card")
JobChunk = get_model("oscar_loyalty", "JobChunk")
Message = get_model("oscar_loyalty", "Message")
Notification = get_model("communication", "Notification")

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
SMS_BACKEND = "tests.integration.test_notifications.KeptSMS"

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def make_crowd(program, count=30):
    """``count`` customers' cards: every third without consent, every other with a phone.
    Returns the cards and the messages one event should make: ``{card id: channels}``
    (each customer has an address: the e-mail, with the inbox copy, and no "site" message)."""
    made, expected = [], {}
    for n in range(count):
        user = factories.make_customer(f"crowd{n}@example.com")
        phone = f"+7916{n:07d}" if n % 2 == 0 else ""
        card = cards.issue_card(program, user=user, phone=phone)
        if n % 3:
            cards.set_consent(card, True)
            expected[card.pk] = {Message.EMAIL} | ({Message.SMS} if phone else set())
        made.append(card)
    return made, expected


def mass_job(crowd, chunk_size, amount="15"):
    ids = Card.objects.filter(pk__in=[c.pk for c in crowd])
    job = mass_jobs.create(mass_jobs.ACCRUAL, ids, amount=amount, description="Spring", notify=True)
    items, params = list(ids.order_by("pk").values_list("pk", flat=True)), dict(job.params)
    job.delete()
    return jobs.create(mass_jobs.ACCRUAL, items, params=params, chunk_size=chunk_size)


def channels_by_card(job):
    found = {}
    for card_id, channel in Message.objects.filter(
        transfer__key__startswith=f"job:{job.pk}:"
    ).values_list("card_id", "channel"):
        found.setdefault(card_id, set()).add(channel)
    return found


def assert_inbox_copies(expected):
    """One e-mail per card of ``expected``, each carrying its inbox copy, written once; the
    SMS carry none."""
    emails = Message.objects.filter(channel=Message.EMAIL)
    assert sorted(emails.values_list("card_id", flat=True)) == sorted(expected)
    assert not emails.filter(Q(inbox=False) | Q(inbox_sent__isnull=True)).exists()
    assert not Message.objects.filter(channel=Message.SITE).exists()
    assert not Message.objects.filter(channel=Message.SMS, inbox=True).exists()
    customers = Card.objects.filter(pk__in=expected).values_list("user_id", flat=True)
    notified = Notification.objects.values_list("recipient_id", flat=True)
    assert sorted(notified) == sorted(customers)  # once each


def test_a_mass_job_with_notify_records_each_message_once_across_chunks(program, settings):
    from tests.integration.test_notifications import KeptSMS

    settings.OSCAR_LOYALTY_SMS_BACKEND = SMS_BACKEND
    KeptSMS.outbox = []
    crowd, expected = make_crowd(program)
    job = mass_job(crowd, chunk_size=7)
    chunks = list(job.chunks.order_by("index").values_list("pk", flat=True))
    assert len(chunks) == 5

    with (
        mock.patch.object(records, "for_transfers", wraps=records.for_transfers) as set_based,
        mock.patch.object(records, "for_transfer", wraps=records.for_transfer) as one_by_one,
    ):
        for chunk_id in chunks:
            jobs.run_chunk(chunk_id)  # commits; its messages are sent after (eager Celery)
    assert set_based.call_count == 5 and one_by_one.call_count == 0

    assert channels_by_card(job) == expected
    assert Message.objects.count() == sum(len(c) for c in expected.values())
    assert set(Message.objects.values_list("status", flat=True)) == {Message.SENT}
    emails = sorted(address for m in mail.outbox for address in m.to)
    assert emails == sorted(c.user.email for c in crowd if c.pk in expected)
    assert all(m.subject == "15 points added to your card" for m in mail.outbox)
    assert_inbox_copies(expected)
    texted = sorted(phone for phone, _text in KeptSMS.outbox)
    assert texted == sorted(
        c.phone for c in crowd if c.pk in expected and Message.SMS in expected[c.pk]
    )
    assert Message.objects.get(card=crowd[1], channel=Message.EMAIL).balance_after == D("15.00")

    # Redelivered chunks: done, or (their worker died before marking them) not done.
    before, outbox = Message.objects.count(), len(mail.outbox)
    for chunk_id in chunks:
        jobs.run_chunk(chunk_id)
    JobChunk.objects.filter(job=job).update(done=False)
    for chunk_id in chunks:
        jobs.run_chunk(chunk_id)
    assert Message.objects.count() == before
    assert len(mail.outbox) == outbox
    assert_inbox_copies(expected)
    assert factories.refreshed(crowd[1]).account.balance == D("15.00")


def test_two_senders_at_once_send_each_message_once(program):
    crowd, expected = make_crowd(program, count=24)
    job = mass_job(crowd, chunk_size=100)
    with mock.patch.object(tasks.send_messages, "delay"):  # recorded, left queued
        jobs.run_chunk(job.chunks.get().pk)
    ids = list(Message.objects.values_list("pk", flat=True))
    assert len(ids) == sum(len(c) for c in expected.values())
    assert Message.objects.filter(status=Message.QUEUED).count() == len(ids)

    results = run_together(4, lambda i: sending.send(ids))

    assert errors_of(results) == []
    assert sum(sent for sent, _failed in values_of(results)) == len(ids)
    assert set(Message.objects.values_list("status", flat=True)) == {Message.SENT}
    emails = [address for m in mail.outbox for address in m.to]
    assert sorted(emails) == sorted(c.user.email for c in crowd if c.pk in expected)
    assert_inbox_copies(expected)  # each written once, by the sender that claimed its e-mail
    assert Message.objects.filter(attempts=1).count() == len(ids)


# --- a real worker ---------------------------------------------------------------------------


class Worker:
    def __init__(self, process, log_path, mail_dir, queue):
        self.process, self.log_path, self.mail_dir, self.queue = process, log_path, mail_dir, queue

    def log(self):
        return self.log_path.read_text(errors="replace")

    def forget_mail(self):
        for path in self.mail_dir.glob("*.log"):
            path.unlink()

    def mails(self):
        """The e-mails the worker wrote, parsed (one file per connection, messages apart)."""
        found = []
        for path in sorted(self.mail_dir.glob("*.log")):
            for chunk in path.read_text(errors="replace").split("-" * 79):
                if chunk.strip():
                    found.append(email.message_from_string(chunk.strip()))
        return found


@pytest.fixture(scope="module")
def worker(tmp_path_factory, django_db_setup, django_db_blocker):
    broker = redis_broker_url()
    if broker is None:
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://... to a running server")
    queue = f"loyalty-msg-{uuid.uuid4().hex[:12]}"
    base = tmp_path_factory.mktemp("messages-worker")
    log_path, mail_dir = base / "worker.log", base / "mail"
    mail_dir.mkdir()
    with django_db_blocker.unblock():
        url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.notification_worker_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(SANDBOX), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "LOYALTY_TEST_QUEUE": queue,
        "LOYALTY_TEST_MAIL_DIR": str(mail_dir),
        "DEBUG": "0",
    }
    with started_worker(env, queue, log_path, broker) as process:
        yield Worker(process, log_path, mail_dir, queue)


def all_sent(count):
    def check():
        statuses = list(Message.objects.values_list("status", flat=True))
        return len(statuses) == count and set(statuses) == {Message.SENT}

    return check


@pytest.mark.redis
def test_a_real_worker_sends_a_managers_credit(card, customer, worker):
    worker.forget_mail()
    cards.set_consent(card, True)

    cards.adjust(card, "120", "adjust:worker", description="Welcome back")  # commits: queued

    # One message: the e-mail, which carries the inbox copy.
    wait_for(all_sent(1), f"the worker to send the messages; its log:\n{worker.log()}")
    wait_for(lambda: worker.mails(), f"the worker's e-mail; its log:\n{worker.log()}")
    (sent,) = [m for m in worker.mails() if m["To"] == customer.email]
    assert sent["Subject"] == "120 points added to your card"
    body = sent.get_payload(0).get_payload(decode=True).decode()
    assert "Welcome back" in body and card.number in body
    assert "Your balance: 120 points." in body
    note = Notification.objects.get(recipient=customer)
    assert note.subject == "120 points added to your card"
    assert_inbox_copies([card.pk])

    # The task delivered again sends nothing more.
    ids = list(Message.objects.values_list("pk", flat=True))
    again = tasks.send_messages.delay(ids).id
    wait_for(lambda: f"[{again}] succeeded" in worker.log(), f"the redelivery:\n{worker.log()}")
    assert len([m for m in worker.mails() if m["To"] == customer.email]) == 1
    assert Notification.objects.filter(recipient=customer).count() == 1


@pytest.mark.redis
def test_a_real_worker_runs_a_mass_job_with_notify_and_sends_once(program, worker):
    worker.forget_mail()
    crowd, expected = make_crowd(program, count=20)
    job = mass_job(crowd, chunk_size=6)
    total = sum(len(c) for c in expected.values())

    tasks.start_job(job)  # the chunks run in the worker, which sends their messages too

    wait_for(all_sent(total), f"the worker to send the job's messages; its log:\n{worker.log()}")
    wait_for(lambda: len(worker.mails()) >= len(expected), f"the worker's e-mail:\n{worker.log()}")
    assert sorted(m["To"] for m in worker.mails()) == sorted(
        c.user.email for c in crowd if c.pk in expected
    )
    assert channels_by_card(job) == expected
    assert_inbox_copies(expected)

    # Every chunk delivered again, as if its worker had died before marking it done.
    JobChunk.objects.filter(job=job).update(done=False)
    again = [tasks.run_job_chunk.delay(pk).id for pk in job.chunks.values_list("pk", flat=True)]
    wait_for(
        lambda: all(f"[{tid}] succeeded" in worker.log() for tid in again),
        f"the redelivered chunks:\n{worker.log()}",
    )
    assert Message.objects.count() == total
    assert len(worker.mails()) == len(expected)
    assert_inbox_copies(expected)
    assert factories.refreshed(crowd[0]).account.balance == D("15.00")
