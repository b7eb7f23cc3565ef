"""The rows of an import: a parsed row, what the database knows of its cards, what it does.

Each row is read from its cells (``parse_row``), then checked against the cards of the
programme (``Cards``, ``classify``): a new card, a balance set, a top-up, only the consent to
messages changed, or no change. A consent cell rides along with any of them
(``Row.consent_changes``).
"""

from collections import namedtuple
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, ledger, lookups, phones
from oscar_loyalty.card_import.cells import (
    BALANCE,
    CONSENT,
    NUMBER,
    PHONE,
    TOPUP,
    AmountError,
    ConsentError,
    parse_amount,
    parse_consent,
)
from oscar_loyalty.exceptions import LoyaltyError, PhoneInvalid
from oscar_loyalty.formats import format_points
from oscar_loyalty.lookups import among

Card = get_model("oscar_loyalty", "Card")

NEW, SET, TOPPED, SAME = "new", "set", "topup", "same"
CONSENTED = "consent"  # an existing card whose balance stays: only its consent changes
ZERO = Decimal("0")


@dataclass(slots=True)
class Row:
    """One data row: its cells, what they mean, and what applying it will do."""

    n: int
    cells: tuple
    phone: str = ""
    number: str = ""
    topup: Decimal = None
    balance: Decimal = None
    errors: list = field(default_factory=list)
    action: str = ""
    diff: Decimal = ZERO
    card: object = None
    user_id: int = None
    consent: bool = None  # the file's consent: True, False, or None (blank: left as it is)

    def error(self, role, message):
        self.errors.append([role, str(message)])

    @property
    def consent_changes(self):
        """Whether applying the row changes the card's consent (a new card starts without)."""
        if self.consent is None or self.errors:
            return False
        if self.action == NEW:
            return self.consent
        return self.card is not None and self.card.consent != self.consent

    def item(self):
        """The row as a job chunk stores it: the fields of ``Stored``, a JSON array."""
        topup, balance = self.topup, self.balance
        return [
            self.n,
            list(self.cells),
            self.phone,
            self.number,
            None if topup is None else str(topup),
            None if balance is None else str(balance),
            self.errors,
            self.action,
            str(self.diff),
            None if self.card is None else self.card.id,
            self.consent,
        ]

    @classmethod
    def from_item(cls, item):
        """A stored row with its values and errors; what it does is decided again."""
        n, cells, phone, number, topup, balance, errors = item[:7]
        return cls(
            n,
            tuple(cells),
            phone,
            number,
            None if topup is None else Decimal(topup),
            None if balance is None else Decimal(balance),
            list(errors),
            consent=item[10] if len(item) > 10 else None,
        )


# A row as a draft stores it: one JSON array per row, as a draft holds the whole file.
# ``errors`` are ``[role, message]`` pairs; ``action``, ``diff`` (the signed change of the
# balance) and ``card_id`` are what the check decided, shown in the preview; ``consent`` is
# the file's value (imports stored before the column existed have ten fields: ``None``).
Stored = namedtuple(
    "Stored",
    "n cells phone number topup balance errors action diff card_id consent",
    defaults=(None,),
)


def parse_row(n, cells, mapping, reader):
    """Read one row's cells by the column mapping; no database access."""
    row = Row(n=n, cells=cells)
    texts = {}
    for role, text in zip(mapping, cells, strict=False):
        texts.setdefault(role, text)  # a role chosen twice reads its first column
    phone = texts.get(PHONE, "")
    if phone:
        try:
            row.phone = reader.normalise(phone)
        except PhoneInvalid as exc:
            row.error(PHONE, exc)
    number = texts.get(NUMBER, "")
    if number:
        try:
            row.number = cards.clean_number(number)
        except LoyaltyError as exc:
            message = str(exc)
            digits = "".join(ch for ch in number if ch.isdigit())
            if len(digits) >= 16:
                message += " " + _(
                    "Excel keeps only 15 digits of a number: format the column as text."
                )
            row.error(NUMBER, message)
    for role in (TOPUP, BALANCE):
        try:
            value = parse_amount(texts.get(role, ""))
        except AmountError as exc:
            row.error(role, exc)
            continue
        if role == BALANCE and value is not None and value < 0:
            row.error(role, _("A balance cannot be negative."))
        elif value is not None and (role == BALANCE or value != 0):
            setattr(row, role, value)
    consent = texts.get(CONSENT, "")
    if consent:
        try:
            row.consent = parse_consent(consent)
        except ConsentError as exc:
            row.error(CONSENT, exc)
    if not phone and not number and not row.errors:
        row.error(PHONE, _("Fill in the phone or the card number."))
    return row


