"""The sandbox shop works end to end: catalogue, checkout, dashboard and demo data."""

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.urls import reverse
from oscar.core.loading import get_model

from sandbox.demo import catalogue_data
from tests.integration.checkout_support import load_demo

Order = get_model("order", "Order")
Product = get_model("catalogue", "Product")

KETTLE = catalogue_data.PRODUCTS[0]

pytestmark = pytest.mark.django_db


def test_homepage_renders(client, demo):
    response = client.get("/", follow=True)
    assert response.status_code == 200
    product = Product.objects.get(upc=KETTLE.upc)
    assert product.get_absolute_url() in response.content.decode()


def test_product_page_renders(client, demo):
    product = Product.objects.get(upc=KETTLE.upc)
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    content = response.content.decode()
    assert KETTLE.title in content
    assert "3,200.00" in content


def test_customer_checks_out_to_thank_you_page(client, demo):
    customer = get_user_model().objects.get(email="anna@example.com")
    client.force_login(customer)
    product = Product.objects.get(upc=KETTLE.upc)

    response = client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": 2})
    assert response.status_code == 302

    response = client.get(reverse("checkout:index"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("checkout:shipping-address")

    address = customer.addresses.get()
    response = client.post(
        reverse("checkout:shipping-address"),
        {"action": "ship_to", "address_id": address.pk},
        follow=True,
    )
    # One (free) shipping method and no payment method to choose: straight to payment details.
    assert response.redirect_chain[-1][0] == reverse("checkout:payment-details")
    assert response.status_code == 200

    response = client.post(reverse("checkout:preview"), {"action": "place_order"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("checkout:thank-you")
    assert response.status_code == 200

    order = response.context["order"]
    assert order.user == customer
    assert order.status == "Pending"
    assert order.total_incl_tax == 2 * product.stockrecords.get().price
    assert order.number in response.content.decode()


def test_manager_sees_the_loyalty_dashboard_menu(client, demo):
    client.login(username="manager@example.com", password="manager")
    response = client.get(reverse("dashboard:index"))
    assert response.status_code == 200
    assert reverse("loyalty-card-list") in response.content.decode()
    assert client.get(reverse("dashboard:order-list")).status_code == 200


def test_load_demo_is_idempotent():
    def counts():
        return {
            model._meta.label: model._default_manager.count()
            for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy
        }

    output = load_demo()
    first = counts()
    load_demo()
    assert counts() == first
    assert first["catalogue.Product"] == len(catalogue_data.PRODUCTS)
    assert "manager@example.com" in output
