"""Pages whose cost must not grow with history (issue 9, section 4): the card page, the
customer's page and the points report page by keyset and run the same queries however long
the history; system balances and the report's totals come from checkpoints the audit checks.
"""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import checkpoints, ledger, reports, tasks
from tests.history_support import grow
from tests.integration.test_audit import run_audit

BalanceCheckpoint = get_model("oscar_loyalty", "BalanceCheckpoint")
TotalsCheckpoint = get_model("oscar_loyalty", "TotalsCheckpoint")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
pytestmark = pytest.mark.django_db

TRANSFER = '"oscar_loyalty_transfer"'


def queries_of(client, target):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(target)
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in captured.captured_queries]


def link(content, css):
    """The href of the pager link with class ``css``, or ``None``."""
    match = re.search(rf'class="page-link {css}" href="([^"]+)"', content)
    return match.group(1).replace("&amp;", "&") if match else None


def full_balance(account):
    """Credits minus debits of every transfer of ``account``, the slow way."""
    credits = sum(Transfer.objects.filter(credit=account).values_list("amount", flat=True), D(0))
    debits = sum(Transfer.objects.filter(debit=account).values_list("amount", flat=True), D(0))
    return credits - debits


# --- the dashboard's card page -------------------------------------------------------------


def test_card_page_runs_the_same_queries_for_a_short_and_a_long_history(manager_client, card):
    grow(card, 60)
    target = reverse("loyalty-card-detail", args=[card.pk])
    _, short = queries_of(manager_client, target)
    grow(card, 200, start=60)
    content, long = queries_of(manager_client, target)

    assert len(long) == len(short)
    # The same queries, not longer ones: an IN of all the card's order numbers grew with it.
    assert sum(map(len, long)) < sum(map(len, short)) + 300
    assert "H000259" in content and "H000210" in content  # the 50 newest orders ...
    assert "H000209" not in content  # ... and no older one


def test_card_page_shows_each_orders_points(manager_client, card):
    grow(card, 3)
    content, _ = queries_of(manager_client, reverse("loyalty-card-detail", args=[card.pk]))
    orders = content.split('class="table table-striped table-bordered table-hover loyalty-orders"')[
        1
    ]
    row = re.search(r"<tr>\s*<td><a[^>]*>H000002</a>(.*?)</tr>", orders, re.S).group(1)
    assert 'text-right">1</td>' in row  # spent on it
    assert 'text-right">3 <small' in row and "posted" in row  # earned by it


def test_card_history_pages_by_keyset_to_the_oldest_and_back(manager_client, card):
    grow(card, 40)  # 120 transfers, all made in one instant: ties are cut by id
    newest_first = list(ledger.history(card).values_list("key", flat=True))
    target = reverse("loyalty-card-detail", args=[card.pk])

    first, _ = queries_of(manager_client, target)
    second, sql = queries_of(manager_client, target + link(first, "loyalty-older"))
    third, _ = queries_of(manager_client, target + link(second, "loyalty-older"))

    def keys(content):
        history = content.split('id="card_history"')[1].split('id="card_orders"')[0]
        numbers = re.findall(r">(H\d{6})</a>", history)
        return numbers

    shown = [keys(page) for page in (first, second, third)]
    assert [len(numbers) for numbers in shown] == [50, 50, 20]
    assert sum(shown, []) == [key.split(":")[1] for key in newest_first]
    assert link(third, "loyalty-older") is None
    assert not any("OFFSET" in query for query in sql)
    back, _ = queries_of(manager_client, target + link(third, "loyalty-newer"))
    assert keys(back) == shown[1]


# --- the customer's page -------------------------------------------------------------------


def test_customer_page_pages_by_keyset_without_counting_the_history(client, card, customer):
    grow(card, 30)  # 60 movements the customer sees (captures are bookkeeping)
    client.force_login(customer)
    content, sql = queries_of(client, "/accounts/bonus-cards/")
    assert not [q for q in sql if "COUNT(" in q and TRANSFER in q]
    older = re.search(rf'href="(\?before-{card.pk}=\d+)"', content).group(1)
    content, sql = queries_of(client, "/accounts/bonus-cards/" + older)
    assert not any("OFFSET" in query for query in sql)
    history = content.split("loyalty-history")[1].split("</tbody>")[0]
    assert history.count("<tr>") == 1 + 10  # the header and the 10 oldest movements
    assert f"?after-{card.pk}=" in content and f"?before-{card.pk}=" not in content


# --- system balances and their checkpoints -------------------------------------------------


