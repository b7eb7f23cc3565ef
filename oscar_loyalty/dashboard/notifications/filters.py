"""The message log's filters (django-filter): customer, event, channel, status, and the
card or mass job a link from their pages narrows it to.

The page is read newest first along the messages' ``(created, id)`` index and stops at a
page's worth of rows (``keyset``), so a filter that matches often costs little; the customer
search goes through the card's and the customer's indexed columns.
"""

import re

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from oscar.core.loading import get_model

from oscar_loyalty import cards, phones
from oscar_loyalty.dashboard.cards import filters as card_filters
from oscar_loyalty.notifications import events, sending

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Message = get_model("oscar_loyalty", "Message")

NUMBER_LIKE = re.compile(r"^[\d\s()+\-]+$")


def job_prefix(job_id):
    """The start of the keys of a mass job's messages (``msg:<transfer key>:<channel>``,
    the transfer keys being ``job:<id>:card:<card id>``)."""
    return f"msg:job:{job_id}:"


class IdFilter(django_filters.NumberFilter):
    """An object's id in the querystring (a whole positive number)."""

    field_class = forms.IntegerField


class MessageFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label=_("Customer"),
        widget=forms.TextInput(attrs={"placeholder": _("E-mail, name, card number or phone")}),
    )
    event = django_filters.ChoiceFilter(
        choices=list(events.NAMES.items()), label=_("Event"), empty_label=_("Any event")
    )
    channel = django_filters.ChoiceFilter(
        choices=Message.CHANNELS,
        method="on_channel",
        label=_("Channel"),
        empty_label=_("Any channel"),
    )
    status = django_filters.ChoiceFilter(
        choices=Message.STATUSES, label=_("Status"), empty_label=_("Any status")
    )
    card = IdFilter(method="of_card", widget=forms.HiddenInput, min_value=1)
    job = IdFilter(method="of_job", widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = Message
        fields = []

    def on_channel(self, queryset, name, value):
        """The account inbox: its own messages and the e-mails that carry its copy."""
        if value == Message.SITE:
            return queryset.filter(Q(channel=Message.SITE) | Q(inbox=True))
        return queryset.filter(channel=value)

    def search(self, queryset, name, value):
        """An e-mail, a card number (or its start), a phone in any format, or a name."""
        value = value.strip()
        if not value:
            return queryset
        if "@" in value:
            return queryset.filter(Q(user__email__iexact=value) | Q(recipient__iexact=value))
        if NUMBER_LIKE.match(value):
            condition = Q()
            digits = re.sub(r"\D", "", value)
            if digits:
                condition |= Q(card__number__startswith=digits)
            phone = phones.normalise_or_none(value)
            if phone:  # an SMS's number, the card's phone, or a customer who has it
                condition |= Q(recipient__in=[phone, phones.e164(phone)]) | Q(card__phone=phone)
                customers = cards.customers_with_phone(phone)
                if customers:
                    condition |= Q(user_id__in=customers)
            return queryset.filter(condition) if condition else queryset.none()
        words = Q()
        for word in value.split():
            words &= Q(user__first_name__icontains=word) | Q(user__last_name__icontains=word)
        return queryset.filter(words | Q(user__email__istartswith=value))

    def of_card(self, queryset, name, value):
        """The messages of the card and of its customer, as the card page lists them."""
        card = Card.objects.filter(pk=value).only("pk", "user_id", "number").first()
        self.card_shown = card
        if card is None:
            return queryset.none()
        return queryset.filter(sending.of_customer(card))

    def of_job(self, queryset, name, value):
        self.job_shown = Job.objects.filter(pk=value).first()
        return queryset.filter(key__startswith=job_prefix(value))


# Querystring keys that select messages (not the page's cursor), kept by links and resend.
FILTER_KEYS = tuple(MessageFilter.base_filters)


def filter_query(querydict):
    """The part of ``querydict`` that selects messages, as a querystring."""
    return card_filters.filter_query(querydict, FILTER_KEYS)
