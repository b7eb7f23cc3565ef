"""Every loyalty message renders from the package's template files in English and Russian:
subject, text, HTML and SMS, with the example values the dashboard shows. A Russian message
has no English left in it (a msgid that does not match its template's text stays English),
and an SMS fits in two parts for typical values."""

import math
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.sites.models import Site
from django.test import override_settings
from django.utils import translation
from oscar.core.loading import get_model

from oscar_loyalty import descriptions
from oscar_loyalty.formats import format_points
from oscar_loyalty.notifications import events, examples

CommunicationEventType = get_model("communication", "CommunicationEventType")

NBSP = "\xa0"
CARD = examples.CARD_NUMBER
ORDER = examples.ORDER_NUMBER
SITES = {
    "en": Site(name="Corner shop", domain="shop.example.com"),
    "ru": Site(name="Лавка", domain="shop.example.com"),
}
URL = "http://shop.example.com/accounts/bonus-cards/"  # the sandbox's scheme is http

# What each change says, as ``sending.context`` describes it (typed or a history text).
DESCRIPTIONS = {
    events.POINTS_CREDITED: lambda: descriptions.describe(descriptions.IMPORT_ADD),
    events.POINTS_DEBITED: lambda: descriptions.describe(descriptions.IMPORT_TAKE),
    events.POINTS_RETURNED: lambda: descriptions.describe(descriptions.ORDER_REFUND, ORDER),
    events.POINTS_TAKEN_BACK: lambda: descriptions.describe(descriptions.ORDER_CANCEL, ORDER),
}

SUBJECTS = {
    "en": {
        events.POINTS_EARNED: "150 points for your order 100042",
        events.POINTS_CREDITED: "150 points added to your card",
        events.POINTS_DEBITED: "150 points taken from your card",
        events.POINTS_RETURNED: "150 points returned to your card",
        events.POINTS_TAKEN_BACK: "150 points for order 100042 taken back",
        events.GRADE_CHANGED: "Your card is now Gold",
        events.CARD_ISSUED: "Your Bonus club card",
    },
    "ru": {
        events.POINTS_EARNED: "Начислено баллов за заказ 100042: 150",
        events.POINTS_CREDITED: "На вашу карту начислено баллов: 150",
        events.POINTS_DEBITED: "С вашей карты списано баллов: 150",
        events.POINTS_RETURNED: "На вашу карту возвращено баллов: 150",
        events.POINTS_TAKEN_BACK: "Отозвано баллов за заказ 100042: 150",
        events.GRADE_CHANGED: "Новый грейд вашей карты: Золотой",
        events.CARD_ISSUED: "Ваша карта программы «Бонусный клуб»",
    },
}

# The sentence of the body that tells what happened.
SENTENCES = {
    "en": {
        events.POINTS_EARNED: f"Your order 100042 earned 150 points on your card {CARD}.",
        events.POINTS_CREDITED: f"We have added 150 points to your card {CARD}.",
        events.POINTS_DEBITED: f"We have taken 150 points from your card {CARD}.",
        events.POINTS_RETURNED: f"The 150 points you paid with are back on your card {CARD}.",
        events.POINTS_TAKEN_BACK: (
            f"The 150 points your order 100042 earned are taken back from your card {CARD}."
        ),
        events.GRADE_CHANGED: f"Your card {CARD} has moved from Silver to Gold.",
        events.CARD_ISSUED: f"Welcome to Bonus club! Your card number is {CARD}.",
    },
    "ru": {
        events.POINTS_EARNED: f"За заказ 100042 на вашу карту {CARD} начислено баллов: 150.",
        events.POINTS_CREDITED: f"На вашу карту {CARD} начислено баллов: 150.",
        events.POINTS_DEBITED: f"С вашей карты {CARD} списано баллов: 150.",
        events.POINTS_RETURNED: (
            f"На вашу карту {CARD} вернулись баллы, которыми вы платили: 150."
        ),
        events.POINTS_TAKEN_BACK: (
            f"С вашей карты {CARD} отозваны баллы, начисленные за заказ 100042: 150."
        ),
        events.GRADE_CHANGED: (
            f"Ваша карта {CARD} перешла с грейда «Серебряный» на грейд «Золотой»."
        ),
        events.CARD_ISSUED: (
            f"Добро пожаловать в программу «Бонусный клуб»! Номер вашей карты: {CARD}."
        ),
    },
}

