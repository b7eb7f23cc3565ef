"""Applying the rows of a started import, one chunk at a time, with keys that make a
redelivered chunk change nothing more."""

import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, router, transaction
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import cards, conf, descriptions, inserts, ledger
from oscar_loyalty.card_import.rows import NEW, SAME, SET, TOPPED, Cards, Row, classify
from oscar_loyalty.exceptions import LoyaltyError
from oscar_loyalty.inserts import among

Card = get_model("oscar_loyalty", "Card")
Transfer = get_model("oscar_loyalty", "Transfer")


def row_key(job_id, n):
    return f"import:{job_id}:row:{n}"


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
