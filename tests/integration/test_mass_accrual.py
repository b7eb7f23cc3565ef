"""Mass accrual and debit jobs: every card exactly once, however the job is run, rerun,
redelivered or interrupted; set-based ledger writes that keep the ledger's rules."""

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, close_old_connections, connection
from oscar.core.loading import get_model

from oscar_loyalty import audit, jobs, ledger, mass_jobs
from oscar_loyalty.exceptions import InsufficientPoints, KeyConflict
from tests import factories

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal

pytestmark = pytest.mark.django_db


@pytest.fixture
def many(program):
    return [factories.make_card(program, phone=f"+7916{n:07d}") for n in range(23)]


def accrual_job(cards, amount="25", chunk_size=5, **params):
    ids = Card.objects.filter(pk__in=[c.pk for c in cards])
    job = mass_jobs.create(mass_jobs.ACCRUAL, ids, amount=amount, description="Gift", **params)
    if chunk_size:  # re-chunk small, so that a job has several chunks
        items = list(ids.order_by("pk").values_list("pk", flat=True))
        job.delete()
        job = jobs.create(
            mass_jobs.ACCRUAL,
            items,
            params={"amount": amount, "description": "Gift", "available_at": None},
            chunk_size=chunk_size,
        )
    return job


def run_all(job):
    for chunk_id in list(job.chunks.order_by("index").values_list("pk", flat=True)):
        jobs.run_chunk(chunk_id)
    job.refresh_from_db()
    return job


def job_transfers(job):
    return Transfer.objects.filter(key__startswith=f"job:{job.pk}:card:")


def assert_each_credited_once(job, cards, amount):
    keys = list(job_transfers(job).values_list("key", flat=True))
    assert sorted(keys) == sorted(f"job:{job.pk}:card:{c.pk}" for c in cards)
    for card in cards:
        assert factories.refreshed(card).account.balance == D(amount)
    assert audit.audit() == []


def test_every_card_once_even_when_chunks_are_redelivered(many):
    job = accrual_job(many)
    assert job.chunks.count() == 5
    run_all(job)
    run_all(job)  # every chunk delivered again
    for chunk in job.chunks.all():
        assert jobs.run_chunk(chunk.pk) is False
    job.refresh_from_db()
    assert (job.status, job.done, job.succeeded, job.failed) == (Job.DONE, 23, 23, 0)
    assert_each_credited_once(job, many, "25.00")


def test_a_chunk_that_dies_half_way_leaves_nothing_and_is_finished_on_resume(many, monkeypatch):
    job = accrual_job(many)
    real = ledger._move_balances
    calls = {"n": 0}

    def dies_on_the_third_chunk(changes):
        calls["n"] += 1
        if calls["n"] == 3:  # transfers of this chunk are inserted; the worker dies now
            raise SystemExit("worker killed")
        return real(changes)

    monkeypatch.setattr(ledger, "_move_balances", dies_on_the_third_chunk)
    with pytest.raises(SystemExit):
        run_all(job)
    job.refresh_from_db()
    assert job.done == 10 and job.status == Job.RUNNING
    assert job_transfers(job).count() == 10  # the dead chunk's inserts rolled back

    monkeypatch.setattr(ledger, "_move_balances", real)
    run_all(job)  # what resume_stalled_jobs / the Resume button does: pending chunks again
    assert job.status == Job.DONE
    assert_each_credited_once(job, many, "25.00")


def test_a_second_job_is_a_second_gift_but_a_rerun_is_not(many):
    first = run_all(accrual_job(many, chunk_size=None))
    again = mass_jobs.create(mass_jobs.ACCRUAL, Card.objects.all(), amount="25", description="Gift")
    assert again.pk != first.pk  # no token: a new job on purpose
    token_job = mass_jobs.create(
        mass_jobs.ACCRUAL, Card.objects.all(), amount="1", description="x", token="form-1"
    )
    same = mass_jobs.create(
        mass_jobs.ACCRUAL, Card.objects.all(), amount="1", description="x", token="form-1"
    )
    assert same.pk == token_job.pk


