"""The job list's table (django-tables2, as Oscar's dashboard does)."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_tables2 import Column, DateTimeColumn, TemplateColumn
from oscar.core.loading import get_class

from oscar_loyalty.dashboard.templatetags.loyalty_dashboard import person

DashboardTable = get_class("dashboard.tables", "DashboardTable")

PARTIALS = "oscar_loyalty/dashboard/partials/"


class JobTable(DashboardTable):
    id = TemplateColumn(template_name=PARTIALS + "job_row_link.html", verbose_name="#")
    kind = Column(accessor="get_kind_display", verbose_name=_("Job"), order_by=("kind",))
    status = TemplateColumn(
        template_name=PARTIALS + "job_row_status.html", verbose_name=_("Status")
    )
    progress = TemplateColumn(
        template_name=PARTIALS + "job_row_progress.html",
        verbose_name=_("Progress"),
        orderable=False,
    )
    succeeded = Column(verbose_name=_("Succeeded"))
    failed = Column(verbose_name=_("Failed"))
    created_by = Column(verbose_name=_("Started by"), orderable=False, default="—")
    created = DateTimeColumn(verbose_name=_("Started"), format="SHORT_DATETIME_FORMAT")

    icon = "fas fa-tasks"

    def render_created_by(self, value):
        return person(value)  # as the job's own page names them

    caption = ngettext_lazy("%d job", "%d jobs")

    class Meta(DashboardTable.Meta):
        order_by = ("-created",)
