"""Issuing cards, their numbers, phones and status."""

import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import conf, descriptions, keys, ledger, phones

# Numbers as text live without models in ``card_numbers``; they stay public here too.
from oscar_loyalty.card_numbers import check_digit, clean_number, is_valid_number  # noqa: F401
from oscar_loyalty.exceptions import (
    CardExists,
    LoyaltyError,
    StatusChangeRefused,
)
from oscar_loyalty.lookups import among
from oscar_loyalty.notifications import events, records

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Hold = get_model("oscar_loyalty", "Hold")
PhoneChange = get_model("oscar_loyalty", "PhoneChange")
Program = get_model("oscar_loyalty", "Program")
StatusChange = get_model("oscar_loyalty", "StatusChange")
Transfer = get_model("oscar_loyalty", "Transfer")


def _locked():
    """Cards to lock for changing their own columns (status, phone, customer).

    FOR NO KEY UPDATE where the database has it: every transfer written for a card holds a
    KEY SHARE lock on the card's row (its foreign key), which FOR UPDATE would wait for, and
    a spend holding the card's account would then wait for us: a deadlock."""
    return Card.objects.select_for_update(no_key=connection.features.has_select_for_no_key_update)


# --- numbers -------------------------------------------------------------------------------


def new_numbers(program, count, taken=()):
    """``count`` free card numbers of the programme's length, a Luhn check digit last.

    Free: on no card of the programme and not in ``taken`` (numbers the caller is about to
    give out). An issued card asks for one, an import for a batch, in one query per draw.
    Random bytes for the whole draw at once, 64 bits more than the span needs, so that
    taking the remainder favours no number measurably."""
    length = program.card_number_length
    low = 10 ** (length - 2)
    span = 9 * low
    width = (span.bit_length() + 64 + 7) // 8
    taken = set(taken)
    numbers = []
    while len(numbers) < count:
        wanted = count - len(numbers)
        draws = secrets.token_bytes(width * wanted)
        batch = set()
        for start in range(0, len(draws), width):
            body = str(low + int.from_bytes(draws[start : start + width], "big") % span)
            batch.add(body + check_digit(body))
        batch -= taken
        clash = set(
            Card.objects.filter(among(Card, "number", batch), program=program).values_list(
                "number", flat=True
            )
        )
        numbers.extend(batch - clash)
        taken |= batch
    return numbers


# --- issuing -------------------------------------------------------------------------------


def issue_card(program, *, user=None, phone="", number="", grade=None, by=None, consent=False):
    """Issue a card of ``program`` to a customer, or to a phone of a future customer.

    A blank ``number`` is generated; the grade defaults to the programme's lowest. A phone
    card of the same programme is attached to the customer instead of issuing a second one;
    that card is returned with ``found = True`` (a new one has ``found = False``).
    ``consent``: the customer agreed to the programme's messages (recorded as given to
    ``by``, a manager, or by the customer) and is told the card was issued.
    """
    phone = phones.normalise(phone) if phone else ""
    number = clean_number(number) if number else ""
    if user is None and not phone:
        raise LoyaltyError(_("A card needs a customer or a phone."))
    if user is not None and Card.objects.filter(program=program, user=user).exists():
        raise CardExists(
            _("%(customer)s already has a card of “%(program)s”.")
            % {"customer": user.get_full_name() or user.email, "program": program}
        )
    if phone:
        existing = Card.objects.filter(program=program, phone=phone).first()
        if existing is not None:
            if user is not None and existing.user_id is None and not number:
                card = attach(existing, user)
                card.found = True
                return card
            raise CardExists(
                _("The phone %(phone)s already has the card %(number)s of “%(program)s”.")
                % {"phone": phones.display(phone), "number": existing.number, "program": program}
            )
    if number and Card.objects.filter(program=program, number=number).exists():
        raise CardExists(
            _("The card number %(number)s is already taken in “%(program)s”.")
            % {"number": number, "program": program}
        )
    grade = grade or program.lowest_grade()
    for _attempt in range(10):
        try:
            with transaction.atomic():
                account = ledger.open_card_account(program)
                card = Card.objects.create(
                    program=program,
                    number=number or new_numbers(program, 1)[0],
                    user=user,
                    phone=phone,
                    grade=grade,
                    account=account,
                    created_by=by,
                )
                if consent:
                    set_consent(card, True, by=by)
                    records.for_card_issued(card)
                card.found = False
                return card
        except IntegrityError:
            if number:  # a concurrent issue took this customer, phone or number
                raise CardExists(
                    _("A card with these details was just issued in “%(program)s”.")
                    % {"program": program}
                ) from None
    raise LoyaltyError(_("Could not generate a free card number; make numbers longer."))


def attach(card, user):
    """Bind a phone card to the customer who turned out to own the phone."""
    if card.user_id is None:
        updated = Card.objects.filter(pk=card.pk, user__isnull=True).update(user=user)
        if updated:
            card.user = user
    return card


