"""Forms of the programmes and their grades."""

from django import forms
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from oscar.core.loading import get_model
from oscar.forms.widgets import MultipleRemoteSelect

from oscar_loyalty.dashboard.widgets import COLOUR_INPUT, DATE_INPUT

Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")


class ProgramForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = [
            "name",
            "code",
            "is_active",
            "point_value",
            "earn_step",
            "accrual_delay_hours",
            "history_start",
            "card_number_length",
            "issue_on_registration",
            "max_pay_percent",
            "min_spend_points",
            "shipping_earns",
            "shipping_payable",
            "excluded_products",
            "excluded_categories",
        ]
        widgets = {
            "history_start": DATE_INPUT,
            "excluded_products": MultipleRemoteSelect(
                lookup_url=reverse_lazy("dashboard:catalogue-product-lookup")
            ),
        }


class GradeForm(forms.ModelForm):
    class Meta:
        model = Grade
        fields = ["name", "spend_from", "earn_percent", "discount_type", "discount_value", "colour"]
        widgets = {"colour": COLOUR_INPUT}

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.program = program

    def clean_spend_from(self):
        spend_from = self.cleaned_data["spend_from"]
        others = Grade.objects.filter(program=self.instance.program, spend_from=spend_from)
        clash = others.exclude(pk=self.instance.pk).first()
        if clash is not None:
            raise forms.ValidationError(
                _("The grade “%(name)s” already starts at this sum; each grade needs its own.")
                % {"name": clash.name}
            )
        return spend_from


class GradeDeleteForm(forms.Form):
    move_to = forms.ModelChoiceField(
        queryset=Grade.objects.none(),
        required=False,
        label=_("Move its cards to the grade"),
    )

    def __init__(self, *args, grade, **kwargs):
        super().__init__(*args, **kwargs)
        self.grade = grade
        self.card_count = grade.cards.count()
        self.fields["move_to"].queryset = grade.program.grades.exclude(pk=grade.pk).order_by(
            "spend_from"
        )
        if not self.card_count:
            del self.fields["move_to"]

    def clean(self):
        data = super().clean()
        if self.card_count and not data.get("move_to"):
            raise forms.ValidationError(
                _("%(count)s cards have this grade. Choose the grade to move them to, then delete.")
                % {"count": self.card_count}
            )
        return data
