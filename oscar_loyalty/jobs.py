"""Long bulk operations (mass accrual, import, export) run as chunked, resumable jobs.

A job freezes its items when it is created (card ids, import rows...) into chunks. Each chunk
is processed in one database transaction that also marks it done, so a redelivered chunk is
a no-op and a job stopped half way resumes with the chunks not yet done. Handlers use ledger
keys derived from the job and the item (``job:17:card:5``), a second guard against doubles.

A handler is ``handler(job, items) -> (succeeded, failures)`` where ``failures`` is a list of
``{"item": ..., "reason": ...}``; it must contain per-item errors (a savepoint per item), so
one bad item never rolls back the chunk.
"""

import gc
import logging
from contextlib import contextmanager
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import conf

Job = get_model("oscar_loyalty", "Job")
JobChunk = get_model("oscar_loyalty", "JobChunk")

logger = logging.getLogger(__name__)
# kind -> handler, and kind -> ``function(job)`` run in the transaction that marks a job
# done; filled by ``registry.register()``.
HANDLERS = {}
FINISHERS = {}
MAX_STORED_ERRORS = 10_000


def create(kind, items, *, program=None, params=None, by=None, chunk_size=None):
    """Create a job over ``items`` (JSON-serialisable), split into chunks; nothing runs yet."""
    size = chunk_size or conf.job_chunk_size
    items = list(items)
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind, program=program, params=params or {}, total=len(items), created_by=by
        )
        JobChunk.objects.bulk_create(
            JobChunk(job=job, index=n, items=items[start : start + size])
            for n, start in enumerate(range(0, len(items), size))
        )
        if not items:
            job.status, job.finished = Job.DONE, timezone.now()
            job.save(update_fields=["status", "finished"])
    return job


def run_chunk(chunk_id):
    """Process one chunk exactly once; a chunk already done (a redelivery) does nothing."""
    with cycle_collector_paused(), transaction.atomic():
        chunk = (
            # of=("self",): PostgreSQL cannot lock the nullable side of the programme's join.
            JobChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("job", "job__program")
            .filter(pk=chunk_id, done=False)
            .first()
        )
        if chunk is None:  # done already, or another worker has it right now
            return False
        job = chunk.job
        if job.status not in (Job.NEW, Job.RUNNING) or job.params.get("draft"):
            return False  # finished, or a draft nobody confirmed yet
        succeeded, failures = HANDLERS[job.kind](job, chunk.items)
        chunk.done = True
        chunk.save(update_fields=["done"])
        Job.objects.filter(pk=job.pk).update(
            status=Job.RUNNING,
            progressed=timezone.now(),
            done=F("done") + len(chunk.items),
            succeeded=F("succeeded") + succeeded,
            failed=F("failed") + len(failures),
        )
        if failures:
            _add_errors(job.pk, failures)
    finish_if_done(job.pk)
    return True


@contextmanager
def cycle_collector_paused():
    """Run bulk work without Python's cycle collector.

    The rows of a chunk hold no reference cycles (reference counting frees them), but while
    thousands of them are alive each collection walks them all: a 100,000-row import spent
    about a tenth of its time there (benchmarks/README.md). The collector is process-wide;
    pausing it for a few seconds only delays cycles other code leaves behind.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _add_errors(job_id, failures):
    job = Job.objects.select_for_update().get(pk=job_id)
    room = MAX_STORED_ERRORS - len(job.errors)
    if room > 0:
        job.errors.extend(failures[:room])
        job.save(update_fields=["errors"])


def finish_if_done(job_id):
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status == Job.RUNNING and not job.chunks.filter(done=False).exists():
            job.status, job.finished = Job.DONE, timezone.now()
            job.save(update_fields=["status", "finished"])
            if job.kind in FINISHERS:
                FINISHERS[job.kind](job)
    return job


def pending_chunks(job):
    return list(job.chunks.filter(done=False).order_by("index").values_list("pk", flat=True))


def stalled_jobs(minutes=None):
    """Jobs with chunks left that have made no progress for a while (a worker died).

    Progress is the last chunk finished (``progressed``), so a long healthy job is not queued
    again while it moves. Drafts (``params["draft"]``: an import waiting for the manager to
    confirm its preview) are not started yet, so they are never resumed.
    """
    since = timezone.now() - timedelta(minutes=minutes or conf.job_stall_minutes)
    return (
        Job.objects.filter(status__in=[Job.NEW, Job.RUNNING], progressed__lt=since)
        .filter(chunks__done=False)
        .exclude(params__has_key="draft")
        .distinct()
    )