CardInfo = namedtuple(
    "CardInfo",
    "id number phone user_id status participates consent account_id balance debt",
)
_CARD_COLUMNS = (
    "pk",
    "number",
    "phone",
    "user_id",
    "status",
    "participates",
    "marketing_consent",
    "account_id",
    "account__balance",
    "debt_account__balance",
)


def _card_info(values):
    *rest, balance, debt_balance = values
    return CardInfo(*rest, balance, -debt_balance if debt_balance else ZERO)


def _customers_by_phone(phone_list):
    """``{phone: user id}`` for phones that belong to exactly one customer: the user model's
    phone field (``OSCAR_LOYALTY_USER_PHONE_FIELD``) or the phone of a saved address."""
    owners = {}
    User = get_user_model()
    name = conf.user_phone_field
    if phone_list and name and any(f.name == name for f in User._meta.concrete_fields):
        variants = {v: p for p in phone_list for v in (p, phones.e164(p))}
        for value, user_id in User.objects.filter(**{f"{name}__in": list(variants)}).values_list(
            name, "pk"
        ):
            owners.setdefault(variants[str(value)], set()).add(user_id)
    try:
        Address = get_model("address", "UserAddress")
    except LookupError:
        Address = None
    if phone_list and Address is not None:
        # Raw SQL: the phone field would parse each looked-up value again (30 µs apiece).
        connection = connections[router.db_for_read(Address)]
        quote = connection.ops.quote_name
        column = quote(Address._meta.get_field("phone_number").column)
        user = quote(Address._meta.get_field("user").column)
        table = quote(Address._meta.db_table)
        select = f"SELECT {column}, {user} FROM {table} WHERE {column}"
        postgresql = connection.vendor == "postgresql"
        step = len(phone_list) if postgresql else 500  # one array, or a few placeholders
        with lookups.bulk_cursor(connection) as cursor:
            for start in range(0, len(phone_list), step):
                part = [phones.e164(p) for p in phone_list[start : start + step]]
                if postgresql:
                    cursor.execute(
                        f"{select} IN (SELECT unnest(%s::text[]))", [lookups.array_literal(part)]
                    )
                else:
                    cursor.execute(f"{select} IN ({', '.join(['%s'] * len(part))})", part)
                for value, user_id in cursor.fetchall():
                    owners.setdefault(value[1:], set()).add(user_id)
    return {phone: ids.pop() for phone, ids in owners.items() if len(ids) == 1}


class Cards:
    """What the database knows about the phones and numbers of a batch of rows."""

    def __init__(self, program):
        self.program = program
        self.by_phone, self.by_number, self.owner, self.by_user = {}, {}, {}, {}

    def load(self, rows, lock=False):
        phone_list = sorted({r.phone for r in rows if r.phone})
        number_list = sorted({r.number for r in rows if r.number})
        base = Card.objects.filter(program=self.program)
        found = []
        if phone_list:
            found += base.filter(among(Card, "phone", phone_list)).values_list(*_CARD_COLUMNS)
        if number_list:
            found += base.filter(among(Card, "number", number_list)).values_list(*_CARD_COLUMNS)
        self.owner = _customers_by_phone([p for p in phone_list])
        owners = set(self.owner.values())
        if owners:
            found += base.filter(among(Card, "user", owners)).values_list(*_CARD_COLUMNS)
        infos = {values[0]: _card_info(values) for values in found}
        if lock and infos:
            locked, debts = ledger.lock_balances([(c.id, c.account_id) for c in infos.values()])
            infos = {
                pk: c._replace(
                    balance=locked[c.account_id],
                    debt=-locked[debts[pk]] if pk in debts else ZERO,
                )
                for pk, c in infos.items()
            }
        self.by_phone = {c.phone: c for c in infos.values() if c.phone}
        self.by_number = {c.number: c for c in infos.values()}
        self.by_user = {c.user_id: c for c in infos.values() if c.user_id}
        return self

    def card_of_phone(self, phone):
        card = self.by_phone.get(phone)
        if card is None and phone in self.owner:
            card = self.by_user.get(self.owner[phone])
        return card


