"""Views of the loyalty dashboard: programmes and grades, cards, categories, mass jobs.

Views stay thin: forms validate and call the services (cards, grades, ledger, categories,
bulk); every balance change goes through the ledger as a new transfer.
"""

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import (
    CreateView,
    DeleteView,
    DetailView,
    FormView,
    ListView,
    UpdateView,
    View,
)
from django.views.generic.detail import SingleObjectMixin
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin, SingleTableView
from oscar.core.loading import get_model

from oscar_loyalty import bulk, categories, conf, earning, grades, keyset, ledger, phones, tasks
from oscar_loyalty.dashboard.templatetags.loyalty_dashboard import person
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.formats import format_points
from oscar_loyalty.loading import get_class

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")
Grade = get_model("oscar_loyalty", "Grade")
Hold = get_model("oscar_loyalty", "Hold")
Job = get_model("oscar_loyalty", "Job")
Order = get_model("order", "Order")
Program = get_model("oscar_loyalty", "Program")
User = get_user_model()

CardFilter = get_class("dashboard.filters", "CardFilter")
filter_query = get_class("dashboard.filters", "filter_query")
CardTable = get_class("dashboard.tables", "CardTable")
JobTable = get_class("dashboard.tables", "JobTable")
(
    ProgramForm,
    GradeForm,
    GradeDeleteForm,
    CardIssueForm,
    CardPhoneForm,
    CardReplaceForm,
    CardGradeForm,
    CardStatusForm,
    AdjustForm,
    CategoryForm,
    CustomerCategoryForm,
    CategoryBulkForm,
    MassJobForm,
) = (
    get_class("dashboard.forms", name)
    for name in (
        "ProgramForm",
        "GradeForm",
        "GradeDeleteForm",
        "CardIssueForm",
        "CardPhoneForm",
        "CardReplaceForm",
        "CardGradeForm",
        "CardStatusForm",
        "AdjustForm",
        "CategoryForm",
        "CustomerCategoryForm",
        "CategoryBulkForm",
        "MassJobForm",
    )
)

TEMPLATES = "oscar_loyalty/dashboard/"
HISTORY_PAGE = 50
ORDERS_SHOWN = 50


def per_page():
    return getattr(settings, "OSCAR_DASHBOARD_ITEMS_PER_PAGE", 20)


