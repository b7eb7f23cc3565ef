"""Forms of the cards: issue, a card's actions, the bulk category action and mass jobs.
Each form that changes something calls one service."""

import uuid
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, grades, keys, phones
from oscar_loyalty.dashboard.cards.filters import GradeChoiceField
from oscar_loyalty.dashboard.widgets import DATE_INPUT
from oscar_loyalty.exceptions import KeyConflict, LoyaltyError

Card = get_model("oscar_loyalty", "Card")
Category = get_model("oscar_loyalty", "Category")
Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")
User = get_user_model()

POINTS = {"max_digits": 14, "decimal_places": 2, "min_value": Decimal("0.01")}


def new_token():
    return uuid.uuid4().hex


class CardIssueForm(forms.Form):
    """Issue a card to an existing customer, a new one, or a phone of a future customer."""

    program = forms.ModelChoiceField(
        queryset=Program.objects.filter(is_active=True), empty_label=None, label=_("Programme")
    )
    grade = GradeChoiceField(
        queryset=Grade.objects.select_related("program").order_by("program__name", "spend_from"),
        required=False,
        label=_("Grade"),
        empty_label=_("The programme's lowest grade"),
    )
    number = forms.CharField(
        max_length=40,
        required=False,
        label=_("Card number"),
        help_text=_("Leave it empty to generate a number."),
    )
    email = forms.EmailField(
        required=False,
        label=_("Customer's e-mail"),
        help_text=_("A customer of the shop, or a new one (tick the box below)."),
    )
    new_customer = forms.BooleanField(
        required=False, label=_("Create a new customer with this e-mail")
    )
    first_name = forms.CharField(max_length=150, required=False, label=_("First name"))
    last_name = forms.CharField(max_length=150, required=False, label=_("Last name"))
    phone = forms.CharField(
        max_length=32,
        required=False,
        label=_("Phone"),
        help_text=_("Any format: 8 912 345-67-89 or +7 912 345 67 89."),
    )
    consent = forms.BooleanField(
        required=False,
        label=_("Agrees to receive messages"),
        help_text=_(
            "Tick only if the customer said yes: they then get messages about their points "
            "and grade, starting with one about the new card. Recorded as given to you."
        ),
    )

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        if customer is not None:
            for name in ("email", "new_customer", "first_name", "last_name"):
                del self.fields[name]

    def _cleaned(self, name, clean):
        """A blank field stays blank; otherwise ``clean`` it, its error shown on the field."""
        value = self.cleaned_data[name].strip()
        if not value:
            return ""
        try:
            return clean(value)
        except LoyaltyError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_number(self):
        return self._cleaned("number", cards.clean_number)

    def clean_phone(self):
        return self._cleaned("phone", phones.normalise)

    def clean(self):
        data = super().clean()
        program, grade = data.get("program"), data.get("grade")
        if program and grade and grade.program_id != program.pk:
            self.add_error("grade", _("This grade belongs to another programme."))
        if self.customer is not None:
            return data
        email, new = data.get("email"), data.get("new_customer")
        if email:
            existing = User.objects.filter(email__iexact=email).first()
            if existing is not None and new:
                self.add_error(
                    "email",
                    _("A customer with this e-mail exists already; untick “new customer”."),
                )
            elif existing is None and not new:
                self.add_error(
                    "email",
                    _("No customer has this e-mail. Tick “new customer” to create one."),
                )
            self.existing_customer = existing
        elif new:
            self.add_error("email", _("A new customer needs an e-mail."))
        elif not data.get("phone") and "phone" not in self.errors:
            raise forms.ValidationError(
                _("Give the customer's e-mail, or a phone for a card of a future customer.")
            )
        return data

    def _new_customer(self):
        data = self.cleaned_data
        user = User(
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
        )
        if any(f.name == "username" for f in User._meta.fields):
            from oscar.apps.customer.forms import generate_username

            user.username = generate_username()
        if data.get("phone") and any(f.name == conf.user_phone_field for f in User._meta.fields):
            setattr(user, conf.user_phone_field, phones.e164(data["phone"]))
        user.set_unusable_password()
        user.save()
        return user

    def save(self, by):
        """Issue the card; ``None`` with the reason added to the form if it cannot be."""
        data = self.cleaned_data
        try:
            with transaction.atomic():
                if self.customer is not None:
                    customer = self.customer
                elif data.get("email"):
                    customer = self.existing_customer or self._new_customer()
                else:
                    customer = None
                card = cards.issue_card(
                    data["program"],
                    user=customer,
                    phone=data.get("phone", ""),
                    number=data.get("number", ""),
                    grade=data.get("grade"),
                    by=by,
                    consent=data.get("consent", False),
                )
                if card.found and data.get("consent"):
                    # A phone card found for the customer is not issued again, so its
                    # consent is recorded here (without a "card issued" message).
                    cards.set_consent(card, True, by=by)
                return card
        except LoyaltyError as exc:
            self.add_error(None, str(exc))
            return None


