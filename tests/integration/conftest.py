"""Fixtures of the checkout tests: the sandbox shop (catalogue, countries, its demo users) and
anna@example.com shopping in it. Builders are in ``checkout_support``."""

import pytest

from tests.sms_gateway import sms_aero  # noqa: F401 (the fake SMS Aero gateway's fixture)


@pytest.fixture
def shop():
    """The sandbox shop's site, countries, catalogue and users (anna, boris, admin)."""
    from tests.integration.checkout_support import load_shop

    load_shop()


@pytest.fixture
def shop_program(shop):
    """The checkout programme in the shop: a point pays 1 ₽, at most 50% of an order."""
    from tests.integration.checkout_support import make_program

    return make_program()


@pytest.fixture
def anna(shop):
    """anna@example.com, a customer of the shop with a delivery address."""
    from tests.integration.checkout_support import customer

    return customer()


@pytest.fixture
def anna_card(shop_program, anna):
    """Anna's card in the checkout programme with 2,000 points."""
    from tests.integration.checkout_support import card_with_points

    return card_with_points(shop_program, anna, 2000)