def test_a_key_recorded_with_other_content_fails_that_card_only(many):
    job = accrual_job(many)
    victim = many[7]
    ledger.credit_card(victim, D("3"), f"job:{job.pk}:card:{victim.pk}", kind=Transfer.BULK)
    job = run_all(job)
    assert (job.succeeded, job.failed) == (22, 1)
    assert job.errors[0]["card"] == victim.number
    assert "already recorded with other details" in job.errors[0]["reason"]
    assert factories.refreshed(victim).account.balance == D("3.00")
    assert factories.refreshed(many[8]).account.balance == D("25.00")


def test_card_by_card_when_the_set_based_write_fails(many, monkeypatch):
    def broken(*args, **kwargs):
        raise IntegrityError("simulated")

    monkeypatch.setattr(ledger, "credit_cards", broken)
    job = run_all(accrual_job(many))
    assert (job.status, job.succeeded) == (Job.DONE, 23)
    assert_each_credited_once(job, many, "25.00")


def test_credit_cards_repays_debt_first_and_replays(program):
    card = factories.make_card(program, phone="+79160000001")
    ledger.credit_card(card, D("10"), "setup", kind=Transfer.ADJUST)
    ledger.debit_card(card, D("10"), "spent")
    ledger.take_back(card, D("30"), "refund")  # 30 owed, nothing to take
    card = factories.refreshed(card)
    assert (card.account.balance, card.debt) == (D("0.00"), D("30.00"))

    done, failures = ledger.credit_cards([card.pk], D("100"), lambda pk: "gift:1")
    card = factories.refreshed(card)
    assert (done, failures) == ([card.pk], [])
    assert (card.account.balance, card.debt) == (D("70.00"), D("0.00"))
    assert Transfer.objects.filter(key__startswith="gift:1").count() == 2  # main + repay

    done, failures = ledger.credit_cards([card.pk], D("100"), lambda pk: "gift:1")
    assert done == [card.pk] and not failures
    assert factories.refreshed(card).account.balance == D("70.00")
    _, failures = ledger.credit_cards([card.pk], D("99"), lambda pk: "gift:1")
    assert isinstance(failures[0][1], KeyConflict)
    assert audit.audit() == []


def test_debit_cards_never_overdraws(program):
    rich = factories.make_card(program, phone="+79160000002")
    poor = factories.make_card(program, phone="+79160000003")
    ledger.credit_card(rich, D("50"), "r", kind=Transfer.ADJUST)
    ledger.credit_card(poor, D("49.99"), "p", kind=Transfer.ADJUST)
    done, failures = ledger.debit_cards([rich.pk, poor.pk], D("50"), lambda pk: f"d:{pk}")
    assert done == [rich.pk]
    assert failures[0][0] == poor.pk
    assert isinstance(failures[0][1], InsufficientPoints)
    assert factories.refreshed(rich).account.balance == D("0.00")
    assert factories.refreshed(poor).account.balance == D("49.99")
    assert audit.audit() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_mass_debit_and_a_checkout_spend_race_for_the_last_points(program):
    """Both want the card's 100 points at once: exactly one gets them."""
    card = factories.make_card(program, phone="+79160000004")
    ledger.credit_card(card, D("100"), "setup", kind=Transfer.ADJUST)
    job = mass_jobs.create(
        mass_jobs.DEBIT, Card.objects.filter(pk=card.pk), amount="100", description="x"
    )
    barrier = threading.Barrier(2)
    results = {}

    def mass():
        barrier.wait()
        try:
            for chunk_id in job.chunks.values_list("pk", flat=True):
                jobs.run_chunk(chunk_id)
        finally:
            close_old_connections()
            connection.close()

    def checkout():
        barrier.wait()
        try:
            ledger.debit_card(factories.refreshed(card), D("100"), "order:1:spend")
            results["checkout"] = True
        except InsufficientPoints:
            results["checkout"] = False
        finally:
            connection.close()

    threads = [threading.Thread(target=mass), threading.Thread(target=checkout)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    job.refresh_from_db()
    assert results["checkout"] + job.succeeded == 1
    assert factories.refreshed(card).account.balance == D("0.00")
    assert audit.audit() == []
