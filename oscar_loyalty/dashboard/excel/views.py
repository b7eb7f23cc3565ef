"""Dashboard screens for Excel: import (upload, preview, apply, errors, undo), the points
report, and the exports of the card list and the report.

Imports follow the source documents' flow with one more step: nothing is written before
the manager has seen the preview of every row.
"""

import tempfile
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import DetailView, FormView, TemplateView, View
from django.views.generic.detail import SingleObjectMixin
from oscar.core.loading import get_model

from oscar_loyalty import conf, excel, keyset, phones, reports, tasks
from oscar_loyalty.card_import import cells, drafts, undo
from oscar_loyalty.card_import.rows import CONSENTED, NEW, SAME, SET, TOPPED
from oscar_loyalty.dashboard.mixins import TEMPLATES
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.formats import format_points
from oscar_loyalty.loading import get_class

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")

ImportForm = get_class("dashboard.excel.forms", "ImportForm")
MappingForm = get_class("dashboard.excel.forms", "MappingForm")
ConfirmForm = get_class("dashboard.excel.forms", "ConfirmForm")
ReportForm = get_class("dashboard.excel.forms", "ReportForm")
CardFilter = get_class("dashboard.cards.filters", "CardFilter")
hidden_job_kinds = get_class("dashboard.mixins", "hidden_job_kinds")

FORMATS = ("xlsx", "csv")
ERRORS_SHOWN = 200
REPORT_PAGE = 50


def _file_response(fmt, header, rows, stem):
    """Write a small export now and send it as a download."""
    file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    excel.write_table(file, fmt, header, rows, stem)
    file.seek(0)
    response = FileResponse(file, as_attachment=True, filename=reports.filename(stem, fmt))
    response["Content-Type"] = excel.CONTENT_TYPES[fmt]
    return response


def _export(request, kind, fmt, queryset, source, query):
    """A download when the export is small, else a job whose page links the file."""
    if fmt not in FORMATS:
        return HttpResponseBadRequest("format")
    if queryset.count() <= reports.INLINE_ROWS:
        header, rows, stem = source(query)
        return _file_response(fmt, header, rows, stem)
    job = reports.start_export(kind, fmt, query, by=request.user)
    tasks.start_job(job)
    messages.info(
        request,
        _("The export is large, so it is written in the background; its file appears here."),
    )
    return redirect("loyalty-job-detail", pk=job.pk)


# --- export sources (also run by the export jobs) -----------------------------------------


def card_source(query):
    """The card list's filter ``query`` as rows of the card export."""
    filterset = CardFilter(QueryDict(query), queryset=Card.objects.all())
    queryset = filterset.qs if filterset.is_valid() else Card.objects.none()
    return reports.card_header(), reports.card_rows(queryset), "cards"


def report_source(query):
    """The report's filter ``query`` as rows of the report export."""
    filters = ReportForm(QueryDict(query)).filters()
    queryset = reports.transfers(**filters) if filters is not None else reports.transfers().none()
    return reports.report_header(), reports.report_rows(queryset), "points-report"


def _query(request):
    """The request's querystring without the page's cursor and the format."""
    query = request.GET.copy()
    for key in ("before", "after", "format"):
        query.pop(key, None)
    return query.urlencode()


class CardExportView(View):
    """The card list's current filter (the posted ``query``) as .xlsx or .csv.

    POST only: a large export starts a job, and a link or a prefetch must not do that.
    """

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        query = request.POST.get("query", "")
        filterset = CardFilter(QueryDict(query), queryset=Card.objects.all())
        if not filterset.is_valid():
            messages.error(request, _("The card list's filter has errors; fix it first."))
            return redirect(reverse("loyalty-card-list") + (f"?{query}" if query else ""))
        fmt = request.POST.get("format", "xlsx")
        return _export(request, Job.EXPORT, fmt, filterset.qs, card_source, query)


