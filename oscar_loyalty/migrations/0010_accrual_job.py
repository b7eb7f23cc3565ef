"""An accrual made by a mass accrual names its job in its own field.

Until now a mass accrual with a later date left its pending points as accruals whose order
number was "job:<job id>". Those accruals now point at their job and have no order number;
one accrual per card and order, and one per card and job, so a rerun of a job still adds
nothing. An accrual is an order's or a job's, never both or neither.

The data step moves the accruals of jobs that still exist; one whose job row is gone keeps
its number (nothing could point at it). Backwards, the job's accruals get their number back.
The ledger keys that post them (``job:<id>:card:<card id>``) do not change.
"""

import re

import django.db.models.deletion
from django.db import migrations, models

JOB_NUMBER = re.compile(r"job:([1-9][0-9]*)")


def accruals_to_jobs(apps, schema_editor):
    Accrual = apps.get_model("oscar_loyalty", "Accrual")
    Job = apps.get_model("oscar_loyalty", "Job")
    numbers = (
        Accrual.objects.filter(job__isnull=True, order_number__startswith="job:")
        .order_by()
        .values_list("order_number", flat=True)
        .distinct()
    )
    by_job = {}
    for number in numbers:
        found = JOB_NUMBER.fullmatch(number)
        if found:
            by_job[int(found[1])] = number
    for pk in Job.objects.filter(pk__in=list(by_job)).values_list("pk", flat=True):
        Accrual.objects.filter(job__isnull=True, order_number=by_job[pk]).update(
            job_id=pk, order_number=""
        )


def jobs_to_order_numbers(apps, schema_editor):
    Accrual = apps.get_model("oscar_loyalty", "Accrual")
    jobs = Accrual.objects.filter(job__isnull=False).order_by().values_list("job_id", flat=True)
    for pk in list(jobs.distinct()):
        Accrual.objects.filter(job_id=pk).update(order_number=f"job:{pk}", job_id=None)


class Migration(migrations.Migration):
    dependencies = [
        ("oscar_loyalty", "0009_generated_descriptions"),
    ]

    operations = [
        migrations.AddField(
            model_name="accrual",
            name="job",
            field=models.ForeignKey(
                blank=True,
                help_text="The mass accrual that made it; empty for an order's points.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="accruals",
                to="oscar_loyalty.job",
                verbose_name="job",
            ),
        ),
        migrations.AlterField(
            model_name="accrual",
            name="order_number",
            field=models.CharField(
                blank=True, db_index=True, max_length=128, verbose_name="order number"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="accrual",
            name="loyalty_one_accrual",
        ),
        migrations.AddConstraint(
            model_name="accrual",
            constraint=models.UniqueConstraint(
                condition=models.Q(job__isnull=True),
                fields=("card", "order_number"),
                name="loyalty_one_accrual",
            ),
        ),
        migrations.AddConstraint(
            model_name="accrual",
            constraint=models.UniqueConstraint(
                condition=models.Q(job__isnull=False),
                fields=("card", "job"),
                name="loyalty_one_job_accrual",
            ),
        ),
        migrations.AddConstraint(
            model_name="accrual",
            constraint=models.CheckConstraint(
                condition=(models.Q(job__isnull=True) & ~models.Q(order_number=""))
                | (models.Q(job__isnull=False) & models.Q(order_number="")),
                name="loyalty_accrual_of_order_or_job",
            ),
        ),
        # Last: on PostgreSQL the rows it updates leave deferred foreign-key checks that
        # would make any later ALTER TABLE of this migration fail.
        migrations.RunPython(accruals_to_jobs, jobs_to_order_numbers),
    ]
