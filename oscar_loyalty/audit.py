"""Recompute balances from transfers and check the ledger's invariants.

Each check is a small function of the balances derived from transfers that returns its
problems, one line each; ``audit`` runs them all (or those it is given).
"""

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Sum
from oscar.core.loading import get_model

from oscar_loyalty import ledger

Account = get_model("oscar_loyalty", "Account")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")


def derived_balances():
    """Credits minus debits of every account that has transfers, by account id."""
    moved = defaultdict(lambda: ZERO)
    for row in Transfer.objects.values("credit_id").annotate(s=Sum("amount")):
        moved[row["credit_id"]] += row["s"]
    for row in Transfer.objects.values("debit_id").annotate(s=Sum("amount")):
        moved[row["debit_id"]] -= row["s"]
    return moved


def check_balances(moved):
    """Every cached balance equals its transfers; system accounts cache nothing; each
    programme's unit sums to zero."""
    problems = []
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
    return problems


def check_signs(moved):
    """No card's points below zero and no debt above zero (a debt account's balance is what
    the card owes, negative), whether cached or derived from transfers."""
    problems = []
    rows = Account.objects.exclude(kind=Account.SYSTEM).values_list("pk", "kind", "balance")
    for pk, kind, cached in rows.iterator(chunk_size=5000):
        derived = moved.get(pk, ZERO)
        if kind == Account.POINTS and min(cached, derived) < 0:
            side = "below zero"
        elif kind == Account.DEBT and max(cached, derived) > 0:
            side = "above zero"
        else:
            continue
        problems.append(f"{kind} account {pk} is {side}: caches {cached}, transfers give {derived}")
    return problems


def check_holds(moved):
    """Each programme's "held" account holds exactly its open checkout holds."""
    open_holds = dict(
        Hold.objects.filter(status=Hold.HELD)
        .values("card__program_id")
        .annotate(s=Sum("points"))
        .values_list("card__program_id", "s")
    )
    held_accounts = dict(
        Account.objects.filter(kind=Account.SYSTEM, unit="points", code=ledger.HELD).values_list(
            "program_id", "pk"
        )
    )
    problems = []
    for program_id in sorted(set(open_holds) | set(held_accounts)):
        expected = Decimal(open_holds.get(program_id, ZERO)).quantize(ledger.CENT)
        held = moved.get(held_accounts.get(program_id), ZERO)
        if expected != held:
            problems.append(
                f"programme {program_id}: open holds add up to {expected}, "
                f"its held account has {held}"
            )
    return problems


def check_units(moved):
    """No transfer joins accounts of different programmes or units."""
    crossing = Transfer.objects.exclude(debit__program_id=F("credit__program_id")) | (
        Transfer.objects.exclude(debit__unit=F("credit__unit"))
    )
    return [
        f"transfer {key} joins accounts of different programmes or units"
        for key in crossing.values_list("key", flat=True)[:100]
    ]


# The ledger's own books; the holds check also reads the checkout's ``Hold`` rows.
LEDGER_CHECKS = (check_balances, check_signs, check_units)
CHECKS = (*LEDGER_CHECKS, check_holds)


def audit(checks=CHECKS):
    """Return a list of problems (empty when the ledger is sound)."""
    moved = derived_balances()
    return [problem for check in checks for problem in check(moved)]