def safe_next(request, default):
    """The ``next`` URL of the request if it points into this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- programmes and grades -----------------------------------------------------------------


class ProgramListView(ListView):
    model = Program
    template_name = TEMPLATES + "program_list.html"
    context_object_name = "programs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cards = dict(Card.objects.values_list("program").annotate(n=Count("pk")).order_by())
        grade_counts = dict(Grade.objects.values_list("program").annotate(n=Count("pk")).order_by())
        for program in context["programs"]:
            program.card_count = cards.get(program.pk, 0)
            program.grade_count = grade_counts.get(program.pk, 0)
        return context


class ProgramCreateView(CreateView):
    model = Program
    form_class = ProgramForm
    template_name = TEMPLATES + "program_form.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(
            self.request,
            _("Programme “%(name)s” created. Now add its grades.") % {"name": self.object},
        )
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.object.pk])


class ProgramUpdateView(UpdateView):
    model = Program
    form_class = ProgramForm
    template_name = TEMPLATES + "program_form.html"
    context_object_name = "program"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Always by threshold, whatever order the grades were entered in.
        context["grades"] = self.object.grades.annotate(card_count=Count("cards")).order_by(
            "spend_from"
        )
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Programme “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.object.pk])


class GradeMixin:
    model = Grade
    form_class = GradeForm
    template_name = TEMPLATES + "grade_form.html"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["program"] = self.program
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["program"] = self.program
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Grade “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-program-update", args=[self.program.pk]) + "#grades"


class GradeCreateView(GradeMixin, CreateView):
    def dispatch(self, request, *args, **kwargs):
        self.program = get_object_or_404(Program, pk=kwargs["program_pk"])
        return super().dispatch(request, *args, **kwargs)


class GradeUpdateView(GradeMixin, UpdateView):
    context_object_name = "grade"

    def get_object(self, queryset=None):
        grade = super().get_object(queryset)
        self.program = grade.program
        return grade


class GradeDeleteView(SingleObjectMixin, FormView):
    """Delete a grade; a grade in use first moves its cards to another grade."""

    model = Grade
    form_class = GradeDeleteForm
    template_name = TEMPLATES + "grade_delete.html"
    context_object_name = "grade"

    def dispatch(self, request, *args, **kwargs):
        self.object = self.get_object()
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["grade"] = self.object
        return kwargs

    def form_valid(self, form):
        grade, target = self.object, form.cleaned_data.get("move_to")
        try:
            moved = grades.delete_grade(grade, move_to=target, by=self.request.user)
        except LoyaltyError as exc:  # cards got the grade since the page was shown
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        if moved:
            messages.success(
                self.request,
                ngettext(
                    "Grade “%(name)s” deleted; %(count)s card moved to “%(target)s”.",
                    "Grade “%(name)s” deleted; %(count)s cards moved to “%(target)s”.",
                    moved,
                )
                % {"name": grade.name, "count": moved, "target": target.name},
            )
        else:
            messages.success(self.request, _("Grade “%(name)s” deleted.") % {"name": grade.name})
        return redirect(reverse("loyalty-program-update", args=[grade.program_id]) + "#grades")


# --- cards ---------------------------------------------------------------------------------


def card_list_queryset():
    """What one page of the card list shows, in a constant number of queries."""
    return Card.objects.select_related("program", "grade", "account", "user").prefetch_related(
        "user__loyalty_categories"
    )


class CardListView(SingleTableMixin, FilterView):
    filterset_class = CardFilter
    table_class = CardTable
    template_name = TEMPLATES + "card_list.html"
    context_table_name = "cards"

    def get_queryset(self):
        return card_list_queryset()

    def get_table_pagination(self, table):
        return {"per_page": per_page()}

    def get_table(self, **kwargs):
        table = super().get_table(**kwargs)
        table.categories = list(Category.objects.all())  # for the bulk category actions
        return table

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter_query"] = filter_query(self.request.GET)
        context["filter_description"] = self.filterset.describe()
        return context


class CardDetailView(DetailView):
    model = Card
    template_name = TEMPLATES + "card_detail.html"
    context_object_name = "card"

    def get_queryset(self):
        return Card.objects.select_related(
            "program", "grade", "account", "debt_account", "user", "created_by", "replaced_by"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        card = self.object
        context["history"] = keyset.page(
            ledger.history(card),
            HISTORY_PAGE,
            before=self.request.GET.get("before"),
            after=self.request.GET.get("after"),
        )
        context["pending"] = earning.pending_points(card)
        context["pending_total"] = sum(points for _, points, _ in context["pending"])
        context["next_grade"], context["spend_needed"] = grades.next_grade(card)
        context["grade_changes"] = card.grade_changes.select_related(
            "old_grade", "new_grade", "created_by"
        )[:HISTORY_PAGE]
        context["status_changes"] = card.status_changes.select_related("created_by")[:HISTORY_PAGE]
        context["orders"] = orders_with_points(card)
        own = categories.of_customer(card.user)
        context["customer_categories"] = own
        context["other_categories"] = Category.objects.exclude(pk__in=[c.pk for c in own])
        context.setdefault("grade_form", CardGradeForm(card=card))
        context.setdefault("adjust_form", AdjustForm(card=card))
        context.setdefault("phone_form", CardPhoneForm(card=card))
        context.setdefault("replace_form", CardReplaceForm(card=card))
        context["phone_changes"] = card.phone_changes.select_related("created_by")[:HISTORY_PAGE]
        context["replaces"] = Card.objects.filter(replaced_by=card).only("pk", "number").first()
        context.setdefault("status_form", None)
        context["status_actions"] = status_actions(card)
        return context


def status_actions(card):
    """The status changes a card in its state allows, for the detail page's buttons."""
    if card.status == Card.ACTIVE:
        return ["block", "close"]
    if card.status == Card.BLOCKED:
        return ["unblock", "close"]
    return []


