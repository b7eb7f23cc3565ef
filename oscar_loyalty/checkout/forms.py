"""The "Pay with bonus points" form of the payment step."""

from django import forms
from django.utils.translation import gettext_lazy as _

from oscar_loyalty.paying import PaymentRefused


class PointsForm(forms.Form):
    """How many points to spend, checked against the programme's policy for this order.

    It has no card field on purpose: the card is the logged-in customer's.
    """

    points = forms.DecimalField(
        label=_("Points to use"),
        max_digits=14,
        decimal_places=2,
        localize=True,
        error_messages={
            "invalid": _("Enter the number of points, for example 150."),
            "max_decimal_places": _("Use at most two decimal places."),
            "max_digits": _("That is far more points than any card holds."),
            "required": _("Enter how many points to use."),
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def __init__(self, *args, allowance=None, **kwargs):
        self.allowance = allowance
        super().__init__(*args, **kwargs)

    def clean_points(self):
        points = self.cleaned_data["points"]
        if self.allowance is None:
            raise forms.ValidationError(_("Points cannot be used on this order."))
        try:
            return self.allowance.check(points)
        except PaymentRefused as exc:
            raise forms.ValidationError(str(exc)) from None
