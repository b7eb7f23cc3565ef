"""Views of the jobs: the list, a job's page with its progress bar, its JSON, and resume."""

from django.contrib import messages
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.generic import DetailView, View
from django.views.generic.detail import SingleObjectMixin
from django_tables2 import SingleTableView
from oscar.core.loading import get_model

from oscar_loyalty import conf, mass_jobs, tasks
from oscar_loyalty.dashboard.mixins import TEMPLATES, per_page
from oscar_loyalty.loading import get_class

Job = get_model("oscar_loyalty", "Job")
Message = get_model("oscar_loyalty", "Message")

JobTable = get_class("dashboard.jobs.tables", "JobTable")
hidden_job_kinds = get_class("dashboard.mixins", "hidden_job_kinds")
job_prefix = get_class("dashboard.notifications.filters", "job_prefix")


class VisibleJobMixin:
    """Only the jobs the manager may see: an export needs the permissions of its data."""

    def get_queryset(self):
        return super().get_queryset().exclude(kind__in=hidden_job_kinds(self.request.user))


class JobListView(VisibleJobMixin, SingleTableView):
    model = Job
    table_class = JobTable
    template_name = TEMPLATES + "job_list.html"
    context_table_name = "jobs"

    def get_queryset(self):
        # Import drafts wait for the manager's confirmation on their own preview page.
        return super().get_queryset().exclude(params__has_key="draft").select_related("created_by")

    def get_table_pagination(self, table):
        return {"per_page": per_page()}


def job_progress(job):
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "total": job.total,
        "done": job.done,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "percent": job.percent,
        "finished": job.status not in (Job.NEW, Job.RUNNING),
    }


class JobDetailView(VisibleJobMixin, DetailView):
    """A job's progress bar while it runs, its result (counts, failures) when it is done."""

    model = Job
    template_name = TEMPLATES + "job_detail.html"
    context_object_name = "job"
    failures_shown = 500

    def get_queryset(self):
        return super().get_queryset().select_related("created_by", "program")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        context["progress"] = job_progress(job)
        context["failures"] = job.errors[: self.failures_shown]
        context["more_failures"] = max(len(job.errors) - self.failures_shown, 0)
        context["chunks_left"] = job.chunks.filter(done=False).count()
        context["retention_days"] = conf.export_retention_days
        query = job.params.get("query")
        if job.kind in (mass_jobs.ACCRUAL, mass_jobs.DEBIT):
            context["card_list_url"] = reverse("loyalty-card-list") + (f"?{query}" if query else "")
            when = job.params.get("available_at")
            context["available_at"] = parse_datetime(when) if when else None
            context["is_mass_job"] = True
            if job.params.get("notify"):
                context["job_messages"] = job_messages(job)
        return context


def job_messages(job):
    """How many messages a notifying mass job recorded, and how many of them were sent or
    failed for good (the rest are queued or being sent)."""
    counts = dict(
        Message.objects.filter(key__startswith=job_prefix(job.pk))
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "recorded": sum(counts.values()),
        "sent": counts.get(Message.SENT, 0),
        "failed": counts.get(Message.FAILED, 0),
    }


class JobProgressView(VisibleJobMixin, SingleObjectMixin, View):
    """The progress bar's JSON: polled every second by the job page."""

    model = Job

    def get(self, request, *args, **kwargs):
        return JsonResponse(job_progress(self.get_object()))


class JobResumeView(VisibleJobMixin, SingleObjectMixin, View):
    """Queue again the chunks a job has not finished (its worker stopped); done ones are
    skipped, so resuming a running job is harmless."""

    model = Job
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        job = self.get_object()
        if job.status in (Job.NEW, Job.RUNNING):
            tasks.start_job(job)
            messages.info(request, _("The job's remaining parts are queued again."))
        return redirect("loyalty-job-detail", pk=job.pk)
