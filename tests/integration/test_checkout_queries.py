"""Query budget: database queries the loyalty programme adds to each checkout page and to
placing the order, measured against the same shop without it, for a card with a short and
with a long history. Prints the counts; fails above the budget or if history changes them."""

import contextlib
import copy

import pytest
from django.conf import settings
from django.db import connection
from django.template.loaders.app_directories import Loader as AppDirectoriesLoader
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path, reverse
from oscar.apps.order.signals import order_line_status_changed, order_placed, order_status_changed

from oscar_loyalty import ledger, receivers
from sandbox.checkout.views import CashOnDeliveryPaymentDetailsView
from sandbox.urls import urlpatterns as sandbox_urlpatterns
from tests.integration.checkout_support import (
    TOWELS,
    Transfer,
    apply_points,
    card_with_points,
    customer,
    load_shop,
    make_program,
    to_payment_step,
)

BUDGET = 10
# Placing the order with points, 10 statements counting BEGIN/COMMIT: the customer's card
# (which also reads the "Bonus points" source type's id); the hold's transaction, BEGIN,
# Hold row, transfer, conditional UPDATE of the balance, COMMIT (no savepoint: the new row
# makes the key new); the capture's transfer and the hold's status, inside the receiver's
# transaction the shop pays for without points too; Oscar's payment source and its transaction.
PLACE_ORDER_BUDGET = 10
LONG_HISTORY = 300

# The shop without the loyalty programme: its own payment view, no points mixin.
urlpatterns = [
    path("plain/payment-details/", CashOnDeliveryPaymentDetailsView.as_view(), name="plain-pay"),
    path(
        "plain/preview/",
        CashOnDeliveryPaymentDetailsView.as_view(preview=True),
        name="plain-preview",
    ),
    *sandbox_urlpatterns,
]

# Real transactions, as in production: no test transaction around the requests (inside one,
# every atomic block would become an extra SAVEPOINT statement).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class WithoutLoyaltyTemplates(AppDirectoriesLoader):
    """Oscar's own templates: the package's overrides and partials left out."""

    def get_dirs(self):
        return [d for d in super().get_dirs() if "oscar_loyalty" not in str(d)]


def plain_templates():
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"], engine["APP_DIRS"] = [], False
    engine["OPTIONS"]["loaders"] = [f"{__name__}.WithoutLoyaltyTemplates"]
    return [engine]


LOYALTY_SIGNALS = [
    (order_placed, receivers.capture_points, "capture_points"),
    (order_placed, receivers.on_order_placed, "order_placed"),
    (order_status_changed, receivers.on_order_status_changed, "status"),
    (order_status_changed, receivers.return_points_on_cancel, "return_points"),
    (order_line_status_changed, receivers.on_line_status_changed, "line_status"),
    (order_line_status_changed, receivers.return_points_on_line_refund, "return_line_points"),
]


class without_loyalty:
    """The shop as it was before installing the package: no templates, no receivers."""

    def __enter__(self):
        for signal, _receiver, uid in LOYALTY_SIGNALS:
            signal.disconnect(dispatch_uid=f"oscar_loyalty.{uid}")
        self.templates = override_settings(TEMPLATES=plain_templates())
        self.templates.enable()

    def __exit__(self, *exc):
        self.templates.disable()
        receivers.connect()


def count(call):
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code in (200, 302), response
    return len(queries)


def checkout(client, user, pay, preview, points=None, loyalty=True):
    """Queries of each page of one checkout (a fresh basket each time)."""
    to_payment_step(client, user, TOWELS)
    if points:
        apply_points(client, points)
    off = contextlib.nullcontext() if loyalty else without_loyalty()
    with off:
        return {
            "basket page": count(lambda: client.get(reverse("basket:summary"))),
            "payment details": count(lambda: client.get(reverse(pay))),
            "preview": count(lambda: client.get(reverse(preview))),
            "place order": count(lambda: client.post(reverse(preview), {"action": "place_order"})),
        }


def shops(client, user):
    """The same checkout in three shops: without the package, with it but without the
    checkout mixin (earning only), and with the mixin paying 100 points."""
    return {
        "plain": checkout(client, user, "plain-pay", "plain-preview", loyalty=False),
        "earning": checkout(client, user, "plain-pay", "plain-preview"),
        "paying": checkout(
            client, user, "checkout:payment-details", "checkout:preview", points="100"
        ),
    }


def test_loyalty_adds_few_queries_whatever_the_history(client, capsys):
    load_shop()
    anna = customer()
    card = card_with_points(make_program(), anna, 5000)
    shops(client, anna)  # warm up per-process caches (site, system accounts, templates)

    runs = {"short": shops(client, anna)}
    for n in range(LONG_HISTORY):
        ledger.credit_card(card, 1, f"test:history:{n}", kind=Transfer.ADJUST)
    runs["long"] = shops(client, anna)
    transfers = Transfer.objects.filter(card=card).count()

    def extra(run, page):
        return run["paying"][page] - run["earning"][page], run["paying"][page] - run["plain"][page]

    with capsys.disabled():
        print(
            "\nloyalty query budget: extra queries of paying with points (of the whole "
            f"package), card with 1 / {transfers} transfers:"
        )
        for page in runs["short"]["plain"]:
            short, long = extra(runs["short"], page), extra(runs["long"], page)
            print(
                f"  {page:<16} +{short[0]} / +{long[0]}   (package: +{short[1]} / +{long[1]}; "
                f"{runs['short']['plain'][page]} queries without it)"
            )
    assert transfers > LONG_HISTORY
    for page in runs["short"]["plain"]:
        assert extra(runs["short"], page) == extra(runs["long"], page), page
        budget = PLACE_ORDER_BUDGET if page == "place order" else BUDGET
        assert extra(runs["short"], page)[0] <= budget, (page, extra(runs["short"], page))
