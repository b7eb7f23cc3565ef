"""The import screens as a manager uses them: upload or paste, preview, columns, apply,
errors file, undo; and the round trip export → edit → import."""

import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from oscar_loyalty.card_import import drafts, rows
from tests import excel_support as files
from tests.integration.dashboard_support import logged_in

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")

D = Decimal
HEADER = "Телефон\tНомер карты\tПополнение\tАктуальный баланс\n"

pytestmark = pytest.mark.django_db


def upload(client, program, data=None, name="cards.xlsx", text=""):
    payload = {"program": program.pk, "text": text}
    if data is not None:
        payload["file"] = SimpleUploadedFile(name, data)
    return client.post(reverse("loyalty-import"), payload)


def latest_job():
    return Job.objects.filter(kind=Job.IMPORT).latest("pk")


def test_staff_without_permissions_cannot_import(client, program, staff_without_permission):
    logged_in(client, staff_without_permission)
    assert client.get(reverse("loyalty-import")).status_code == 403
    assert client.get(reverse("loyalty-report")).status_code == 403


def test_upload_preview_apply_and_result(
    manager_client, program, django_capture_on_commit_callbacks
):
    data = files.xlsx(
        [
            ["Номер карты", "Телефон", "Актуальный баланс", "Комментарий"],
            ["", "79123456701", "150", "new"],
            ["", "abc", "10", "bad phone"],
        ]
    )
    response = upload(manager_client, program, data)
    job = latest_job()
    assert response.status_code == 302
    assert response.url == reverse("loyalty-import-preview", args=[job.pk])
    assert not Card.objects.exists()  # nothing written before the confirmation

    page = manager_client.get(response.url).content.decode()
    assert "1 row will change cards of" in page
    assert "“abc” is not a phone number." in page
    assert "B (Телефон)" in page
    assert "New card, opening balance 150" in page

    confirm = {"apply": "1", "checked": job.params["checked"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("loyalty-import-preview", args=[job.pk]), confirm)
    assert response.url == reverse("loyalty-import-job", args=[job.pk])
    card = Card.objects.get(phone="79123456701")
    assert ledger.balance(card.account) == D("150")

    page = manager_client.get(response.url).content.decode()
    assert "2 of 2 rows processed" in page
    recent = manager_client.get(reverse("loyalty-import")).content.decode()
    assert reverse("loyalty-import-job", args=[job.pk]) in recent  # listed once started
    assert reverse("loyalty-import-errors", args=[job.pk]) in page
    assert reverse("loyalty-import-undo", args=[job.pk]) in page
    # the preview of a started import leads to its result
    assert manager_client.get(reverse("loyalty-import-preview", args=[job.pk])).status_code == 302


def test_changing_the_columns_checks_again(manager_client, program):
    upload(manager_client, program, text="79123456701\t100\t7\n")
    job = latest_job()
    preview = reverse("loyalty-import-preview", args=[job.pk])
    response = manager_client.post(preview, {"col_0": "phone", "col_1": "balance", "col_2": ""})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.params["mapping"] == ["phone", "balance", ""]
    assert drafts.totals(job)[rows.NEW] == 1
    # the same column chosen twice is refused, with the reason
    response = manager_client.post(preview, {"col_0": "phone", "col_1": "phone"})
    assert response.status_code == 200
    assert "is chosen for more than one column" in response.content.decode()


def test_two_managers_confirming_one_table_the_second_must_say_import_it_again(
    manager_client, program, django_capture_on_commit_callbacks
):
    text = HEADER + "79123456701\t\t100\t\n"
    upload(manager_client, program, text=text)
    first = latest_job()
    upload(manager_client, program, text=text)
    second = latest_job()
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(
            reverse("loyalty-import-preview", args=[first.pk]),
            {"apply": "1", "checked": first.params["checked"]},
        )
    url = reverse("loyalty-import-preview", args=[second.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(url, {"apply": "1", "checked": second.params["checked"]})
    assert response.url == url  # back to its preview, still a draft
    second.refresh_from_db()
    assert drafts.is_draft(second)
    card = Card.objects.get(phone="79123456701")
    assert ledger.balance(card.account) == D("100")  # not doubled
    page = manager_client.get(url).content.decode()
    assert "The cards changed since the table was checked" in page
    assert f"import #{first.pk}" in page and "Import it again" in page
    assert "Balance 100 → 200" in page  # the row is now a top-up, and says so

    confirm = {"apply": "1", "checked": second.params["checked"]}
    response = manager_client.post(url, confirm)
    assert "imported as import #" in manager_client.get(response.url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(url, {**confirm, "again": "on"})
    assert response.url == reverse("loyalty-import-job", args=[second.pk])
    assert ledger.balance(card.account) == D("200")


def test_the_job_page_counts_applied_unchanged_and_skipped_rows(
    manager_client, program, django_capture_on_commit_callbacks
):
    card = cards.issue_card(program, phone="79123456701")
    ledger.credit_card(card, D("50"), "test:opening", kind="adjust")
    upload(
        manager_client,
        program,
        text=HEADER + "79123456701\t\t\t50\n79123456702\t\t\t5\nabc\t\t\t\n",
    )
    job = latest_job()
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            reverse("loyalty-import-preview", args=[job.pk]),
            {"apply": "1", "checked": job.params["checked"]},
        )
    page = manager_client.get(response.url).content.decode()
    assert "1 applied" in page and "1 unchanged" in page and "1 skipped" in page


def test_a_confirmation_of_an_older_check_is_refused(manager_client, program):
    upload(manager_client, program, text=HEADER + "79123456701\t\t\t10\n")
    job = latest_job()
    stale = {"apply": "1", "checked": "2000-01-01T00:00:00"}
    response = manager_client.post(
        reverse("loyalty-import-preview", args=[job.pk]), stale, follow=True
    )
    assert "checked again meanwhile" in response.content.decode()
    assert not Card.objects.exists()


@pytest.mark.parametrize(
    "data, name, message",
    [
        (files.zip_bomb_xlsx(megabytes=210), "bomb.xlsx", "unpacks to more than 200 MB"),
        (files.entity_bomb_xlsx(), "entities.xlsx", "XML entity declarations"),
        (b"\x00\x01garbage", "cards.xlsx", "not a valid .xlsx workbook"),
    ],
)
def test_a_hostile_file_is_refused_on_the_form(manager_client, program, data, name, message):
    response = upload(manager_client, program, data, name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_a_file_too_large_is_refused_on_the_form(manager_client, program, settings):
    settings.OSCAR_LOYALTY_IMPORT_MAX_FILE_BYTES = 100
    response = upload(manager_client, program, b"7" * 200, "cards.csv")
    assert "larger than 0 MB" in response.content.decode()


def test_pasted_text_is_limited_by_the_bytes_the_browser_sends(manager_client, program, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    page = manager_client.get(reverse("loyalty-import"))
    limit = page.context["paste_limit"]
    assert f'data-paste-limit="{limit}"' in page.content.decode()
    assert 18_000 < limit < 20_000  # room for the form's other fields
    line = "79123456701\t\t\t10\t" + "comment " * 10 + "\r\n"  # as sent: CRLF line ends
    text = line * (limit // len(line) + 1)
    assert len(text.replace("\r\n", "\n")) < limit < len(text) < 20_000 - 200
    response = upload(manager_client, program, text=text)
    assert response.status_code == 200
    assert "too much text to paste (at most 18 KB)" in response.content.decode()
    assert not Job.objects.exists()


def test_a_paste_larger_than_django_accepts_is_refused_with_a_message(program, manager, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    client = logged_in(Client(enforce_csrf_checks=True), manager)
    client.get(reverse("loyalty-import"))
    token = client.cookies["csrftoken"].value
    payload = {"program": program.pk, "csrfmiddlewaretoken": token}
    response = client.post(reverse("loyalty-import"), {**payload, "text": "7\t1\r\n" * 5000})
    assert response.status_code == 413
    assert "too much text to paste" in response.content.decode()
    assert not Job.objects.exists()
    # a form of the usual size still needs its CSRF token
    small = {"program": program.pk, "text": HEADER + "79123456701\t\t\t10\n"}
    assert client.post(reverse("loyalty-import"), small).status_code == 403
    assert client.post(reverse("loyalty-import"), {**small, **payload}).status_code == 302


def test_nothing_to_read_is_refused(manager_client, program):
    response = upload(manager_client, program)
    assert "Upload a file or paste cells" in response.content.decode()


def test_error_file_has_the_original_cells_and_a_reason_and_no_formulas(
    manager_client, program, django_capture_on_commit_callbacks
):
    upload(manager_client, program, text=HEADER + '79123456701\t\t\t10\n=HYPERLINK("x")\t\t-5\t\n')
    job = latest_job()
    response = manager_client.get(reverse("loyalty-import-errors", args=[job.pk]))
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = files.read_back(b"".join(response.streaming_content))
    assert rows[0] == ["Row", "Телефон", "Номер карты", "Пополнение", "Актуальный баланс", "Error"]
    assert rows[1][:4] == [3, '\'=HYPERLINK("x")', None, "'-5"]
    assert "is not a phone number" in rows[1][5]


def test_undo_screen_and_job(manager_client, program, django_capture_on_commit_callbacks):
    card = cards.issue_card(program, phone="79123456701")
    upload(manager_client, program, text=HEADER + "79123456701\t\t100\t\n79123456702\t\t\t50\n")
    job = latest_job()
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(
            reverse("loyalty-import-preview", args=[job.pk]),
            {"apply": "1", "checked": job.params["checked"]},
        )
    ledger.debit_card(card, D("60"), "test:spend")
    page = manager_client.get(reverse("loyalty-import-undo", args=[job.pk])).content.decode()
    assert "1 row&#x27;s transfer will be reversed." in page or "1 row's transfer" in page
    assert "has spent 60 of the 100 imported points since" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("loyalty-import-undo", args=[job.pk]))
    undo_job = Job.objects.get(params__undo_of=job.pk)
    assert response.url == reverse("loyalty-import-job", args=[undo_job.pk])
    page = manager_client.get(response.url).content.decode()
    assert f"Undo of import #{job.pk}" in page
    assert "has spent 60" in page
    assert ledger.balance(Card.objects.get(phone="79123456702").account) == 0


def test_round_trip_export_edit_import(manager_client, program, django_capture_on_commit_callbacks):
    for n, points in ((1, "100"), (2, "200"), (3, "300")):
        card = cards.issue_card(program, phone=f"7912345670{n}")
        ledger.credit_card(card, D(points), f"test:{n}", kind="adjust")
    response = manager_client.post(reverse("loyalty-card-export"), {"format": "xlsx"})
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.active
    header = [cell.value for cell in sheet[1]]
    balance_column = header.index("Balance") + 1
    phone_column = header.index("Phone") + 1
    assert isinstance(sheet.cell(2, phone_column).value, str)  # phones stay text
    for row in range(2, sheet.max_row + 1):
        if sheet.cell(row, phone_column).value == "79123456702":
            sheet.cell(row, balance_column).value = 250
    edited = io.BytesIO()
    workbook.save(edited)

    upload(manager_client, program, edited.getvalue())
    job = latest_job()
    assert job.params["header"] is True
    assert "phone" in job.params["mapping"] and "balance" in job.params["mapping"]
    totals = drafts.totals(job)
    assert (totals[rows.SET], totals[rows.SAME], totals["errors"]) == (1, 2, 0)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(
            reverse("loyalty-import-preview", args=[job.pk]),
            {"apply": "1", "checked": job.params["checked"]},
        )
    balances = dict(Card.objects.values_list("phone", "account__balance"))
    assert balances == {"79123456701": D("100"), "79123456702": D("250"), "79123456703": D("300")}
