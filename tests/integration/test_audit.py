"""``manage.py loyalty_audit``: recomputes balances from transfers and fails on a difference."""

import io
from decimal import Decimal

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from oscar.core.loading import get_model

from oscar_loyalty import ledger, paying
from tests.factories import make_card, make_customer, make_product, place_order, set_status

Account = get_model("oscar_loyalty", "Account")
Hold = get_model("oscar_loyalty", "Hold")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_ledger(card, customer, program):
    """A ledger with earnings, a spend, a debt and a hold, as a shop's would look."""
    order = set_status(place_order(customer, [(make_product("4000"), 1)]), "Complete")
    ledger.debit_card(card, "100", "manual:1")
    set_status(order, "Cancelled")  # leaves a debt of 100
    other = make_card(program, user=make_customer())
    ledger.credit_card(other, "50", "manual:2", kind=Transfer.ADJUST)
    paying.hold_points(other, "9", D("20"), D("20"))  # an order at its payment page
    card.refresh_from_db()  # the cancellation opened its debt account
    return card


def run_audit():
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("loyalty_audit", stdout=out, stderr=err)
    except CommandError as exc:
        return False, out.getvalue(), err.getvalue(), str(exc)
    return True, out.getvalue(), err.getvalue(), ""


def test_a_sound_ledger_passes(busy_ledger):
    ok, out, err, _ = run_audit()
    assert ok
    assert f"Ledger sound: {Transfer.objects.count()} transfers checked." in out
    assert err == ""


def test_a_tampered_card_balance_fails_and_names_the_account(busy_ledger):
    card = busy_ledger
    Account.objects.filter(pk=card.account_id).update(balance=D("999.00"))

    ok, _, err, summary = run_audit()

    assert not ok
    assert f"account {card.account_id} (points) caches 999.00, transfers give 0.00" in err
    assert "sums to 999.00, not 0" in err
    assert summary == "2 problem(s) found"


def test_a_tampered_debt_fails(busy_ledger):
    card = busy_ledger
    Account.objects.filter(pk=card.debt_account_id).update(balance=D("-1.00"))
    ok, _, err, _ = run_audit()
    assert not ok
    assert f"account {card.debt_account_id} (debt) caches -1.00, transfers give -100.00" in err


def test_a_transfer_written_outside_the_ledger_fails(busy_ledger, program):
    """A row inserted past ``ledger`` (a raw import, a bad migration) moves no cached balance."""
    issued = ledger.system_account(program, ledger.ISSUED)
    Transfer.objects.create(
        key="forged",
        kind=Transfer.ADJUST,
        debit=issued,
        credit=busy_ledger.account,
        amount=D("5"),
    )
    ok, _, err, _ = run_audit()
    assert not ok
    assert f"account {busy_ledger.account_id} (points) caches 0.00, transfers give 5.00" in err


def test_the_command_exits_non_zero_on_a_difference(busy_ledger, capsys):
    Account.objects.filter(pk=busy_ledger.account_id).update(balance=D("1.00"))

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "loyalty_audit"]).execute()

    assert exited.value.code != 0
    assert f"account {busy_ledger.account_id} (points)" in capsys.readouterr().err


def test_the_command_exits_zero_when_sound(busy_ledger, capsys):
    ManagementUtility(["manage.py", "loyalty_audit"]).execute()  # no SystemExit
    assert "Ledger sound" in capsys.readouterr().out


def test_a_card_whose_transfers_take_it_below_zero_fails(busy_ledger, program):
    """A forged spend moves no cached balance (the database refuses a negative one), but the
    card's transfers now take more than they gave."""
    Transfer.objects.create(
        key="forged",
        kind=Transfer.SPEND,
        debit=busy_ledger.account,
        credit=ledger.system_account(program, ledger.REDEEMED),
        amount=D("5"),
    )
    ok, _, err, _ = run_audit()
    assert not ok
    assert (
        f"points account {busy_ledger.account_id} is below zero: caches 0.00, "
        "transfers give -5.00" in err
    )


def test_a_debt_account_above_zero_fails(busy_ledger, program):
    Transfer.objects.create(
        key="forged",
        kind=Transfer.REPAY,
        debit=ledger.system_account(program, ledger.ISSUED),
        credit=busy_ledger.debt_account,
        amount=D("150"),
    )
    ok, _, err, _ = run_audit()
    assert not ok
    assert (
        f"debt account {busy_ledger.debt_account_id} is above zero: caches -100.00, "
        "transfers give 50.00" in err
    )


def test_an_open_hold_missing_from_the_held_account_fails(busy_ledger, program):
    """The checkout's hold row says released, but no transfer gave the points back."""
    Hold.objects.update(status=Hold.RELEASED)
    ok, _, err, _ = run_audit()
    assert not ok
    assert f"programme {program.pk}: open holds add up to 0.00, its held account has 20.00" in err


def test_held_points_without_an_open_hold_fail(busy_ledger, program):
    Hold.objects.update(points=D("25"))
    ok, _, err, _ = run_audit()
    assert not ok
    assert f"programme {program.pk}: open holds add up to 25.00, its held account has 20.00" in err
