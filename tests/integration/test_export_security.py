"""Export files hold customers' data: private storage, unguessable names, downloads for
managers who may see the data, jobs started by POST only, files deleted after a while.
Also: a job is stalled when it has made no progress, not when it is old."""

import importlib
import pkgutil
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model

import oscar_loyalty.migrations
from oscar_loyalty import cards, jobs, ledger, reports, tasks
from tests import excel_support as files
from tests import factories
from tests.integration.dashboard_support import logged_in, make_staff

Job = get_model("oscar_loyalty", "Job")

pytestmark = pytest.mark.django_db


def staff_with(email, *codenames):
    user = make_staff(email, perms=False)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="oscar_loyalty", codename__in=codenames)
    )
    return user


@pytest.fixture
def large(program, monkeypatch):
    """A card with points, and every export is "large": it runs as a job."""
    card = cards.issue_card(program, phone="79123456701")
    ledger.credit_card(card, Decimal("10"), "test:1", kind="adjust")
    monkeypatch.setattr(reports, "INLINE_ROWS", 0)


def export_job(manager_client, program, kind, django_capture_on_commit_callbacks, fmt="xlsx"):
    """A finished export job of ``kind`` started from the dashboard, with its file."""
    url = "loyalty-card-export" if kind == Job.EXPORT else "loyalty-report-export"
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse(url), {"format": fmt})
    job = Job.objects.get(kind=kind)
    assert response.url == reverse("loyalty-job-detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.DONE and job.result_file
    return job


@pytest.fixture
def card_export(manager_client, program, large, django_capture_on_commit_callbacks):
    return export_job(manager_client, program, Job.EXPORT, django_capture_on_commit_callbacks)


@pytest.fixture
def report_export(manager_client, program, large, django_capture_on_commit_callbacks):
    return export_job(
        manager_client, program, Job.REPORT, django_capture_on_commit_callbacks, "csv"
    )


def download(client, job):
    return client.get(reverse("loyalty-export-download", args=[job.pk]))


# --- private storage, unguessable names ------------------------------------------------------


def test_export_files_are_private_and_unguessable(manager_client, card_export):
    name = card_export.result_file.name
    assert not re.search(r"\d{8}-\d{4}", name)  # no minute to guess
    assert re.fullmatch(r"exports/[\w-]{32}\.xlsx", name)
    assert not default_storage.exists(name)  # nothing in (public) media
    location = Path(card_export.result_file.path).resolve()
    assert Path(settings.MEDIA_ROOT).resolve() not in location.parents
    with pytest.raises(ValueError):
        card_export.result_file.url  # noqa: B018 (no URL reaches the file)
    assert manager_client.get(settings.MEDIA_URL + name).status_code == 404

    response = download(manager_client, card_export)
    assert re.fullmatch(
        r'attachment; filename="cards-\d{8}-\d{4}\.xlsx"', response["Content-Disposition"]
    )
    assert len(files.read_back(b"".join(response.streaming_content))) == 2


def test_two_exports_of_the_same_minute_get_different_files(
    manager_client, card_export, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("loyalty-card-export"), {"format": "xlsx"})
    names = {job.result_file.name for job in Job.objects.filter(kind=Job.EXPORT)}
    assert len(names) == 2


def test_without_the_alias_exports_go_beside_media_root_with_no_url(tmp_path):
    from oscar_loyalty import storage

    with override_settings(
        MEDIA_ROOT=str(tmp_path / "media"), OSCAR_LOYALTY_EXPORT_STORAGE="loyalty_exports"
    ):
        private = storage.PrivateFileSystemStorage()
        assert Path(private.location) == tmp_path / "media-private" / "oscar_loyalty"
        with pytest.raises(ValueError):
            private.url("exports/x.xlsx")


def test_a_storage_with_urls_is_flagged_by_a_system_check():
    from oscar_loyalty import storage

    assert storage.check_export_storage() == []
    with override_settings(OSCAR_LOYALTY_EXPORT_STORAGE="default"):
        (warning,) = storage.check_export_storage()
    assert warning.id == "oscar_loyalty.W003"


# --- who may download ------------------------------------------------------------------------


def test_a_guest_is_sent_to_log_in(card_export):
    response = download(Client(), card_export)
    assert response.status_code == 302
    assert "/login/?next=" in response.url


def test_a_customer_is_refused(client, card_export):
    factories.make_customer("shopper@example.com", password="manager")
    client.login(username="shopper@example.com", password="manager")
    assert download(client, card_export).status_code == 403


@pytest.mark.parametrize(
    ("codenames", "cards_export", "report"),
    [
        (("view_job",), 403, 403),
        (("view_job", "view_card"), 200, 403),
        (("view_job", "view_transfer"), 403, 200),
        (("view_card", "view_transfer"), 403, 403),  # no view_job
    ],
)
def test_a_download_needs_the_permissions_of_its_data(
    client, card_export, report_export, codenames, cards_export, report
):
    logged_in(client, staff_with("clerk@example.com", *codenames))
    assert download(client, card_export).status_code == cards_export
    assert download(client, report_export).status_code == report


def test_jobs_pages_hide_exports_the_manager_may_not_see(client, card_export, report_export):
    logged_in(client, staff_with("clerk@example.com", "view_job", "view_transfer"))
    page = client.get(reverse("loyalty-job-list")).content.decode()
    assert reverse("loyalty-job-detail", args=[report_export.pk]) in page
    assert reverse("loyalty-job-detail", args=[card_export.pk]) not in page
    for name in ("loyalty-job-detail", "loyalty-job-progress"):
        assert client.get(reverse(name, args=[card_export.pk])).status_code == 404
    page = client.get(reverse("loyalty-job-detail", args=[report_export.pk])).content.decode()
    assert reverse("loyalty-export-download", args=[report_export.pk]) in page


# --- starting an export is a POST with CSRF -------------------------------------------------


@pytest.mark.parametrize("name", ["loyalty-card-export", "loyalty-report-export"])
def test_a_get_never_starts_an_export(manager_client, large, name):
    response = manager_client.get(reverse(name), {"format": "xlsx"})
    assert response.status_code == 405
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("page", "name"),
    [("loyalty-card-list", "loyalty-card-export"), ("loyalty-report", "loyalty-report-export")],
)
def test_export_buttons_post_a_csrf_token(manager, large, page, name):
    client = logged_in(Client(enforce_csrf_checks=True), manager)
    assert client.post(reverse(name), {"format": "xlsx"}).status_code == 403  # no token
    assert not Job.objects.exists()
    html = client.get(reverse(page), {"status": "active"}).content.decode()
    form = re.search(rf'<form method="post" action="{reverse(name)}"[^>]*>(.*?)</form>', html, re.S)
    assert form and "csrfmiddlewaretoken" in form.group(1)
    assert 'name="query" value="status=active"' in form.group(1)


