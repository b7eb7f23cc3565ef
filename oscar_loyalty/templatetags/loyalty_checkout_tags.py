"""Template tags for points in the basket, checkout, order and account pages."""

from django import template
from django.contrib.auth import get_user_model
from oscar.core.loading import get_model

from oscar_loyalty import conf, paying

Program = get_model("oscar_loyalty", "Program")

register = template.Library()


@register.simple_tag(takes_context=True)
def loyalty_basket_earning(context, basket=None):
    """Points the basket in ``context`` would earn for the logged-in customer (or ``None``)."""
    request = context.get("request")
    basket = basket or context.get("basket")
    if request is None or basket is None or not request.user.is_authenticated:
        return None
    card, refusal = paying.payment_card(request.user)
    if card is None or refusal:
        return None
    shipping = context.get("shipping_charge")
    shipping = getattr(shipping, "incl_tax", None) or paying.ZERO
    return paying.basket_earning(card, basket, shipping)


@register.simple_tag
def loyalty_order_points(order):
    """What ``order`` spent, earns and returned in points (``paying.OrderPoints``)."""
    return paying.order_points(order)


@register.simple_tag
def loyalty_card_ways():
    """What gets a customer without a card one in this shop, for the text that tells them.

    ``on_registration``: a programme issues cards to new customers; ``profile_phone``: the
    user model has the phone field whose saving attaches phone cards (the order's delivery
    phone always does)."""
    return {
        "on_registration": Program.objects.filter(
            is_active=True, issue_on_registration=True
        ).exists(),
        "profile_phone": hasattr(get_user_model(), conf.user_phone_field),
    }
