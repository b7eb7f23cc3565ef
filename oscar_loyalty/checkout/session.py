"""The customer's choice of points for the basket being checked out, kept in the session.

Only an amount is stored, tied to the basket it was chosen for: the card is always looked
up from the logged-in user, so nothing the browser sends can name someone else's card.
"""

from decimal import Decimal, InvalidOperation

SESSION_KEY = "oscar_loyalty_checkout"
ZERO = Decimal("0.00")


def chosen_points(request, basket):
    """Points the customer chose for ``basket`` (zero if none or chosen for another one)."""
    data = request.session.get(SESSION_KEY) or {}
    if basket is None or data.get("basket") != basket.pk:
        return ZERO
    try:
        return Decimal(data.get("points", "0"))
    except (InvalidOperation, TypeError):
        return ZERO


def choose_points(request, basket, points):
    request.session[SESSION_KEY] = {"basket": basket.pk, "points": str(points)}


def forget(request):
    request.session.pop(SESSION_KEY, None)
