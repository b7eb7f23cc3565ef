"""The sandbox checkout: Oscar's views, with bonus points and a "cash on delivery" payment.

``CashOnDeliveryPaymentDetailsView`` stands for the shop's own payment method (in a real shop
often a payment gateway package's view). Paying with points is the mixin put in front of it.
"""

from oscar.apps.checkout import views
from oscar.core.loading import get_model

from oscar_loyalty.checkout.mixins import LoyaltyPaymentMixin

Source = get_model("payment", "Source")
SourceType = get_model("payment", "SourceType")


class CashOnDeliveryPaymentDetailsView(views.PaymentDetailsView):
    """The shop's own payment method: the customer pays the courier."""

    def handle_payment(self, order_number, total, **kwargs):
        source_type, _ = SourceType.objects.get_or_create(
            code="cash-on-delivery", defaults={"name": "Cash on delivery"}
        )
        self.add_payment_source(
            Source(
                source_type=source_type, currency=total.currency, amount_allocated=total.incl_tax
            )
        )


class PaymentDetailsView(LoyaltyPaymentMixin, CashOnDeliveryPaymentDetailsView):
    """Points first; ``total`` reaching the shop's method is what is left after them, and
    the shop's method is not asked at all when points pay for everything."""
