"""A mass accrual on a real Celery worker (Redis broker, PostgreSQL), killed half way.

The worker is a `celery -A sandbox worker` subprocess against the test database. It is killed
with SIGKILL (the whole process group, pool children included) while it works through the
job; a new worker then finishes what is left after the job is resumed (what the "Resume"
button and the periodic ``resume_stalled_jobs`` do), with the job started twice more for good
measure. Every card must be credited exactly once and the ledger must audit clean.
"""

import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from oscar_loyalty import jobs, ledger, mass_jobs, tasks
from tests import factories
from tests.conftest import redis_broker_url
from tests.integration.test_tasks_worker import (
    SANDBOX,
    database_url,
    forget_queue,
    producer,
    wait_for,
)

Account = get_model("oscar_loyalty", "Account")
Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

CARDS = 4000
CHUNK = 40


class Worker:
    """A worker subprocess in its own process group, so that SIGKILL takes all of it."""

    def __init__(self, queue, log_path, db_url, broker):
        self.queue, self.log_path = queue, log_path
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "sandbox.settings",
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": broker,
            "DEBUG": "0",
        }
        command = [
            *(sys.executable, "-m", "celery", "-A", "sandbox", "worker", "--loglevel", "info"),
            *("--queues", queue, "--hostname", f"{queue}-{uuid.uuid4().hex[:6]}@%h"),
            *("--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=SANDBOX,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: " ready." in self.log() or self.process.poll() is not None,
            "the worker to start",
        )
        assert self.process.poll() is None, self.log()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL the worker and its pool children: no clean-up, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def make_cards(program, count):
    """``count`` cards in a few statements (issuing them one by one would take minutes)."""
    from oscar_loyalty import cards

    points = Account.objects.bulk_create(
        Account(program=program, kind=Account.POINTS) for _ in range(count)
    )
    debts = Account.objects.bulk_create(
        Account(program=program, kind=Account.DEBT) for _ in range(count)
    )
    grade = program.lowest_grade()
    return Card.objects.bulk_create(
        Card(
            program=program,
            number=f"77{n:09d}" + cards.check_digit(f"77{n:09d}"),
            grade=grade,
            account=account,
            debt_account=debt,
        )
        for n, (account, debt) in enumerate(zip(points, debts, strict=True))
    )


def progress(job):
    return Job.objects.values_list("done", flat=True).get(pk=job.pk)


def test_killed_worker_then_resume_credits_every_card_exactly_once(program, tmp_path):
    broker = redis_broker_url()
    queue = f"loyalty-mass-{uuid.uuid4().hex[:10]}"
    made = make_cards(program, CARDS)
    blocked = made[5]
    Card.objects.filter(pk=blocked.pk).update(status=Card.BLOCKED)
    job = mass_jobs.create(
        mass_jobs.ACCRUAL, Card.objects.all(), amount="7.50", description="Anniversary", by=None
    )
    # Small chunks, so that the job is still running when the worker is killed.
    items = list(Card.objects.order_by("pk").values_list("pk", flat=True))
    job.chunks.all().delete()
    job.delete()
    job = jobs.create(
        mass_jobs.ACCRUAL,
        items,
        params={"amount": "7.50", "description": "Anniversary", "available_at": None},
        chunk_size=CHUNK,
    )
    log_path = tmp_path / "worker.log"
    first = Worker(queue, log_path, database_url(), broker)
    try:
        with producer(broker, queue):
            tasks.start_job(job)
            wait_for(lambda: progress(job) >= CARDS // 4, f"progress; log:\n{first.log()}")
            first.kill()
            died_at = progress(job)
            assert 0 < died_at < CARDS, "the job ended before the worker was killed"
            # What the dead worker left: whole chunks, never a half one.
            assert died_at % CHUNK == 0
            finished = [pk for chunk in job.chunks.filter(done=True) for pk in chunk.items]
            assert len(finished) == died_at
            credited = Transfer.objects.filter(key__startswith=f"job:{job.pk}:").count()
            assert credited == len(finished) - (blocked.pk in finished)

            second = Worker(queue, log_path, database_url(), broker)
            try:
                tasks.start_job(job)  # resume: the chunks not done are queued again
                tasks.start_job(job)  # and once more: a double click, a redelivery
                wait_for(
                    lambda: Job.objects.get(pk=job.pk).status == Job.DONE,
                    f"the job to finish; log:\n{second.log()}",
                    timeout=240,
                )
            finally:
                second.stop()
    finally:
        first.stop()
        forget_queue(broker, queue)

    job.refresh_from_db()
    assert (job.done, job.succeeded, job.failed) == (CARDS, CARDS - 1, 1)
    assert job.errors[0]["card"] == blocked.number
    keys = Transfer.objects.filter(key__startswith=f"job:{job.pk}:").values_list("key", flat=True)
    expected = {f"job:{job.pk}:card:{pk}" for pk in items if pk != blocked.pk}
    assert len(keys) == len(expected) and set(keys) == expected  # each card exactly once
    balances = Account.objects.filter(card__isnull=False).values_list("card__pk", "balance")
    assert {pk: b for pk, b in balances if b != Decimal("7.50")} == {blocked.pk: Decimal("0")}
    assert ledger.derived_balance(ledger.system_account(program, ledger.ISSUED)) == -Decimal(
        "7.50"
    ) * (CARDS - 1)
    call_command("loyalty_audit")  # raises CommandError on any difference
    assert factories.refreshed(made[0]).account.balance == Decimal("7.50")
