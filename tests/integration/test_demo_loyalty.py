"""The sandbox's loyalty demo: what it leaves, that it loads once, and the whole "done" story.

anna places an order, sees its pending points, the manager completes it in Oscar's
dashboard, and anna sees the points available and her grade moved up.
"""

import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import grades
from oscar_loyalty.audit import audit
from oscar_loyalty.notifications import sending
from sandbox.demo import catalogue_data, loyalty_data
from tests.integration.checkout_support import load_demo

Card = get_model("oscar_loyalty", "Card")
Transfer = get_model("oscar_loyalty", "Transfer")
Accrual = get_model("oscar_loyalty", "Accrual")
Order = get_model("order", "Order")
Product = get_model("catalogue", "Product")

D = Decimal
pytestmark = pytest.mark.django_db
PAGE = "/accounts/bonus-cards/"


@pytest.fixture
def demo():
    """The demo shop without its search index (what ``load_demo`` does, minus Whoosh)."""
    catalogue_data.load_site()
    catalogue_data.load_countries()
    catalogue_data.load_catalogue()
    catalogue_data.load_users()
    out = io.StringIO()
    loyalty_data.load_loyalty_demo(out)
    return out.getvalue()


def card_of(email):
    return Card.objects.select_related("grade", "account", "debt_account").get(
        program__code="bonus", user__email=email
    )


def page_text(client):
    content = client.get(PAGE).content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", content).split())


def test_anna_is_silver_one_order_short_of_gold(demo):
    anna = card_of("anna@example.com")
    assert anna.program.name == "Бонусная программа"
    assert [g.name for g in anna.program.grades.order_by("spend_from")] == [
        "Базовый",
        "Серебряный",
        "Золотой",
    ]
    assert (anna.grade.name, anna.lifetime_spend) == ("Серебряный", D("28050.00"))
    assert grades.next_grade(anna)[1] == D("1950.00")
    assert anna.balance == D("1197.00")  # 305 at 3%, then 413 and 479 at 5%
    orders = Order.objects.filter(user=anna.user)
    assert {o.status for o in orders} == {"Complete"} and orders.count() == 3
    kettle = Product.objects.get(upc=loyalty_data.KETTLE).stockrecords.get().price
    assert kettle > D("1950")  # the kettle alone moves her up


def test_boris_has_spent_some_points_on_an_order(demo):
    boris = card_of("boris@example.com")
    assert (boris.grade.name, boris.balance) == ("Базовый", D("120.00"))
    paid = Transfer.objects.get(card=boris, kind=Transfer.CAPTURE)
    assert (paid.amount, paid.order_number) == (D("100.00"), "900012")
    order = Order.objects.get(number="900012")
    source = order.sources.get()
    assert (source.source_type.name, source.amount_debited) == ("Bonus points", D("100.00"))
    # The 100 ₽ paid with points earned nothing: 3% of 2690, not of 2790.
    assert Accrual.objects.get(order_number="900012").points == D("80.00")


def test_anna_agreed_to_messages_and_has_them_in_her_inbox_boris_did_not(demo):
    anna, boris = card_of("anna@example.com"), card_of("boris@example.com")
    assert (anna.marketing_consent, boris.marketing_consent) == (True, False)
    queued = get_model("oscar_loyalty", "Message").objects.values_list("pk", flat=True)
    sending.send(list(queued))  # what the task queued after each commit does
    inbox = get_model("communication", "Notification").objects
    subjects = set(inbox.filter(recipient=anna.user).values_list("subject", flat=True))
    assert subjects == {
        "Your Бонусная программа card",
        "305 points for your order 900001",
        "Your card is now Серебряный",
        "413 points for your order 900002",
        "479 points for your order 900003",
    }
    assert not inbox.filter(recipient=boris.user).exists()


def test_a_card_waits_for_a_phone_that_is_not_a_customer(demo):
    waiting = Card.objects.get(program__code="bonus", user__isnull=True)
    assert waiting.phone == "79031112233"
    customers = {a.phone_number.as_e164 for a in get_model("address", "UserAddress").objects.all()}
    assert "+79031112233" not in customers


def test_the_demo_ledger_is_sound_and_the_command_says_what_it_made(demo):
    assert audit() == []
    anna = card_of("anna@example.com")
    assert f"card {anna.number}: anna@example.com, Серебряный, 1197.00 points" in demo
    assert "phone 79031112233" in demo


def test_loading_the_demo_again_changes_nothing():
    def state():
        return {
            "cards": list(
                Card.objects.order_by("pk").values_list(
                    "pk", "number", "user_id", "grade_id", "lifetime_spend", "account__balance"
                )
            ),
            "transfers": list(Transfer.objects.order_by("pk").values_list("key", "amount")),
            "accruals": list(Accrual.objects.order_by("pk").values_list("pk", "status")),
            "orders": list(Order.objects.order_by("pk").values_list("number", "status")),
        }

    load_demo()
    before = state()
    output = load_demo()
    assert state() == before
    assert "0 demo order(s) placed" in output


def test_anna_orders_sees_pending_points_manager_completes_and_she_moves_up(demo):
    anna_user = get_user_model().objects.get(email="anna@example.com")
    anna = Client()
    anna.force_login(anna_user)
    kettle = Product.objects.get(upc=catalogue_data.PRODUCTS[0].upc)

    # anna checks out the kettle the way the shop's pages do.
    anna.post(reverse("basket:add", kwargs={"pk": kettle.pk}), {"quantity": 1})
    anna.get(reverse("checkout:index"), follow=True)
    anna.post(
        reverse("checkout:shipping-address"),
        {"action": "ship_to", "address_id": anna_user.addresses.get().pk},
        follow=True,
    )
    anna.get(reverse("checkout:payment-details"), follow=True)
    response = anna.post(reverse("checkout:preview"), {"action": "place_order"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("checkout:thank-you")
    order = Order.objects.filter(user=anna_user).exclude(number__startswith="9000").get()

    text = page_text(anna)
    assert f"160 points for order {order.number}: available once the order is complete" in text
    assert "Balance 1,197 points" in text
    assert "Серебряный" in text

    # The manager completes the order in Oscar's dashboard.
    manager = Client()
    assert manager.login(username="manager@example.com", password="manager")
    url = reverse("dashboard:order-detail", kwargs={"number": order.number})
    assert manager.get(url).status_code == 200
    # The request "commits", so the posting task queued on commit runs (Celery is eager).
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = manager.post(
            url, {"order_action": "change_order_status", "new_status": "Complete"}, follow=True
        )
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "Complete"

    text = page_text(anna)
    assert "Balance 1,357 points" in text
    assert f"Points for order {order.number}" in text
    assert "Grade Золотой" in text
    assert "Your purchases RUB31,250.00" in text
    assert card_of("anna@example.com").grade_changes.first().new_grade.name == "Золотой"
    assert audit() == []
