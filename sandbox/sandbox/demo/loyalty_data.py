"""Loyalty part of the demo data: the bonus programme, its grades, cards and a history.

Called by ``manage.py load_demo`` after the catalogue and the users exist. Idempotent: a
second run finds what the first made and changes nothing; a run stopped half-way finishes
the job next time.

The history is made the way a shop makes it: orders are placed through Oscar's
``OrderCreator`` and completed with ``Order.set_status``, so the package's receivers
create, post and count the points. What the demo leaves:

- anna: three completed orders (28 050 ₽), grade "Серебряный", 1 950 ₽ short of "Золотой":
  one more order of the kettle (3 200 ₽) moves her up.
  She agreed to the programme's messages: her inbox (and the console, for e-mail)
  has one for her card and each order's points.
- boris: two completed orders, the second paid partly with 100 points; no messages (he did
  not agree to them).
- a card waiting for the phone +7 903 111-22-33, whose owner has not registered yet.
"""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from oscar.core.loading import get_class, get_model

from oscar_loyalty import cards, earning, grades, paying, phones
from sandbox.demo import catalogue_data

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")
Basket = get_model("basket", "Basket")
Order = get_model("order", "Order")
ShippingAddress = get_model("order", "ShippingAddress")
Product = get_model("catalogue", "Product")
OrderCreator = get_class("order.utils", "OrderCreator")
OrderTotalCalculator = get_class("checkout.calculators", "OrderTotalCalculator")
Repository = get_class("shipping.repository", "Repository")
Selector = get_class("partner.strategy", "Selector")

PROGRAM_CODE = "bonus"
PROGRAM_NAME = "Бонусная программа"
# name, spend from (₽), earn %, colour
GRADES = [
    ("Базовый", "0", "3", "#6c757d"),
    ("Серебряный", "10000", "5", "#8a9597"),
    ("Золотой", "30000", "7", "#c9a227"),
]
# Not anna's or boris's phone: this card's owner is not a customer yet.
WAITING_PHONE = "+7 903 111-22-33"

KETTLE, BLENDER, PAN, MUG, TOWELS, BED_LINEN = (
    "4601234000011",
    "4601234000028",
    "4601234000035",
    "4601234000042",
    "4601234000059",
    "4601234000066",
)

# order number, customer, [(product UPC, quantity)], days ago, points paid with
DEMO_ORDERS = [
    ("900001", "anna@example.com", [(BED_LINEN, 1), (BLENDER, 1)], 92, 0),
    ("900002", "anna@example.com", [(MUG, 1), (PAN, 1), (TOWELS, 1)], 61, 0),
    ("900003", "anna@example.com", [(BED_LINEN, 1), (MUG, 1)], 23, 0),
    ("900011", "boris@example.com", [(KETTLE, 1), (TOWELS, 1)], 40, 0),
    ("900012", "boris@example.com", [(PAN, 1)], 9, 100),
]
COMPLETE = "Complete"


def load_program():
    program, _ = Program.objects.get_or_create(
        code=PROGRAM_CODE,
        defaults={"name": PROGRAM_NAME, "point_value": Decimal("1"), "earn_step": Decimal("1")},
    )
    for name, spend_from, percent, colour in GRADES:
        Grade.objects.get_or_create(
            program=program,
            spend_from=Decimal(spend_from),
            defaults={"name": name, "earn_percent": Decimal(percent), "colour": colour},
        )
    return program


# Customers who agreed to the programme's messages when they got their card.
AGREED_TO_MESSAGES = {"anna@example.com"}


def card_of(program, user):
    return Card.objects.filter(program=program, user=user).first() or cards.issue_card(
        program, user=user, consent=user.email in AGREED_TO_MESSAGES
    )


def place(number, user, items, days_ago, points):
    """Place one order for ``user`` through Oscar's OrderCreator, as the checkout does."""
    basket = Basket.objects.create(owner=user)
    basket.strategy = Selector().strategy(user=user)
    for upc, quantity in items:
        basket.add_product(Product.objects.get(upc=upc), quantity)
    address = ShippingAddress()
    user.addresses.get(is_default_for_shipping=True).populate_alternative_model(address)
    address.save()
    method = Repository().get_default_shipping_method(basket=basket, shipping_addr=address)
    charge = method.calculate(basket)
    total = OrderTotalCalculator().calculate(basket, charge)
    source = None
    if points:  # the checkout's "pay with points": hold, then a "Bonus points" payment source
        card = Card.objects.get(program__code=PROGRAM_CODE, user=user)
        money = paying.money_for(points, card.program)
        paying.hold_points(card, number, points, money)
        source = paying.payment_source(card, money, total.currency, number)
    order = OrderCreator().place_order(
        basket=basket,
        total=total,
        shipping_method=method,
        shipping_charge=charge,
        user=user,
        shipping_address=address,
        order_number=number,
        date_placed=timezone.now() - timedelta(days=days_ago),
    )
    basket.set_as_submitted()
    if source is not None:
        source.order = order
        source.save()
        paying.capture(order.number)  # done by order_placed already; now also marks the source paid
    return order


def load_orders(program):
    """Place and complete the demo orders not there yet; return how many were made."""
    users = get_user_model().objects
    made = 0
    for number, email, items, days_ago, points in DEMO_ORDERS:
        user = users.get(email=email)
        card = card_of(program, user)
        order = Order.objects.filter(number=number).first()
        if order is not None and order.status == COMPLETE:
            continue
        with transaction.atomic():
            if order is None:
                order = place(number, user, items, days_ago, points)
            order.set_status(COMPLETE)
        # With a Celery worker the posting task may still be queued: post here (idempotent),
        # so the next order already earns at the grade this one reached.
        for accrual_id in Accrual.objects.filter(order_number=number).values_list("pk", flat=True):
            earning.post(accrual_id)
        grades.recalculate(card)
        made += 1
    return made


def grant_order_access():
    """The demo manager completes orders in Oscar's dashboard, which asks for Oscar's order
    permissions besides staff status."""
    group = Group.objects.filter(name=catalogue_data.MANAGER_GROUP).first()
    if group is not None:
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="order", codename__in=["view_order", "change_order"]
            )
        )


def load_loyalty_demo(stdout):
    """Create the loyalty demo data; safe to run again."""
    grant_order_access()
    program = load_program()
    made = load_orders(program)
    if not Card.objects.filter(program=program, phone=phones.normalise(WAITING_PHONE)).exists():
        cards.issue_card(program, phone=WAITING_PHONE)
    stdout.write(f"Loyalty: programme “{program.name}”, {made} demo order(s) placed.")
    for card in Card.objects.filter(program=program).select_related("user", "grade", "account"):
        owner = card.user.email if card.user else f"phone {card.phone}"
        stdout.write(
            f"  card {card.number}: {owner}, {card.grade.name}, {card.account.balance} points"
        )