def orders_with_points(card):
    """The card's newest orders (its customer's, and any it earned or paid on), newest first,
    each with the points spent on it and earned by it.

    The page of orders comes first, then the points of those orders only, so the cost does
    not grow with the card's history: the candidates are the customer's newest orders and
    the orders of the card's newest accruals and holds (both made as their order is placed).
    """
    newest = slice(0, ORDERS_SHOWN)
    numbers = set(
        card.accruals.filter(job__isnull=True)
        .order_by("-created")
        .values_list("order_number", flat=True)[newest]
    )
    numbers.update(card.holds.order_by("-created").values_list("order_number", flat=True)[newest])
    if card.user_id:
        numbers.update(
            Order.objects.filter(user_id=card.user_id)
            .order_by("-date_placed")
            .values_list("number", flat=True)[newest]
        )
    orders = list(Order.objects.filter(number__in=numbers).order_by("-date_placed")[newest])
    shown = [order.number for order in orders]
    accruals = {a.order_number: a for a in card.accruals.filter(order_number__in=shown)}
    holds = {h.order_number: h for h in card.holds.filter(order_number__in=shown)}
    rows = []
    for order in orders:
        hold, accrual = holds.get(order.number), accruals.get(order.number)
        spent = None
        if hold is not None and hold.status == Hold.CAPTURED:
            spent = hold.points - hold.refunded_points
        rows.append({"order": order, "hold": hold, "spent": spent, "accrual": accrual})
    return rows


class CardIssueView(FormView):
    """Issue a card: from the card list, or from a customer's page (``?customer=<id>``)."""

    form_class = CardIssueForm
    template_name = TEMPLATES + "card_issue.html"

    def dispatch(self, request, *args, **kwargs):
        self.customer = None
        customer_id = request.GET.get("customer")
        if customer_id:
            if not customer_id.isdigit():
                raise Http404
            self.customer = get_object_or_404(User, pk=customer_id)
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        program = Program.objects.filter(is_active=True).order_by("name").first()
        if program is not None:
            initial["program"] = program
        return initial

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["customer"] = self.customer
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["customer"] = self.customer
        if self.customer is not None:
            context["customer_cards"] = list(Card.objects.filter(user=self.customer))
        return context

    def form_valid(self, form):
        card = form.save(by=self.request.user)
        if card is None:
            return self.form_invalid(form)
        who = person(card.user) if card.user else phones.display(card.phone)
        if card.found:
            text = _("The phone had the card %(number)s already: it is now %(who)s's card.")
        else:
            text = _("Card %(number)s issued to %(who)s.")
        messages.success(self.request, text % {"number": card.number, "who": who})
        return redirect("loyalty-card-detail", pk=card.pk)


class CardActionView(SingleObjectMixin, View):
    """POST a form about one card; on errors show the card page with the form's messages."""

    model = Card
    form_class = None
    form_name = None
    http_method_names = ["post"]

    def get_queryset(self):
        return CardDetailView().get_queryset()

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = self.form_class(request.POST, card=self.object)
        if form.is_valid():
            result = form.save(by=request.user)
            if result is not None:
                messages.success(request, self.success_message(form, result))
                return redirect("loyalty-card-detail", pk=self.success_card(result).pk)
        detail = CardDetailView(request=request, args=args, kwargs=kwargs, object=self.object)
        context = detail.get_context_data(**{self.form_name: form})
        messages.error(request, _("The card was not changed: see the message below."))
        return render(request, detail.template_name, context)

    def success_card(self, result):
        """The card whose page follows a success."""
        return self.object


class CardPhoneView(CardActionView):
    form_class = CardPhoneForm
    form_name = "phone_form"

    def success_message(self, form, card):
        if not card.phone:
            return _("The card %(number)s has no phone now.") % {"number": card.number}
        return _("The phone of card %(number)s is now %(phone)s.") % {
            "number": card.number,
            "phone": phones.display(card.phone),
        }


