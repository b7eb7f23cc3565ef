"""The programme's policy for paying with points: the most usable on an order, and why."""

import pytest

from oscar_loyalty import paying
from tests.integration.checkout_support import (
    D,
    card_with_points,
    make_program,
)

pytestmark = pytest.mark.django_db


def allowance(anna, points, total, shipping="0", **policy):
    card = card_with_points(make_program(**policy), anna, points)
    return paying.allowance(card, D(total), D(shipping))


def test_share_of_the_order_excludes_shipping_unless_payable(anna):
    # 1,000 of goods + 300 shipping, at most 50%.
    assert allowance(anna, 5000, "1300", "300").max_points == D("500.00")


def test_shipping_payable_counts_it(anna):
    found = allowance(anna, 5000, "1300", "300", shipping_payable=True)
    assert found.max_points == D("650.00")
    assert found.payable == D("1300")


def test_point_value_turns_money_into_points_rounding_down(anna):
    # A point pays 0.30: 50% of 1,000.01 is 500.00 (kopeks down) -> 1,666.66 points.
    found = allowance(anna, 5000, "1000.01", point_value=D("0.30"))
    assert found.max_points == D("1666.66")
    assert found.max_money == D("499.99")  # never more money than the policy allows
    assert paying.money_for(D("1666.66"), found.program) <= D("500.00")


def test_balance_below_the_minimum_is_refused_with_the_reason(anna):
    found = allowance(anna, 80, "1000", min_spend_points=D("100"))
    assert found.max_points == 0
    assert found.reason == "At least 100 points can be used at once; your card has 80."


def test_order_too_small_for_the_minimum(anna):
    found = allowance(anna, 5000, "150", min_spend_points=D("100"))
    assert found.max_points == 0
    assert found.reason.startswith("This order is too small: at most 75 points")


def test_zero_share_means_no_points_on_any_order(anna):
    found = allowance(anna, 5000, "1000", max_pay_percent=D("0"))
    assert found.reason == "This order cannot be paid with points."


def test_check_refuses_more_than_the_most(anna):
    found = allowance(anna, 300, "1000")
    assert found.check(D("300")) == D("300.00")
    with pytest.raises(paying.PaymentRefused, match="At most 300 points"):
        found.check(D("300.01"))


def test_points_held_for_the_same_order_count_as_available(anna):
    card = card_with_points(make_program(), anna, 400)
    paying.hold_points(card, "777001", D("300"), D("300"))
    card.account.refresh_from_db()
    held = paying.held_for("777001", card)
    assert held == D("300.00")
    assert paying.allowance(card, D("2000"), held=held).max_points == D("400.00")
    assert paying.held_for("777002", card) == 0


def test_a_forked_payment_policy_decides_how_much_may_be_paid(anna, forked_loyalty):
    # The fork never lets points pay for shipping, though the programme would.
    found = allowance(anna, 5000, "1300", "300", shipping_payable=True)
    assert found.max_points == D("500.00")
    assert found.total == D("1300")
