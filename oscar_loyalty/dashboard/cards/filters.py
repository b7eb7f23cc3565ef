"""The card list's search and filters (django-filter).

Every filter reads an indexed column of the card or a joined row found through one, so a
filtered page of a million cards stays fast; the querystring they make is also what a mass
accrual or a category assignment "to all matching" applies to.
"""

import re
from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from oscar.core.loading import get_model
from oscar.templatetags.currency_filters import currency

from oscar_loyalty import cards, phones
from oscar_loyalty.dashboard.widgets import DATE_INPUT
from oscar_loyalty.formats import format_points

Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")
Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")

NUMBER_LIKE = re.compile(r"^[\d\s()+\-]+$")
FROM = forms.NumberInput(attrs={"placeholder": _("from")})
TO = forms.NumberInput(attrs={"placeholder": pgettext_lazy("range", "to")})


class GradeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.program.name}: {obj.name}"


class GradeFilter(django_filters.ModelChoiceFilter):
    field_class = GradeChoiceField


def _start_of(day):
    return timezone.make_aware(datetime.combine(day, time.min))


class CardFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label=_("Search"),
        widget=forms.TextInput(attrs={"placeholder": _("Card number, phone, e-mail or name")}),
    )
    program = django_filters.ModelChoiceFilter(
        queryset=Program.objects.order_by("name"), label=_("Programme")
    )
    grade = GradeFilter(
        queryset=Grade.objects.select_related("program").order_by("program__name", "spend_from"),
        label=_("Grade"),
    )
    status = django_filters.ChoiceFilter(choices=Card.STATUSES, label=_("Status"))
    category = django_filters.ModelChoiceFilter(
        field_name="user__loyalty_categories",
        queryset=Category.objects.all(),
        label=_("Category"),
    )
    balance_min = django_filters.NumberFilter(
        field_name="account__balance", lookup_expr="gte", label=_("Balance from"), widget=FROM
    )
    balance_max = django_filters.NumberFilter(
        field_name="account__balance",
        lookup_expr="lte",
        label=pgettext_lazy("range", "to"),
        widget=TO,
    )
    spend_min = django_filters.NumberFilter(
        field_name="lifetime_spend",
        lookup_expr="gte",
        label=_("Completed orders from"),
        widget=FROM,
    )
    spend_max = django_filters.NumberFilter(
        field_name="lifetime_spend",
        lookup_expr="lte",
        label=pgettext_lazy("range", "to"),
        widget=TO,
    )
    last_order_from = django_filters.DateFilter(
        method="last_order_after", label=_("Last order from"), widget=DATE_INPUT
    )
    last_order_to = django_filters.DateFilter(
        method="last_order_before", label=pgettext_lazy("range", "to"), widget=DATE_INPUT
    )

    class Meta:
        model = Card
        fields = []

    def search(self, queryset, name, value):
        """A card number (or its start), a phone in any format, an e-mail, or a name.

        A phone finds the cards of customers who have it on their account, a saved address or
        an order too (one more query, whatever the matches; Oscar does not index those phone
        columns, which only a phone search reads)."""
        value = value.strip()
        if not value:
            return queryset
        condition = Q()
        if NUMBER_LIKE.match(value):
            digits = re.sub(r"\D", "", value)
            if digits:
                condition |= Q(number__startswith=digits)
            phone = phones.normalise_or_none(value)
            if phone:  # the card's phone, or its customer's on the account, an address, an order
                condition |= Q(phone=phone)
                customers = cards.customers_with_phone(phone)
                if customers:
                    condition |= Q(user_id__in=customers)
        elif "@" in value:
            condition |= Q(user__email__iexact=value)
        else:
            words = Q()
            for word in value.split():
                words &= Q(user__first_name__icontains=word) | Q(user__last_name__icontains=word)
            condition |= words | Q(user__email__istartswith=value)
        if not condition:
            return queryset.none()
        return queryset.filter(condition)

    def last_order_after(self, queryset, name, value):
        return queryset.filter(last_order_at__gte=_start_of(value))

    def last_order_before(self, queryset, name, value):
        return queryset.filter(last_order_at__lt=_start_of(value + timedelta(days=1)))

    # Each range with how its bounds are written for the reader (points, money, dates).
    RANGES = (
        ("balance_min", "balance_max", _("Balance"), format_points),
        ("spend_min", "spend_max", _("Completed orders total"), currency),
        ("last_order_from", "last_order_to", _("Last order date"), date_format),
    )

    def describe(self):
        """The active filters in words, e.g. "Balance from 1,000 to 7,000"."""
        if not (self.is_bound and self.form.is_valid()):
            return []
        data, parts = self.form.cleaned_data, []
        if data.get("q"):
            parts.append(_("Search “%(text)s”") % {"text": data["q"]})
        for name in ("program", "grade", "status", "category"):
            value = data.get(name)
            if value not in (None, ""):
                shown = dict(Card.STATUSES).get(value, value) if name == "status" else value
                parts.append(f"{self.form.fields[name].label}: {shown}")
        for low_name, high_name, label, shown in self.RANGES:
            low, high = data.get(low_name), data.get(high_name)
            values = {
                "label": label,
                "low": low if low is None else shown(low),
                "high": high if high is None else shown(high),
            }
            if low is not None and high is not None:
                parts.append(_("%(label)s from %(low)s to %(high)s") % values)
            elif low is not None:
                parts.append(_("%(label)s from %(low)s") % values)
            elif high is not None:
                parts.append(_("%(label)s up to %(high)s") % values)
        return parts


# Querystring keys that select cards (not pages or sorting), kept when a list links onward.
FILTER_KEYS = tuple(CardFilter.base_filters)


def filter_query(querydict, keys=FILTER_KEYS):
    """The part of ``querydict`` that selects rows (``keys``: cards' by default), as a
    querystring."""
    kept = querydict.copy()
    for key in list(kept):
        if key not in keys or not any(kept.getlist(key)):
            del kept[key]
    return kept.urlencode()
