"""A manager's daily actions on the card page: changing a phone, replacing a lost card,
blocking, a grade back to automatic, and the small things the screens must get right."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from oscar.core.loading import get_model
from oscar.templatetags.currency_filters import currency

from oscar_loyalty import audit, cards, grades, ledger, paying
from oscar_loyalty.exceptions import CardUnavailable
from tests import factories
from tests.integration.dashboard_support import card_for, logged_in, make_staff, url

Accrual = get_model("oscar_loyalty", "Accrual")
Card = get_model("oscar_loyalty", "Card")
GradeChange = get_model("oscar_loyalty", "GradeChange")
Hold = get_model("oscar_loyalty", "Hold")
Job = get_model("oscar_loyalty", "Job")
PhoneChange = get_model("oscar_loyalty", "PhoneChange")
StatusChange = get_model("oscar_loyalty", "StatusChange")
Transfer = get_model("oscar_loyalty", "Transfer")
UserAddress = get_model("address", "UserAddress")

D = Decimal

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager():
    return make_staff(first_name="Maria", last_name="Ivanova")


def page(response):
    assert response.status_code == 200, response.status_code
    return " ".join(response.content.decode().split())


def valid_number(body):
    return body + cards.check_digit(body)


# --- permissions of the new actions --------------------------------------------------------

ACTIONS = [
    ("loyalty-card-phone", {"phone": "+7 916 111 22 33"}),
    ("loyalty-card-replace", {"number": "", "reason": "Lost"}),
]


@pytest.mark.parametrize("name, data", ACTIONS)
def test_card_actions_need_staff_with_permission_and_post(
    client, card, name, data, staff_without_permission, card_viewer
):
    target = url(name, card.pk)
    response = client.post(target, data)
    assert response.status_code == 302 and "/login/" in response["Location"]
    logged_in(client, staff_without_permission)
    assert client.post(target, data).status_code == 403
    logged_in(client, card_viewer)
    assert client.post(target, data).status_code == 403
    logged_in(client, make_staff())
    assert client.get(target).status_code == 405  # a GET changes nothing
    assert Card.objects.count() == 1 and not PhoneChange.objects.exists()
    assert factories.refreshed(card).status == Card.ACTIVE


# --- phone ---------------------------------------------------------------------------------


def test_manager_changes_the_phone_and_the_card_page_says_who_from_what_to_what(
    manager_client, program
):
    card = card_for(program, "olga@example.com", phone="+7 912 345-67-89")
    response = manager_client.post(
        url("loyalty-card-phone", card.pk), {"phone": "8 (916) 111-22-33"}
    )
    assert response.status_code == 302
    assert Card.objects.get(pk=card.pk).phone == "79161112233"
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "The phone of card" in content and "+7 916 111-22-33" in content
    changes = content[content.index("Phone changes") :]
    assert "+7 912 345-67-89" in changes and "+7 916 111-22-33" in changes
    assert "Maria Ivanova" in changes


def test_a_phone_of_another_card_is_refused_naming_that_card(manager_client, program):
    card = card_for(program, "olga@example.com", phone="+7 912 345-67-89")
    other = factories.make_card(program, phone="+7 916 111-22-33")
    content = page(
        manager_client.post(url("loyalty-card-phone", card.pk), {"phone": "89161112233"})
    )
    assert f"The phone +7 916 111-22-33 already has the card {other.number}" in content
    assert Card.objects.get(pk=card.pk).phone == "79123456789"
    assert not PhoneChange.objects.exists()


@pytest.mark.parametrize(
    "phone, message", [("12", "is not a valid phone number"), ("", "needs a phone")]
)
def test_a_wrong_phone_is_refused_with_the_reason(manager_client, program, phone, message):
    card = factories.make_card(program, phone="+7 912 345-67-89")  # no customer yet
    content = page(manager_client.post(url("loyalty-card-phone", card.pk), {"phone": phone}))
    assert message in content
    assert Card.objects.get(pk=card.pk).phone == "79123456789"


def _address(user, phone):
    country = factories.shipping_address(phone).country
    return UserAddress.objects.create(
        user=user,
        first_name="Olga",
        line1="Lenina 1",
        line4="Perm",
        postcode="614000",
        country=country,
        phone_number=phone,
    )


def test_card_list_finds_a_customer_by_the_phone_of_an_address_or_an_order(manager_client, program):
    by_address = card_for(program, "address@example.com")
    _address(by_address.user, "+79161112233")
    by_order = card_for(program, "order@example.com")
    factories.place_order(
        by_order.user, [(factories.make_product("10.00"), 1)], phone="+79035550011"
    )
    stranger = card_for(program, "stranger@example.com")
    content = page(manager_client.get(url("loyalty-card-list"), {"q": "8 916 111-22-33"}))
    assert by_address.number in content and stranger.number not in content
    content = page(manager_client.get(url("loyalty-card-list"), {"q": "+7 903 555 00 11"}))
    assert by_order.number in content and by_address.number not in content


def test_a_phone_search_needs_the_same_queries_for_any_number_of_matches(manager_client, program):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            page(manager_client.get(url("loyalty-card-list"), {"q": "+79161112233"}))
        return len(captured)

    _address(card_for(program, "first@example.com").user, "+79161112233")
    one = queries()
    for n in range(5):
        _address(card_for(program, f"more{n}@example.com").user, "+79161112233")
    assert queries() == one


# --- replacing a lost card -----------------------------------------------------------------


@pytest.fixture
def lost(program):
    """Olga's card with 500 points, a manual Gold grade, an order pending and a checkout hold."""
    card = card_for(program, "olga@example.com", balance="500", phone="+7 912 345-67-89")
    grades.set_grade(card, factories.grade(program, "Gold"), by=None, reason="VIP")
    order = factories.place_order(card.user, [(factories.make_product("1000.00"), 1)])
    paying.hold_points(card, "WEB-1", D("100"), D("100"))
    return factories.refreshed(card), order