def attach_phone_cards(user, raw_phone):
    """Attach every unclaimed card of ``raw_phone`` to ``user`` (one per programme)."""
    phone = phones.normalise_or_none(raw_phone)
    if not phone or user is None or not user.pk:
        return []
    attached = []
    owned = set(Card.objects.filter(user=user).values_list("program_id", flat=True))
    for card in Card.objects.filter(phone=phone, user__isnull=True).exclude(program_id__in=owned):
        try:
            with transaction.atomic():
                attached.append(attach(card, user))
        except IntegrityError:  # the customer got a card of this programme meanwhile
            continue
    return attached


def issue_on_registration(user):
    """Give a new customer a card of each programme that issues on registration."""
    issued = []
    for program in Program.objects.filter(is_active=True, issue_on_registration=True):
        if not Card.objects.filter(program=program, user=user).exists():
            try:
                issued.append(issue_card(program, user=user))
            except CardExists:
                continue
    return issued


def customers_with_phone(phone):
    """Ids of the customers whose account, saved address or order has the canonical
    ``phone`` (the places the import finds a card's owner in, and orders), in one query.

    A list, not subqueries: OR-ed into a search of a million cards, subqueries keep the
    database from using the card indexes (the card list's phone search took 2.9 times the
    floor that way, in ``benchmarks/bench_card_list.py``)."""
    User = get_user_model()
    e164 = phones.e164(phone)
    found = []
    name = conf.user_phone_field
    if name and any(f.name == name for f in User._meta.concrete_fields):
        found.append(User.objects.filter(**{f"{name}__in": [phone, e164]}).values_list("pk"))
    for label, model, field in (
        ("address", "UserAddress", "phone_number"),
        ("order", "Order", "shipping_address__phone_number"),
    ):
        try:
            rows = get_model(label, model).objects.filter(**{field: e164}, user__isnull=False)
        except LookupError:  # a shop without Oscar's address or order app
            continue
        found.append(rows.values_list("user_id"))
    if not found:
        return []
    first, *others = (rows.order_by() for rows in found)
    return [pk for (pk,) in first.union(*others)]


def phone_clash(program, phone, exclude=None):
    """The error for ``phone`` already on another card of ``program``, or ``None``."""
    other = Card.objects.filter(program=program, phone=phone).exclude(pk=exclude).first()
    if other is None:
        return None
    return CardExists(
        _("The phone %(phone)s already has the card %(number)s of “%(program)s”.")
        % {"phone": phones.display(phone), "number": other.number, "program": program}
    )


def change_phone(card, raw_phone, *, by=None):
    """Give ``card`` another phone (any format; blank only for a customer's card) and record
    who changed it from what to what. Raises ``PhoneInvalid`` or ``CardExists`` (the phone is
    another card's of the programme); returns the card, unchanged if the phone is the same."""
    phone = phones.normalise(raw_phone) if str(raw_phone or "").strip() else ""
    try:
        with transaction.atomic():
            card = _locked().select_related("program").get(pk=card.pk)
            if phone == card.phone:
                return card
            if not phone and card.user_id is None:
                raise LoyaltyError(
                    _("The card %(number)s has no customer yet, so it needs a phone.")
                    % {"number": card.number}
                )
            clash = phone and phone_clash(card.program, phone, exclude=card.pk)
            if clash:
                raise clash
            PhoneChange.objects.create(
                card=card, old_phone=card.phone, new_phone=phone, created_by=by
            )
            card.phone = phone
            card.save(update_fields=["phone"])
    except IntegrityError:  # another card took the phone meanwhile
        raise phone_clash(card.program, phone, exclude=card.pk) or CardExists(
            _("The phone %(phone)s was just given to another card.")
            % {"phone": phones.display(phone)}
        ) from None
    return card


# --- status --------------------------------------------------------------------------------


def _change_status(card, new_status, allowed_from, reason, by, message=""):
    with transaction.atomic():
        card = _locked().get(pk=card.pk)
        if card.status not in allowed_from:
            raise StatusChangeRefused(
                _("The card %(number)s is %(status)s; this cannot be done now.")
                % {"number": card.number, "status": card.get_status_display().lower()}
            )
        StatusChange.objects.create(
            card=card,
            old_status=card.status,
            new_status=new_status,
            reason=reason,
            created_by=by,
        )
        card.status, card.status_reason, card.status_message = new_status, reason, message
        card.save(update_fields=["status", "status_reason", "status_message"])
    return card


def block(card, reason="", by=None, message=""):
    """Block the card; ``reason`` is for staff, ``message`` (optional) for the customer."""
    return _change_status(card, Card.BLOCKED, {Card.ACTIVE}, reason, by, message)


def unblock(card, reason="", by=None):
    return _change_status(card, Card.ACTIVE, {Card.BLOCKED}, reason, by)


