"""The fork's rules: gift wrap earns nothing, and points never pay for shipping."""

import dataclasses
from decimal import Decimal

from oscar_loyalty import policies


class EarningPolicy(policies.EarningPolicy):
    def line_earns(self, product, program, excluded=None):
        if product is not None and product.title == "Gift wrap":
            return False
        return super().line_earns(product, program, excluded)


class PaymentPolicy(policies.PaymentPolicy):
    def allowance(self, card, total, shipping=policies.ZERO, held=policies.ZERO):
        goods = Decimal(total) - Decimal(shipping)
        found = super().allowance(card, goods, policies.ZERO, held)
        return dataclasses.replace(found, total=Decimal(total))
