"""Builders for loyalty tests: programmes with grades, customers, products and real orders.

Orders go through Oscar's own ``OrderCreator`` (``oscar.test.factories.create_order``) and
status changes through ``Order.set_status``, so the package's receivers run as in a shop.
"""

import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.test import TestCase
from oscar.apps.catalogue.categories import create_from_breadcrumbs
from oscar.apps.partner.strategy import Default
from oscar.apps.shipping.methods import FixedPrice, Free
from oscar.core.loading import get_model
from oscar.test.factories import create_order, create_product

from oscar_loyalty import cards

Basket = get_model("basket", "Basket")
Country = get_model("address", "Country")
ShippingAddress = get_model("order", "ShippingAddress")
ProductCategory = get_model("catalogue", "ProductCategory")
Program = get_model("oscar_loyalty", "Program")
Grade = get_model("oscar_loyalty", "Grade")

D = Decimal
_serial = itertools.count(1)

# (name, spend from, earn %, colour): the sandbox's grades.
GRADES = [
    ("Base", "0", "3", "#6c757d"),
    ("Silver", "10000", "5", "#8a9597"),
    ("Gold", "30000", "7", "#d4af37"),
]


def make_program(code="bonus", name="Bonus programme", grades=GRADES, **policy):
    program = Program.objects.create(code=code, name=name, **policy)
    for grade_name, spend_from, percent, colour in grades:
        Grade.objects.create(
            program=program,
            name=grade_name,
            spend_from=D(spend_from),
            earn_percent=D(percent),
            colour=colour,
        )
    return program


def grade(program, name):
    return program.grades.get(name=name)


def make_customer(email=None, password="secret", **fields):
    email = email or f"customer{next(_serial)}@example.com"
    user = get_user_model().objects.create_user(
        username=email, email=email, password=password, **fields
    )
    return user


def make_card(program, user=None, phone="", number=""):
    return cards.issue_card(program, user=user, phone=phone, number=number)


def make_product(price, title=None, category=None, stock=1000):
    """A standalone product with one stock record; ``category`` is Oscar breadcrumbs."""
    product = create_product(
        title=title or f"Product {next(_serial)}", price=D(price), num_in_stock=stock
    )
    if category:
        ProductCategory.objects.create(product=product, category=create_from_breadcrumbs(category))
    return product


def shipping_address(phone):
    country, _ = Country.objects.get_or_create(
        iso_3166_1_a2="RU",
        defaults={"name": "Russian Federation", "printable_name": "Russia"},
    )
    return ShippingAddress.objects.create(
        first_name="Ivan",
        last_name="Ivanov",
        line1="Tverskaya 7",
        line4="Moscow",
        postcode="125009",
        country=country,
        phone_number=phone,
    )


def place_order(user=None, lines=(), shipping="0", number=None, phone=None, **fields):
    """Place an order through Oscar's ``OrderCreator``; ``lines`` are (product, quantity).

    ``order_placed`` fires, so the order's pending points exist when this returns.
    """
    basket = Basket.objects.create(owner=user)
    basket.strategy = Default()
    for product, quantity in lines:
        basket.add_product(product, quantity)
    shipping = D(shipping)
    method = FixedPrice(shipping, shipping) if shipping else Free()
    address = shipping_address(phone) if phone else None
    return create_order(
        number=number,
        basket=basket,
        user=user,
        shipping_method=method,
        shipping_address=address,
        **fields,
    )


def set_status(order, status):
    """Change the order's status as a dashboard request would, running on-commit tasks
    (Celery is eager in tests) when the change "commits"."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        order.set_status(status)
    order.refresh_from_db()
    return order


def set_line_status(line, status):
    with TestCase.captureOnCommitCallbacks(execute=True):
        line.set_status(status)
    return line


def refreshed(card):
    """The card with its balances as the database holds them now."""
    return type(card).objects.select_related("account", "debt_account", "grade").get(pk=card.pk)