def classify(row, known, seen_cards=None):
    """Decide what ``row`` does against the cards ``known`` to the database; sets
    ``row.action``, ``row.card``, ``row.diff`` (signed change of the balance) or an error."""
    if row.errors:
        return row
    by_phone = known.card_of_phone(row.phone) if row.phone else None
    by_number = known.by_number.get(row.number) if row.number else None
    card = None
    if row.phone:
        if by_phone is not None:
            if (
                by_number is not None
                and by_number.id != by_phone.id
                or (row.number and by_number is None)
            ):
                return _fail(
                    row,
                    NUMBER,
                    _("The phone %(phone)s has the card %(card)s, not %(number)s.")
                    % {
                        "phone": phones.display(row.phone),
                        "card": by_phone.number,
                        "number": row.number,
                    },
                )
            card = by_phone
        elif by_number is not None:
            if by_number.phone:
                message = _("The card number %(number)s belongs to the phone %(phone)s.") % {
                    "number": row.number,
                    "phone": phones.display(by_number.phone),
                }
            else:
                message = _("The card number %(number)s belongs to another customer.") % {
                    "number": row.number
                }
            return _fail(row, NUMBER, message)
    elif by_number is not None:
        card = by_number
    else:
        return _fail(
            row,
            NUMBER,
            _("There is no card %(number)s in this programme; a new card needs a phone.")
            % {"number": row.number},
        )
    topup = row.topup or ZERO
    if card is None:
        opening = (row.balance or ZERO) + topup
        if opening < 0:
            return _fail(
                row,
                TOPUP,
                _("A new card cannot start below zero (%(amount)s).")
                % {"amount": format_points(opening)},
            )
        row.action, row.diff = NEW, opening
        row.user_id = known.owner.get(row.phone)
        return row
    if seen_cards is not None:
        first = seen_cards.setdefault(card.id, row.n)
        if first != row.n:
            return _fail(
                row,
                NUMBER if row.number else PHONE,
                _("The card %(card)s is also in row %(row)s.")
                % {"card": card.number, "row": first},
            )
    base = row.balance if row.balance else card.balance
    target = base + topup
    if target < 0:
        if row.balance:
            message = _(
                "The top-up %(topup)s would take the actual balance %(balance)s from the file "
                "below zero."
            )
        else:
            message = _("The top-up %(topup)s would take the card below zero: it has %(balance)s.")
        return _fail(
            row, TOPUP, message % {"topup": format_points(topup), "balance": format_points(base)}
        )
    row.card, row.diff = card, target - card.balance
    if not row.diff:
        row.action = CONSENTED if row.consent_changes else SAME
        return row
    refusal = Card.refusal_of(card.number, card.status, card.participates)
    if refusal:
        return _fail(row, NUMBER if row.number else PHONE, refusal)
    row.action = SET if row.balance else TOPPED
    return row


def _fail(row, role, message):
    row.error(role, message)
    row.action, row.card = "", None
    return row


def check_duplicates(row, first_phone, first_number):
    """A phone or card number met earlier in the file makes this row an error."""
    if row.errors:
        return
    if row.phone:
        seen = first_phone.setdefault(row.phone, row.n)
        if seen != row.n:
            row.error(
                PHONE,
                _("The phone %(phone)s is also in row %(row)s.")
                % {"phone": phones.display(row.phone), "row": seen},
            )
            return
    if row.number:
        seen = first_number.setdefault(row.number, row.n)
        if seen != row.n:
            row.error(
                NUMBER,
                _("The card number %(number)s is also in row %(row)s.")
                % {"number": row.number, "row": seen},
            )