SMS = {
    "en": {
        events.POINTS_EARNED: "+150 points for order 100042. Balance: 1,350.",
        events.POINTS_CREDITED: "+150 points. Points added by the shop. Balance: 1,350.",
        events.POINTS_DEBITED: "-150 points. Points taken by the shop. Balance: 1,350.",
        events.POINTS_RETURNED: (
            "+150 points returned. Order 100042 cancelled: points returned. Balance: 1,350."
        ),
        events.POINTS_TAKEN_BACK: (
            "-150 points for order 100042. Order 100042 cancelled. Balance: 1,350."
        ),
        events.GRADE_CHANGED: f"Your card {CARD} is now Gold.",
        events.CARD_ISSUED: f"Your Bonus club card: {CARD}.",
    },
    "ru": {
        events.POINTS_EARNED: f"За заказ 100042 начислено баллов: 150. Баланс: 1{NBSP}350.",
        events.POINTS_CREDITED: (
            f"Начислено баллов: 150. Баллы начислены магазином. Баланс: 1{NBSP}350."
        ),
        events.POINTS_DEBITED: (
            f"Списано баллов: 150. Баллы списаны магазином. Баланс: 1{NBSP}350."
        ),
        events.POINTS_RETURNED: (
            f"Возвращено баллов: 150. Заказ 100042 отменён: баллы возвращены. Баланс: 1{NBSP}350."
        ),
        events.POINTS_TAKEN_BACK: (
            f"Отозвано баллов за заказ 100042: 150. Заказ 100042 отменён. Баланс: 1{NBSP}350."
        ),
        events.GRADE_CHANGED: f"Новый грейд карты {CARD}: Золотой.",
        events.CARD_ISSUED: f"Ваша карта «Бонусный клуб»: {CARD}.",
    },
}

GREETING = {"en": "Hello Anna Ivanova,", "ru": "Здравствуйте, Анна Иванова!"}
BALANCE = {"en": "Your balance: 1,350 points.", "ru": f"Баллов на вашей карте: 1{NBSP}350."}
FOOTER = {"en": "The Corner shop team", "ru": "Команда сайта Лавка"}
POINT_EVENTS = [
    code for code in events.NAMES if code not in (events.GRADE_CHANGED, events.CARD_ISSUED)
]


def context(code, language, **values):
    """The example values, in ``language``, with the change's description for ``code``."""
    ctx = examples.context(SITES[language])
    if code in DESCRIPTIONS:
        ctx["description"] = DESCRIPTIONS[code]()
    ctx.update(values)
    return ctx


def render(code, language, **values):
    """The four texts of ``code`` from the package's files (an unsaved event type has no
    edited fields, so Oscar falls back to the files)."""
    with translation.override(language):
        return CommunicationEventType(code=code).get_messages(context(code, language, **values))


def visible_text(html):
    """What a reader of the HTML e-mail sees: no styles, tags or entities."""
    html = re.sub(r"(?s)<style.*?</style>", " ", html)
    html = re.sub(r"(?s)<!DOCTYPE.*?>|<[^>]+>", " ", html)
    return re.sub(r"&#?\w+;", " ", html)


def english_words(text):
    """Latin words left in a Russian text, the account page's address aside."""
    return re.findall(r"[A-Za-z]{2,}", re.sub(r"https?://\S+", " ", text))


