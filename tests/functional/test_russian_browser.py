"""The customer's side in Russian in a real browser: the card page, checkout with points, the
preview, the confirmation and the order page. Each page fails the test if it shows a number
with a decimal point (Russian writes a comma) or a sentence of the package left in English."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from oscar.core.loading import get_model

import oscar_loyalty
from tests.functional.test_checkout_browser import log_in
from tests.integration.checkout_support import KETTLE, customer, product
from tests.locale_support import decimal_points

Order = get_model("order", "Order")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CATALOGUE = Path(oscar_loyalty.__file__).parent / "locale/ru/LC_MESSAGES/django.po"
# What varies inside a message: %(name)s, %s, {{ name }}, %% and markup.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\{.*?\}\}|%%|<[^>]+>")
WORD = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?")


def english_phrases():
    """The English fixed parts (3 words or more) of every message of the package's catalogue:
    if one shows on a Russian page, a string escaped translation (or has none yet)."""
    with CATALOGUE.open("rb") as file:
        catalogue = read_po(file, locale="ru")
    phrases = set()
    for message in catalogue:
        if not message.id:
            continue  # the catalogue's header
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            for part in PLACEHOLDER.split(text):
                part = " ".join(part.split()).strip(" .,:;()«»“”—-")
                if len(WORD.findall(part)) >= 3 and part.isascii():
                    phrases.add(part)
    return sorted(phrases, key=len, reverse=True)


PHRASES = english_phrases()


def check_russian(page, where):
    """The visible text of ``page`` has no decimal point and no English of the package."""
    text = re.sub(r"[ \t\r\n]+", " ", page.inner_text("body"))  # keeps no-break spaces
    assert page.get_attribute("html", "lang") == "ru", f"{where}: the page is not in Russian"
    assert decimal_points(text) == [], f"{where}: decimal point in {text}"
    left = [phrase for phrase in PHRASES if phrase in text]
    assert left == [], f"{where}: untranslated {left} in {text}"
    return text


def test_the_catalogue_gives_phrases_to_look_for():
    assert "Not enough points" in PHRASES
    assert "Paid with points" in PHRASES


def test_customer_walks_checkout_in_russian(new_page, live_server, demo):
    page = new_page("ru-RU")
    log_in(page, live_server, "anna@example.com", "anna")

    page.goto(f"{live_server.url}/accounts/bonus-cards/")
    check_russian(page, "card page")

    page.goto(live_server.url + product(KETTLE).get_absolute_url())
    page.click("#add_to_basket_form button[type=submit]")
    page.goto(f"{live_server.url}/basket/")
    check_russian(page, "basket")

    page.goto(f"{live_server.url}/checkout/")
    page.click("button.ship-address")
    page.wait_for_url(re.compile(r"/checkout/payment-details/$"))
    check_russian(page, "payment step")

    page.fill("#id_points", "1500,5")  # more than points may pay: a message with numbers
    page.click("#loyalty-apply")
    check_russian(page, "refused points")

    page.fill("#id_points", "500")
    page.click("#loyalty-apply")
    text = check_russian(page, "points applied")
    assert "2\xa0700,00\xa0₽" in text

    page.click("#view_preview")
    page.wait_for_url(re.compile(r"/checkout/preview/$"))
    text = check_russian(page, "preview")
    assert "Оплата баллами: 500 (500,00\xa0₽)" in text

    page.click("#place-order")
    page.wait_for_url(re.compile(r"/checkout/thank-you/$"))
    check_russian(page, "confirmation")

    order = Order.objects.get(user=customer(), number__startswith="1")
    page.goto(f"{live_server.url}/accounts/orders/{order.number}/")
    check_russian(page, "order page")

    page.goto(f"{live_server.url}/accounts/bonus-cards/")
    check_russian(page, "card page after the order")
