"""The checkout mixin: paying part of an order with points inside the shop's own checkout.

A shop adds it in front of its forked ``PaymentDetailsView`` (Oscar's, or a payment gateway
package's)::

    class PaymentDetailsView(LoyaltyPaymentMixin, views.PaymentDetailsView):
        ...

The mixin holds the chosen points when payment is taken, hands the rest of the total to the
shop's ``handle_payment``, releases the points at once if payment or placing the order fails
and captures them when the order exists. Oscar's checkout app itself is never replaced.
"""

import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from oscar.apps.payment.exceptions import RedirectRequired, UnableToTakePayment
from oscar.core import prices
from oscar.templatetags.currency_filters import currency

from oscar_loyalty import paying
from oscar_loyalty.checkout import session
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.formats import format_points
from oscar_loyalty.loading import get_class

ZERO = Decimal("0.00")
logger = logging.getLogger(__name__)


@dataclass
class PointsPanel:
    """What the payment step, the preview and the totals show about points."""

    card: object = None
    refusal: str | None = None  # why the panel is not offered (guest, no card, blocked ...)
    allowance: object = None  # paying.Allowance when the card can be used at all
    points: Decimal = ZERO  # points applied to this order
    money: Decimal = ZERO  # what they pay for
    total: Decimal | None = None  # the order total
    remaining: Decimal | None = None  # what is left to pay with the shop's own method
    earn: Decimal = ZERO  # points this order will earn
    warning: str | None = None  # the earlier choice no longer fits the order
    form: object = None
    currency: str | None = None

    @property
    def available(self):
        """Whether the customer can choose points on this order."""
        return self.allowance is not None and not self.allowance.reason

    @property
    def covers_total(self):
        """Points pay for everything: no other payment is asked for."""
        return bool(self.points) and self.remaining is not None and self.remaining <= 0


def _less(total, money):
    """``total`` (an Oscar ``Price``) less ``money`` paid with points."""
    incl = total.incl_tax - money
    if total.incl_tax and total.excl_tax != total.incl_tax:
        excl = (total.excl_tax * incl / total.incl_tax).quantize(
            Decimal("0.01"), rounding=ROUND_DOWN
        )
    else:
        excl = total.excl_tax - money
    return prices.Price(currency=total.currency, excl_tax=excl, incl_tax=incl)


