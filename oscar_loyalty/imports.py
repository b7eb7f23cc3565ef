"""Importing cards and balances from Excel: the bulk flow of the source documents.

A manager uploads (or pastes) a table of phones, card numbers, top-ups and actual balances.
The table becomes a *draft* import job (``Job`` of kind ``import``, status ``new``,
``params["draft"]``) whose chunks hold every row, parsed and checked against the database, so
the preview shows what will happen before anything is written. Confirming starts the job;
each chunk re-checks its rows under row locks and applies them, with ledger keys
``import:<job>:row:<n>``, so a redelivered chunk or a second run changes nothing more. A
finished import is undone by an *undo job* that reverses its transfers card by card.

What a row does (see README, "Importing from Excel"):

- the phone (or, when it is blank, the card number) finds the card of the programme; the
  card of a customer whose account or address has that phone counts as that phone's card;
- no card: a new one, numbered from the file or generated, bound to the customer who owns
  the phone, or to the phone alone until that customer appears; it opens with
  actual balance + top-up;
- an existing card: an actual balance that is not blank and not 0 becomes its balance, then
  the top-up is added (a negative one takes points away); the difference is one transfer of
  kind "import"; a result below zero is an error and the row changes nothing.
"""

import hashlib
import re
import secrets
from collections import namedtuple
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, descriptions, inserts, jobs, keys, ledger, phones
from oscar_loyalty.exceptions import LoyaltyError, PhoneInvalid
from oscar_loyalty.formats import format_points
from oscar_loyalty.inserts import among

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
JobChunk = get_model("oscar_loyalty", "JobChunk")
Transfer = get_model("oscar_loyalty", "Transfer")
Account = get_model("oscar_loyalty", "Account")
Program = get_model("oscar_loyalty", "Program")

PHONE, NUMBER, TOPUP, BALANCE = "phone", "number", "topup", "balance"
ROLES = (PHONE, NUMBER, TOPUP, BALANCE)
ROLE_LABELS = {
    PHONE: gettext_lazy("Phone"),
    NUMBER: gettext_lazy("Card number"),
    TOPUP: gettext_lazy("Top-up"),
    BALANCE: gettext_lazy("Actual balance"),
}
NEW, SET, TOPPED, SAME = "new", "set", "topup", "same"
BATCH = 1000
MAX_AMOUNT = Decimal("1000000000000")
ZERO = Decimal("0")
CENT = Decimal("0.01")

# Header words (lower case, letters and digits only, "ё" read as "е") that name each column.
HEADERS = {
    PHONE: set(
        "телефон тел номертелефона мобильный моб телефонклиента "
        "phone phonenumber mobile tel telephone mobilephone".split()
    ),
    NUMBER: set(
        "номеркарты карта номер карталояльности cardnumber card cardno number loyaltycard".split()
    ),
    TOPUP: set("пополнение пополнить начислить начисление topup add addpoints credit".split()),
    BALANCE: set(
        "актуальныйбаланс баланс остаток текущийбаланс баллы бонусы "
        "actualbalance balance currentbalance points".split()
    ),
}
HEADER_STEMS = (
    (PHONE, ("телефон", "phone", "mobile")),
    (NUMBER, ("карт", "card")),
    (TOPUP, ("пополн", "topup", "начисл")),
    (BALANCE, ("баланс", "balance", "остат")),
)


def column_letter(index):
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _header_key(text):
    return re.sub(r"[^0-9a-zа-я]", "", str(text).lower().replace("ё", "е"))


def role_of_header(text):
    """The role a header cell names, or ``""``."""
    key = _header_key(text)
    if not key:
        return ""
    for role, words in HEADERS.items():
        if key in words:
            return role
    for role, stems in HEADER_STEMS:
        if any(stem in key for stem in stems):
            return role
    return ""


# --- reading cells ---------------------------------------------------------------------------


class AmountError(ValueError):
    pass


_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009\u2007'")