class ExportDownloadView(SingleObjectMixin, View):
    """The file an export job wrote, for managers who may see its data: the export storage
    gives files no URL, so this view is the only way to them."""

    model = Job
    unavailable_template = TEMPLATES + "export_unavailable.html"

    def get_queryset(self):
        return Job.objects.filter(kind__in=reports.EXPORT_KINDS)

    def get(self, request, *args, **kwargs):
        job = self.get_object()
        if job.kind in hidden_job_kinds(request.user):
            raise PermissionDenied
        if job.file_deleted:
            days = conf.export_retention_days
            reason = ngettext(
                "The file of this export was deleted on %(date)s: exports are kept %(days)s "
                "day. Export the data again.",
                "The file of this export was deleted on %(date)s: exports are kept %(days)s "
                "days. Export the data again.",
                days,
            ) % {
                "date": date_format(timezone.localtime(job.file_deleted), "SHORT_DATETIME_FORMAT"),
                "days": days,
            }
            return self.unavailable(job, reason)
        if not job.result_file:
            return self.unavailable(job, _("This export has no file yet; it is being written."))
        if not job.result_file.storage.exists(job.result_file.name):
            return self.unavailable(
                job, _("The file of this export is no longer there. Export the data again.")
            )
        name = reports.download_name(job)
        response = FileResponse(job.result_file.open("rb"), as_attachment=True, filename=name)
        fmt = name.rsplit(".", 1)[-1]
        if fmt in excel.CONTENT_TYPES:
            response["Content-Type"] = excel.CONTENT_TYPES[fmt]
        return response

    def unavailable(self, job, reason):
        context = {"job": job, "reason": reason}
        return TemplateResponse(self.request, self.unavailable_template, context, status=404)


# --- points report -------------------------------------------------------------------------


class ReportView(TemplateView):
    """Transfers by period, programme, kind, manager and card, with their totals and the
    points outstanding per programme."""

    template_name = TEMPLATES + "report.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = ReportForm(self.request.GET or None)
        filters = form.filters() if form.is_bound else {}
        if filters is None:
            queryset = reports.transfers().none()
            totals, count = reports.totals(queryset), 0
        else:
            queryset = reports.transfers(**filters)
            totals, count = reports.summary(**filters)
        listed = queryset.select_related("card", "card__program", "created_by")
        query = _query(self.request)
        context.update(
            form=form,
            totals=totals,
            transfer_count=count,
            outstanding=reports.outstanding((filters or {}).get("program")),
            page_obj=keyset.page(
                listed,
                REPORT_PAGE,
                before=self.request.GET.get("before"),
                after=self.request.GET.get("after"),
            ),
            query=query,
            page_query=f"{query}&" if query else "",
        )
        return context


