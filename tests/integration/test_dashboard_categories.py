"""Customer categories in the dashboard: the three defaults, editing, and putting them on one
customer, on ticked cards and on every customer of the card list's filter."""

import pytest
from django.utils import translation
from oscar.core.loading import get_model

from tests import factories
from tests.integration.dashboard_support import (
    card_for,
    logged_in,
    page,
    url,
)

Category = get_model("oscar_loyalty", "Category")

pytestmark = pytest.mark.django_db


def members(category):
    return set(category.customers.values_list("email", flat=True))


def test_a_new_shop_has_regular_loyal_and_vip():
    names = set(Category.objects.values_list("name", flat=True))
    assert names == {"Regular", "Loyal", "VIP"}


def test_default_names_are_shown_through_the_translation_catalogue(monkeypatch):
    """Stored in English; shown with gettext, so the Russian catalogue names them."""
    regular = Category.objects.get(name="Regular")
    assert str(regular) == "Regular"
    seen = []
    monkeypatch.setattr(
        translation._trans, "gettext", lambda text: seen.append(text) or f"<{text}>"
    )
    assert str(regular) == "<Regular>"
    own = Category.objects.create(name="Wholesale", colour="#000000")
    assert str(own) == "Wholesale" and "Wholesale" not in seen


def test_create_edit_and_delete_a_category(manager_client):
    manager_client.post(url("loyalty-category-create"), {"name": "Wholesale", "colour": "#ff8800"})
    wholesale = Category.objects.get(name="Wholesale")
    assert wholesale.colour == "#ff8800"
    content = page(manager_client.get(url("loyalty-category-list")))
    assert "Wholesale" in content and "background-color: #ff8800" in content

    content = page(
        manager_client.post(
            url("loyalty-category-update", wholesale.pk), {"name": "Wholesale", "colour": "red"}
        )
    )
    assert "Enter a colour like #1f77b4." in content
    manager_client.post(
        url("loyalty-category-update", wholesale.pk), {"name": "Trade", "colour": "#00ff00"}
    )
    assert Category.objects.get(pk=wholesale.pk).name == "Trade"

    customer = factories.make_customer("c@example.com")
    wholesale.customers.add(customer)
    content = page(manager_client.get(url("loyalty-category-delete", wholesale.pk)))
    assert "1 customer has this category" in content
    manager_client.post(url("loyalty-category-delete", wholesale.pk))
    assert not Category.objects.filter(pk=wholesale.pk).exists()
    assert type(customer).objects.filter(pk=customer.pk).exists()


def test_category_names_are_unique(manager_client):
    content = page(
        manager_client.post(url("loyalty-category-create"), {"name": "VIP", "colour": "#000000"})
    )
    assert "already exists" in content


def test_assign_and_remove_on_one_customer_from_the_card_page(manager_client, card):
    vip = Category.objects.get(name="VIP")
    card_page = url("loyalty-card-detail", card.pk)
    target = url("loyalty-customer-categories", card.user_id)
    response = manager_client.post(target, {"category": vip.pk, "action": "add", "next": card_page})
    assert response["Location"] == card_page
    assert members(vip) == {"olga@example.com"}
    assert f"background-color: {vip.colour}" in page(manager_client.get(card_page))

    manager_client.post(target, {"category": vip.pk, "action": "remove", "next": card_page})
    assert members(vip) == set()


def test_customer_page_shows_chips_and_assigns(manager_client, customer):
    loyal = Category.objects.get(name="Loyal")
    detail = url("dashboard:user-detail", customer.pk)
    content = page(manager_client.get(detail))
    assert "loyalty-customer-categories" in content and "No categories" in content
    response = manager_client.post(
        url("loyalty-customer-categories", customer.pk),
        {"category": loyal.pk, "action": "add", "next": detail},
    )
    assert response["Location"] == detail
    assert f"background-color: {loyal.colour}" in page(manager_client.get(detail))


def test_next_must_stay_on_the_site(manager_client, customer):
    loyal = Category.objects.get(name="Loyal")
    response = manager_client.post(
        url("loyalty-customer-categories", customer.pk),
        {"category": loyal.pk, "action": "add", "next": "https://evil.example.com/"},
    )
    assert response["Location"] == url("dashboard:user-detail", customer.pk)


@pytest.fixture
def three(program):
    return [
        card_for(program, "a@example.com", lifetime_spend=500),
        card_for(program, "b@example.com", lifetime_spend=1500),
        card_for(program, "c@example.com", lifetime_spend=5000),
    ]


