"""Forms of the customer categories."""

from django import forms
from django.utils.translation import gettext_lazy as _
from oscar.core.loading import get_model

from oscar_loyalty.dashboard.widgets import COLOUR_INPUT

Category = get_model("oscar_loyalty", "Category")


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "colour"]
        widgets = {"colour": COLOUR_INPUT}
        help_texts = {
            "name": _("The default names Regular, Loyal and VIP are shown translated."),
        }


class CustomerCategoryForm(forms.Form):
    category = forms.ModelChoiceField(queryset=Category.objects.all(), label=_("Category"))
    action = forms.ChoiceField(choices=[("add", _("Add")), ("remove", _("Remove"))])
