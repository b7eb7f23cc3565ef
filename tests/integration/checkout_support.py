"""Shared set-up of the checkout tests: the sandbox shop, a programme, cards with points, and
the steps a customer takes through Oscar's checkout."""

import io
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from sandbox.demo import catalogue_data

Card = get_model("oscar_loyalty", "Card")
Grade = get_model("oscar_loyalty", "Grade")
Hold = get_model("oscar_loyalty", "Hold")
Program = get_model("oscar_loyalty", "Program")
Transfer = get_model("oscar_loyalty", "Transfer")
Order = get_model("order", "Order")
Product = get_model("catalogue", "Product")

D = Decimal
KETTLE = catalogue_data.PRODUCTS[0]  # 3200.00
TOWELS = catalogue_data.PRODUCTS[4]  # 1490.00


def load_shop():
    ledger.clear_cache()
    catalogue_data.load_site()
    catalogue_data.load_countries()
    catalogue_data.load_catalogue()
    catalogue_data.load_users()


def load_demo():
    """The sandbox's whole demo (``manage.py load_demo``); returns what the command printed."""
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def make_program(**policy):
    """A programme: a point pays 1 ₽, at most 50% of an order, 5% earned on the lowest grade."""
    values = {
        "name": "Bonus",
        "code": "bonus",
        "point_value": D("1.00"),
        "max_pay_percent": D("50"),
        "min_spend_points": D("0"),
        "shipping_payable": False,
    }
    values.update(policy)
    program = Program.objects.create(**values)
    Grade.objects.create(program=program, name="Base", spend_from=0, earn_percent=D("5"))
    return program


def customer(email="anna@example.com"):
    return get_user_model().objects.get(email=email)


def card_with_points(program, user, points):
    card = cards.issue_card(program, user=user)
    if points:
        ledger.credit_card(card, points, f"test:{uuid.uuid4()}", kind=Transfer.ADJUST)
    return Card.objects.select_related("account").get(pk=card.pk)


def balance(card):
    return ledger.balance(card.account)


def product(item=KETTLE):
    return Product.objects.get(upc=item.upc)


def fill_basket(client, item=KETTLE, quantity=1):
    response = client.post(
        reverse("basket:add", kwargs={"pk": product(item).pk}), {"quantity": quantity}
    )
    assert response.status_code == 302


def to_payment_step(client, user, item=KETTLE, quantity=1):
    """Log in, fill the basket and go through shipping to the payment step."""
    client.force_login(user)
    fill_basket(client, item, quantity)
    address = user.addresses.get()
    response = client.post(
        reverse("checkout:shipping-address"),
        {"action": "ship_to", "address_id": address.pk},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("checkout:payment-details")
    return response


def apply_points(client, points, action="apply", **extra):
    return client.post(
        reverse("checkout:payment-details"),
        {"loyalty_action": action, "points": points, **extra},
        follow=True,
    )


def place_order(client, **extra):
    return client.post(reverse("checkout:preview"), {"action": "place_order", **extra}, follow=True)


def text(response):
    return response.content.decode()
