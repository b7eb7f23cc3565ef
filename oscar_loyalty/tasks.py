"""Celery tasks: thin, idempotent wrappers over the services, safe to redeliver."""

from celery import shared_task
from oscar.core.loading import get_model

from oscar_loyalty import checkpoints, conf, earning, grades, jobs, paying, reports
from oscar_loyalty.notifications import sending

Card = get_model("oscar_loyalty", "Card")

POST_BATCH = 500


@shared_task(acks_late=True)
def post_accrual(accrual_id):
    earning.post(accrual_id)


@shared_task
def post_due_accruals():
    """Periodic: post every accrual whose delay has passed (a batch per run, then again)."""
    due = list(earning.due_accruals()[: POST_BATCH + 1])
    for accrual_id in due[:POST_BATCH]:
        earning.post(accrual_id)
    if len(due) > POST_BATCH:
        post_due_accruals.delay()
    return min(len(due), POST_BATCH)


@shared_task(acks_late=True)
def recalculate_grade(card_id):
    card = Card.objects.filter(pk=card_id).first()
    if card is not None:
        grades.recalculate(card)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_job_chunk(chunk_id):
    jobs.run_chunk(chunk_id)


def start_job(job):
    """Queue every chunk of ``job`` that is not done yet (after the caller's commit)."""
    for chunk_id in jobs.pending_chunks(job):
        run_job_chunk.delay_on_commit(chunk_id)


@shared_task
def resume_stalled_jobs():
    """Periodic: queue again the chunks of jobs whose worker died; done chunks are skipped."""
    for job in jobs.stalled_jobs():
        start_job(job)


@shared_task
def release_stale_holds():
    """Periodic: give back checkout holds older than OSCAR_LOYALTY_HOLD_TIMEOUT_MINUTES whose
    order never came (captured instead if the order exists)."""
    return paying.release_stale_holds()


@shared_task
def delete_expired_exports():
    """Periodic: delete export files older than OSCAR_LOYALTY_EXPORT_RETENTION_DAYS."""
    return reports.delete_expired_exports()


@shared_task
def take_checkpoints():
    """Periodic: move the balance checkpoints of the system accounts and the points report's
    totals forward (``oscar_loyalty.checkpoints``), so reading them stays cheap however long
    the ledger grows. Returns the transfer id they now cover (``None``: not moved this time)."""
    bound = checkpoints.safe_bound(timeout=conf.checkpoint_wait_seconds)
    if bound is not None:
        checkpoints.take(bound)
        reports.take_checkpoint(bound)
    return bound


@shared_task(acks_late=True)
def send_messages(ids):
    """Send recorded messages (queued after their cause's commit); claimed one by one, so a
    redelivery sends nothing twice. Returns ``(sent, failed)``."""
    return sending.send(ids)


@shared_task
def send_due_messages():
    """Periodic: send queued messages that are due (retries, lost tasks), a batch per run."""
    ids = sending.due_ids(conf.message_batch + 1)
    if len(ids) > conf.message_batch:
        send_due_messages.delay()
    return sending.send(ids[: conf.message_batch])
