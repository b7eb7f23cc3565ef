"""Fed to the new project's ``manage.py shell``: a customer registers, pays part of an order
with points through Oscar's checkout, a manager completes the order. Prints what a shop would
look at, as JSON, for ``test_install_guide`` to check."""

import json
from decimal import Decimal

from django.test import Client
from django.test.utils import setup_test_environment
from oscar.core.loading import get_class, get_model

import oscar_loyalty
from oscar_loyalty import ledger
from oscar_loyalty.models import Accrual, Card, Transfer

Country = get_model("address", "Country")
Order = get_model("order", "Order")
Partner = get_model("partner", "Partner")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
StockRecord = get_model("partner", "StockRecord")
EventHandler = get_class("order.processing", "EventHandler")


def expect(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.content[:2000])
    return response


def text(response):
    return response.content.decode()


setup_test_environment()  # the test client's host "testserver" is allowed
facts = {"package": oscar_loyalty.__file__}

# What Oscar's "Building your own shop" leaves to the shop: a shipping country, a product
# class, a partner and a product with stock (normally made in Oscar's dashboard).
Country.objects.create(
    iso_3166_1_a2="RU",
    iso_3166_1_a3="RUS",
    iso_3166_1_numeric="643",
    printable_name="Russia",
    name="Russian Federation",
    is_shipping_country=True,
)
product = Product.objects.create(
    title="Electric kettle",
    structure="standalone",
    product_class=ProductClass.objects.create(name="Kitchen"),
)
StockRecord.objects.create(
    product=product,
    partner=Partner.objects.create(name="Warehouse"),
    partner_sku="KETTLE-1",
    price=Decimal("1000.00"),
    num_in_stock=5,
)

client = Client()
facts["catalogue_lists_product"] = "Electric kettle" in text(expect(client.get("/catalogue/"), 200))

password = "Kettle-and-tea-2024!"
expect(
    client.post(
        "/accounts/login/",
        {
            "registration-email": "olga@example.com",
            "registration-password1": password,
            "registration-password2": password,
            "registration_submit": "Register",
        },
    ),
    302,
)
card = Card.objects.get(user__email="olga@example.com")
facts["card_grade"] = card.grade.name
# A manager's welcome accrual, as the card's page makes it.
ledger.credit_card(
    card, Decimal("200"), "install-guide:welcome", kind=Transfer.ADJUST, description="Welcome"
)

expect(client.post(f"/basket/add/{product.pk}/", {"quantity": 1}), 302)
expect(client.get("/checkout/", follow=True), 200)
expect(
    client.post(
        "/checkout/shipping-address/",
        {
            "first_name": "Olga",
            "last_name": "Ivanova",
            "line1": "1 Tverskaya street",
            "line4": "Moscow",
            "postcode": "125009",
            "phone_number": "+7 912 345-67-89",
        },
    ),
    302,
)
payment_page = expect(client.get("/checkout/shipping-method/", follow=True), 200)
facts["payment_page"] = payment_page.request["PATH_INFO"]
facts["panel_shown"] = "Pay with bonus points" in text(payment_page)
facts["continue_shown"] = 'id="view_preview"' in text(payment_page)

expect(client.post("/checkout/payment-details/", {"loyalty_action": "apply", "points": "150"}), 302)
preview = expect(client.get("/checkout/preview/"), 200)
facts["preview_says_points"] = "Paid with points: 150" in text(preview)
thank_you = expect(client.post("/checkout/preview/", {"action": "place_order"}, follow=True), 200)
facts["thank_you"] = thank_you.request["PATH_INFO"]

order = Order.objects.get()
card.account.refresh_from_db()
facts["order_status"] = order.status
facts["balance_placed"] = str(card.account.balance)
facts["accrual_placed"] = list(Accrual.objects.values_list("status", "points").get())
facts["sources"] = sorted(
    [s.source_type.name, str(s.amount_allocated)] for s in order.sources.all()
)
facts["payment_events"] = sorted(
    [e.event_type.name, str(e.amount)] for e in order.payment_events.all()
)

# A manager completes the order (what the dashboard's order page does).
EventHandler().handle_order_status_change(order, "Complete")
card.account.refresh_from_db()
facts["balance_complete"] = str(card.account.balance)
facts["accrual_complete"] = list(Accrual.objects.values_list("status", "points").get())
print("FACTS " + json.dumps(facts, default=str))
