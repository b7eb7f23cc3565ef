"""A manager's day in a real browser: issue a card to a new customer, accrue, debit, block,
label the customer, then run a small mass accrual and watch its progress bar to the end."""

import re
from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from oscar_loyalty import jobs, tasks
from tests import factories
from tests.integration.dashboard_support import make_staff

Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")
Job = get_model("oscar_loyalty", "Job")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(settings, program):
    settings.OSCAR_LOYALTY_JOB_CHUNK_SIZE = 2
    # Made by a migration, but an earlier transactional test may have flushed it.
    Category.objects.get_or_create(name="VIP", defaults={"colour": "#6f42c1"})
    for n in range(5):
        factories.make_card(program, phone=f"+7916555{n:04d}")
    return make_staff(first_name="Maria", last_name="Manager")


def log_in(page, live_server):
    page.goto(f"{live_server.url}/dashboard/login/")
    page.fill("#id_username", "manager@example.com")
    page.fill("#id_password", "manager")
    page.click("#dashboard_login_form input[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/$"))


def alert(page):
    return page.locator(".alert-success").first.inner_text()


def test_a_managers_day(page, live_server, shop, monkeypatch):
    log_in(page, live_server)

    # The "Loyalty" menu leads to the cards.
    page.click("#bottom_nav_bar a.dropdown-toggle:has-text('Loyalty')")
    page.click("#bottom_nav_bar a.dropdown-item[href$='/loyalty/cards/']")
    page.wait_for_selector("h1:has-text('Bonus cards')")

    # Issue a card to a customer who is not in the shop yet.
    page.click("#issue_card")
    page.fill("#id_email", "nina@example.com")
    page.check("#id_new_customer")
    page.fill("#id_first_name", "Nina")
    page.fill("#id_last_name", "Orlova")
    page.fill("#id_phone", "8 (916) 111-22-33")
    page.click("#card_issue_form button[type=submit]")
    page.wait_for_selector(".loyalty-balance")
    card = Card.objects.get(user__email="nina@example.com")
    assert f"Card {card.number} issued to Nina Orlova" in alert(page)
    assert page.inner_text(".loyalty-phone") == "+7 916 111-22-33"

    # Accrue 500, then debit 120, each with what the customer will read.
    page.check("#adjust_form input[value=accrue]")
    page.fill("#adjust_form [name=amount]", "500")
    page.fill("#adjust_form [name=description]", "Welcome gift")
    page.fill("#adjust_form [name=note]", "Asked by phone")
    page.click("#adjust_form button[type=submit]")
    page.wait_for_selector("text=500 points accrued")
    page.check("#adjust_form input[value=debit]")
    page.fill("#adjust_form [name=amount]", "120")
    page.fill("#adjust_form [name=description]", "Correction")
    page.click("#adjust_form button[type=submit]")
    page.wait_for_selector("text=120 points debited")
    assert page.inner_text(".loyalty-balance") == "380"
    assert "Welcome gift" in page.inner_text(".loyalty-history")

    # Block it, with a reason.
    page.fill("#reason_block", "Card reported lost")
    page.click("#status_block_form button[type=submit]")
    page.wait_for_selector("text=The card is now blocked")
    assert page.inner_text(".page-header .loyalty-status") == "Blocked"

    # Label the customer "VIP".
    page.select_option(".loyalty-add-category select", label="VIP")
    page.click(".loyalty-add-category button[type=submit]")
    page.wait_for_selector(".loyalty-chip:has-text('VIP')")
    assert "is now in category “VIP”" in alert(page)

    # A small mass accrual to the active cards; the job waits for its worker, the test plays
    # the worker chunk by chunk so the bar can be watched.
    started = []
    monkeypatch.setattr(tasks, "start_job", started.append)
    page.goto(f"{live_server.url}/dashboard/loyalty/cards/?status=active")
    page.click("#mass_accrual")
    page.fill("#mass_job_form [name=amount]", "25")
    page.fill("#mass_job_form [name=description]", "Spring campaign")
    page.click("#mass_job_form button[type=submit]")
    assert page.inner_text(".loyalty-confirm-count") == "5"
    assert page.inner_text(".loyalty-confirm-total") == "125 points"
    page.click("#mass_job_confirm button[name=confirm]")
    page.wait_for_selector("#job_progress", state="attached")
    (job,) = started
    assert page.get_attribute("#job_progress", "aria-valuenow") == "0"

    chunks = list(job.chunks.order_by("index").values_list("pk", flat=True))
    assert len(chunks) == 3
    jobs.run_chunk(chunks[0])
    page.wait_for_function("document.getElementById('job_progress').textContent === '40%'")
    for chunk in chunks[1:]:
        jobs.run_chunk(chunk)
    # At the end the page reloads itself with the result.
    page.wait_for_selector("text=Every item succeeded", timeout=20_000)
    assert page.get_attribute("#job_progress", "aria-valuenow") == "100"
    assert "5 succeeded" in page.inner_text("#job_counts")
    job.refresh_from_db()
    assert job.status == Job.DONE
    balances = set(Card.objects.exclude(pk=card.pk).values_list("account__balance", flat=True))
    assert balances == {Decimal("25.00")}
    assert factories.refreshed(card).account.balance == Decimal("380.00")  # blocked: skipped