# --- retention -------------------------------------------------------------------------------


def finished_days_ago(job, days):
    Job.objects.filter(pk=job.pk).update(finished=timezone.now() - timedelta(days=days))


def test_expired_export_files_are_deleted_and_the_download_says_so(
    manager_client, card_export, report_export
):
    name = card_export.result_file.name
    storage = card_export.result_file.storage
    finished_days_ago(card_export, 8)
    finished_days_ago(report_export, 6)
    assert tasks.delete_expired_exports.delay().get() == 1
    assert not storage.exists(name)
    card_export.refresh_from_db()
    assert not card_export.result_file and card_export.file_deleted
    report_export.refresh_from_db()
    assert storage.exists(report_export.result_file.name)  # within the 7 days

    response = download(manager_client, card_export)
    assert response.status_code == 404
    assert "was deleted on" in response.content.decode()
    assert "exports are kept 7 days" in response.content.decode()
    page = manager_client.get(reverse("loyalty-job-detail", args=[card_export.pk])).content.decode()
    assert 'id="job_file_deleted"' in page
    assert reverse("loyalty-export-download", args=[card_export.pk]) not in page


@override_settings(OSCAR_LOYALTY_EXPORT_RETENTION_DAYS=2)
def test_retention_is_a_setting(report_export):
    finished_days_ago(report_export, 3)
    assert reports.delete_expired_exports() == 1
    assert reports.delete_expired_exports() == 0  # done once


