"""A payment gateway that sends the customer to a third-party page and back, the way
django-oscar-paypal and similar packages do, with the loyalty mixin in front of it.

Used as ROOT_URLCONF by the redirect tests: the sandbox's URLs plus the gateway's.
"""

from django.urls import path, reverse
from oscar.apps.checkout import views
from oscar.apps.payment.exceptions import RedirectRequired, UnableToTakePayment
from oscar.core.loading import get_class, get_model

from oscar_loyalty.checkout.mixins import LoyaltyPaymentMixin
from sandbox.urls import urlpatterns as sandbox_urlpatterns

Applicator = get_class("offer.applicator", "Applicator")
Source = get_model("payment", "Source")
SourceType = get_model("payment", "SourceType")

# What the fake third party was asked to charge, by order number.
CHARGED = {}


class GatewayPaymentDetailsView(views.PaymentDetailsView):
    """The gateway package's view: the first call redirects, the return confirms."""

    def handle_payment(self, order_number, total, confirmed=False, **kwargs):
        if not confirmed:
            CHARGED[str(order_number)] = total.incl_tax
            raise RedirectRequired(f"https://pay.example.com/checkout?order={order_number}")
        if CHARGED.get(str(order_number)) != total.incl_tax:
            raise UnableToTakePayment("The amount changed while you were away.")
        source_type, _ = SourceType.objects.get_or_create(name="Gateway")
        self.add_payment_source(
            Source(source_type=source_type, currency=total.currency, amount_debited=total.incl_tax)
        )


class PaymentDetailsView(LoyaltyPaymentMixin, GatewayPaymentDetailsView):
    pass


class GatewayReturnView(PaymentDetailsView):
    """The customer is back from the gateway: place the order from the frozen basket."""

    pre_conditions = []
    skip_conditions = []
    preview = True

    def get(self, request, *args, **kwargs):
        basket = self.get_submitted_basket()
        basket.strategy = request.strategy
        Applicator().apply(basket, request.user, request)
        submission = self.build_submission(basket=basket)
        submission["payment_kwargs"]["confirmed"] = True
        return self.submit(**submission)


urlpatterns = [
    path(
        "gateway/checkout/preview/",
        PaymentDetailsView.as_view(preview=True),
        name="gateway-preview",
    ),
    path("gateway/return/", GatewayReturnView.as_view(), name="gateway-return"),
    *sandbox_urlpatterns,
]


def preview_url():
    return reverse("gateway-preview")


def return_url():
    return reverse("gateway-return")
