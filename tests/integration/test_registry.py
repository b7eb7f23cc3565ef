"""Jobs run in a process that never imported the dashboard (a worker of a shop whose
dashboard app is not installed, or not loaded yet): their handlers and export sources are
registered when the app is ready, not by importing the views."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys

from django.conf import settings
from tests import settings as base

names = {name: getattr(base, name) for name in dir(base) if name.isupper()}
names["INSTALLED_APPS"] = [a for a in base.INSTALLED_APPS if "oscar_loyalty.dashboard" not in a]
names["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
settings.configure(**names)

import django

django.setup()
loaded = sorted(m for m in sys.modules if m.startswith("oscar_loyalty.dashboard"))
assert not loaded, f"django.setup() imported the dashboard: {loaded}"

from django.core.management import call_command

call_command("migrate", verbosity=0)

from oscar_loyalty import jobs, mass_jobs, reports
from oscar_loyalty.models import Card, Job
from tests import factories

card = factories.make_card(factories.make_program(), phone="+79120000001")
accrual = mass_jobs.create(mass_jobs.ACCRUAL, Card.objects.all(), amount="25", description="Gift")
export = reports.start_export(Job.EXPORT, "csv", "")
for job in (accrual, export):
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)
    job.refresh_from_db()
    assert (job.status, job.succeeded, job.errors) == (Job.DONE, 1, []), (job.kind, job.errors)
card.account.refresh_from_db()
assert card.account.balance == 25, card.account.balance
with export.result_file.open("rb") as file:
    assert card.number.encode() in file.read()
print("jobs ran")
"""


def test_jobs_run_without_the_dashboard_imported():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sandbox")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "jobs ran"