def test_assign_to_ticked_cards(manager_client, three):
    vip = Category.objects.get(name="VIP")
    response = manager_client.post(
        url("loyalty-card-categories"),
        {
            "category": vip.pk,
            "action": "add",
            "scope": "selected",
            "selected_card": [three[0].pk, three[2].pk],
            "query": "",
        },
    )
    assert response["Location"] == url("loyalty-card-list")
    assert members(vip) == {"a@example.com", "c@example.com"}


def test_ticking_nothing_says_so(manager_client, three):
    vip = Category.objects.get(name="VIP")
    response = manager_client.post(
        url("loyalty-card-categories"),
        {"category": vip.pk, "action": "add", "scope": "selected", "query": ""},
        follow=True,
    )
    assert "Tick the cards" in page(response)
    assert members(vip) == set()


def test_assign_to_all_matching_cards_after_confirming_the_count(manager_client, three):
    vip = Category.objects.get(name="VIP")
    data = {"category": vip.pk, "action": "add", "scope": "matching", "query": "spend_min=1000"}
    content = page(manager_client.post(url("loyalty-card-categories"), data))
    assert "2 customers will get this category" in content
    assert "Completed orders total from RUB1,000.00" in content
    assert members(vip) == set()  # nothing before the confirmation

    response = manager_client.post(url("loyalty-card-categories"), {**data, "confirmed": "1"})
    assert response["Location"] == url("loyalty-card-list") + "?spend_min=1000"
    assert members(vip) == {"b@example.com", "c@example.com"}

    remove = {**data, "action": "remove", "query": "", "confirmed": "1"}
    manager_client.post(url("loyalty-card-categories"), remove)
    assert members(vip) == set()


def test_a_broken_filter_never_means_everyone(manager_client, three):
    vip = Category.objects.get(name="VIP")
    data = {"category": vip.pk, "action": "add", "scope": "matching"}
    data |= {"query": "spend_min=lots", "confirmed": "1"}
    manager_client.post(url("loyalty-card-categories"), data)
    assert members(vip) == set()


def test_bulk_category_needs_the_permission(client, three, card_viewer):
    logged_in(client, card_viewer)
    vip = Category.objects.get(name="VIP")
    data = {"category": vip.pk, "action": "add", "scope": "selected"}
    response = client.post(url("loyalty-card-categories"), {**data, "selected_card": three[0].pk})
    assert response.status_code == 403
    assert members(vip) == set()


@pytest.mark.parametrize("name, russian", [("Regular", "Постоянный"), ("Loyal", "Лояльный")])
def test_russian_shows_the_default_names_translated(name, russian):
    with translation.override("ru"):
        shown = str(Category.objects.get(name=name))
    assert shown == russian, (
        f"category {name!r} is shown in Russian as {shown!r} instead of {russian!r}: its msgstr "
        "in oscar_loyalty/locale/ru/LC_MESSAGES/django.po is missing or fuzzy, or django.mo "
        "was not compiled from it (msgfmt --check-format -o django.mo django.po)"
    )


def test_oscar_customer_list_shows_category_chips_with_one_query_per_page(manager_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    vip, loyal = Category.objects.get(name="VIP"), Category.objects.get(name="Loyal")
    anna = factories.make_customer("anna@example.com")
    boris = factories.make_customer("boris@example.com")
    vip.customers.add(anna)
    loyal.customers.add(anna, boris)

    with CaptureQueriesContext(connection) as few:
        content = page(manager_client.get(reverse("dashboard:users-index")))
    rows = content.split("<tbody")[1]
    anna_row = next(r for r in rows.split("<tr") if "anna@example.com" in r)
    boris_row = next(r for r in rows.split("<tr") if "boris@example.com" in r)
    assert "VIP" in anna_row and "Loyal" in anna_row
    assert "Loyal" in boris_row and "VIP" not in boris_row
    assert f"?category={vip.pk}" in anna_row  # a chip leads to that category's cards

    for n in range(10):
        loyal.customers.add(factories.make_customer(f"more{n}@example.com"))
    with CaptureQueriesContext(connection) as many:
        page(manager_client.get(reverse("dashboard:users-index")))
    category_queries = [
        q for q in many.captured_queries if "oscar_loyalty_category_customers" in q["sql"]
    ]
    assert len(category_queries) == 1
    assert len(many.captured_queries) == len(few.captured_queries)