def test_a_system_balance_is_its_checkpoint_plus_the_transfers_after_it(card, program):
    grow(card, 10)
    held = ledger.system_account(program, ledger.HELD)
    issued = ledger.system_account(program, ledger.ISSUED)
    bound = checkpoints.safe_bound()
    checkpoints.take(bound)
    mark = BalanceCheckpoint.objects.get(account=issued)
    assert (mark.balance, mark.transfer_id) == (D("-30.00"), bound)

    ledger.credit_card(card, "7", "manual:after", kind=Transfer.ADJUST)
    ledger.hold(card, "2", "order:late:hold")
    with CaptureQueriesContext(connection) as captured:
        balances = ledger.system_balances([held, issued])

    assert balances == {held.pk: full_balance(held), issued.pk: full_balance(issued)}
    assert balances[held.pk] == D("2.00") and balances[issued.pk] == D("-37.00")
    reads = [q["sql"] for q in captured.captured_queries if TRANSFER in q["sql"]]
    assert reads and all(f'"id" > {bound}' in q for q in reads)  # only what came after


def test_taking_checkpoints_again_adds_only_the_new_transfers(card, program):
    grow(card, 4)
    tasks.take_checkpoints()
    tasks.take_checkpoints()  # nothing new: unchanged
    grow(card, 3, start=4)
    tasks.take_checkpoints()
    for mark in BalanceCheckpoint.objects.select_related("account"):
        assert mark.balance == full_balance(mark.account)
    assert reports.verify_checkpoint() == [] and checkpoints.verify() == []
    assert run_audit()[0]


def test_the_audit_recomputes_every_checkpoint(card, program):
    grow(card, 3)
    tasks.take_checkpoints()
    issued = ledger.system_account(program, ledger.ISSUED)
    BalanceCheckpoint.objects.filter(account=issued).update(balance=D("-1.00"))
    TotalsCheckpoint.objects.filter(kind=Transfer.EARN).update(count=99)

    ok, _, err, _ = run_audit()

    assert not ok
    assert f"checkpoint of account {issued.pk} at transfer" in err
    assert "says -1.00, transfers give -9.00" in err
    assert f"report totals checkpoint of programme {program.pk}, earn" in err
    assert "in 99 transfers, transfers give 9.00 in 3" in err


# --- the points report ---------------------------------------------------------------------


def test_report_totals_are_the_same_from_checkpoints_and_from_the_transfers(card, program):
    grow(card, 6)
    tasks.take_checkpoints()
    grow(card, 2, start=6)
    ledger.debit_card(card, "5", "expire:1", kind=Transfer.EXPIRE, to=ledger.EXPIRED)
    for filters in ({}, {"program": program}, {"kind": Transfer.HOLD}, {"kind": Transfer.EXPIRE}):
        selected = reports.transfers(**filters)
        assert reports.summary(**filters) == (reports.totals(selected), selected.count())
    assert reports.summary()[0]["net"] == ledger.balance(card.account)


def test_report_default_page_reads_only_a_page_and_what_came_after_the_checkpoint(
    manager_client, card
):
    grow(card, 5)
    tasks.take_checkpoints()
    grow(card, 60, start=5)
    content, sql = queries_of(manager_client, reverse("loyalty-report"))

    assert "195 transfers" in content
    assert 'id="total_earned">195<' in content
    reads = [q for q in sql if TRANSFER in q]
    slow = [q for q in reads if "LIMIT" not in q and not re.search(r'"id" > \d+', q)]
    assert reads and not slow  # no total, COUNT or held balance over every transfer
    assert not any("OFFSET" in query for query in sql)


def test_report_page_runs_the_same_queries_for_a_short_and_a_long_history(manager_client, card):
    grow(card, 5)
    tasks.take_checkpoints()
    target = reverse("loyalty-report")
    _, short = queries_of(manager_client, target)
    grow(card, 100, start=5)
    tasks.take_checkpoints()
    content, long = queries_of(manager_client, target)
    _, older = queries_of(manager_client, target + link(content, "loyalty-older"))
    assert len(long) == len(short)
    assert len(older) == len(long)  # an older page costs what the first does


def test_report_pages_keep_the_filter(manager_client, card):
    grow(card, 60)
    target = reverse("loyalty-report")
    content, _ = queries_of(manager_client, target + "?kind=hold")
    assert "60 transfers" in content
    assert content.count("<td>Reserved for checkout</td>") == 50
    older = link(content, "loyalty-older")
    assert older.startswith("?kind=hold&before=")
    content, _ = queries_of(manager_client, target + older)
    assert "60 transfers" in content
    assert content.count("<td>Reserved for checkout</td>") == 10
    assert link(content, "loyalty-older") is None
    assert link(content, "loyalty-newer").startswith("?kind=hold&after=")
