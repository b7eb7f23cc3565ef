"""An example value of every template variable (``events.VARIABLES``), in the active language.

Shown beside the template editor in Oscar's dashboard, so a manager sees what each variable
becomes, and used by the tests that render every template. The example is one made-up
change: 150 points for order 100042 on Anna's card, the balance 1,350 after it.
"""

from decimal import Decimal

from django.contrib.sites.models import Site
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from oscar_loyalty import descriptions
from oscar_loyalty.formats import format_points
from oscar_loyalty.notifications import events, sending

# Event types whose templates get these variables (the package's own, and later issues').
CODE_PREFIX = "LOYALTY_"

CARD_NUMBER = "2000000012342"
ORDER_NUMBER = "100042"
AMOUNT = Decimal("150")
BALANCE = Decimal("1350")


def is_loyalty(code):
    return code.startswith(CODE_PREFIX)


def context(site=None):
    """The values ``sending.context`` would give the templates for the example change."""
    site = site or Site.objects.get_current()
    return {
        "customer_name": _("Anna Ivanova"),
        "program": _("Bonus club"),
        "card_number": CARD_NUMBER,
        "amount": format_points(AMOUNT),
        "balance": format_points(BALANCE),
        "description": descriptions.describe(descriptions.ORDER_EARN, ORDER_NUMBER),
        "grade": pgettext("grade", "Gold"),
        "old_grade": pgettext("grade", "Silver"),
        "order_number": ORDER_NUMBER,
        "account_url": sending.account_url(site),
        "site": site,
    }


def variables(site=None):
    """``[(name, meaning, example)]`` as text, one per variable, in ``VARIABLES``' order."""
    values = context(site)
    site = values["site"]
    values["site"] = f"{site.name}, {site.domain}"
    return [
        (name, str(meaning), str(values.get(name, "")))
        for name, meaning in events.VARIABLES.items()
    ]