def test_a_file_missing_from_storage_is_a_clear_404(manager_client, card_export):
    card_export.result_file.storage.delete(card_export.result_file.name)
    response = download(manager_client, card_export)
    assert response.status_code == 404
    assert "no longer there" in response.content.decode()


def test_the_sandbox_beat_deletes_expired_exports():
    from sandbox import settings as sandbox_settings

    schedule = sandbox_settings.CELERY_BEAT_SCHEDULE
    tasks_run = {entry["task"] for entry in schedule.values()}
    assert "oscar_loyalty.tasks.delete_expired_exports" in tasks_run
    assert tasks.delete_expired_exports.name == "oscar_loyalty.tasks.delete_expired_exports"


def test_the_admin_shows_an_export_job_without_a_file_link(client, card_export):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "x")
    client.force_login(root)
    response = client.get(reverse("admin:oscar_loyalty_job_change", args=[card_export.pk]))
    assert response.status_code == 200
    assert card_export.result_file.name not in response.content.decode()


# --- files written before the private storage -------------------------------------------------


def migration_moving_public_exports():
    for module in pkgutil.iter_modules(oscar_loyalty.migrations.__path__):
        migration = importlib.import_module(f"oscar_loyalty.migrations.{module.name}")
        if hasattr(migration, "move_public_exports"):
            return migration.move_public_exports
    raise AssertionError("no migration moves the public export files")


def test_the_migration_moves_old_public_exports_into_private_storage(manager_client):
    from django.apps import apps

    old = "oscar_loyalty/jobs/cards-20250101-1200.xlsx"
    default_storage.save(old, ContentFile(b"cells"))
    kept = Job.objects.create(kind=Job.EXPORT, status=Job.DONE, finished=timezone.now())
    Job.objects.filter(pk=kept.pk).update(result_file=old)
    lost = Job.objects.create(kind=Job.REPORT, status=Job.DONE, finished=timezone.now())
    Job.objects.filter(pk=lost.pk).update(result_file="oscar_loyalty/jobs/gone-20250101.csv")

    migration_moving_public_exports()(apps, None)

    assert not default_storage.exists(old)
    kept.refresh_from_db()
    assert kept.result_file.name.startswith("exports/")
    response = download(manager_client, kept)
    assert b"".join(response.streaming_content) == b"cells"
    assert 'filename="cards-20250101-1200.xlsx"' in response["Content-Disposition"]
    lost.refresh_from_db()
    assert not lost.result_file and lost.file_deleted


# --- stalled jobs ----------------------------------------------------------------------------


def test_a_job_is_stalled_when_it_made_no_progress_not_when_it_is_old(program):
    card_ids = [cards.issue_card(program, phone=f"7912345670{n}").pk for n in range(3)]
    moving = jobs.create(Job.MASS_ACCRUAL, card_ids, program=program, chunk_size=1)
    stuck = jobs.create(Job.MASS_ACCRUAL, card_ids, program=program, chunk_size=1)
    long_ago = timezone.now() - timedelta(hours=2)
    Job.objects.filter(pk__in=[moving.pk, stuck.pk]).update(created=long_ago)
    Job.objects.filter(pk=moving.pk).update(progressed=timezone.now() - timedelta(minutes=1))
    Job.objects.filter(pk=stuck.pk).update(progressed=timezone.now() - timedelta(minutes=11))
    assert list(jobs.stalled_jobs()) == [stuck]


def test_a_finished_chunk_is_progress(program, monkeypatch):
    card_ids = [cards.issue_card(program, phone=f"7912345670{n}").pk for n in range(2)]
    job = jobs.create("test_noop", card_ids, chunk_size=1)
    monkeypatch.setitem(jobs.HANDLERS, "test_noop", lambda job, items: (len(items), []))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(created=an_hour_ago, progressed=an_hour_ago)
    assert list(jobs.stalled_jobs()) == [job]
    assert jobs.run_chunk(jobs.pending_chunks(job)[0])
    assert not jobs.stalled_jobs().exists()  # one chunk left, but it moved just now