def parse_amount(text):
    """An amount as the manager typed it: ``1 234,50``, ``-100``, ``−5``, ``+20``, ``1,234.5``.

    Returns ``None`` for a blank cell. A lone separator followed by three digits (``1,500``)
    is refused as ambiguous rather than guessed.
    """
    if text.isascii() and text.isdigit():  # "250": most cells, read without the rules below
        return _checked_amount(Decimal(text), text)
    raw = text
    text = text.translate(_SPACES).replace("\u2212", "-").replace("\u2013", "-")
    if not text:
        return None
    sign = ""
    if text[0] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:]
    if not text or not re.fullmatch(r"[0-9.,]+", text):
        raise AmountError(_("“%(value)s” is not a number.") % {"value": raw})
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal_mark == "," else ",", "")
        text = text.replace(",", ".")
    elif "," in text or "." in text:
        mark = "," if "," in text else "."
        parts = text.split(mark)
        if len(parts) > 2:
            if all(len(p) == 3 for p in parts[1:]) and parts[0]:
                text = "".join(parts)  # thousands separators: 1.000.000
            else:
                raise AmountError(_("“%(value)s” is not a number.") % {"value": raw})
        elif len(parts[1]) == 3:
            raise AmountError(
                _("“%(value)s” is ambiguous: write it without a thousands separator.")
                % {"value": raw}
            )
        else:
            text = text.replace(",", ".")
    try:
        value = Decimal(sign + text)
    except InvalidOperation:
        raise AmountError(_("“%(value)s” is not a number.") % {"value": raw}) from None
    return _checked_amount(value, raw)


def _checked_amount(value, raw):
    # size first: quantizing a 30-digit number would raise InvalidOperation
    if abs(value) >= MAX_AMOUNT:
        raise AmountError(_("“%(value)s” is too large.") % {"value": raw})
    if value != value.quantize(CENT):
        raise AmountError(_("“%(value)s” has more than two decimal places.") % {"value": raw})
    return value.quantize(CENT)


# --- rows ------------------------------------------------------------------------------------


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

    def error(self, role, message):
        self.errors.append([role, str(message)])

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
        )


# A row as a draft stores it: one JSON array per row, as a draft holds the whole file.
# ``errors`` are ``[role, message]`` pairs; ``action``, ``diff`` (the signed change of the
# balance) and ``card_id`` are what the check decided, shown in the preview.
Stored = namedtuple("Stored", "n cells phone number topup balance errors action diff card_id")


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
    if not phone and not number and not row.errors:
        row.error(PHONE, _("Fill in the phone or the card number."))
    return row


CardInfo = namedtuple(
    "CardInfo",
    "id number phone user_id status participates account_id balance debt",
)
_CARD_COLUMNS = (
    "pk",
    "number",
    "phone",
    "user_id",
    "status",
    "participates",
    "account_id",
    "account__balance",
    "debt_account__balance",
)


def _card_info(values):
    *rest, balance, debt_balance = values
    return CardInfo(*rest, balance, -debt_balance if debt_balance else ZERO)


def _refusal(card):
    """``Card.refusal`` for a ``CardInfo`` (same messages)."""
    if card.status == Card.BLOCKED:
        return _("The card %(number)s is blocked.") % {"number": card.number}
    if card.status == Card.CLOSED:
        return _("The card %(number)s is closed.") % {"number": card.number}
    if not card.participates:
        return _("The card %(number)s does not take part in the programme.") % {
            "number": card.number
        }
    return None


