"""Formatting filters of the loyalty templates: ``{{ card.account.balance|points }}``."""

from django import template

from oscar_loyalty.formats import format_points

register = template.Library()


@register.filter
def points(value):
    """Points in the reader's locale (see ``oscar_loyalty.formats``)."""
    return format_points(value)


@register.filter
def count(value):
    """A count of cards, rows or jobs, its thousands grouped the way points are."""
    return format_points(value)