def close(card, reason="", by=None, message=""):
    """Close for good: the card and its history stay, it never earns or spends again."""
    return _change_status(card, Card.CLOSED, {Card.ACTIVE, Card.BLOCKED}, reason, by, message)


# --- replacing a lost card ----------------------------------------------------------------


def replace(card, *, reason, number="", by=None):
    """Give the owner of ``card`` (lost, say) a new card that takes over everything, and
    close ``card`` with ``reason``. Returns the new card.

    The new number is ``number`` (checked like any issued number) or generated. The new card
    gets the customer, the phone, the grade (manual or not, participating or not), the
    purchases counted towards it, the points and the debt (moved by ``ledger.move_card``
    under the key ``replace:<old card id>``), and every accrual and checkout hold, so that
    points pending, refunds and cancellations of old orders go to it. The old card keeps its
    history, links to the new one (``replaced_by``) and, closed, refuses any use.
    Sent twice (a double submit), the second call returns the card the first one made.
    """
    with transaction.atomic():
        old = _locked().select_related("program", "account").get(pk=card.pk)
        if old.replaced_by_id:
            return old.replaced_by
        if old.status == Card.CLOSED:
            raise LoyaltyError(
                _("The card %(number)s is closed; a closed card cannot be replaced.")
                % {"number": old.number}
            )
        user, phone = old.user, old.phone
        # The customer and the phone are one card's per programme: free them for the new card.
        Card.objects.filter(pk=old.pk).update(user=None, phone="")
        new = issue_card(old.program, user=user, phone=phone, number=number, grade=old.grade, by=by)
        # The grade as it was, and what ``grades`` counted of the purchases.
        kept = [
            "grade_is_manual",
            "participates",
            "spend_adjustment",
            "lifetime_spend",
            "last_order_at",
            *CONSENT_FIELDS,
        ]
        for field in kept:
            setattr(new, field, getattr(old, field))
        new.save(update_fields=kept)
        records.for_card_issued(new)
        ledger.move_card(
            old,
            new,
            keys.replacement(old.pk),
            created_by=by,
            note=reason,
            label_code=descriptions.CARD_REPLACED,
        )
        Accrual.objects.filter(card=old).update(card=new)
        Hold.objects.filter(card=old).update(card=new)
        _change_status(old, Card.CLOSED, {Card.ACTIVE, Card.BLOCKED}, reason, by)
        Card.objects.filter(pk=old.pk).update(replaced_by=new)
    return new


# --- consent to messages -------------------------------------------------------------------

CONSENT_FIELDS = ("marketing_consent", "consent_changed", "consent_changed_by", "consent_source")


def set_consent(card, agrees, *, by=None, source=""):
    """Record whether ``card``'s customer agrees to the programme's messages, who said so
    and when. ``source`` defaults to the manager ``by`` or, without one, the customer.
    Returns whether anything changed."""
    source = source or (Card.CONSENT_MANAGER if by is not None else Card.CONSENT_CUSTOMER)
    changed = Card.objects.filter(pk=card.pk).exclude(marketing_consent=agrees)
    if not changed.update(
        marketing_consent=agrees,
        consent_changed=timezone.now(),
        consent_changed_by=by,
        consent_source=source,
    ):
        return False
    card.refresh_from_db(fields=CONSENT_FIELDS)
    return True


# --- manual adjustments --------------------------------------------------------------------


def adjust(card, amount, key, *, by=None, description="", note=""):
    """A manager's correction of ``card``'s balance: ``amount`` points in, or out if negative.

    A new transfer of kind "adjust" against the programme's "issued" account, never an edit
    of an old one; returns it. An accrual needs a card that may earn (active and
    participating), as the card page's "Block" says; a debit, a manager's correction, is
    taken from any card but a closed one. A debit never takes the balance below zero.
    Raises ``InvalidAmount``, ``InsufficientPoints``, ``CardUnavailable`` or ``KeyConflict``
    (the key was used for another adjustment).
    """
    text = str(amount).strip()
    points = ledger.to_amount(text.removeprefix("-"))
    details = {"kind": Transfer.ADJUST, "created_by": by}
    details.update(description=description, note=note)
    with transaction.atomic():
        if text.startswith("-"):
            transfer = ledger.debit_card(
                card, points, key, to=ledger.ISSUED, check=ledger.OPEN, **details
            )
            records.for_transfer(events.POINTS_DEBITED, transfer, card)
        else:
            transfer = ledger.credit_card(card, points, key, check=ledger.USABLE, **details)
            records.for_transfer(events.POINTS_CREDITED, transfer, card)
    return transfer


def cards_of(user):
    """A customer's cards with what their pages show, one query."""
    return (
        Card.objects.filter(user=user)
        .select_related("program", "grade", "account", "debt_account")
        .order_by("program__name")
    )