def sms_parts(text):
    """How many SMS ``text`` takes: GSM-7 160 / 153 a part, UCS-2 (Cyrillic) 70 / 67."""
    single, part = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


def test_the_examples_cover_exactly_the_variables():
    assert set(examples.context(SITES["en"])) == set(events.VARIABLES)
    names = [name for name, _meaning, _example in examples.variables(SITES["en"])]
    assert names == list(events.VARIABLES)


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("code", list(events.NAMES))
def test_every_message_renders(code, language):
    texts = render(code, language)
    html = visible_text(texts["html"])
    assert texts["subject"].strip() == SUBJECTS[language][code]
    for body in (texts["body"], html):
        assert GREETING[language] in body
        assert SENTENCES[language][code] in body
        assert FOOTER[language] in body
    assert URL in texts["body"]
    assert f'href="{URL}"' in texts["html"]
    if code in POINT_EVENTS:
        assert BALANCE[language] in texts["body"]
        assert BALANCE[language] in html
    if code in DESCRIPTIONS:
        with translation.override(language):
            description = DESCRIPTIONS[code]()
        assert description in texts["body"] and description in html
    assert texts["sms"].strip() == SMS[language][code]


@pytest.mark.parametrize("code", list(events.NAMES))
def test_no_english_is_left_in_russian_messages(code):
    texts = render(code, "ru")
    for name, text in [
        ("subject", texts["subject"]),
        ("text", texts["body"]),
        ("html", visible_text(texts["html"])),
        ("sms", texts["sms"]),
    ]:
        assert not english_words(text), (name, english_words(text), text)


@pytest.mark.parametrize("code", list(events.NAMES))
def test_english_messages_are_not_translated(code):
    texts = render(code, "en")
    for text in (texts["subject"], texts["body"], visible_text(texts["html"]), texts["sms"]):
        assert not re.search("[А-Яа-яЁё]", text), text


# Typical large values: a five-figure change and a six-figure balance, a manager's long
# description, a long programme and grade name.
TYPICAL = {
    "amount": Decimal("12345"),
    "balance": Decimal("123456.5"),
    "program": {"en": "Bonus club of the shop", "ru": "Бонусный клуб магазина"},
    "grade": {"en": "Platinum plus", "ru": "Платиновый плюс"},
    "description": {
        "en": "Birthday bonus from the shop, thank you",
        "ru": "Бонус ко дню рождения от магазина, спасибо",
    },
}


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("code", list(events.NAMES))
def test_an_sms_fits_in_two_parts(code, language):
    with translation.override(language):
        values = {
            "amount": format_points(TYPICAL["amount"]),
            "balance": format_points(TYPICAL["balance"]),
            **{name: TYPICAL[name][language] for name in ("program", "grade", "description")},
        }
    text = render(code, language, **values)["sms"].strip()
    assert values["amount"] in text or code in (events.GRADE_CHANGED, events.CARD_ISSUED)
    assert sms_parts(text) <= 2, (len(text), text)


def readme_section():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Messages to customers\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_names_every_event_type_as_the_dashboard_does():
    rows = re.findall(r"^\| `(LOYALTY_\w+)` \| (.+?) \| .+ \|$", readme_section(), re.M)
    with translation.override("en"):
        assert rows == [(code, str(name)) for code, name in events.NAMES.items()]


@override_settings(OSCAR_LOYALTY_MESSAGE_URL_SCHEME="https")
def test_the_readme_lists_every_variable_with_its_example():
    """The README's table is written by hand: it must name ``events.VARIABLES`` and show the
    examples the dashboard shows (English, the site "Example shop", shop.example.com)."""
    rows = re.findall(r"^\| `\{\{ (\w+) \}\}` \| (.+?) \| `(.+?)` \|$", readme_section(), re.M)
    site = Site(name="Example shop", domain="shop.example.com")
    with translation.override("en"):
        assert rows == examples.variables(site)
