"""Balances of system accounts as of a transfer id, so reading one does not scan its history.

A system account's balance is derived from its transfers (DESIGN.md: no shared row that
every spend updates). Summing all of them costs the account's whole history, so a periodic
task (``tasks.take_checkpoints``) records each system account's balance up to a transfer id
``B`` (``BalanceCheckpoint``); a balance is then that checkpoint plus the transfers with
``id > B``, a short range of the primary key.

This is exact only if no transfer with ``id <= B`` can commit after the checkpoint was summed.
On PostgreSQL an id is drawn from the sequence when the row is inserted, before COMMIT, so a
transaction still running may hold an id lower than one already committed. ``safe_bound``
therefore takes ``B`` as the highest committed id and then waits until every transaction
that held a write lock on the transfer table at that moment has ended (``pg_locks``): any
uncommitted transfer with ``id <= B`` belongs to one of them (an INSERT takes the table's
lock before it draws its id, and keeps it until the transaction ends), and once they have
ended each such transfer is committed, and visible to the next statement, or gone for good.
Nothing waits for the task: it only reads ``pg_locks`` and polls. On SQLite one writer runs
at a time and draws ids above every committed one, so the highest committed id is safe.

Nothing here writes a transfer; ``loyalty_audit`` recomputes every checkpoint (``verify``).
"""

import time
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone
from oscar.core.loading import get_model

Account = get_model("oscar_loyalty", "Account")
BalanceCheckpoint = get_model("oscar_loyalty", "BalanceCheckpoint")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _sums(ids, start, end=None):
    """Credits minus debits of the accounts ``ids`` by transfers with start < id <= end."""
    moved = dict.fromkeys(ids, ZERO)
    transfers = Transfer.objects.filter(id__gt=start)
    if end is not None:
        transfers = transfers.filter(id__lte=end)
    for side, sign in (("credit_id", 1), ("debit_id", -1)):
        rows = (
            transfers.filter(**{f"{side}__in": ids})
            .values_list(side)
            .annotate(s=Sum("amount"))
            .order_by()
        )
        for pk, total in rows:
            moved[pk] += sign * total
    return {pk: value.quantize(CENT) for pk, value in moved.items()}


def balances(accounts):
    """``{account id: balance}`` of system ``accounts``: checkpoint plus what came after.

    Three queries however long the history; an account without a checkpoint yet (new, or
    the task never ran) is summed from its first transfer.
    """
    ids = [account.pk for account in accounts]
    marks = {
        pk: (balance, upto)
        for pk, balance, upto in BalanceCheckpoint.objects.filter(account_id__in=ids).values_list(
            "account_id", "balance", "transfer_id"
        )
    }
    result = {pk: marks.get(pk, (ZERO, 0))[0] for pk in ids}
    starts = {}
    for pk in ids:
        starts.setdefault(marks.get(pk, (ZERO, 0))[1], []).append(pk)
    for start, group in starts.items():
        for pk, moved in _sums(group, start).items():
            result[pk] += moved
    return result


def safe_bound(timeout=10.0, poll=0.05):
    """The highest transfer id ``B`` such that every transfer with ``id <= B`` is committed
    or will never be (see the module's docstring), or ``None`` if transactions that might
    still commit one are running after ``timeout`` seconds (or the database is neither
    PostgreSQL nor SQLite): the previous checkpoints then stay, still exact."""
    highest = Transfer.objects.aggregate(m=Max("id"))["m"] or 0
    if connection.vendor == "sqlite":
        return highest
    if connection.vendor != "postgresql":
        return None
    writers_sql = (
        "SELECT DISTINCT virtualtransaction FROM pg_locks"
        " WHERE locktype = 'relation' AND relation = %s::regclass"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND mode <> 'AccessShareLock' AND pid <> pg_backend_pid()"
    )
    running_sql = "SELECT count(*) FROM pg_locks WHERE virtualtransaction = ANY(%s)"
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        cursor.execute(writers_sql, [Transfer._meta.db_table])
        writers = [row[0] for row in cursor.fetchall()]
        while writers:
            cursor.execute(running_sql, [writers])
            if not cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(poll)
    return highest


def take(bound):
    """Move every system account's checkpoint forward to transfer id ``bound`` (from
    ``safe_bound``): its previous checkpoint plus the transfers in between."""
    with transaction.atomic():
        # Locked: two runs at once would otherwise add the same range twice.
        marks = {cp.account_id: cp for cp in BalanceCheckpoint.objects.select_for_update()}
        starts = {}
        for pk in Account.objects.filter(kind=Account.SYSTEM).values_list("pk", flat=True):
            mark = marks.get(pk)
            start = mark.transfer_id if mark else 0
            if start < bound:
                starts.setdefault(start, []).append(pk)
        now = timezone.now()
        for start, group in starts.items():
            for pk, moved in _sums(group, start, bound).items():
                mark = marks.get(pk)
                if mark is None:
                    BalanceCheckpoint.objects.create(
                        account_id=pk, balance=moved, transfer_id=bound, created=now
                    )
                else:
                    mark.balance, mark.transfer_id, mark.created = mark.balance + moved, bound, now
                    mark.save(update_fields=["balance", "transfer_id", "created"])


def verify():
    """Problems of the balance checkpoints: each one against its account's transfers summed
    from the start."""
    problems = []
    for mark in BalanceCheckpoint.objects.select_related("account").order_by("account_id"):
        if mark.account.kind != Account.SYSTEM:
            problems.append(f"checkpoint of account {mark.account_id}: not a system account")
            continue
        actual = _sums([mark.account_id], 0, mark.transfer_id)[mark.account_id]
        if actual != mark.balance:
            problems.append(
                f"checkpoint of account {mark.account_id} at transfer {mark.transfer_id} "
                f"says {mark.balance}, transfers give {actual}"
            )
    return problems
