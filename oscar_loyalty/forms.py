"""Forms of the customer's account pages."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ConsentForm(forms.Form):
    """The customer's answer to "Messages about my points": on or off, nothing else."""

    consent = forms.TypedChoiceField(
        label=_("Messages about my points"),
        choices=[("1", pgettext_lazy("messages", "on")), ("0", pgettext_lazy("messages", "off"))],
        coerce=lambda value: value == "1",
    )
