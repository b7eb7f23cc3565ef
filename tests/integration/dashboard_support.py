"""Builders shared by the loyalty dashboard tests: managers with or without permissions,
and cards with orders, balances and categories."""

from decimal import Decimal

from django.contrib.auth.models import Permission
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import ledger
from tests import factories

Card = get_model("oscar_loyalty", "Card")

D = Decimal


def make_staff(email="manager@example.com", password="manager", perms=True, **fields):
    """A staff user; ``perms=True`` grants every loyalty permission and viewing customers."""
    user = factories.make_customer(email, password=password, is_staff=True, **fields)
    if perms:
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="oscar_loyalty"),
            Permission.objects.get(content_type__app_label="auth", codename="view_user"),
            Permission.objects.get(content_type__app_label="order", codename="view_order"),
        )
    return user


def logged_in(client, user, password="manager"):
    assert client.login(username=user.email, password=password)
    return client


def card_for(program, email, balance=None, phone="", first_name="", last_name="", **fields):
    customer = factories.make_customer(email, first_name=first_name, last_name=last_name)
    card = factories.make_card(program, user=customer, phone=phone)
    if fields:
        Card.objects.filter(pk=card.pk).update(**fields)
    if balance:
        ledger.credit_card(card, D(balance), f"test:{card.pk}", kind="adjust")
    return factories.refreshed(card)


def page(response):
    """The HTML of a page that answered 200."""
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def url(name, *args):
    return reverse(name, args=args)