class CardReplaceView(CardActionView):
    """Replace a lost card: the new card's page follows."""

    form_class = CardReplaceForm
    form_name = "replace_form"

    def success_message(self, form, card):
        return _("Card %(new)s replaces card %(old)s, which is closed now.") % {
            "new": card.number,
            "old": self.object.number,
        }

    def success_card(self, card):
        return card


class CardGradeView(CardActionView):
    form_class = CardGradeForm
    form_name = "grade_form"

    def success_message(self, form, card):
        if not card.participates:
            return _("The card no longer takes part in the programme.")
        return _("The card's grade is now “%(grade)s”.") % {"grade": card.grade}


class CardStatusView(CardActionView):
    form_class = CardStatusForm
    form_name = "status_form"

    def success_message(self, form, card):
        return _("The card is now %(status)s.") % {"status": card.get_status_display().lower()}


class CardAdjustView(CardActionView):
    form_class = AdjustForm
    form_name = "adjust_form"

    def success_message(self, form, transfer):
        if form.cleaned_data["direction"] == AdjustForm.ACCRUE:
            text = _("%(amount)s points accrued to card %(number)s.")
        else:
            text = _("%(amount)s points debited from card %(number)s.")
        return text % {"amount": format_points(transfer.amount), "number": self.object.number}


# --- customer categories -------------------------------------------------------------------


class CategoryListView(ListView):
    model = Category
    template_name = TEMPLATES + "category_list.html"
    context_object_name = "categories"

    def get_queryset(self):
        return Category.objects.annotate(customer_count=Count("customers"))


class CategoryFormMixin:
    model = Category
    form_class = CategoryForm
    template_name = TEMPLATES + "category_form.html"
    context_object_name = "category"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Category “%(name)s” saved.") % {"name": self.object})
        return response

    def get_success_url(self):
        return reverse("loyalty-category-list")


class CategoryCreateView(CategoryFormMixin, CreateView):
    pass


class CategoryUpdateView(CategoryFormMixin, UpdateView):
    pass


class CategoryDeleteView(DeleteView):
    model = Category
    template_name = TEMPLATES + "category_delete.html"
    context_object_name = "category"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["customer_count"] = self.object.customers.count()
        return context

    def form_valid(self, form):
        name = str(self.object)
        response = super().form_valid(form)
        messages.success(self.request, _("Category “%(name)s” deleted.") % {"name": name})
        return response

    def get_success_url(self):
        return reverse("loyalty-category-list")


