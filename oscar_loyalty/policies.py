"""The rules a shop may change without forking the services: what earns points, and how
much of an order points may pay for.

``earning`` and ``paying`` load these classes with
``oscar_loyalty.loading.get_class("policies", ...)`` each time they apply them, so a shop
that forks ``oscar_loyalty`` overrides one by defining a subclass of the same name in its
fork's ``policies`` module, as Oscar shops override ``partner.strategy.Selector``.

Earning: points = money that earns × grade percent / 100 / value of one point, rounded
DOWN to a multiple of the programme's earning step. The money that earns is the order's
lines after discounts, less excluded products and categories, plus shipping only if the
programme says so, less whatever was paid with points (that part never earns).

Paying: points may pay for at most ``max_pay_percent`` of the order, shipping included only
if the programme says so, and never fewer than ``min_spend_points`` at once. Points are
counted in hundredths; their money value is points × value of a point, rounded down to the
kopek, so the shop never gives more than the policy allows.
"""

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.db.models import Sum
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import ledger
from oscar_loyalty.exceptions import LoyaltyError, PaymentRefused
from oscar_loyalty.formats import format_points

Hold = get_model("oscar_loyalty", "Hold")

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def round_money(value):
    """``value`` rounded down to the kopek."""
    return Decimal(value).quantize(CENT, rounding=ROUND_DOWN)


def money_for(points, program):
    """The money ``points`` pay for in ``program``."""
    return round_money(Decimal(points) * program.point_value)


class EarningPolicy:
    """What an order (or a basket, before it is one) earns on a card."""

    def round_points(self, value, program):
        """Round ``value`` down to the programme's earning step."""
        step = program.earn_step
        return ((value / step).to_integral_value(rounding=ROUND_DOWN) * step).quantize(CENT)

    def points_for(self, money, card):
        """Points ``money`` earns on ``card`` at its grade."""
        if card.grade is None or not card.participates or money <= 0:
            return ZERO
        return self.round_points(
            money * card.grade.earn_percent / HUNDRED / card.program.point_value, card.program
        )

    def excluded(self, program):
        """Excluded product ids and category ids; excluding a category excludes its
        subcategories. Read once per order and passed to ``line_earns``."""
        categories = set()
        for category in program.excluded_categories.all():
            categories.update(category.get_descendants_and_self().values_list("pk", flat=True))
        return set(program.excluded_products.values_list("pk", flat=True)), categories

    def line_earns(self, product, program, excluded=None):
        """Whether a product earns points in ``program`` (not excluded itself or by category)."""
        if product is None:
            return True
        products, categories = excluded or self.excluded(program)
        if product.pk in products or (product.parent_id and product.parent_id in products):
            return False
        if categories:
            owner = product.parent if product.parent_id else product
            if set(owner.get_categories().values_list("pk", flat=True)) & categories:
                return False
        return True

    def order_base(self, order, program):
        """Money of a placed ``order`` that earns points in ``program``."""
        excluded = self.excluded(program)
        base = sum(
            (
                line.line_price_incl_tax
                for line in order.lines.select_related("product")
                if self.line_earns(line.product, program, excluded)
            ),
            ZERO,
        )
        if program.shipping_earns:
            base += order.shipping_incl_tax
        paid_with_points = (
            Hold.objects.filter(order_number=order.number, card__program=program)
            .exclude(status=Hold.RELEASED)
            .aggregate(s=Sum("money"))["s"]
            or ZERO
        )
        return max(base - paid_with_points, ZERO)

    def basket_points(self, card, basket, shipping=ZERO, paid_with_points=ZERO):
        """Points an order of ``basket`` would earn on ``card``, never counting the part paid
        with points (the same rule as ``order_base`` for a placed order)."""
        if card is None or card.refusal() or not card.program.is_active:
            return ZERO
        program = card.program
        excluded = self.excluded(program)
        base = sum(
            (
                (
                    line.line_price_incl_tax_incl_discounts
                    if line.is_tax_known
                    else line.line_price_excl_tax_incl_discounts
                )
                or ZERO
                for line in basket.all_lines()
                if self.line_earns(line.product, program, excluded)
            ),
            ZERO,
        )
        if program.shipping_earns:
            base += Decimal(shipping)
        return self.points_for(max(base - Decimal(paid_with_points), ZERO), card)


@dataclass(frozen=True)
class Allowance:
    """What a card may spend on one order, with the figures that explain it."""

    card: object
    balance: Decimal
    total: Decimal  # the order total, money
    payable: Decimal  # the part of it points may pay for, before the share limit
    cap_points: Decimal  # most points the policy allows on this order, whatever the balance
    max_points: Decimal  # most points usable on this order (0: none)
    reason: str | None  # why no points can be used, if so

    @property
    def program(self):
        return self.card.program

    @property
    def point_value(self):
        return self.program.point_value

    @property
    def max_pay_percent(self):
        return self.program.max_pay_percent

    @property
    def min_points(self):
        return self.program.min_spend_points

    @property
    def shipping_payable(self):
        return self.program.shipping_payable

    @property
    def cap_money(self):
        return money_for(self.cap_points, self.program)

    @property
    def limited_by_balance(self):
        return self.balance < self.cap_points

    @property
    def max_money(self):
        return money_for(self.max_points, self.program)

    def check(self, points):
        """Raise ``PaymentRefused`` unless ``points`` may be spent on this order."""
        if self.reason:
            raise PaymentRefused(self.reason)
        try:
            points = ledger.to_amount(points)
        except LoyaltyError:
            raise PaymentRefused(
                _("Enter a positive number of points with at most two decimal places.")
            ) from None
        if points < self.min_points:
            raise PaymentRefused(
                _("At least %(min)s points can be used at once.")
                % {"min": format_points(self.min_points)}
            )
        if points > self.max_points:
            raise PaymentRefused(
                _("At most %(max)s points can be used on this order.")
                % {"max": format_points(self.max_points)}
            )
        return points


class PaymentPolicy:
    """How much of an order a card may pay for with points."""

    def allowance(self, card, total, shipping=ZERO, held=ZERO):
        """The most ``card`` may spend on an order of ``total`` money, ``shipping`` included;
        ``held``: points it already holds for this order."""
        program = card.program
        balance = card.account.balance + held
        payable = Decimal(total) - (ZERO if program.shipping_payable else Decimal(shipping))
        payable = max(payable, ZERO)
        cap_money = round_money(payable * program.max_pay_percent / HUNDRED)
        cap_points = round_money(cap_money / program.point_value)
        max_points = min(balance, cap_points)
        reason = card.refusal()
        if reason is None:
            if balance <= 0:
                reason = _("You have no points to spend yet.")
            elif cap_points <= 0:
                reason = _("This order cannot be paid with points.")
            elif balance < program.min_spend_points:
                reason = _(
                    "At least %(min)s points can be used at once; your card has %(balance)s."
                ) % {
                    "min": format_points(program.min_spend_points),
                    "balance": format_points(balance),
                }
            elif max_points < program.min_spend_points:
                reason = _(
                    "This order is too small: at most %(max)s points could pay for it, "
                    "and at least %(min)s can be used at once."
                ) % {
                    "max": format_points(cap_points),
                    "min": format_points(program.min_spend_points),
                }
        if reason:
            max_points = ZERO
        return Allowance(
            card=card,
            balance=balance,
            total=Decimal(total),
            payable=payable,
            cap_points=cap_points,
            max_points=max_points,
            reason=reason,
        )