def _customers_by_phone(phone_list):
    """``{phone: user id}`` for phones that belong to exactly one customer: the user model's
    phone field (``OSCAR_LOYALTY_USER_PHONE_FIELD``) or the phone of a saved address."""
    owners = {}
    User = get_user_model()
    name = conf.user_phone_field
    if phone_list and name and any(f.name == name for f in User._meta.concrete_fields):
        variants = {v: p for p in phone_list for v in (p, "+" + p)}
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
        with inserts.bulk_cursor(connection) as cursor:
            for start in range(0, len(phone_list), step):
                part = ["+" + p for p in phone_list[start : start + step]]
                if postgresql:
                    cursor.execute(
                        f"{select} IN (SELECT unnest(%s::text[]))", [inserts.array_literal(part)]
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
        row.action = SAME
        return row
    refusal = _refusal(card)
    if refusal:
        return _fail(row, NUMBER if row.number else PHONE, refusal)
    row.action = SET if row.balance else TOPPED
    return row


def _fail(row, role, message):
    row.error(role, message)
    row.action, row.card = "", None
    return row


# --- guessing the layout ---------------------------------------------------------------------


def guess_header(table):
    """Whether the first row looks like column names."""
    first = table.rows[0][1]
    if any(role_of_header(cell) for cell in first):
        return True
    if len(table.rows) < 2:
        return False
    has_digits = any(any(ch.isdigit() for ch in cell) for cell in first)
    second = table.rows[1][1]
    return not has_digits and any(any(ch.isdigit() for ch in cell) for cell in second)


def guess_mapping(table, has_header):
    """A role (or ``""``) per column: from the header words, then, for the columns and roles
    the header left open, from what the cells hold."""
    width = table.width
    mapping = [""] * width
    if has_header:
        for index, cell in enumerate(table.rows[0][1]):
            role = role_of_header(cell)
            if role and role not in mapping:
                mapping[index] = role
    sample = [cells for _n, cells in table.rows[1 if has_header else 0 :][:200]]
    reader = phones.Reader()

    def share(index, test):
        values = [c[index] for c in sample if index < len(c) and c[index]]
        if not values:
            return 0
        return sum(1 for v in values if test(v)) / len(values)

    def is_phone(value):
        try:
            reader.normalise(value)
        except PhoneInvalid:
            return False
        return True

    def is_number(value):
        try:
            cards.clean_number(value)
        except LoyaltyError:
            return False
        return True

    def is_amount(value):
        try:
            return parse_amount(value) is not None
        except AmountError:
            return False

    for role, test in ((PHONE, is_phone), (NUMBER, is_number)):
        if role in mapping:
            continue
        scores = [(share(i, test), i) for i in range(width) if not mapping[i]]
        best, index = max(scores, default=(0, None))
        if best >= 0.5:
            mapping[index] = role
    amounts = [i for i in range(width) if not mapping[i] and share(i, is_amount) >= 0.8]
    open_roles = [role for role in (TOPUP, BALANCE) if role not in mapping]
    for role, index in zip(open_roles, amounts, strict=False):
        mapping[index] = role
    return mapping


def mapping_errors(mapping):
    errors = []
    for role in ROLES:
        if mapping.count(role) > 1:
            errors.append(
                _("“%(column)s” is chosen for more than one column.")
                % {"column": ROLE_LABELS[role]}
            )
    if PHONE not in mapping and NUMBER not in mapping:
        errors.append(_("Choose the column with phones or the one with card numbers."))
    return errors


# --- drafts: preview before anything is written ---------------------------------------------


def _digest(program, rows):
    """A fingerprint of the table for this programme, to notice the same file imported twice.
    Cells are joined with control characters that cells do not hold (a contrived clash would
    only show or hide the warning about a repeated import)."""
    text = "\x1e".join("\x1f".join(cells) for _n, cells in rows)
    return hashlib.sha256(f"{program.pk}\x1d{text}".encode()).hexdigest()


def create_draft(table, program, by=None, language=None):
    """Store a read table as a draft import (nothing applied) and check it."""
    purge_drafts()
    has_header = guess_header(table)
    params = {
        "draft": True,
        "source": table.source,
        "source_kind": Job.PASTED if table.pasted else Job.FILE,
        "notes": [str(note) for note in table.notes],
        "width": table.width,
        "first": list(table.rows[0][1]),
        "first_n": table.rows[0][0],
        "header": has_header,
        "mapping": guess_mapping(table, has_header),
        "language": language or translation.get_language(),
        "digest": _digest(program, table.rows),
    }
    job = Job.objects.create(kind=Job.IMPORT, program=program, params=params, created_by=by)
    _check(job, table.rows, params["mapping"], has_header)
    return job


def table_rows(job, items=None):
    """Every row of a draft (its stored ``items`` when the caller has read them), the first
    one included, as ``(n, cells)``."""
    rows = [] if not job.params.get("header") else [(job.params["first_n"], job.params["first"])]
    rows.extend((item.n, tuple(item.cells)) for item in items or iter_items(job))
    rows.sort()
    return rows


def recheck(job, mapping, has_header):
    """Check a draft again with another column mapping or header choice."""
    _check(job, table_rows(job), mapping, has_header)


def _check(job, rows, mapping, has_header):
    """Parse and check every row, then store them in the draft's chunks with the totals."""
    items, totals = _classified(job.program, rows, mapping, has_header)
    return _store(job, items, totals, mapping, has_header)


@jobs.cycle_collector_paused()
def _classified(program, rows, mapping, has_header):
    """``(items, totals)``: every row parsed and checked against the database, as stored."""
    data = rows[1:] if has_header else rows
    reader = phones.Reader()
    first_phone, first_number, seen_cards = {}, {}, {}
    totals = dict.fromkeys(("rows", NEW, SET, TOPPED, SAME, "errors"), 0)
    totals.update(opening=ZERO, added=ZERO, taken=ZERO)
    items = []
    size = conf.import_chunk_size
    for start in range(0, len(data), size):
        batch = [
            parse_row(n, tuple(cells), mapping, reader) for n, cells in data[start : start + size]
        ]
        for row in batch:
            _check_duplicates(row, first_phone, first_number)
        known = Cards(program).load([r for r in batch if not r.errors])
        for row in batch:
            classify(row, known, seen_cards)
            totals["rows"] += 1
            if row.errors:
                totals["errors"] += 1
            else:
                totals[row.action] += 1
                if row.action == NEW:
                    totals["opening"] += row.diff
                elif row.diff > 0:
                    totals["added"] += row.diff
                else:
                    totals["taken"] -= row.diff
            items.append(row.item())
    return items, {k: str(v) for k, v in totals.items()}


def _store(job, items, totals, mapping, has_header):
    """Save checked rows into the draft's chunks, with the totals and a new check token."""
    size = conf.import_chunk_size
    params = dict(job.params)
    params.update(
        mapping=list(mapping),
        header=bool(has_header),
        totals=totals,
        checked=timezone.now().isoformat(),
    )
    with transaction.atomic():
        job.chunks.all().delete()
        # One INSERT per chunk: Django's bulk_create sends the JSON of every chunk inside one
        # PostgreSQL array, which the driver escapes character by character (slow).
        for i, s in enumerate(range(0, len(items), size)):
            JobChunk.objects.create(job=job, index=i, items=items[s : s + size])
        job.params, job.total = params, len(items)
        job.save(update_fields=["params", "total"])
    return job


def _check_duplicates(row, first_phone, first_number):
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


def totals(job):
    return {
        key: (Decimal(value) if key in ("opening", "added", "taken") else int(value))
        for key, value in job.params.get("totals", {}).items()
    }


def is_draft(job):
    return job.kind == Job.IMPORT and job.status == Job.NEW and job.params.get("draft")


def is_undo(job):
    return bool(job.params.get("undo_of"))


def iter_items(job):
    """The stored rows of an import (``Stored``), in file order."""
    for items in job.chunks.order_by("index").values_list("items", flat=True).iterator(20):
        yield from map(Stored._make, items)


def preview_rows(job, limit=20):
    """The first rows with what each will do, for the preview table."""
    rows = []
    for item in iter_items(job):
        rows.append(item)
        if len(rows) >= limit:
            break
    return rows


def previous_imports(job):
    """Imports of the same table into the same programme, started (running or waiting for a
    worker) or finished: importing it again would repeat their top-ups."""
    return (
        Job.objects.filter(
            kind=Job.IMPORT, program=job.program, status__in=[Job.NEW, Job.RUNNING, Job.DONE]
        )
        .filter(params__digest=job.params.get("digest"))
        .exclude(params__has_key="draft")
        .exclude(pk=job.pk)
        .order_by("-created")
    )


class ImportRepeated(LoyaltyError):
    """The same table was started or finished meanwhile; confirm with ``again`` to repeat it."""


class PreviewChanged(LoyaltyError):
    """What the rows do changed since the preview; the draft now holds the new check."""


def _outcome(item):
    """What a stored row does, for telling whether a check again changed it: its card and
    action, or that it is skipped. Not the amount: a balance that moved does not change what
    "set to" or "add" means, and the chunk applies it to the balance it then finds."""
    n, _cells, _phone, _number, _topup, _balance, errors, action, _diff, card_id = item
    return n, bool(errors), action, card_id


def start(job, again=False):
    """Turn a checked draft into a job the workers may run; the caller then queues it.

    Confirmations of one programme take turns (a lock on its row, one that card inserts do
    not wait for), so two managers confirming the same table cannot both miss the other.
    Under that lock the rows are checked again against the database: when what one does
    changed (another import issued its card, a row became an error or stopped being one),
    the new check is saved and ``PreviewChanged`` raised. The same table started or
    finished before raises ``ImportRepeated`` unless ``again``. Either way the job stays a
    draft that nothing runs.
    """
    with transaction.atomic():
        list(Program.objects.select_for_update(no_key=True).filter(pk=job.program_id))
        job = Job.objects.select_for_update().get(pk=job.pk)
        if not is_draft(job):
            raise LoyaltyError(_("This import has already been started."))
        mapping, header = job.params["mapping"], job.params["header"]
        stored = list(iter_items(job))
        with translation.override(job.params.get("language") or None):
            items, totals = _classified(job.program, table_rows(job, stored), mapping, header)
        changed = list(map(_outcome, items)) != list(map(_outcome, stored))
        earlier = None if again else previous_imports(job).first()
        if changed:
            _store(job, items, totals, mapping, header)
        elif earlier is None:
            params = dict(job.params)
            params.pop("draft")
            job.params = params
            job.created = job.progressed = timezone.now()
            job.save(update_fields=["params", "created", "progressed"])
    if changed:
        raise PreviewChanged(
            _(
                "The cards changed since the table was checked; the preview now shows what "
                "each row will do. Look at it and confirm again."
            )
        )
    if earlier is not None:
        raise ImportRepeated(
            _(
                "This same table was imported as import #%(job)s; importing it again adds "
                "its top-ups again. Tick “Import it again” if that is what you want."
            )
            % {"job": earlier.pk}
        )
    return job


def purge_drafts(hours=24):
    """Drop drafts nobody confirmed within ``hours``: they hold a whole file each."""
    since = timezone.now() - timezone.timedelta(hours=hours)
    Job.objects.filter(
        kind=Job.IMPORT, status=Job.NEW, params__draft=True, created__lt=since
    ).delete()


# --- errors ----------------------------------------------------------------------------------


def error_rows(job):
    """``(n, cells, reason)`` of every row that was or will be skipped, in file order."""
    failed = {}
    for failure in job.errors:
        item = failure.get("item")
        if isinstance(item, int):
            failed[item] = failure.get("reason", "")
    for item in iter_items(job):
        reasons = [message for _role, message in item.errors]
        if not reasons and item.n in failed:
            reasons = [failed[item.n]]
        if reasons:
            yield item.n, item.cells, " ".join(reasons)


def error_list(job, limit=200):
    """Errors with their column, for the preview: ``(n, column, value, reason)``."""
    mapping = job.params.get("mapping", [])
    header = job.params.get("first", []) if job.params.get("header") else []
    result = []
    for item in iter_items(job):
        for role, message in item.errors:
            index = mapping.index(role) if role in mapping else None
            column = ""
            value = ""
            if index is not None:
                column = column_letter(index)
                name = header[index] if index < len(header) else ""
                column += f" ({name or ROLE_LABELS[role]})"
                value = item.cells[index] if index < len(item.cells) else ""
            result.append((item.n, column, value, message))
            if len(result) >= limit:
                return result
    return result


def error_header(job):
    width = job.params.get("width", 0)
    first = job.params.get("first", []) if job.params.get("header") else []
    names = [first[i] if i < len(first) and first[i] else column_letter(i) for i in range(width)]
    return [_("Row"), *names, _("Error")]


# --- applying --------------------------------------------------------------------------------


def row_key(job_id, n):
    return keys.import_row(job_id, n)


def run_rows(job, items):
    """Job handler: apply a chunk of import rows (or undo them, for an undo job)."""
    with translation.override(job.params.get("language") or None):
        if is_undo(job):
            return _undo_rows(job, items)
        return _apply_rows(job, items)


def _description(row):
    """What the customer reads in the card's history (a ``descriptions`` code)."""
    if row.action == NEW:
        return descriptions.IMPORT_NEW
    if row.action == SET:
        return descriptions.IMPORT_SET
    if row.diff > 0:
        return descriptions.IMPORT_ADD
    return descriptions.IMPORT_TAKE


def _note(job, row, text=None):
    """The internal note: which import and row made the transfer."""
    return (text or _("Import #%(job)s, row %(row)s")) % {"job": job.pk, "row": row.n}


def _prepare_chunk_transaction():
    """PostgreSQL settings for the transaction of one chunk.

    - It commits without waiting for its WAL flush. The chunk's rows and its ``done`` mark
      commit together: a server crash before the flush loses both, and the stalled job is
      resumed from that chunk, so nothing is applied twice or lost.
    - Foreign keys are checked as each statement ends instead of at COMMIT. The job's
      progress row is updated last and stays locked until COMMIT; with the checks of
      thousands of rows left for COMMIT, a second worker's chunk would wait for all of them.
      A violation then also surfaces inside the savepoint that goes row by row.
    """
    connection = connections[router.db_for_write(Transfer)]
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _apply_rows(job, items):
    _prepare_chunk_transaction()
    rows = [Row.from_item(item) for item in items]
    failures = [
        {"item": r.n, "reason": " ".join(m for _role, m in r.errors)} for r in rows if r.errors
    ]
    keys = {row_key(job.pk, r.n): r for r in rows if not r.errors}
    recorded = set(
        Transfer.objects.filter(among(Transfer, "key", keys)).values_list("key", flat=True)
    )
    rows = [r for key, r in keys.items() if key not in recorded]
    replayed = len(keys) - len(rows)
    known = Cards(job.program).load(rows, lock=True)
    seen_cards = {}
    for row in rows:
        classify(row, known, seen_cards)
    for row in rows:
        if row.errors:
            failures.append({"item": row.n, "reason": " ".join(m for _r, m in row.errors)})
    # Rows that change nothing are neither applied nor skipped: the job page counts them
    # as unchanged (done − applied − skipped).
    todo = [r for r in rows if not r.errors and r.action != SAME]
    try:
        with transaction.atomic():
            _apply_bulk(job, todo)
        succeeded = len(todo)
    except IntegrityError:
        # Someone issued one of these cards meanwhile: go row by row, each in its savepoint.
        succeeded = 0
        for row in todo:
            try:
                with transaction.atomic():
                    _apply_one(job, row)
                succeeded += 1
            except (LoyaltyError, IntegrityError) as exc:
                failures.append({"item": row.n, "reason": str(exc)})
    return succeeded + replayed, failures


def _new_numbers(program, count, taken):
    """``count`` free card numbers of the programme's length (Luhn check digit last)."""
    length = program.card_number_length
    low = 10 ** (length - 2)
    span = 9 * low
    # Random bytes for the whole batch at once, 64 bits more than the span needs, so that
    # taking the remainder favours no number measurably.
    width = (span.bit_length() + 64 + 7) // 8
    luhn = conf.card_number_check_digit
    numbers = []
    while len(numbers) < count:
        wanted = count - len(numbers)
        draws = secrets.token_bytes(width * wanted)
        batch = set()
        for start in range(0, len(draws), width):
            body = str(low + int.from_bytes(draws[start : start + width], "big") % span)
            batch.add(body + (cards.check_digit(body) if luhn else "0"))
        batch -= taken
        clash = set(
            Card.objects.filter(among(Card, "number", batch), program=program).values_list(
                "number", flat=True
            )
        )
        numbers.extend(batch - clash)
        taken |= batch
    return numbers


def _apply_bulk(job, rows):
    """Apply checked rows in a few statements: new cards with their opening balances, then
    one transfer per row for the cards that exist."""
    program, job_id, by_id = job.program, job.pk, job.created_by_id
    note = _("Import #%(job)s, row %(row)s")

    def transfer(row):
        """Key, amount, description code and note of the row's transfer."""
        text = note % {"job": job_id, "row": row.n}
        return row_key(job_id, row.n), abs(row.diff), _description(row), text

    new = [r for r in rows if r.action == NEW]
    if new:
        blank = [r for r in new if not r.number]
        generated = iter(_new_numbers(program, len(blank), {r.number for r in new}))
        for row in blank:
            row.number = next(generated)
        grade = program.lowest_grade()

        def make_cards(accounts):
            return inserts.insert(
                Card,
                ("number", "user_id", "phone", "account_id"),
                [
                    (r.number, r.user_id, r.phone, account)
                    for r, account in zip(new, accounts, strict=True)
                ],
                program_id=program.pk,
                grade_id=grade and grade.pk,
                created_by_id=by_id,
            )

        ledger.open_card_accounts_many(
            program,
            [transfer(row) for row in new],
            make_cards,
            Transfer.IMPORT,
            fields=("label_code", "note"),
            created_by_id=by_id,
        )
    issued = ledger.system_account(program, ledger.ISSUED).pk
    legs, slow = [], []
    for row in rows:
        if row.action not in (SET, TOPPED):
            continue
        card = row.card
        if row.diff > 0 and card.debt > 0:
            slow.append(row)  # the ledger repays the card's debt first
            continue
        key, amount, *extra = transfer(row)
        debit, credit = (issued, card.account_id) if row.diff > 0 else (card.account_id, issued)
        legs.append((key, Transfer.IMPORT, debit, credit, amount, card.id, *extra))
    ledger.post_many(legs, fields=("label_code", "note"), created_by_id=by_id)
    for row in slow:
        _apply_one(job, row)


def _apply_one(job, row):
    """Apply one row with the ordinary services (the careful, slower path)."""
    details = {
        "label_code": _description(row),
        "note": _note(job, row),
        "created_by": job.created_by,
    }
    key = row_key(job.pk, row.n)
    if row.action == NEW:
        user = get_user_model().objects.get(pk=row.user_id) if row.user_id else None
        card = cards.issue_card(
            job.program, user=user, phone=row.phone, number=row.number, by=job.created_by
        )
        if row.diff > 0:
            ledger.credit_card(card, row.diff, key, kind=Transfer.IMPORT, **details)
        return
    card = Card.objects.select_related("program", "account", "debt_account").get(pk=row.card.id)
    if row.diff > 0:
        ledger.credit_card(card, row.diff, key, kind=Transfer.IMPORT, **details)
    elif row.diff < 0:
        ledger.debit_card(card, -row.diff, key, kind=Transfer.IMPORT, to=ledger.ISSUED, **details)


# --- undoing ---------------------------------------------------------------------------------


def can_undo(job):
    return (
        job.kind == Job.IMPORT
        and job.status == Job.DONE
        and not is_undo(job)
        and not undo_jobs(job).filter(status__in=[Job.NEW, Job.RUNNING]).exists()
    )


def undo_jobs(job):
    return Job.objects.filter(kind=Job.IMPORT, params__undo_of=job.pk)


def _import_transfers(job, numbers):
    """``{n: (main transfer, points repaid from it)}`` for rows ``numbers`` of ``job``."""
    keys = {row_key(job.pk, n): n for n in numbers}
    found = {}
    repaid = {}
    wanted = list(keys) + [k + ":repay" for k in keys]
    for start in range(0, len(wanted), BATCH):
        for transfer in Transfer.objects.filter(
            key__in=wanted[start : start + BATCH]
        ).select_related("card", "card__account"):
            if transfer.key.endswith(":repay"):
                repaid[transfer.key[: -len(":repay")]] = transfer.amount
            else:
                found[transfer.key] = transfer
    return {keys[k]: (t, repaid.get(k, ZERO)) for k, t in found.items()}


def _not_undone(job, numbers):
    """``_import_transfers`` of the rows ``numbers`` that no undo has reversed yet, in order."""
    found = _import_transfers(job, numbers)
    undone = set(
        Transfer.objects.filter(
            among(Transfer, "key", [keys.undo(t.key) for t, _r in found.values()])
        ).values_list("key", flat=True)
    )
    return {n: found[n] for n in sorted(found) if keys.undo(found[n][0].key) not in undone}


def _spent_since(transfer, repaid, balance):
    """Points of an imported credit the card no longer has, or zero."""
    if transfer.credit_id != transfer.card.account_id:
        return ZERO
    return max(ZERO, transfer.amount - repaid - balance)


def undo_check(job, limit=50):
    """What undoing ``job`` would do: rows to reverse and cards refused, with reasons."""
    numbers = [item.n for item in iter_items(job) if not item.errors]
    result = {"rows": 0, "refused": 0, "reasons": []}
    for start in range(0, len(numbers), BATCH):
        for n, (transfer, repaid) in _not_undone(job, numbers[start : start + BATCH]).items():
            spent = _spent_since(transfer, repaid, transfer.card.account.balance)
            if spent:
                result["refused"] += 1
                if len(result["reasons"]) < limit:
                    result["reasons"].append((n, _refused(transfer, spent)))
            else:
                result["rows"] += 1
    return result


def _refused(transfer, spent):
    return _(
        "The card %(card)s has spent %(spent)s of the %(amount)s imported points since; "
        "it was left as it is."
    ) % {
        "card": transfer.card.number,
        "spent": format_points(spent),
        "amount": format_points(transfer.amount),
    }


def create_undo(job, by=None):
    """An undo job over the rows of a finished import; the caller queues it."""
    if not can_undo(job):
        raise LoyaltyError(_("Only a finished import can be undone."))
    numbers = [item.n for item in iter_items(job) if not item.errors]
    return jobs.create(
        Job.IMPORT,
        numbers,
        program=job.program,
        params={"undo_of": job.pk, "language": translation.get_language()},
        by=by,
    )


def _undo_rows(job, numbers):
    """Reverse the transfers of rows ``numbers`` of the import ``job`` undoes.

    The usual rows (the card still holds the imported points, or the import took points) are
    reversed in a few statements; a credit that partly repaid a debt goes through the
    ledger's take-back, which records that debt again; a card that spent the points is
    refused. It counts the rows it reversed; rows with nothing to reverse (unchanged,
    skipped by the import, or reversed by an earlier undo) are neither reversed nor refused.
    """
    _prepare_chunk_transaction()
    original = Job.objects.get(pk=job.params["undo_of"])
    todo = _not_undone(original, numbers)
    balances, _debts = ledger.lock_balances(
        list({(t.card_id, t.card.account_id) for t, _r in todo.values()})
    )
    note = _("Undo of import #%(job)s, row %(row)s")
    legs, slow, failures = [], [], []
    for n, (transfer, repaid) in todo.items():
        account = transfer.card.account_id
        spent = _spent_since(transfer, repaid, balances[account])
        if spent:
            failures.append({"item": n, "reason": _refused(transfer, spent)})
            continue
        if transfer.credit_id == account:  # the import gave points: they go back
            if transfer.amount > balances[account]:
                slow.append(n)  # some of them repaid a debt
                continue
            balances[account] -= transfer.amount
        else:  # the import took points: they come back
            balances[account] += transfer.amount
        legs.append(
            (
                keys.undo(transfer.key),
                Transfer.REVERSE,
                transfer.credit_id,
                transfer.debit_id,
                transfer.amount,
                transfer.card_id,
                note % {"job": original.pk, "row": n},
                transfer.pk,
            )
        )
    try:
        with transaction.atomic():
            ledger.post_many(
                legs,
                fields=("note", "reverses_id"),
                label_code=descriptions.IMPORT_UNDO,
                created_by_id=job.created_by_id,
            )
        reversed_rows = len(legs)
    except IntegrityError:  # reversed meanwhile by someone else: row by row, each replays
        slow, failures, reversed_rows = list(todo), [], 0
    for n in slow:
        try:
            with transaction.atomic():
                _undo_one(job, original, n, *todo[n])
            reversed_rows += 1
        except (LoyaltyError, IntegrityError) as exc:
            failures.append({"item": n, "reason": str(exc)})
    return reversed_rows, failures


def _undo_one(job, original, n, transfer, repaid):
    """Reverse one row with the ledger's own operations (the careful, slower path)."""
    card = transfer.card
    key = keys.undo(transfer.key)
    balance = (
        Account.objects.select_for_update()
        .values_list("balance", flat=True)
        .get(pk=card.account_id)
    )
    done = Transfer.objects.filter(key=key).exists()
    spent = ZERO if done else _spent_since(transfer, repaid, balance)
    if spent:
        raise LoyaltyError(_refused(transfer, spent))
    ledger.reverse(
        transfer,
        key,
        label_code=descriptions.IMPORT_UNDO,
        note=_("Undo of import #%(job)s, row %(row)s") % {"job": original.pk, "row": n},
        created_by=job.created_by,
    )


def mark_undone(job):
    """An undo job that refused nothing leaves its import undone as a whole."""
    if is_undo(job) and job.failed == 0:
        Job.objects.filter(pk=job.params["undo_of"], status=Job.DONE).update(status=Job.UNDONE)
