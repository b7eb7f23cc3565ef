"""Undoing a finished import: an undo job reverses its transfers, refusing cards that
spent the imported points since."""

from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import descriptions, jobs, ledger
from oscar_loyalty.card_import.apply import row_key
from oscar_loyalty.card_import.drafts import is_undo, iter_items
from oscar_loyalty.card_import.rows import ZERO
from oscar_loyalty.exceptions import InsufficientPoints, LoyaltyError
from oscar_loyalty.formats import format_points
from oscar_loyalty.lookups import among

Account = get_model("oscar_loyalty", "Account")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

BATCH = 1000


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
            among(Transfer, "key", [f"{t.key}:undo" for t, _r in found.values()])
        ).values_list("key", flat=True)
    )
    return {n: found[n] for n in sorted(found) if f"{found[n][0].key}:undo" not in undone}


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
    reversed by the ledger in a few statements; a row it refuses for want of points (the
    card spent them, or some of them repaid a debt) goes row by row: a card that spent the
    points is refused, a credit that repaid a debt goes through the ledger's take-back,
    which records that debt again. It counts the rows it reversed; rows with nothing to
    reverse (unchanged, skipped by the import, or reversed by an earlier undo) are neither
    reversed nor refused.
    """
    with ledger.bulk_transaction():
        original = Job.objects.get(pk=job.params["undo_of"])
        todo = _not_undone(original, numbers)
        note = _("Undo of import #%(job)s, row %(row)s")
        movements = {
            ledger.Movement(
                transfer.card_id,
                # the import gave points: they go back; it took points: they come back
                -transfer.amount
                if transfer.credit_id == transfer.card.account_id
                else transfer.amount,
                f"{transfer.key}:undo",
                Transfer.REVERSE,
                label_code=descriptions.IMPORT_UNDO,
                note=note % {"job": original.pk, "row": n},
                reverses=transfer.pk,
            ): n
            for n, (transfer, _repaid) in todo.items()
        }
        slow, failures = [], []
        try:
            with transaction.atomic():
                done, refused = ledger.post_movements(
                    movements, check=None, created_by_id=job.created_by_id
                )
            reversed_rows = len(done)
            for movement, error in refused:
                if isinstance(error, InsufficientPoints):
                    slow.append(movements[movement])
                else:
                    failures.append({"item": movements[movement], "reason": str(error)})
        except IntegrityError:  # reversed meanwhile by someone else: row by row, each replays
            slow, failures, reversed_rows = list(todo), [], 0
        for n in sorted(slow):
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
    key = f"{transfer.key}:undo"
    balances, _debts = ledger.lock_balances([(card.pk, card.account_id)])
    done = ledger.recorded([key])
    spent = ZERO if done else _spent_since(transfer, repaid, balances[card.account_id])
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