class CustomerCategoryView(View):
    """Add a category to one customer or take it off (card page, Oscar's customer page)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        customer = get_object_or_404(User, pk=pk)
        back = safe_next(request, reverse("dashboard:user-detail", args=[customer.pk]))
        form = CustomerCategoryForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a category."))
            return HttpResponseRedirect(back)
        category = form.cleaned_data["category"]
        who = customer.get_full_name() or customer.email
        if form.cleaned_data["action"] == "add":
            categories.assign(category, [customer.pk])
            text = _("%(who)s is now in category “%(category)s”.")
        else:
            categories.remove(category, [customer.pk])
            text = _("%(who)s is no longer in category “%(category)s”.")
        messages.success(request, text % {"who": who, "category": category})
        return HttpResponseRedirect(back)


def matching_cards(query):
    """The cards a card-list querystring selects (``None`` if the filter is invalid) and the
    filter in words."""
    filterset = CardFilter(QueryDict(query), queryset=Card.objects.all())
    if not filterset.is_valid():
        return None, []
    return filterset.qs, filterset.describe()


class CategoryBulkView(FormView):
    """From the card list: a category on or off the selected cards' customers, or on all
    customers of the current filter after a confirmation with their number."""

    form_class = CategoryBulkForm
    template_name = TEMPLATES + "category_bulk_confirm.html"
    http_method_names = ["post"]

    def back(self, query):
        return reverse("loyalty-card-list") + (f"?{query}" if query else "")

    def form_invalid(self, form):
        for error in form.non_field_errors() or [_("Choose a category and an action.")]:
            messages.error(self.request, error)
        return redirect(self.back(form.data.get("query", "")))

    def form_valid(self, form):
        data = form.cleaned_data
        query = data["query"]
        if data["scope"] == form.SELECTED:
            cards = Card.objects.filter(pk__in=data["selected_card"])
        else:
            cards, description = matching_cards(query)
            if cards is None:
                messages.error(self.request, _("The filter has errors; fix it first."))
                return redirect(self.back(query))
        user_ids = cards.filter(user__isnull=False).values_list("user_id", flat=True).distinct()
        if data["scope"] == form.MATCHING and not data["confirmed"]:
            return self.render_to_response(
                self.get_context_data(
                    form=form,
                    customer_count=user_ids.count(),
                    card_count=cards.count(),
                    query=query,
                    filter_description=description,
                )
            )
        category = data["category"]
        with transaction.atomic():
            if data["action"] == "add":
                changed = categories.assign(category, user_ids)
                text = ngettext(
                    "%(count)s customer added to category “%(category)s”.",
                    "%(count)s customers added to category “%(category)s”.",
                    changed,
                )
            else:
                changed = categories.remove(category, user_ids)
                text = ngettext(
                    "%(count)s customer removed from category “%(category)s”.",
                    "%(count)s customers removed from category “%(category)s”.",
                    changed,
                )
        messages.success(self.request, text % {"count": changed, "category": category})
        return redirect(self.back(query))


# --- mass accrual and debit ----------------------------------------------------------------


class MassJobView(FormView):
    """Accrue to (or debit from) all cards of the card list's filter: form, confirmation
    with the number of cards and the total, then a job that runs in Celery."""

    form_class = MassJobForm
    template_name = TEMPLATES + "mass_job.html"
    kind = bulk.ACCRUAL

    def dispatch(self, request, *args, **kwargs):
        source = request.POST if request.method == "POST" else request.GET
        self.query = source.get("query", "") if request.method == "POST" else filter_query(source)
        self.cards, self.filter_description = matching_cards(self.query)
        self.card_count = self.cards.count() if self.cards is not None else 0
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["kind"] = self.kind
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            kind=self.kind,
            is_accrual=self.kind == bulk.ACCRUAL,
            query=self.query,
            card_count=self.card_count,
            filter_valid=self.cards is not None,
            filter_description=self.filter_description,
            card_list_url=reverse("loyalty-card-list") + (f"?{self.query}" if self.query else ""),
        )
        return context

    def form_valid(self, form):
        data = form.cleaned_data
        if self.cards is None or not self.card_count:
            form.add_error(None, _("No cards match the filter."))
            return self.form_invalid(form)
        if "confirm" not in self.request.POST or data.get("expected") != self.card_count:
            if "confirm" in self.request.POST:
                messages.warning(
                    self.request,
                    _("The selection changed to %(count)s cards meanwhile; check and confirm.")
                    % {"count": self.card_count},
                )
            form.data = form.data.copy()
            form.data["expected"] = self.card_count
            total = data["amount"] * self.card_count
            return self.render_to_response(
                self.get_context_data(form=form, confirming=True, total=total)
            )
        with transaction.atomic():
            job = bulk.create(
                self.kind,
                self.cards,
                amount=data["amount"],
                description=data["description"],
                note=data["note"],
                available_from=data.get("available_from"),
                by=self.request.user,
                token=data["token"],
                query=self.query,
            )
            tasks.start_job(job)
        return redirect("loyalty-job-detail", pk=job.pk)


class MassDebitView(MassJobView):
    kind = bulk.DEBIT


# --- jobs ----------------------------------------------------------------------------------


def hidden_job_kinds(user):
    """Export kinds whose data ``user`` may not see (see the dashboard's export_screens)."""
    return apps.get_app_config("oscar_loyalty_dashboard").hidden_job_kinds(user)


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
        if job.kind in (bulk.ACCRUAL, bulk.DEBIT):
            context["card_list_url"] = reverse("loyalty-card-list") + (f"?{query}" if query else "")
        return context


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
