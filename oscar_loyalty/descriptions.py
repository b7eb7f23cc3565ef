"""What a transfer's history line says, in the language of whoever reads it.

A transfer the package writes stores no translated text: ``Transfer.label_code`` names what
happened and the transfer's own columns (``order_number``) fill it in, so a Russian customer
reads a Russian line however the shop's language was set when the points moved. Text a
manager typed (an adjustment, a mass accrual) is kept in ``description`` and shown as typed.
"""

from django.utils.translation import gettext_lazy as _

ORDER_EARN = "order-earn"
ORDER_HOLD = "order-hold"
ORDER_CAPTURE = "order-capture"
HOLD_CHANGED = "hold-changed"
ORDER_NOT_PLACED = "order-not-placed"
ORDER_REFUND = "order-refund"
LINE_REFUND = "line-refund"
ORDER_CANCEL = "order-cancel"
LINE_CANCEL = "line-cancel"
IMPORT_NEW = "import-new"
IMPORT_SET = "import-set"
IMPORT_ADD = "import-add"
IMPORT_TAKE = "import-take"
IMPORT_UNDO = "import-undo"
CARD_REPLACED = "card-replaced"

# Texts with %(number)s are about the transfer's order.
TEXTS = {
    ORDER_EARN: _("Points for order %(number)s"),
    ORDER_HOLD: _("Payment for order %(number)s"),
    ORDER_CAPTURE: _("Payment for order %(number)s confirmed"),
    HOLD_CHANGED: _("Reservation changed for order %(number)s"),
    ORDER_NOT_PLACED: _("Order %(number)s was not placed: points returned"),
    ORDER_REFUND: _("Order %(number)s cancelled: points returned"),
    LINE_REFUND: _("Refund on order %(number)s: points returned"),
    ORDER_CANCEL: _("Order %(number)s cancelled"),
    LINE_CANCEL: _("Refund on order %(number)s"),
    IMPORT_NEW: _("Opening balance of the card"),
    IMPORT_SET: _("Balance updated by the shop"),
    IMPORT_ADD: _("Points added by the shop"),
    IMPORT_TAKE: _("Points taken by the shop"),
    IMPORT_UNDO: _("Import cancelled by the shop"),
    CARD_REPLACED: _("Card replaced: the balance moved to the new card"),
}


def describe(label_code, order_number="", description=""):
    """The line to show: typed ``description`` as typed, else the text ``label_code`` names
    in the active language, else ``""`` (the caller shows the transfer's kind)."""
    if description:
        return description
    text = TEXTS.get(label_code)
    return str(text) % {"number": order_number} if text is not None else ""
