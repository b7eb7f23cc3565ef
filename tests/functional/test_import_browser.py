"""A manager imports cards in a real browser: paste from Excel, adjust the columns, read the
preview's errors, apply, watch the progress bar, download the rows that were skipped.

The import's chunks are not run by Celery here: the test runs them one at a time while the
page polls, so the progress bar can be seen moving.
"""

import io
import re
from decimal import Decimal

import openpyxl
import pytest
from oscar.core.loading import get_model

from oscar_loyalty import cards, jobs, ledger, tasks

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Copied from Excel without a header: phone, then the balance the card should have.
PASTED = "79123456701\t500\n79123456702\t40\nabc\t5\n79123456703\t1,500\n79123456704\t0\n"


@pytest.fixture
def shop(program, settings, manager):
    settings.OSCAR_LOYALTY_IMPORT_CHUNK_SIZE = 2
    card = cards.issue_card(program, phone="79123456701")
    ledger.credit_card(card, Decimal("200"), "test:opening", kind="adjust")
    return card


@pytest.fixture
def queued(monkeypatch):
    """Jobs started by the page wait here instead of running at once."""
    started = []
    monkeypatch.setattr(tasks, "start_job", started.append)
    return started


def login(page, live_server):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_login-username", "manager@example.com")
    page.fill("#id_login-password", "manager")
    with page.expect_navigation():
        page.click("button[name=login_submit]")


def sample_row(page, n):
    return page.locator("#import_sample tbody tr", has_text=re.compile(rf"^\s*{n}\b"))


def test_paste_adjust_preview_apply_progress_and_errors(page, live_server, shop, queued):
    login(page, live_server)
    page.goto(live_server.url + "/dashboard/loyalty/import/")
    page.fill("#id_text", PASTED)
    page.click("#import_form button[type=submit]")
    page.wait_for_url(re.compile(r".*/import/\d+/check/$"))

    # No header: the amounts column is taken for a top-up, which would give 200 + 500.
    assert page.input_value("#id_col_0") == "phone"
    assert page.input_value("#id_col_1") == "topup"
    assert "200 → 700" in sample_row(page, 1).inner_text()

    # The manager says column B is the actual balance and checks again.
    page.select_option("#id_col_1", "balance")
    page.click("#check_again")
    page.wait_for_selector(".alert-success")
    assert "200 → 500" in sample_row(page, 1).inner_text()
    assert page.inner_text("#total_set").strip() == "1"
    assert page.inner_text("#total_new").strip() == "2"
    assert page.inner_text("#total_errors").strip() == "2"
    errors = page.inner_text("#import_errors")
    assert "“abc” is not a phone number." in errors
    assert "“1,500” is ambiguous" in errors
    assert not Card.objects.filter(phone="79123456702").exists()  # nothing written yet

    page.click("#apply_import")
    page.wait_for_url(re.compile(r".*/import/\d+/$"))
    (job,) = queued
    bar = page.locator("#job_progress")
    assert bar.get_attribute("aria-valuenow") == "0"

    chunk_ids = jobs.pending_chunks(job)
    assert len(chunk_ids) == 3  # five rows, two per chunk
    jobs.run_chunk(chunk_ids[0])
    page.wait_for_function(
        "document.getElementById('job_progress').getAttribute('aria-valuenow') === '40'"
    )
    for chunk_id in chunk_ids[1:]:
        jobs.run_chunk(chunk_id)
    page.wait_for_selector("#download_errors")  # the page reloads when the job ends
    assert "5 of 5 rows processed" in page.inner_text("#job_counts")
    assert "3 applied" in page.inner_text("#job_counts")
    assert ledger.balance(shop.account) == Decimal("500")

    with page.expect_download() as download:
        page.click("#download_errors")
    workbook = openpyxl.load_workbook(io.BytesIO(open(download.value.path(), "rb").read()))
    rows = [list(row) for row in workbook.active.iter_rows(values_only=True)]
    assert rows[0] == ["Row", "A", "B", "Error"]
    assert [row[0] for row in rows[1:]] == [3, 4]
    assert rows[1][3] == "“abc” is not a phone number."
    assert Job.objects.get(pk=job.pk).status == Job.DONE
