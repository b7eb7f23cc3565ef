"""An import applied by a real Celery worker (Redis broker, PostgreSQL), and a chunk delivered
to it twice. Uses the worker fixture of test_tasks_worker (one worker per module)."""

from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from oscar_loyalty import audit, excel, jobs, tasks
from oscar_loyalty.card_import import drafts
from tests.integration.test_tasks_worker import broker, wait_for, worker  # noqa: F401

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_worker_applies_an_import_and_ignores_a_redelivered_chunk(program, worker, settings):  # noqa: F811
    settings.OSCAR_LOYALTY_IMPORT_CHUNK_SIZE = 2
    text = "Телефон\tАктуальный баланс\n79123456701\t100\n79123456702\t200\nabc\t5\n"
    job = drafts.start(drafts.create_draft(excel.read_pasted(text), program))
    chunk_ids = jobs.pending_chunks(job)
    tasks.start_job(job)  # autocommit: sent to the worker at once

    wait_for(
        lambda: Job.objects.filter(pk=job.pk, status=Job.DONE).exists(),
        f"the worker to finish the import; its log:\n{worker.log()}",
    )
    again = [tasks.run_job_chunk.delay(chunk_id).id for chunk_id in chunk_ids]
    worker.wait_done(again)

    job.refresh_from_db()
    assert (job.succeeded, job.failed) == (2, 1)
    balances = dict(Card.objects.values_list("phone", "account__balance"))
    assert balances == {"79123456701": Decimal("100"), "79123456702": Decimal("200")}
    assert audit.audit() == []
