"""Template helpers of the loyalty dashboard: phones, colour chips, the customer page panel."""

import django_tables2 as tables
from django import template
from oscar.core.loading import get_model

from oscar_loyalty import cards, categories, phones
from oscar_loyalty.notifications import events

Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")

register = template.Library()


@register.filter
def phone_display(canonical):
    return phones.display(canonical)


@register.filter
def person(user):
    """How the dashboard names a manager or customer everywhere: full name, else e-mail."""
    if user is None:
        return ""
    return user.get_full_name() or user.email or user.get_username()


@register.filter
def text_colour(background):
    return categories.text_colour(background)


@register.inclusion_tag("oscar_loyalty/dashboard/partials/chip.html")
def chip(label, colour, extra_class=""):
    """A coloured label (grade or category) like Oscar's badges."""
    return {
        "label": label,
        "colour": colour,
        "text": categories.text_colour(colour),
        "extra_class": extra_class,
    }


@register.simple_tag
def loyalty_customer(customer):
    """What the loyalty panel on Oscar's customer page shows: cards and categories."""
    own = categories.of_customer(customer)
    return {
        "cards": list(cards.cards_of(customer)),
        "categories": own,
        "other_categories": list(Category.objects.exclude(pk__in=[c.pk for c in own])),
    }


@register.filter
def card_status(code):
    """The readable name of a card status code (status changes store the code)."""
    return dict(Card.STATUSES).get(code, code)


@register.filter
def message_event(code):
    """The readable name of a message's event (messages store the event type's code)."""
    return events.NAMES.get(code, code)


@register.simple_tag(takes_context=True)
def categories_on_page(context, customer):
    """The categories of ``customer`` in a table of customers, fetched once for the whole
    page (one query, not one per row) and remembered on the table."""
    table = next((v for v in context.flatten().values() if isinstance(v, tables.Table)), None)
    by_customer = getattr(table, "_loyalty_categories", None)
    if by_customer is None:
        rows = table.page.object_list if table is not None and hasattr(table, "page") else []
        ids = [getattr(row, "record", row).pk for row in rows] or [customer.pk]
        by_customer = categories.by_customer(ids)
        if table is not None:
            table._loyalty_categories = by_customer
    return by_customer.get(customer.pk, [])