def test_replace_a_lost_card_moves_everything_to_the_new_number(manager_client, lost, manager):
    old, order = lost
    number = valid_number("400000123456")
    response = manager_client.post(
        url("loyalty-card-replace", old.pk), {"number": number, "reason": "Lost in the metro"}
    )
    new = Card.objects.get(number=number)
    assert response["Location"] == url("loyalty-card-detail", new.pk)
    old, new = factories.refreshed(old), factories.refreshed(new)
    customer = get_model("auth", "User").objects.get(email="olga@example.com")
    assert (new.user, new.phone, new.grade.name, new.grade_is_manual) == (
        customer,
        "79123456789",
        "Gold",
        True,
    )
    assert (new.balance, old.balance) == (D("400.00"), D("0.00"))  # 100 are held
    assert old.status == Card.CLOSED and old.replaced_by == new
    closing = StatusChange.objects.get(card=old, new_status=Card.CLOSED)
    assert (closing.reason, closing.created_by) == ("Lost in the metro", manager)
    assert set(Accrual.objects.values_list("card", flat=True)) == {new.pk}
    assert Hold.objects.get(order_number="WEB-1").card == new
    assert audit.audit() == []
    # The order completes after the replacement: its points go to the new card.
    factories.set_status(order, "Complete")
    assert factories.refreshed(new).balance == D("470.00")  # Gold earns 7% of 1000
    # The pages link to each other; the old one shows the points leaving it.
    old_page = page(manager_client.get(url("loyalty-card-detail", old.pk)))
    assert url("loyalty-card-detail", new.pk) in old_page and "was replaced by" in old_page
    assert f"to the card {number}" in old_page and "-400</td>" in old_page
    new_page = page(manager_client.get(url("loyalty-card-detail", new.pk)))
    assert url("loyalty-card-detail", old.pk) in new_page and "This card replaces" in new_page
    assert f"from the card {old.number}" in new_page
    # The customer's history says what happened, in the customer's language.
    moved = ledger.history(new, customer_view=True).get(kind="move")
    assert moved.label == "Card replaced: the balance moved to the new card"
    with translation.override("ru"):
        assert moved.label == "Карта заменена: баланс перенесён на новую карту"


def test_the_old_number_refuses_any_use(manager_client, lost):
    old, _order = lost
    manager_client.post(url("loyalty-card-replace", old.pk), {"number": "", "reason": "Lost"})
    old = factories.refreshed(old)
    with pytest.raises(CardUnavailable):
        paying.hold_points(old, "WEB-2", D("1"), D("1"))
    with pytest.raises(CardUnavailable):
        cards.adjust(old, "5", "test:old")
    content = page(manager_client.get(url("loyalty-card-detail", old.pk)))
    assert "replace_form" not in content and "adjust_form" not in content


def test_a_replacement_sent_twice_replaces_once(manager_client, lost):
    old, _order = lost
    data = {"number": "", "reason": "Lost"}
    first = manager_client.post(url("loyalty-card-replace", old.pk), data)
    second = manager_client.post(url("loyalty-card-replace", old.pk), data)
    assert first["Location"] == second["Location"]
    assert Card.objects.count() == 2
    assert Transfer.objects.filter(kind=Transfer.MOVE).count() == 1
    assert factories.refreshed(Card.objects.get(replaces=old)).balance == D("400.00")


def test_the_debt_moves_with_the_card(manager_client, program):
    old = card_for(program, "olga@example.com", balance="100")
    ledger.debit_card(old, D("90"), "test:spend")
    ledger.take_back(old, D("40"), "test:refund")
    assert factories.refreshed(old).debt == D("30.00")
    manager_client.post(url("loyalty-card-replace", old.pk), {"number": "", "reason": "Lost"})
    new = factories.refreshed(Card.objects.get(replaces=old))
    assert (new.debt, factories.refreshed(old).debt) == (D("30.00"), D("0.00"))
    ledger.credit_card(new, D("50"), "test:later")
    assert (factories.refreshed(new).balance, factories.refreshed(new).debt) == (D("20.00"), 0)
    assert audit.audit() == []


