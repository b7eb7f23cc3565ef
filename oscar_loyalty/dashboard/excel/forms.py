"""Forms of the Excel screens: the import (upload or paste, column mapping, confirmation) and
the points report's filter."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from oscar.core.loading import get_model

from oscar_loyalty import conf, excel
from oscar_loyalty.card_import import cells
from oscar_loyalty.dashboard.widgets import DATE_INPUT

Program = get_model("oscar_loyalty", "Program")
Transfer = get_model("oscar_loyalty", "Transfer")


class ImportForm(forms.Form):
    """Step 1: the programme and the table, as a file or as cells pasted from Excel."""

    program = forms.ModelChoiceField(
        queryset=Program.objects.filter(is_active=True).order_by("name"),
        label=_("Programme"),
        help_text=_("Cards of this programme are issued or changed."),
    )
    file = forms.FileField(
        label=_("File"),
        required=False,
        help_text=_("An .xlsx, .xls or .ods workbook (its first sheet) or a .csv file."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.xls,.ods,.csv,.txt"}),
    )
    text = forms.CharField(
        label=_("Or paste cells copied from Excel"),
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 8,
                "class": "text-monospace",
                "placeholder": _("Phone\tCard number\tTop-up\tActual balance"),
            }
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        programs = self.fields["program"].queryset
        if len(programs[:2]) == 1:
            self.fields["program"].initial = programs[0]

    # Bytes of the form's other fields (CSRF token, programme, field names), which count
    # towards DATA_UPLOAD_MAX_MEMORY_SIZE with the pasted text.
    form_room = 1024

    @classmethod
    def paste_limit(cls):
        """The most bytes of pasted text, line ends sent as CRLF, that the import accepts:
        what Django lets through (``DATA_UPLOAD_MAX_MEMORY_SIZE`` less the other fields) and
        no more than a file may hold. The page's script and the form check this number."""
        limit = conf.import_max_file_bytes
        if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
            limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE - cls.form_room)
        return limit

    @classmethod
    def paste_too_large(cls):
        return _(
            "That is too much text to paste (at most %(size)s KB): save the table as .xlsx "
            "or .csv and upload the file."
        ) % {"size": cls.paste_limit() // 1024}

    def clean_text(self):
        text = self.cleaned_data.get("text") or ""
        if len(text.encode("utf-8")) > self.paste_limit():
            raise forms.ValidationError(self.paste_too_large())
        return text

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and upload.size > conf.import_max_file_bytes:
            raise forms.ValidationError(
                _("The file is larger than %(size)s MB.")
                % {"size": excel.megabytes(conf.import_max_file_bytes)}
            )
        return upload

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), data.get("text") or ""
        if self.errors:
            return data
        if upload and text.strip():
            raise forms.ValidationError(_("Upload a file or paste cells, not both."))
        if not upload and not text.strip():
            raise forms.ValidationError(_("Upload a file or paste cells copied from Excel."))
        try:
            if upload:
                data["table"] = excel.read_file(upload, upload.name)
            else:
                data["table"] = excel.read_pasted(text)
        except excel.SpreadsheetError as exc:
            self.add_error("file" if upload else "text", str(exc))
        return data


class MappingForm(forms.Form):
    """Step 2: which column holds what, and whether the first row holds column names."""

    header = forms.BooleanField(label=_("The first row holds column names"), required=False)

    def __init__(self, *args, job, **kwargs):
        self.job = job
        params = job.params
        width = params.get("width", 0)
        mapping = params.get("mapping", [])
        kwargs.setdefault(
            "initial",
            {
                "header": params.get("header"),
                **{f"col_{i}": mapping[i] if i < len(mapping) else "" for i in range(width)},
            },
        )
        super().__init__(*args, **kwargs)
        choices = [("", _("— not imported —"))] + [
            (role, cells.ROLE_LABELS[role]) for role in cells.ROLES
        ]
        first = params.get("first", [])
        self.columns = []
        for i in range(width):
            name = f"col_{i}"
            self.fields[name] = forms.ChoiceField(
                label=cells.column_letter(i), choices=choices, required=False
            )
            self.columns.append(
                {
                    "field": self[name],
                    "letter": cells.column_letter(i),
                    "first": first[i] if i < len(first) else "",
                }
            )

    def clean(self):
        data = super().clean()
        width = self.job.params.get("width", 0)
        mapping = [data.get(f"col_{i}", "") for i in range(width)]
        for message in cells.mapping_errors(mapping):
            self.add_error(None, message)
        data["mapping"] = mapping
        return data


class ConfirmForm(forms.Form):
    """Step 3: apply what the preview showed (the token is the time of that check); a table
    imported before needs "Import it again" ticked."""

    checked = forms.CharField(widget=forms.HiddenInput)
    again = forms.BooleanField(
        label=_("Import it again"),
        required=False,
        help_text=_("The same table was imported before: its top-ups are added once more."),
    )

    def __init__(self, *args, job, **kwargs):
        self.job = job
        kwargs.setdefault("initial", {"checked": job.params.get("checked", "")})
        super().__init__(*args, **kwargs)

    def clean_checked(self):
        value = self.cleaned_data["checked"]
        if value != self.job.params.get("checked"):
            raise forms.ValidationError(
                _("The table was checked again meanwhile; look at the new preview first.")
            )
        return value


def manager_choices():
    return get_user_model().objects.filter(is_staff=True).order_by("email")


class ManagerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.email or obj.get_username()


class ReportForm(forms.Form):
    """The points report's filter: every field optional; the export uses the same query."""

    date_from = forms.DateField(label=_("From"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=pgettext_lazy("range", "to"), required=False, widget=DATE_INPUT)
    program = forms.ModelChoiceField(
        queryset=Program.objects.order_by("name"), label=_("Programme"), required=False
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All kinds")), *Transfer.KINDS]
    )
    manager = ManagerChoiceField(queryset=manager_choices(), label=_("Manager"), required=False)
    card = forms.CharField(
        label=_("Card"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Card number or phone")}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["manager"].queryset = manager_choices()

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def filters(self):
        """Keyword arguments of ``reports.transfers`` (an invalid form filters nothing)."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        return {
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "program": data.get("program"),
            "kind": data.get("kind") or "",
            "manager": data.get("manager"),
            "card": (data.get("card") or "").strip(),
        }
