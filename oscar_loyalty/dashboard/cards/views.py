"""Views of the cards: the list, issue, a card's page and actions, and what the list's filter
or ticked cards apply to (categories, mass accrual and debit).

Views stay thin: forms validate and call the services (cards, grades, ledger, categories,
bulk); every balance change goes through the ledger as a new transfer.
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import DetailView, FormView, View
from django.views.generic.detail import SingleObjectMixin
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin
from oscar.core.loading import get_model

from oscar_loyalty import categories, earning, grades, keyset, ledger, mass_jobs, phones, tasks
from oscar_loyalty.dashboard.mixins import TEMPLATES, per_page
from oscar_loyalty.dashboard.templatetags.loyalty_dashboard import person
from oscar_loyalty.formats import format_points
from oscar_loyalty.loading import get_class
from oscar_loyalty.notifications import sending

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")
Hold = get_model("oscar_loyalty", "Hold")
Order = get_model("order", "Order")
Program = get_model("oscar_loyalty", "Program")
User = get_user_model()

CardFilter = get_class("dashboard.cards.filters", "CardFilter")
filter_query = get_class("dashboard.cards.filters", "filter_query")
CardTable = get_class("dashboard.cards.tables", "CardTable")
(
    CardIssueForm,
    CardPhoneForm,
    CardReplaceForm,
    CardGradeForm,
    CardStatusForm,
    AdjustForm,
    CardConsentForm,
    CategoryBulkForm,
    MassJobForm,
) = (
    get_class("dashboard.cards.forms", name)
    for name in (
        "CardIssueForm",
        "CardPhoneForm",
        "CardReplaceForm",
        "CardGradeForm",
        "CardStatusForm",
        "AdjustForm",
        "CardConsentForm",
        "CategoryBulkForm",
        "MassJobForm",
    )
)

HISTORY_PAGE = 50
ORDERS_SHOWN = 50
MESSAGES_SHOWN = 20


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
        context.setdefault("consent_form", CardConsentForm(card=card))
        if self.request.user.has_perm("oscar_loyalty.view_message"):
            context["card_messages"] = list(
                sending.customer_messages(card).select_related("card")[:MESSAGES_SHOWN]
            )
            context["messages_shown"] = MESSAGES_SHOWN
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


class CardConsentView(CardActionView):
    """A manager records what the customer said about the programme's messages."""

    form_class = CardConsentForm
    form_name = "consent_form"

    def success_message(self, form, card):
        if not form.changed:
            return _("The consent was recorded so already; nothing changed.")
        if card.marketing_consent:
            return _("The customer of card %(number)s now receives messages.") % {
                "number": card.number
            }
        return _("The customer of card %(number)s no longer receives messages.") % {
            "number": card.number
        }


# --- categories of the list's customers ----------------------------------------------------


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
    kind = mass_jobs.ACCRUAL

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
            is_accrual=self.kind == mass_jobs.ACCRUAL,
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
            job = mass_jobs.create(
                self.kind,
                self.cards,
                amount=data["amount"],
                description=data["description"],
                note=data["note"],
                available_from=data.get("available_from"),
                by=self.request.user,
                token=data["token"],
                query=self.query,
                notify=data.get("notify", False),
            )
            tasks.start_job(job)
        return redirect("loyalty-job-detail", pk=job.pk)


class MassDebitView(MassJobView):
    kind = mass_jobs.DEBIT