@pytest.mark.parametrize(
    "number, message",
    [("4000001235", "check digit does not match"), ("taken", "is already taken")],
)
def test_a_wrong_new_number_changes_nothing(manager_client, lost, program, number, message):
    old, _order = lost
    if number == "taken":
        number = factories.make_card(program, phone="+79035550011").number
    content = page(
        manager_client.post(
            url("loyalty-card-replace", old.pk), {"number": number, "reason": "Lost"}
        )
    )
    assert message in content
    old = factories.refreshed(old)
    assert (old.status, old.balance, old.user.email) == (
        Card.ACTIVE,
        D("400.00"),
        "olga@example.com",
    )
    assert not Transfer.objects.filter(kind=Transfer.MOVE).exists()


# --- blocking ------------------------------------------------------------------------------


def test_a_blocked_card_takes_no_manual_accrual_but_a_debit(manager_client, program):
    card = card_for(program, "olga@example.com", balance="50")
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "neither earn nor spend; a manager can still debit it" in content  # the Block button
    cards.block(card, reason="fraud?")
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert 'value="accrue"' not in content and 'value="debit"' in content
    assert "it earns nothing, so points can only be debited" in content
    data = {"direction": "accrue", "amount": "5", "description": "Fix", "token": "b"}
    content = page(manager_client.post(url("loyalty-card-adjust", card.pk), data))
    assert f"The card {card.number} is blocked" in content
    assert factories.refreshed(card).balance == D("50.00")
    debit = {**data, "direction": "debit", "token": "c"}
    assert manager_client.post(url("loyalty-card-adjust", card.pk), debit).status_code == 302
    assert factories.refreshed(card).balance == D("45.00")


# --- back to automatic ---------------------------------------------------------------------


def test_back_to_automatic_recomputes_the_grade_even_downwards(manager_client, card, program):
    gold = factories.grade(program, "Gold")
    order = factories.place_order(card.user, [(factories.make_product("12000.00"), 1)])
    factories.set_status(order, "Complete")
    assert factories.refreshed(card).grade.name == "Silver"
    manager_client.post(
        url("loyalty-card-grade", card.pk), {"grade": str(gold.pk), "reason": "VIP"}
    )
    manager_client.post(url("loyalty-card-grade", card.pk), {"grade": "auto", "reason": "VIP over"})
    card = factories.refreshed(card)
    assert (card.grade.name, card.grade_is_manual) == ("Silver", False)
    change = GradeChange.objects.filter(card=card).first()
    assert (change.old_grade.name, change.new_grade.name, change.reason) == (
        "Gold",
        "Silver",
        "VIP over",
    )
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "<td>Gold</td> <td>Silver</td> <td>VIP over</td>" in content


# --- small ones ----------------------------------------------------------------------------


def test_detail_pages_keep_loyalty_in_the_breadcrumbs(manager_client, card, manager):
    job = Job.objects.create(kind=Job.MASS_ACCRUAL, created_by=manager)
    for target in (
        url("loyalty-card-detail", card.pk),
        url("loyalty-program-update", card.program_id),
        url("loyalty-grade-update", card.grade_id),
        url("loyalty-job-detail", job.pk),
        url("loyalty-card-create"),
    ):
        content = page(manager_client.get(target))
        crumbs = content[content.index('class="breadcrumb"') :]
        assert '<li class="breadcrumb-item">Loyalty</li>' in crumbs, target


def test_the_job_list_names_the_manager_as_the_job_page_does(manager_client, manager):
    job = Job.objects.create(kind=Job.MASS_ACCRUAL, created_by=manager)
    assert "Maria Ivanova" in page(manager_client.get(url("loyalty-job-detail", job.pk)))
    listing = page(manager_client.get(url("loyalty-job-list")))
    assert "Maria Ivanova" in listing and manager.email not in listing


def test_issuing_to_a_phone_that_had_a_card_says_it_was_found(manager_client, program, customer):
    phone_card = factories.make_card(program, phone="+7 916 000 11 22")
    response = manager_client.post(
        url("loyalty-card-create"),
        {"program": program.pk, "email": customer.email, "phone": "89160001122"},
        follow=True,
    )
    content = page(response)
    assert f"The phone had the card {phone_card.number} already" in content
    assert "issued to" not in content
    assert Card.objects.get().user == customer


def test_the_grade_discount_is_shown_in_the_readers_language(manager_client, program):
    silver, gold = factories.grade(program, "Silver"), factories.grade(program, "Gold")
    type(silver).objects.filter(pk=silver.pk).update(discount_type="percent", discount_value=5)
    type(gold).objects.filter(pk=gold.pk).update(discount_type="amount", discount_value=500)
    manager_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    content = page(manager_client.get(url("loyalty-program-update", program.pk)))
    with translation.override("ru"):
        money = " ".join(currency(D("500")).split())
    assert money in content and "5%" in content
    assert 'title="проценты"' in content and "money" not in content
