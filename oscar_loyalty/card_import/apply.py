"""Applying the rows of a started import, one chunk at a time, with keys that make a
redelivered chunk change nothing more.

A row's consent to messages is written with its balance, set-based: on the new cards'
inserts, and by one ``UPDATE`` per value for the cards that exist, which touches only cards
whose consent differs (``consent_source`` "import", the import's manager, the time applied).
Undoing an import reverses its transfers only; consent stays as the import left it.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy
from oscar.core.loading import get_model

from oscar_loyalty import cards, descriptions, keys, ledger
from oscar_loyalty.card_import.rows import (
    CONSENTED,
    NEW,
    SAME,
    SET,
    TOPPED,
    Cards,
    Row,
    classify,
)
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.lookups import among

Card = get_model("oscar_loyalty", "Card")
Transfer = get_model("oscar_loyalty", "Transfer")


def row_key(job_id, n):
    return keys.import_row(job_id, n)


def _description(row):
    """What the customer reads in the card's history (a ``descriptions`` code)."""
    if row.action == NEW:
        return descriptions.IMPORT_NEW
    if row.action == SET:
        return descriptions.IMPORT_SET
    if row.diff > 0:
        return descriptions.IMPORT_ADD
    return descriptions.IMPORT_TAKE


NOTE = gettext_lazy("Import #%(job)s, row %(row)s")
# The Card columns a new card's consent fills in (``cards.CONSENT_FIELDS``, as attnames).
CONSENT_COLUMNS = (
    "marketing_consent",
    "consent_changed",
    "consent_changed_by_id",
    "consent_source",
)


def _note(job, row, template=None):
    """The internal note: which import and row made the transfer. A chunk passes the
    ``template`` it translated once: a lookup per row costs a fifth of applying it."""
    return (template or str(NOTE)) % {"job": job.pk, "row": row.n}


def _apply_rows(job, items):
    """Apply a chunk of rows: a row whose key the ledger recorded was applied before (what
    it moved depended on the balance it then found, so it is not classified again); the
    others are checked under the ledger's locks and written by the ledger, which replays a
    key recorded meanwhile with the same content and refuses one with other content."""
    with ledger.bulk_transaction():
        rows = [Row.from_item(item) for item in items]
        failures = [
            {"item": r.n, "reason": " ".join(m for _role, m in r.errors)} for r in rows if r.errors
        ]
        by_key = {row_key(job.pk, r.n): r for r in rows if not r.errors}
        recorded = ledger.recorded(by_key)
        rows = [r for key, r in by_key.items() if key not in recorded]
        replayed = len(by_key) - len(rows)
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
                refused = _apply_bulk(job, todo)
            failures += refused
            succeeded = len(todo) - len(refused)
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


def _movement(job, row, template=None):
    """The ledger movement of a checked row: its signed change under the row's key."""
    return ledger.Movement(
        row.card.id if row.card else None,
        row.diff,
        row_key(job.pk, row.n),
        Transfer.IMPORT,
        label_code=_description(row),
        note=_note(job, row, template),
    )


def _apply_bulk(job, rows):
    """Apply checked rows in a few statements: new cards with their opening balances, then
    the changes of the cards that exist. Returns the failures of rows the ledger refused."""
    program, by_id = job.program, job.created_by_id
    template = str(NOTE)
    new = [r for r in rows if r.action == NEW]
    if new:
        blank = [r for r in new if not r.number]
        generated = iter(cards.new_numbers(program, len(blank), {r.number for r in new}))
        for row in blank:
            row.number = next(generated)
        grade = program.lowest_grade()
        columns = ("number", "user_id", "phone")
        card_rows = [(r.number, r.user_id, r.phone) for r in new]
        if any(r.consent for r in new):  # a file without consents inserts what it did before
            columns += CONSENT_COLUMNS
            agreed = (True, timezone.now(), by_id, Card.CONSENT_IMPORT)
            unchanged = (False, None, None, "")
            card_rows = [
                (*values, *(agreed if r.consent else unchanged))
                for values, r in zip(card_rows, new, strict=True)
            ]
        ledger.open_card_accounts_many(
            program,
            [_movement(job, row, template) for row in new],
            columns,
            card_rows,
            {"grade_id": grade and grade.pk, "created_by_id": by_id},
            created_by_id=by_id,
        )
    existing = [r for r in rows if r.action in (SET, TOPPED)]
    _done, refused = ledger.post_movements(
        [_movement(job, row, template) for row in existing], created_by_id=by_id
    )
    number = {row_key(job.pk, r.n): r.n for r in existing}
    failures = [{"item": number[m.key], "reason": str(error)} for m, error in refused]
    skipped = {failure["item"] for failure in failures}  # nothing of a refused row is applied
    _apply_consents(job, [r for r in rows if r.action != NEW and r.n not in skipped])
    return failures


def _apply_consents(job, rows):
    """Write the consent of existing cards' rows: one ``UPDATE`` per value, each only of
    the cards whose consent differs, so a card the file agrees with keeps when and by whom
    its consent was last changed."""
    now = timezone.now()
    for value in (True, False):
        ids = [r.card.id for r in rows if r.consent is value and r.consent_changes]
        if ids:
            Card.objects.filter(among(Card, "pk", ids)).exclude(marketing_consent=value).update(
                marketing_consent=value,
                consent_changed=now,
                consent_changed_by_id=job.created_by_id,
                consent_source=Card.CONSENT_IMPORT,
            )


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
        if row.consent:
            cards.set_consent(card, True, by=job.created_by, source=Card.CONSENT_IMPORT)
        return
    if row.action != CONSENTED:
        movements = [_movement(job, row)]
        _done, refused = ledger.post_movements(movements, created_by_id=job.created_by_id)
        if refused:
            raise refused[0][1]
    _apply_consents(job, [row])