class CardPhoneForm(forms.Form):
    """Change a card's phone; the change is recorded with who made it."""

    phone = forms.CharField(
        max_length=32,
        required=False,
        label=_("Phone"),
        help_text=_("Any format: 8 912 345-67-89 or +7 912 345 67 89."),
    )

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card
        if not self.is_bound:
            self.initial["phone"] = phones.display(card.phone)

    def save(self, by):
        try:
            return cards.change_phone(self.card, self.cleaned_data["phone"], by=by)
        except LoyaltyError as exc:
            self.add_error("phone", str(exc))
            return None


class CardConsentForm(forms.Form):
    """Record that the card's customer agrees (or no longer agrees) to the programme's
    messages, as said to the manager ``by``."""

    consent = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card
        if not self.is_bound:
            self.initial["consent"] = not card.marketing_consent  # the button switches it

    def save(self, by):
        self.changed = cards.set_consent(self.card, self.cleaned_data["consent"], by=by)
        return self.card


class CardReplaceForm(forms.Form):
    """Replace a lost card by a new number that takes over everything the card holds."""

    number = forms.CharField(
        max_length=40,
        required=False,
        label=_("New card number"),
        help_text=_("Leave it empty to generate a number."),
    )
    reason = forms.CharField(max_length=255, label=_("Reason"))

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card

    def clean_number(self):
        number = self.cleaned_data["number"].strip()
        try:
            return cards.clean_number(number) if number else ""
        except LoyaltyError as exc:
            raise forms.ValidationError(str(exc)) from None

    def save(self, by):
        data = self.cleaned_data
        try:
            return cards.replace(self.card, number=data["number"], reason=data["reason"], by=by)
        except LoyaltyError as exc:
            self.add_error(None, str(exc))
            return None


class CardGradeForm(forms.Form):
    AUTOMATIC, NOT_PARTICIPATING = "auto", "none"

    grade = forms.ChoiceField(label=_("Grade"))
    accumulated = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        label=_("Already accumulated"),
        help_text=_(
            "Purchases the grade counts, including those before the shop's records. "
            "Empty: keep as it is."
        ),
    )
    reason = forms.CharField(max_length=255, label=_("Internal reason (staff only)"))

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card
        choices = [(str(g.pk), g.name) for g in card.program.grades.order_by("spend_from")]
        choices += [
            (self.NOT_PARTICIPATING, _("Not participating")),
            (self.AUTOMATIC, _("Automatic: follow the customer's purchases")),
        ]
        self.fields["grade"].choices = choices
        if not self.is_bound:
            current = str(card.grade_id) if card.participates else self.NOT_PARTICIPATING
            self.initial.setdefault("grade", current)

    def save(self, by):
        data = self.cleaned_data
        choice, reason = data["grade"], data["reason"]
        try:
            if choice == self.AUTOMATIC:
                return grades.release_manual_grade(self.card, by=by, reason=reason)
            if choice == self.NOT_PARTICIPATING:
                return grades.set_grade(self.card, None, by=by, reason=reason, participates=False)
            grade = self.card.program.grades.get(pk=choice)
            return grades.set_grade(
                self.card, grade, by=by, reason=reason, spend_adjustment=data["accumulated"]
            )
        except LoyaltyError as exc:
            self.add_error(None, str(exc))
            return None


class CardStatusForm(forms.Form):
    """Block, unblock or close a card: the reason stays with staff; blocking and closing may
    also leave a message the customer reads instead."""

    ACTIONS = {"block": cards.block, "unblock": cards.unblock, "close": cards.close}
    WITH_MESSAGE = ("block", "close")

    action = forms.ChoiceField(
        choices=[
            ("block", _("Block")),
            ("unblock", _("Unblock")),
            ("close", _("Close for good")),
        ],
        widget=forms.HiddenInput,
    )
    reason = forms.CharField(max_length=255, label=_("Internal reason (staff only)"))
    message = forms.CharField(
        max_length=255,
        required=False,
        label=_("Message to the customer (optional)"),
        help_text=_("Shown on the customer's pages instead of the reason."),
    )

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card

    def save(self, by):
        data = self.cleaned_data
        extra = {"message": data["message"]} if data["action"] in self.WITH_MESSAGE else {}
        try:
            return self.ACTIONS[data["action"]](self.card, reason=data["reason"], by=by, **extra)
        except LoyaltyError as exc:
            self.add_error(None, str(exc))
            return None