class ReportExportView(View):
    """The report's current filter (the posted ``query``) as .xlsx or .csv (a job when it is
    long, hence POST only)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        query = request.POST.get("query", "")
        filters = ReportForm(QueryDict(query)).filters()
        if filters is None:
            messages.error(request, _("The report's filter has errors; fix it first."))
            return redirect(reverse("loyalty-report") + (f"?{query}" if query else ""))
        fmt = request.POST.get("format", "xlsx")
        return _export(request, Job.REPORT, fmt, reports.transfers(**filters), report_source, query)


# --- import --------------------------------------------------------------------------------


def import_jobs():
    """Started imports and undos, newest first (drafts are nobody's business but their page)."""
    return (
        Job.objects.filter(kind=Job.IMPORT)
        .exclude(params__has_key="draft")
        .select_related("program", "created_by")
        .order_by("-created", "-id")
    )


@method_decorator(csrf_exempt, name="dispatch")  # checked in dispatch, after the size
class ImportView(FormView):
    """Step 1: choose the programme and upload a file or paste cells."""

    form_class = ImportForm
    template_name = TEMPLATES + "import_form.html"

    def dispatch(self, request, *args, **kwargs):
        """Say why a paste is refused when Django finds the form larger than
        ``DATA_UPLOAD_MAX_MEMORY_SIZE``: its CSRF check would read the body first and answer
        a bare 400. Nothing is written either way; the CSRF check then runs as usual."""
        if request.method == "POST":
            try:
                request.POST  # noqa: B018 (reads the body: the size check)
            except RequestDataTooBig:
                request._mark_post_parse_error()  # as Django's own handler does
                form_class = self.get_form_class()
                messages.error(request, form_class.paste_too_large())
                context = self.get_context_data(form=form_class())
                return self.response_class(request, self.get_template_names(), context, status=413)
        return csrf_protect(super().dispatch)(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["recent"] = import_jobs()[:10]
        context["paste_limit"] = self.get_form_class().paste_limit()
        context["paste_too_large"] = self.get_form_class().paste_too_large()
        context["roles"] = [cells.ROLE_LABELS[role] for role in cells.ROLES]
        return context

    def form_valid(self, form):
        job = drafts.create_draft(
            form.cleaned_data["table"],
            form.cleaned_data["program"],
            by=self.request.user,
            language=get_language(),
        )
        return redirect("loyalty-import-preview", pk=job.pk)


def _sample(job, items):
    """The first rows of a preview, each with what applying it will do, in words."""
    ids = {item.card_id for item in items if item.card_id}
    found = {c.pk: c for c in Card.objects.filter(pk__in=ids).select_related("account")}
    consent_alone = {True: _("Messages switched on"), False: _("Messages switched off")}
    consent_too = {
        True: _("%(change)s; messages switched on"),
        False: _("%(change)s; messages switched off"),
    }
    rows = []
    for item in items:
        card = found.get(item.card_id)
        diff = Decimal(item.diff or "0")
        action = item.action
        errors = [message for _role, message in item.errors]
        if errors:
            what = "; ".join(errors)
        elif action == NEW:
            what = (
                _("New card, opening balance %(points)s") % {"points": format_points(diff)}
                if diff
                else _("New card")
            )
        elif action == SAME:
            what = _("No change")
        elif action == CONSENTED:
            what = ""
        elif card is not None:
            what = _("Balance %(old)s → %(new)s") % {
                "old": format_points(card.account.balance),
                "new": format_points(card.account.balance + diff),
            }
        else:
            what = ""
        if errors or item.consent is None or action == SAME:
            changes = False
        elif action == NEW:
            changes = item.consent  # a new card starts without consent
        else:
            changes = action == CONSENTED or (
                card is not None and card.marketing_consent != item.consent
            )
        if changes:
            if what:
                what = consent_too[item.consent] % {"change": what}
            else:
                what = consent_alone[item.consent]
        values = item.cells
        mapping = job.params.get("mapping", [])
        raw = {role: values[i] for i, role in enumerate(mapping) if role and i < len(values)}
        rows.append(
            {
                "n": item.n,
                "phone": phones.display(item.phone) if item.phone else raw.get("phone", ""),
                "number": card.number if card else item.number or raw.get("number", ""),
                "topup": item.topup or raw.get("topup", ""),
                "balance": item.balance or raw.get("balance", ""),
                "consent": raw.get("consent", ""),
                "action": "error" if errors else action,
                "what": what,
            }
        )
    return rows


class ImportPreviewView(SingleObjectMixin, TemplateView):
    """Step 2: every row checked, the column mapping to adjust, and the button to apply."""

    model = Job
    template_name = TEMPLATES + "import_preview.html"

    def get_queryset(self):
        return Job.objects.filter(kind=Job.IMPORT).select_related("program", "created_by")

    def dispatch(self, request, *args, **kwargs):
        self.object = self.get_object()
        if not drafts.is_draft(self.object):
            return redirect("loyalty-import-job", pk=self.object.pk)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        job = self.object
        context = super().get_context_data(**kwargs)
        context.setdefault("mapping_form", MappingForm(job=job))
        context.setdefault("confirm_form", ConfirmForm(job=job))
        totals = drafts.totals(job)
        errors = drafts.error_list(job, ERRORS_SHOWN)
        samples = self._column_samples(job)
        for column in context["mapping_form"].columns:
            column["samples"] = samples.get(column["letter"], [])
        context.update(
            job=job,
            totals=totals,
            applicable=sum(totals.get(action, 0) for action in (NEW, SET, TOPPED, CONSENTED)),
            has_consent=cells.CONSENT in job.params.get("mapping", []),
            errors=errors,
            more_errors=max(totals.get("errors", 0) - len(errors), 0),
            sample=_sample(job, drafts.preview_rows(job)),
            previous=list(drafts.previous_imports(job)[:3]),
            roles=cells.ROLE_LABELS,
        )
        return context

    @staticmethod
    def _column_samples(job):
        samples = {}
        for item in drafts.preview_rows(job, 3):
            for i, cell in enumerate(item.cells):
                samples.setdefault(cells.column_letter(i), []).append(cell)
        return samples

    def post(self, request, *args, **kwargs):
        job = self.object
        if "apply" in request.POST:
            form = ConfirmForm(request.POST, job=job)
            if not form.is_valid():
                for error in form.errors.get("checked", []):
                    messages.error(request, error)
                return redirect("loyalty-import-preview", pk=job.pk)
            try:
                job = drafts.start(job, again=form.cleaned_data["again"])
            except (drafts.ImportRepeated, drafts.PreviewChanged) as exc:
                messages.error(request, str(exc))  # still a draft: its preview says why
                return redirect("loyalty-import-preview", pk=job.pk)
            except LoyaltyError as exc:
                messages.error(request, str(exc))
                return redirect("loyalty-import-job", pk=job.pk)
            tasks.start_job(job)
            return redirect("loyalty-import-job", pk=job.pk)
        form = MappingForm(request.POST, job=job)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(mapping_form=form))
        drafts.recheck(job, form.cleaned_data["mapping"], form.cleaned_data["header"])
        messages.success(request, _("The table was checked again with these columns."))
        return redirect("loyalty-import-preview", pk=job.pk)


class ImportJobView(DetailView):
    """Step 3: the import running (progress bar), then its result, errors and undo."""

    model = Job
    template_name = TEMPLATES + "import_job.html"
    context_object_name = "job"

    def get_queryset(self):
        return Job.objects.filter(kind=Job.IMPORT).select_related("program", "created_by")

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        if drafts.is_draft(self.object):
            return redirect("loyalty-import-preview", pk=self.object.pk)
        return self.render_to_response(self.get_context_data(object=self.object))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        finished = job.status not in (Job.NEW, Job.RUNNING)
        original = None
        if drafts.is_undo(job):
            original = Job.objects.filter(pk=job.params["undo_of"]).first()
        context.update(
            finished=finished,
            totals=drafts.totals(job),
            # rows that changed nothing (an unchanged balance, nothing left to reverse)
            unchanged=max(job.done - job.succeeded - job.failed, 0),
            original=original,
            undos=list(undo.undo_jobs(job).order_by("-created")) if not original else [],
            can_undo=undo.can_undo(job),
            failures=job.errors[:ERRORS_SHOWN],
            more_failures=max(len(job.errors) - ERRORS_SHOWN, 0),
            has_errors=job.failed > 0 and not original,
        )
        return context


class ImportErrorsView(SingleObjectMixin, View):
    """The skipped rows as an .xlsx: the original cells and an "Error" column."""

    model = Job

    def get_queryset(self):
        return Job.objects.filter(kind=Job.IMPORT)

    def get(self, request, *args, **kwargs):
        job = self.get_object()
        if drafts.is_undo(job):
            raise Http404
        width = job.params.get("width", 0)

        def rows():
            for n, values, reason in drafts.error_rows(job):
                values = list(values) + [""] * (width - len(values))
                yield (n, *values[:width], reason)

        file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        excel.write_table(file, "xlsx", drafts.error_header(job), rows(), _("Errors"))
        file.seek(0)
        response = FileResponse(file, as_attachment=True, filename=f"import-{job.pk}-errors.xlsx")
        response["Content-Type"] = excel.XLSX_CONTENT_TYPE
        return response


class ImportUndoView(SingleObjectMixin, TemplateView):
    """Undo a finished import: what will be reversed and which cards refuse, then a job."""

    model = Job
    template_name = TEMPLATES + "import_undo.html"

    def get_queryset(self):
        return Job.objects.filter(kind=Job.IMPORT).filter(~Q(params__has_key="undo_of"))

    def dispatch(self, request, *args, **kwargs):
        self.object = self.get_object()
        if not undo.can_undo(self.object):
            messages.error(request, _("This import cannot be undone now."))
            return redirect("loyalty-import-job", pk=self.object.pk)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(job=self.object, check=undo.undo_check(self.object))
        return context

    def post(self, request, *args, **kwargs):
        try:
            undo_job = undo.create_undo(self.object, by=request.user)
        except LoyaltyError as exc:
            messages.error(request, str(exc))
            return redirect("loyalty-import-job", pk=self.object.pk)
        tasks.start_job(undo_job)
        return redirect("loyalty-import-job", pk=undo_job.pk)
