"""The variables of the loyalty messages, beside Oscar's template editor (Content → Email
templates): read from ``events.VARIABLES`` with an example each, so the page never drifts
from what the sending gives the templates."""

from django import template
from django.contrib.sites.shortcuts import get_current_site

from oscar_loyalty.notifications import examples

register = template.Library()


@register.simple_tag(takes_context=True)
def loyalty_message_variables(context, commtype):
    """``[(name, meaning, example)]`` of the variables a loyalty event type's templates may
    use; empty for Oscar's own event types."""
    if commtype is None or not examples.is_loyalty(commtype.code or ""):
        return []
    request = context.get("request")
    return examples.variables(get_current_site(request) if request is not None else None)