class LoyaltyPaymentMixin:
    """Pay with bonus points in a ``PaymentDetailsView``.

    Hooks for the shop: ``loyalty_covers_total()`` tells whether to skip its own payment form;
    the ``total`` its ``handle_payment`` receives is what is left after points.
    """

    loyalty_actions = ("apply", "max", "remove")

    def get_loyalty_form_class(self):
        return get_class("checkout.forms", "PointsForm")

    # --- the panel -----------------------------------------------------------------------

    def get_loyalty_panel(self, basket, order_total, shipping_charge, form=None):
        card, refusal = paying.payment_card(self.request.user)
        panel = PointsPanel(card=card, refusal=refusal, form=form)
        if order_total is None:
            return panel
        panel.total = order_total.incl_tax
        panel.remaining = order_total.incl_tax
        panel.currency = order_total.currency
        if card is None or refusal:
            return panel
        shipping = shipping_charge.incl_tax if shipping_charge is not None else ZERO
        held = paying.held_for(self.checkout_session.get_order_number(), card)
        allowance = paying.allowance(card, order_total.incl_tax, shipping, held)
        panel.allowance = allowance
        chosen = session.chosen_points(self.request, basket)
        if chosen > 0:
            try:
                panel.points = allowance.check(chosen)
            except paying.PaymentRefused as exc:
                panel.warning = _("The points you chose no longer fit this order: %(reason)s") % {
                    "reason": exc
                }
        panel.money = paying.money_for(panel.points, card.program)
        panel.remaining = order_total.incl_tax - panel.money
        panel.earn = paying.basket_earning(card, basket, shipping, panel.money)
        if panel.form is None and panel.available:
            # Only what is applied fills the field: a field showing points that "Continue"
            # would ignore tells the customer they are used when they are not.
            panel.form = self.get_loyalty_form_class()(
                allowance=allowance, initial={"points": panel.points or None}
            )
        return panel

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["loyalty"] = self.get_loyalty_panel(
            ctx.get("basket", self.request.basket),
            ctx.get("order_total"),
            ctx.get("shipping_charge"),
            form=kwargs.get("loyalty_form"),
        )
        return ctx

    def loyalty_covers_total(self):
        """Whether the chosen points pay for the whole order (skip your payment form then)."""
        submission = self.build_submission()
        return self.get_loyalty_panel(
            submission["basket"], submission["order_total"], submission["shipping_charge"]
        ).covers_total

    # --- choosing points -----------------------------------------------------------------

    def post(self, request, *args, **kwargs):
        action = request.POST.get("loyalty_action")
        if action in self.loyalty_actions:
            return self.handle_loyalty_action(request, action)
        return super().post(request, *args, **kwargs)

    def handle_loyalty_action(self, request, action):
        back = redirect(reverse("checkout:payment-details"))
        if action == "remove":
            session.forget(request)
            messages.info(request, _("Bonus points are no longer used for this order."))
            return back
        submission = self.build_submission()
        panel = self.get_loyalty_panel(
            submission["basket"], submission["order_total"], submission["shipping_charge"]
        )
        if not panel.available:
            reason = panel.refusal or (panel.allowance and panel.allowance.reason)
            messages.error(request, reason or _("Points cannot be used on this order."))
            return back
        if action == "max":
            points = panel.allowance.max_points
        else:
            form = self.get_loyalty_form_class()(request.POST, allowance=panel.allowance)
            if not form.is_valid():
                return self.render_payment_details(request, loyalty_form=form)
            points = form.cleaned_data["points"]
        session.choose_points(request, submission["basket"], points)
        messages.success(
            request,
            _("%(points)s points will pay %(money)s of this order.")
            % {
                "points": format_points(points),
                "money": currency(paying.money_for(points, panel.card.program), panel.currency),
            },
        )
        return back

    # --- paying --------------------------------------------------------------------------

    def submit(self, user, basket, shipping_address, shipping_method, shipping_charge, *args, **kw):
        # handle_payment only gets the total; remember what the policy also needs.
        self._loyalty_submission = {"basket": basket, "shipping_charge": shipping_charge}
        return super().submit(
            user, basket, shipping_address, shipping_method, shipping_charge, *args, **kw
        )

    def handle_payment(self, order_number, total, **kwargs):
        """Hold the chosen points, then let the shop take the rest (if anything is left)."""
        submitted = getattr(self, "_loyalty_submission", None) or {}
        basket = submitted.get("basket") or self.request.basket
        points = session.chosen_points(self.request, basket)
        if points <= 0:
            # An earlier attempt for this order may have held points the customer removed.
            paying.release(order_number)
            return super().handle_payment(order_number, total, **kwargs)

        card, refusal = paying.payment_card(self.request.user)
        if refusal:
            raise UnableToTakePayment(refusal)
        shipping = submitted.get("shipping_charge")
        shipping = shipping.incl_tax if shipping is not None else ZERO
        try:
            try:
                points = paying.allowance(card, total.incl_tax, shipping).check(points)
            except paying.PaymentRefused:
                # Back from a payment page: points already held for this order count too.
                held = paying.held_for(order_number, card)
                if not held:
                    raise
                points = paying.allowance(card, total.incl_tax, shipping, held).check(points)
            money = paying.money_for(points, card.program)
            paying.hold_points(card, order_number, points, money)
        except LoyaltyError as exc:
            raise UnableToTakePayment(
                _("Your bonus points could not be used: %(reason)s") % {"reason": exc}
            ) from exc
        self.add_payment_source(paying.payment_source(card, money, total.currency, order_number))

        rest = _less(total, money)
        if rest.incl_tax <= 0:
            return None  # points cover everything payable: no other payment
        try:
            return super().handle_payment(order_number, rest, **kwargs)
        except RedirectRequired:
            raise  # the hold waits for the customer to come back (or times out)
        except Exception:
            self._release_points(order_number)
            raise

    def handle_order_placement(self, order_number, *args, **kwargs):
        try:
            return super().handle_order_placement(order_number, *args, **kwargs)
        except Exception:
            # Released only if the order really does not exist; otherwise captured.
            self._release_points(order_number)
            raise

    def handle_successful_order(self, order):
        # The points were captured by the order_placed receiver (or, if that failed, will be
        # by the periodic task): only the customer's choice is left to forget.
        session.forget(self.request)
        return super().handle_successful_order(order)

    def _release_points(self, order_number):
        try:
            paying.release(order_number)
        except Exception:
            logger.exception(
                "Order %s: releasing points failed; the periodic task will", order_number
            )
