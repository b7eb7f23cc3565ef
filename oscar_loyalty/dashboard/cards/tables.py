"""The card list's table (django-tables2, as Oscar's dashboard does)."""

from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_tables2 import A, Column, DateTimeColumn, LinkColumn, TemplateColumn
from oscar.core.loading import get_class
from oscar.templatetags.currency_filters import currency

from oscar_loyalty.formats import format_points

DashboardTable = get_class("dashboard.tables", "DashboardTable")

PARTIALS = "oscar_loyalty/dashboard/partials/"


class CardTable(DashboardTable):
    select = TemplateColumn(
        template_name=PARTIALS + "card_row_checkbox.html",
        verbose_name=lazy(
            lambda: format_html(
                '<input type="checkbox" id="select_all_cards" aria-label="{}">',
                _("Tick every card of the page"),
            ),
            SafeString,
        )(),
        orderable=False,
    )
    number = LinkColumn(
        "loyalty-card-detail",
        args=[A("pk")],
        verbose_name=_("Card number"),
        attrs={"a": {"class": "text-monospace"}},
    )
    customer = TemplateColumn(
        template_name=PARTIALS + "card_row_customer.html",
        verbose_name=_("Customer"),
        orderable=False,
    )
    phone = TemplateColumn(
        "{% load loyalty_dashboard %}{{ record.phone|phone_display|default:'—' }}",
        verbose_name=_("Phone"),
        orderable=False,
    )
    program = Column(accessor="program__name", verbose_name=_("Programme"), orderable=False)
    grade = TemplateColumn(
        template_name=PARTIALS + "card_row_grade.html",
        verbose_name=_("Grade"),
        order_by=("grade__spend_from",),
    )
    status = TemplateColumn(
        template_name=PARTIALS + "card_row_status.html", verbose_name=_("Status")
    )
    balance = Column(
        accessor="account__balance",
        verbose_name=_("Balance"),
        attrs={"td": {"class": "text-right"}, "th": {"class": "text-right"}},
    )
    lifetime_spend = Column(
        verbose_name=_("Completed orders"),
        attrs={"td": {"class": "text-right"}, "th": {"class": "text-right"}},
    )
    last_order_at = DateTimeColumn(
        verbose_name=_("Last order"), format="SHORT_DATE_FORMAT", default="—"
    )
    created = DateTimeColumn(verbose_name=_("Issued"), format="SHORT_DATE_FORMAT")
    actions = TemplateColumn(
        template_name=PARTIALS + "card_row_actions.html", verbose_name=" ", orderable=False
    )

    icon = "fas fa-id-card"
    caption = ngettext_lazy("%d card", "%d cards")

    def render_balance(self, value):
        return format_points(value)

    def render_lifetime_spend(self, value):
        return currency(value)

    class Meta(DashboardTable.Meta):
        template_name = "oscar_loyalty/dashboard/card_table.html"
        order_by = ("-created",)
        attrs = {"class": "table table-striped table-bordered table-hover loyalty-cards"}