class AdjustForm(forms.Form):
    """A manager's correction: a new transfer in or out, never an edit of an old one."""

    ACCRUE, DEBIT = "accrue", "debit"

    direction = forms.ChoiceField(
        choices=[(ACCRUE, _("Accrue")), (DEBIT, _("Debit"))],
        widget=forms.RadioSelect,
        initial=ACCRUE,
        label=_("Operation"),
    )
    amount = forms.DecimalField(label=_("Points"), **POINTS)
    description = forms.CharField(
        max_length=255, label=_("Description"), help_text=_("The customer sees it.")
    )
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Internal note"),
        help_text=_("Only managers see it."),
    )
    # One per rendered form: submitting the same form twice records one transfer.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, card, **kwargs):
        super().__init__(*args, **kwargs)
        self.card = card
        if not self.is_bound:
            self.initial["token"] = new_token()
        if card.status == Card.BLOCKED:
            # A blocked card earns nothing, not even by hand: only "Debit" is offered (an
            # accrual sent anyway is refused by ``cards.adjust`` with the card's reason).
            self.fields["direction"].widget.choices = [(self.DEBIT, _("Debit"))]
            self.initial["direction"] = self.DEBIT

    def save(self, by):
        """Record the adjustment with ``cards.adjust``; a closed card refuses it there."""
        data = self.cleaned_data
        amount = data["amount"] if data["direction"] == self.ACCRUE else -data["amount"]
        try:
            return cards.adjust(
                self.card,
                amount,
                keys.manual(data["token"]),
                by=by,
                description=data["description"],
                note=data["note"],
            )
        except KeyConflict:
            self.add_error(
                None,
                _(
                    "This form was already submitted with other details, so nothing was "
                    "changed now. Open the card's page again to make another adjustment."
                ),
            )
        except LoyaltyError as exc:
            self.add_error(None, str(exc))
        return None


# --- categories of the list's customers ----------------------------------------------------


class CategoryBulkForm(forms.Form):
    """Add or remove a category on the selected cards' customers, or on all matching ones."""

    SELECTED, MATCHING = "selected", "matching"

    category = forms.ModelChoiceField(queryset=Category.objects.all(), label=_("Category"))
    action = forms.ChoiceField(choices=[("add", _("Add")), ("remove", _("Remove"))])
    scope = forms.ChoiceField(
        choices=[(SELECTED, _("Selected cards")), (MATCHING, _("All matching cards"))]
    )
    selected_card = forms.TypedMultipleChoiceField(coerce=int, required=False)
    query = forms.CharField(required=False, widget=forms.HiddenInput)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Ids are checked against the database by the view; any integer is a valid choice here.
        ids = self.data.getlist("selected_card") if hasattr(self.data, "getlist") else []
        self.fields["selected_card"].choices = [(v, v) for v in ids]

    def clean(self):
        data = super().clean()
        if data.get("scope") == self.SELECTED and not data.get("selected_card"):
            raise forms.ValidationError(_("Tick the cards whose customers it is for."))
        return data


# --- mass accrual and debit ----------------------------------------------------------------


class MassJobForm(forms.Form):
    amount = forms.DecimalField(label=_("Points per card"), **POINTS)
    description = forms.CharField(
        max_length=255, label=_("Description"), help_text=_("The customers see it.")
    )
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Internal note"),
        help_text=_("Only managers see it."),
    )
    available_from = forms.DateField(
        required=False,
        widget=DATE_INPUT,
        label=_("Available from"),
        help_text=_("Empty or today: at once. A later date: the points are pending until then."),
    )
    notify = forms.BooleanField(
        required=False,
        label=_("Notify customers"),
        help_text=_(
            "Customers who agreed to receive messages get one about their points; "
            "the others get nothing."
        ),
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    expected = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind != "mass_accrual":
            del self.fields["available_from"]
        if not self.is_bound:
            self.initial["token"] = new_token()
