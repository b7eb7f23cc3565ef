"""The points report (totals, liability, filters) and the exports of cards and transfers."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger, reports
from tests import excel_support as files
from tests import factories
from tests.integration.dashboard_support import logged_in

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal

pytestmark = pytest.mark.django_db


@pytest.fixture
def activity(program, manager):
    """Two cards with one of every kind of movement."""
    anna = cards.issue_card(program, phone="79123456701", number="4000000000006")
    boris = cards.issue_card(program, phone="79123456702")
    ledger.credit_card(anna, D("500"), "order:1:earn")  # earned 500
    ledger.credit_card(boris, D("100"), "manual:1", kind=Transfer.ADJUST, created_by=manager)
    ledger.debit_card(boris, D("30"), "manual:2", kind=Transfer.ADJUST, to=ledger.ISSUED)
    ledger.debit_card(anna, D("120"), "order:2:spend")  # spent 120
    ledger.hold(anna, D("50"), "order:3:hold")  # 50 reserved ...
    ledger.release(anna, D("50"), "order:3:release")  # ... and given back
    ledger.hold(anna, D("40"), "order:4:hold")  # reserved, still held
    ledger.refund(anna, D("20"), "order:2:refund")  # 20 of the spent come back
    ledger.debit_card(anna, D("10"), "expire:1", kind=Transfer.EXPIRE, to=ledger.EXPIRED)
    ledger.take_back(boris, D("100"), "order:5:reverse")  # 70 from the card, 30 as debt
    return anna, boris


def test_totals_by_kind_add_up_to_the_change_of_balances(activity):
    anna, boris = activity
    totals = reports.totals(reports.transfers())
    assert totals == {
        "earned": D("570.00"),  # 500 + 100 - 30
        "spent": D("160.00"),  # 120 + 50 - 50 + 40
        "expired": D("10.00"),
        "reversed": D("50.00"),  # 70 taken back - 20 refunded
        "net": D("350.00"),
    }
    on_cards = ledger.balance(anna.account) + ledger.balance(boris.account)
    assert totals["net"] == on_cards


def test_outstanding_points_are_the_shops_liability(program, activity):
    program.point_value = D("0.50")
    program.save()
    (row,) = reports.outstanding()
    assert row["on_cards"] == D("350.00")
    assert row["held"] == D("40.00")
    assert row["points"] == D("390.00")
    assert row["value"] == D("195.00")
    assert row["debt"] == D("30.00")


def test_filters_by_kind_manager_card_and_period(activity, manager):
    anna, _boris = activity
    assert reports.transfers(kind=Transfer.EXPIRE).count() == 1
    assert {t.key for t in reports.transfers(manager=manager)} == {"manual:1"}
    by_number = set(reports.transfers(card="4000 0000 0000 6").values_list("card", flat=True))
    assert by_number == {anna.pk}
    by_phone = set(reports.transfers(card="8 912 345-67-02").values_list("card", flat=True))
    assert by_phone == {activity[1].pk}
    today = timezone.localdate()
    assert reports.transfers(date_from=today, date_to=today).count() == 11
    assert not reports.transfers(date_to=today - timedelta(days=1)).exists()
    old = timezone.now() - timedelta(days=40)
    ledger.credit_card(anna, D("1000"), "order:0:earn", created=old)  # (transfers never change)
    assert reports.totals(reports.transfers())["earned"] == D("1570.00")
    assert reports.totals(reports.transfers(date_from=today))["earned"] == D("570.00")
    last_month = reports.transfers(date_to=today - timedelta(days=1))
    assert [t.key for t in last_month] == ["order:0:earn"]


def test_report_page_shows_totals_liability_and_transfers(manager_client, activity):
    page = manager_client.get(reverse("loyalty-report"), {"kind": Transfer.EXPIRE}).content.decode()
    assert 'id="total_expired">10<' in page
    assert "1 transfer" in page
    assert "Expired" in page
    page = manager_client.get(
        reverse("loyalty-report"), {"date_from": "2030-01-02", "date_to": "2030-01-01"}
    )
    assert "The end date is before the start date." in page.content.decode()


def test_report_export_xlsx_and_csv(manager_client, activity):
    anna = activity[0]
    ledger.credit_card(anna, D("5"), "manual:3", kind="adjust", description="=cmd|' /C calc'!A0")
    response = manager_client.post(
        reverse("loyalty-report-export"), {"format": "xlsx", "query": "kind=adjust"}
    )
    rows = files.read_back(b"".join(response.streaming_content))
    assert rows[0][:7] == [
        "Date",
        "Programme",
        "Card number",
        "Phone",
        "Customer",
        "Kind",
        "Change",
    ]
    assert len(rows) == 4
    descriptions = {row[8] for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in descriptions  # never a live formula
    changes = sorted(row[6] for row in rows[1:])
    assert changes == [-30, 5, 100]

    response = manager_client.post(
        reverse("loyalty-report-export"), {"format": "csv", "query": "kind=adjust"}
    )
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == 4
    assert "'=cmd" in text


def test_card_export_follows_the_card_list_filter(manager_client, program):
    active = cards.issue_card(program, phone="79123456701")
    blocked = cards.issue_card(program, phone="79123456702")
    cards.block(blocked, "lost")
    response = manager_client.post(
        reverse("loyalty-card-export"), {"query": "status=blocked", "format": "xlsx"}
    )
    rows = files.read_back(b"".join(response.streaming_content))
    assert [row[0] for row in rows[1:]] == [blocked.number]
    assert active.number not in str(rows)
    response = manager_client.post(reverse("loyalty-card-export"), {"format": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="cards-')
    assert len(b"".join(response.streaming_content).decode("utf-8-sig").splitlines()) == 3


def test_card_export_with_a_broken_filter_exports_nothing(manager_client, program):
    response = manager_client.post(reverse("loyalty-card-export"), {"query": "balance_min=abc"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("loyalty-card-list"))


def test_a_large_export_is_a_job_with_a_download(
    manager_client, program, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(reports, "INLINE_ROWS", 2)
    for n in range(5):
        customer = factories.make_customer(f"c{n}@example.com", first_name="=EVIL")
        cards.issue_card(program, user=customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("loyalty-card-export"), {"format": "xlsx"})
    job = Job.objects.get(kind=Job.EXPORT)
    assert response.url == reverse("loyalty-job-detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.DONE and job.result_file
    assert job.params["rows"] == 5
    response = manager_client.get(reverse("loyalty-export-download", args=[job.pk]))
    rows = files.read_back(b"".join(response.streaming_content))
    assert len(rows) == 6
    assert {row[2] for row in rows[1:]} == {"'=EVIL"}


def test_a_large_report_export_is_a_job(
    manager_client, activity, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(reports, "INLINE_ROWS", 1)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("loyalty-report-export"), {"format": "csv"})
    job = Job.objects.get(kind=Job.REPORT)
    job.refresh_from_db()
    assert job.result_file.name.endswith(".csv")
    assert job.params["rows"] == 11


def test_export_download_needs_permission(client, program, staff_without_permission):
    logged_in(client, staff_without_permission)
    job = reports.start_export(Job.EXPORT, "xlsx", "")
    assert client.get(reverse("loyalty-export-download", args=[job.pk])).status_code == 403
