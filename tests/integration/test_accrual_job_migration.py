"""Migration 0010 moves a mass accrual's pending accruals from the order number "job:<id>"
to their own job field, and back; the points still post under the job's ledger key.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL: each direction migrates the real test
database (``transaction=True``, the schema changes commit), and the test ends with every
migration applied again.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import audit, earning, mass_jobs
from tests import factories

Accrual = get_model("oscar_loyalty", "Accrual")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
BEFORE = [("oscar_loyalty", "0009_generated_descriptions")]
AFTER = [("oscar_loyalty", "0010_accrual_job")]

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target):
    """Migrate the test database to ``target``; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.fixture
def latest():
    """Every migration applied again when the test ends, whatever it migrated to."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def accrual(card, **fields):
    return Accrual.objects.create(
        card=card, base=D("0"), percent=D("0"), points=D("30"), description="Later", **fields
    )


def test_job_accruals_move_to_their_job_and_back(latest, program):
    first = factories.make_card(program, phone="+79160000001")
    second = factories.make_card(program, phone="+79160000002")
    job = Job.objects.create(kind=Job.MASS_ACCRUAL, total=2)
    of_job = [accrual(first, job=job), accrual(second, job=job)]
    of_order = Accrual.objects.create(
        card=first, order_number="100042", base=D("1000"), percent=D("3"), points=D("30")
    )

    old = migrate(BEFORE)
    OldAccrual = old.get_model("oscar_loyalty", "Accrual")
    numbers = dict(OldAccrual.objects.values_list("pk", "order_number"))
    assert numbers == {
        of_job[0].pk: f"job:{job.pk}",
        of_job[1].pk: f"job:{job.pk}",
        of_order.pk: "100042",
    }
    # Written before the field existed: an accrual of a job whose row is gone.
    orphan = OldAccrual.objects.create(
        card_id=second.pk,
        order_number=f"job:{job.pk + 1000}",
        base=D("0"),
        percent=D("0"),
        points=D("5"),
    )

    new = migrate(AFTER)
    NewAccrual = new.get_model("oscar_loyalty", "Accrual")
    rows = {
        pk: (job_id, number)
        for pk, job_id, number in NewAccrual.objects.values_list("pk", "job_id", "order_number")
    }
    assert rows == {
        of_job[0].pk: (job.pk, ""),
        of_job[1].pk: (job.pk, ""),
        of_order.pk: (None, "100042"),
        orphan.pk: (None, f"job:{job.pk + 1000}"),
    }


def test_a_moved_accrual_posts_under_the_jobs_key_and_a_rerun_adds_none(latest, program):
    card = factories.make_card(program, phone="+79160000001")
    day = timezone.now() + timedelta(days=5)
    params = {"amount": "30", "description": "Later", "available_at": day.isoformat()}
    job = Job.objects.create(kind=Job.MASS_ACCRUAL, total=1, params=params)
    old = migrate(BEFORE)
    old.get_model("oscar_loyalty", "Accrual").objects.create(
        card_id=card.pk,
        order_number=f"job:{job.pk}",
        base=D("0"),
        percent=D("0"),
        points=D("30"),
        description="Later",
        available_at=day,
    )
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # upgraded to today's code

    moved = Accrual.objects.get(card=card)
    assert (moved.job_id, moved.order_number) == (job.pk, "")
    mass_jobs.mass_accrual(job, [card.pk])  # the job's chunk run again after the upgrade
    assert Accrual.objects.filter(card=card).count() == 1

    Accrual.objects.filter(pk=moved.pk).update(available_at=timezone.now())  # the day comes
    earning.post(moved.pk)
    transfer = Transfer.objects.get(card=card)
    assert (transfer.key, transfer.kind, transfer.amount, transfer.description) == (
        f"job:{job.pk}:card:{card.pk}",
        Transfer.BULK,
        D("30.00"),
        "Later",
    )
    assert factories.refreshed(card).account.balance == D("30.00")
    assert audit.audit() == []
