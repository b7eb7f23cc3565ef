"""Mass accrual and debit from the card list's filter: form, confirmation, job, result page.

Celery runs eagerly here; ``test_mass_accrual_worker`` runs the same jobs on a real worker.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import formats, timezone
from oscar.core.loading import get_model

from oscar_loyalty import audit, cards, earning
from tests import factories
from tests.integration.dashboard_support import (
    card_for,
    page,
    url,
)

Accrual = get_model("oscar_loyalty", "Accrual")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal

pytestmark = pytest.mark.django_db


@pytest.fixture
def shoppers(program):
    """Completed orders totals 500, 1000, 3000, 7000 and 9000."""
    return {
        spend: card_for(program, f"s{spend}@example.com", lifetime_spend=spend, balance="10")
        for spend in (500, 1000, 3000, 7000, 9000)
    }


def balance(card):
    return factories.refreshed(card).account.balance


def run_mass(client, captured, kind="accrue", query="spend_min=1000&spend_max=7000", **fields):
    """Fill the form, read the confirmation, confirm; returns (confirmation page, job)."""
    target = url("loyalty-mass-accrual" if kind == "accrue" else "loyalty-mass-debit")
    form = page(client.get(f"{target}?{query}"))
    token = form.split('name="token" value="')[1].split('"')[0]
    data = {"query": query, "token": token, "amount": "100", "description": "Spring gift"}
    data |= fields
    confirmation = page(client.post(target, data))
    expected = confirmation.split('name="expected" value="')[1].split('"')[0]
    with captured(execute=True):
        response = client.post(target, {**data, "expected": expected, "confirm": "1"})
    job = Job.objects.latest("pk")
    assert response["Location"] == url("loyalty-job-detail", job.pk)
    return confirmation, job


def test_card_list_offers_to_accrue_to_all_matching_cards(manager_client, shoppers):
    content = page(
        manager_client.get(url("loyalty-card-list"), {"spend_min": 1000, "spend_max": 7000})
    )
    assert "Accrue to all 3 matching cards" in content
    assert url("loyalty-mass-accrual") + "?spend_min=1000&amp;spend_max=7000" in content


def test_mass_accrual_to_the_filtered_cards(
    manager_client, shoppers, manager, django_capture_on_commit_callbacks
):
    confirmation, job = run_mass(
        manager_client, django_capture_on_commit_callbacks, note="Campaign 7"
    )
    assert "loyalty-confirm-count" in confirmation
    assert ">3<" in confirmation and "<strong>300</strong>" in confirmation  # cards and total
    assert "Completed orders total from RUB1,000.00 to RUB7,000.00" in confirmation

    job.refresh_from_db()
    assert (job.status, job.total, job.succeeded, job.failed) == (Job.DONE, 3, 3, 0)
    assert {spend: balance(card) for spend, card in shoppers.items()} == {
        500: D("10.00"),
        1000: D("110.00"),
        3000: D("110.00"),
        7000: D("110.00"),
        9000: D("10.00"),
    }
    transfer = Transfer.objects.get(key=f"job:{job.pk}:card:{shoppers[3000].pk}")
    assert (transfer.kind, transfer.description, transfer.note, transfer.created_by) == (
        Transfer.BULK,
        "Spring gift",
        "Campaign 7",
        manager,
    )
    result = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert "Every item succeeded" in result and "3 succeeded" in result
    assert audit.audit() == []


def test_the_confirmation_sent_twice_starts_one_job(
    manager_client, shoppers, django_capture_on_commit_callbacks
):
    target = url("loyalty-mass-accrual")
    data = {"query": "spend_min=9000", "token": "tok", "amount": "5", "description": "x"}
    data |= {"expected": "1", "confirm": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        first = manager_client.post(target, data)
        second = manager_client.post(target, data)
    assert first["Location"] == second["Location"]
    assert Job.objects.count() == 1
    assert balance(shoppers[9000]) == D("15.00")


def test_a_changed_selection_is_confirmed_again(manager_client, shoppers, program):
    target = url("loyalty-mass-accrual")
    data = {"query": "spend_min=9000", "token": "tok2", "amount": "5", "description": "x"}
    card_for(program, "late@example.com", lifetime_spend=9500)
    content = page(manager_client.post(target, {**data, "expected": "1", "confirm": "1"}))
    assert "The selection changed to 2 cards" in content
    assert not Job.objects.exists()


def test_blocked_cards_are_skipped_and_listed(
    manager_client, shoppers, django_capture_on_commit_callbacks
):
    cards.block(shoppers[3000], reason="fraud")
    _, job = run_mass(manager_client, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.succeeded, job.failed) == (2, 1)
    assert balance(shoppers[3000]) == D("10.00")
    result = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert shoppers[3000].number in result and "is blocked" in result


def test_mass_debit_skips_cards_without_enough_points(
    manager_client, shoppers, django_capture_on_commit_callbacks
):
    factories.refreshed(shoppers[7000])
    from oscar_loyalty import ledger

    ledger.credit_card(shoppers[7000], D("200"), "test:more", kind="adjust")
    _, job = run_mass(
        manager_client, django_capture_on_commit_callbacks, kind="debit", amount="150"
    )
    job.refresh_from_db()
    assert (job.succeeded, job.failed) == (1, 2)
    assert balance(shoppers[7000]) == D("60.00")
    assert balance(shoppers[1000]) == D("10.00")  # never overdrawn
    result = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert "Not enough points: 10 available, 150 needed." in result
    assert audit.audit() == []


def test_points_dated_later_are_pending_until_the_day(
    manager_client, shoppers, django_capture_on_commit_callbacks
):
    day = timezone.localdate() + timedelta(days=10)
    _, job = run_mass(
        manager_client, django_capture_on_commit_callbacks, available_from=day.isoformat()
    )
    card = shoppers[1000]
    assert balance(card) == D("10.00")
    pending = Accrual.objects.get(card=card, job=job)
    assert (pending.points, pending.description, pending.status) == (
        D("100.00"),
        "Spring gift",
        Accrual.PENDING,
    )
    # The job page says from when, as a date and time, not the stored ISO text.
    job_page = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    shown = formats.date_format(timezone.localtime(pending.available_at), "DATETIME_FORMAT")
    assert shown in job_page
    assert job.params["available_at"] not in job_page
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "Spring gift" in content and "available from" in content
    # The manager sees which job it comes from, with a link to the job's page.
    assert f'<a href="{url("loyalty-job-detail", job.pk)}">mass accrual #{job.pk}</a>' in content
    customer = Client()
    customer.login(username=card.user.email, password="secret")
    own_page = page(customer.get(url("loyalty-account-cards")))
    assert "(Spring gift)" in own_page and "job:" not in own_page

    # The day comes: the periodic posting credits it under the job's key, once.
    Accrual.objects.filter(pk=pending.pk).update(available_at=timezone.now())
    earning.post(pending.pk)
    earning.post(pending.pk)
    transfer = Transfer.objects.get(card=card, kind=Transfer.BULK)
    assert transfer.key == f"job:{job.pk}:card:{card.pk}"
    assert transfer.description == "Spring gift"
    assert balance(card) == D("110.00")


def test_progress_endpoint_and_resume(manager_client, shoppers, django_capture_on_commit_callbacks):
    from oscar_loyalty import mass_jobs

    job = mass_jobs.create(
        mass_jobs.ACCRUAL,
        type(shoppers[500]).objects.all(),
        amount="1",
        description="x",
        by=None,
    )
    data = manager_client.get(url("loyalty-job-progress", job.pk)).json()
    assert (data["total"], data["done"], data["percent"], data["finished"]) == (5, 0, 0, False)
    content = page(manager_client.get(url("loyalty-job-detail", job.pk)))
    assert "job_progress" in content and "job_resume_form" in content

    with django_capture_on_commit_callbacks(execute=True):  # eager: the chunks run now
        manager_client.post(url("loyalty-job-resume", job.pk))
    data = manager_client.get(url("loyalty-job-progress", job.pk)).json()
    assert (data["done"], data["percent"], data["finished"]) == (5, 100, True)
    assert "mass accrual" in page(manager_client.get(url("loyalty-job-list"))).lower()


def test_a_broken_filter_starts_nothing(manager_client, shoppers):
    content = page(manager_client.get(url("loyalty-mass-accrual") + "?balance_min=lots"))
    assert "filter has errors" in content
    data = {"query": "balance_min=lots", "token": "t", "amount": "5", "description": "x"}
    manager_client.post(url("loyalty-mass-accrual"), {**data, "expected": "5", "confirm": "1"})
    assert not Job.objects.exists()
