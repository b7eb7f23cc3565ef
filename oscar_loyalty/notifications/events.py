"""The events customers hear about: one Oscar ``CommunicationEventType`` code each.

A code's templates are ``oscar/communication/emails/commtype_<code>_*`` and
``oscar/communication/sms/commtype_<code>_body.txt`` (lower case) unless a manager has
edited them in the dashboard (Content → Email templates). ``VARIABLES`` is what every
template may use; the README shows an example of each.
"""

from django.utils.translation import gettext_lazy as _

POINTS_EARNED = "LOYALTY_POINTS_EARNED"
POINTS_CREDITED = "LOYALTY_POINTS_CREDITED"
POINTS_DEBITED = "LOYALTY_POINTS_DEBITED"
POINTS_RETURNED = "LOYALTY_POINTS_RETURNED"
POINTS_TAKEN_BACK = "LOYALTY_POINTS_TAKEN_BACK"
GRADE_CHANGED = "LOYALTY_GRADE_CHANGED"
CARD_ISSUED = "LOYALTY_CARD_ISSUED"

NAMES = {
    POINTS_EARNED: _("Loyalty: points earned on an order"),
    POINTS_CREDITED: _("Loyalty: points credited by the shop"),
    POINTS_DEBITED: _("Loyalty: points debited by the shop"),
    POINTS_RETURNED: _("Loyalty: points paid for an order returned"),
    POINTS_TAKEN_BACK: _("Loyalty: earned points taken back"),
    GRADE_CHANGED: _("Loyalty: grade changed"),
    CARD_ISSUED: _("Loyalty: card issued"),
}

VARIABLES = {
    "customer_name": _("the customer's name (or e-mail address)"),
    "program": _("the programme's name"),
    "card_number": _("the card's number"),
    "amount": _("the points of this change"),
    "balance": _("the card's balance right after it"),
    "description": _("what the change is, as the card's history shows it"),
    "grade": _("the card's grade"),
    "old_grade": _("the grade before (grade changed)"),
    "order_number": _("the order's number, if the change is about an order"),
    "account_url": _("the full address of the customer's bonus card page"),
    "site": _("the shop (site.name, site.domain)"),
}
