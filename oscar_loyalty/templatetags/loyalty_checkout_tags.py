"""Template tags for points in the basket, checkout and order pages."""

from django import template

from oscar_loyalty import paying

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
