"""Recompute balances from transfers and check the ledger's invariants."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Sum
from oscar.core.loading import get_model

Account = get_model("oscar_loyalty", "Account")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")


def audit():
    """Return a list of problems (empty when the ledger is sound).

    Checks: every cached balance equals credits minus debits of its transfers; no transfer
    joins accounts of different programmes or units; each programme's unit sums to zero.
    """
    problems = []
    moved = defaultdict(lambda: ZERO)
    for row in Transfer.objects.values("credit_id").annotate(s=Sum("amount")):
        moved[row["credit_id"]] += row["s"]
    for row in Transfer.objects.values("debit_id").annotate(s=Sum("amount")):
        moved[row["debit_id"]] -= row["s"]

    totals = defaultdict(lambda: ZERO)
    for account in Account.objects.all().iterator(chunk_size=5000):
        derived = moved.get(account.pk, ZERO)
        if account.kind == Account.SYSTEM:
            if account.balance != 0:
                problems.append(f"system account {account.pk} stores a balance {account.balance}")
            value = derived
        else:
            value = account.balance
            if derived != account.balance:
                problems.append(
                    f"account {account.pk} ({account.kind}) caches {account.balance}, "
                    f"transfers give {derived}"
                )
        totals[(account.program_id, account.unit)] += value

    for (program_id, unit), total in sorted(totals.items()):
        if total != 0:
            problems.append(f"programme {program_id} unit {unit} sums to {total}, not 0")

    crossing = Transfer.objects.exclude(debit__program_id=F("credit__program_id")) | (
        Transfer.objects.exclude(debit__unit=F("credit__unit"))
    )
    for key in crossing.values_list("key", flat=True)[:100]:
        problems.append(f"transfer {key} joins accounts of different programmes or units")
    return problems
