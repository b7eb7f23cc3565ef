"""The manager dashboard: permissions, CSRF, the card list, the card page and its actions,
issuing cards, programmes and grades."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import cards, grades, ledger
from tests import factories
from tests.integration.dashboard_support import (
    card_for,
    logged_in,
    make_staff,
    page,
    url,
)

Card = get_model("oscar_loyalty", "Card")
Grade = get_model("oscar_loyalty", "Grade")
GradeChange = get_model("oscar_loyalty", "GradeChange")
Program = get_model("oscar_loyalty", "Program")
StatusChange = get_model("oscar_loyalty", "StatusChange")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal

pytestmark = pytest.mark.django_db


# --- permissions and CSRF ------------------------------------------------------------------

GET_PAGES = [
    ("loyalty-program-list", False),
    ("loyalty-program-create", False),
    ("loyalty-program-update", "program"),
    ("loyalty-grade-create", "program"),
    ("loyalty-grade-update", "grade"),
    ("loyalty-grade-delete", "grade"),
    ("loyalty-card-list", False),
    ("loyalty-card-create", False),
    ("loyalty-card-detail", "card"),
    ("loyalty-mass-accrual", False),
    ("loyalty-mass-debit", False),
    ("loyalty-category-list", False),
    ("loyalty-category-create", False),
    ("loyalty-category-update", "category"),
    ("loyalty-category-delete", "category"),
    ("loyalty-job-list", False),
]


def page_url(name, arg, card):
    from oscar_loyalty.models import Category

    objects = {
        "program": card.program_id,
        "grade": card.grade_id,
        "card": card.pk,
        "category": Category.objects.first().pk,
    }
    return url(name, objects[arg]) if arg else url(name)


@pytest.mark.parametrize("name, arg", GET_PAGES)
def test_every_page_needs_its_model_permission(
    client, card, name, arg, staff_without_permission, manager
):
    target = page_url(name, arg, card)
    # Anonymous: to the dashboard's login page.
    response = client.get(target)
    assert response.status_code == 302 and "/login/" in response["Location"]
    # Staff without the loyalty permissions: forbidden.
    logged_in(client, staff_without_permission)
    assert client.get(target).status_code == 403
    client.logout()
    # A manager: the page.
    logged_in(client, manager)
    assert client.get(target).status_code == 200


def test_a_customer_with_permissions_but_not_staff_is_refused(client, card):
    user = make_staff("notstaff@example.com")
    user.is_staff = False
    user.save()
    logged_in(client, user)
    assert client.get(url("loyalty-card-detail", card.pk)).status_code == 403


def test_viewing_is_not_changing(client, card, card_viewer):
    """A manager who may only look at cards sees them but cannot accrue or block."""
    logged_in(client, card_viewer)
    content = page(client.get(url("loyalty-card-detail", card.pk)))
    assert "adjust_form" not in content and "status_block_form" not in content
    response = client.post(
        url("loyalty-card-adjust", card.pk),
        {"direction": "accrue", "amount": "10", "description": "x", "token": "t1"},
    )
    assert response.status_code == 403
    assert not Transfer.objects.filter(card=card).exists()


def test_posts_need_the_csrf_token(card, manager):
    browser = Client(enforce_csrf_checks=True)
    logged_in(browser, manager)
    data = {"direction": "accrue", "amount": "10", "description": "Gift", "token": "abc"}
    assert browser.post(url("loyalty-card-adjust", card.pk), data).status_code == 403
    assert not Transfer.objects.filter(card=card).exists()

    form_page = browser.get(url("loyalty-card-detail", card.pk))
    token = form_page.cookies["csrftoken"].value
    response = browser.post(
        url("loyalty-card-adjust", card.pk), {**data, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert factories.refreshed(card).account.balance == D("10.00")


# --- the card list -------------------------------------------------------------------------


@pytest.fixture
def crowd(program):
    """Cards that differ in everything the list filters on."""
    silver, gold = factories.grade(program, "Silver"), factories.grade(program, "Gold")
    now = timezone.now()
    return {
        "olga": card_for(
            program,
            "olga@example.com",
            balance="500",
            phone="+7 912 345-67-89",
            first_name="Olga",
            last_name="Smirnova",
            lifetime_spend=D("1500"),
            last_order_at=now - timedelta(days=3),
        ),
        "ivan": card_for(
            program,
            "ivan@example.com",
            balance="50",
            first_name="Ivan",
            last_name="Petrov",
            lifetime_spend=D("6999"),
            last_order_at=now - timedelta(days=40),
            grade=silver,
        ),
        "rich": card_for(
            program,
            "rich@example.com",
            balance="9000",
            first_name="Pavel",
            last_name="Bogatov",
            lifetime_spend=D("45000"),
            grade=gold,
        ),
        "phone": factories.make_card(program, phone="8 903 000-11-22"),
    }


def listed(client, **query):
    content = page(client.get(url("loyalty-card-list"), query))
    return content


def numbers_in(content, crowd):
    return {name for name, card in crowd.items() if card.number in content}


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, {"olga", "ivan", "rich", "phone"}),
        ({"q": "89123456789"}, {"olga"}),  # phone, Russian trunk prefix
        ({"q": "+7 (912) 345 67 89"}, {"olga"}),
        ({"q": "IVAN@example.com"}, {"ivan"}),
        ({"q": "smirnova"}, {"olga"}),
        ({"q": "pavel bogatov"}, {"rich"}),
        ({"status": "blocked"}, set()),
        ({"balance_min": "100", "balance_max": "1000"}, {"olga"}),
        ({"spend_min": "1000", "spend_max": "7000"}, {"olga", "ivan"}),
        ({"spend_min": "7000"}, {"rich"}),
    ],
)
def test_card_list_searches_and_filters(manager_client, crowd, query, expected):
    assert numbers_in(listed(manager_client, **query), crowd) == expected


def test_card_list_finds_a_card_by_the_start_of_its_number(manager_client, crowd):
    number = crowd["ivan"].number
    assert numbers_in(listed(manager_client, q=number[:9]), crowd) == {"ivan"}


def test_card_list_filters_by_grade_category_and_last_order(manager_client, crowd, program):
    from oscar_loyalty import categories
    from oscar_loyalty.models import Category

    vip = Category.objects.get(name="VIP")
    categories.assign(vip, [crowd["rich"].user_id])
    silver = factories.grade(program, "Silver")
    today = timezone.localdate()
    assert numbers_in(listed(manager_client, grade=silver.pk), crowd) == {"ivan"}
    assert numbers_in(listed(manager_client, category=vip.pk), crowd) == {"rich"}
    since = (today - timedelta(days=10)).isoformat()
    assert numbers_in(listed(manager_client, last_order_from=since), crowd) == {"olga"}
    until = (today - timedelta(days=10)).isoformat()
    assert numbers_in(listed(manager_client, last_order_to=until), crowd) == {"ivan"}


def test_card_list_shows_a_wrong_filter_instead_of_ignoring_it(manager_client, crowd):
    content = listed(manager_client, balance_min="lots")
    assert "Some filters are wrong" in content
    assert numbers_in(content, crowd) == set()


def test_card_list_sorts_by_balance(manager_client, crowd):
    content = listed(manager_client, sort="-balance")
    order = [crowd[n].number for n in ("rich", "olga", "ivan")]
    positions = [content.index(number) for number in order]
    assert positions == sorted(positions)


def test_card_list_shows_categories_as_chips(manager_client, crowd):
    from oscar_loyalty import categories
    from oscar_loyalty.models import Category

    loyal = Category.objects.get(name="Loyal")
    categories.assign(loyal, [crowd["olga"].user_id])
    content = listed(manager_client)
    assert f"background-color: {loyal.colour}" in content


def test_card_list_needs_the_same_queries_for_any_number_of_cards(manager_client, program):
    from oscar_loyalty import categories
    from oscar_loyalty.models import Category

    def queries():
        with CaptureQueriesContext(connection) as captured:
            page(manager_client.get(url("loyalty-card-list")))
        return len(captured)

    vip = Category.objects.get(name="VIP")
    first = card_for(program, "a@example.com", balance="5")
    categories.assign(vip, [first.user_id])
    few = queries()
    for n in range(25):
        card = card_for(program, f"more{n}@example.com", balance="5")
        categories.assign(vip, [card.user_id])
    assert queries() == few


def test_card_list_pages(manager_client, program, settings):
    settings.OSCAR_DASHBOARD_ITEMS_PER_PAGE = 2
    made = [card_for(program, f"p{n}@example.com") for n in range(5)]
    first = listed(manager_client)
    third = listed(manager_client, page=3)
    assert "Page 1 of 3" in " ".join(first.split())
    assert sum(card.number in first for card in made) == 2
    assert sum(card.number in third for card in made) == 1


# --- the card page and its actions ---------------------------------------------------------


def test_card_page_shows_customer_balance_pending_history_and_orders(manager_client, card, manager):
    product = factories.make_product("1000.00")
    order = factories.place_order(card.user, [(product, 2)])
    factories.set_status(order, "Complete")
    pending_order = factories.place_order(card.user, [(product, 1)])
    ledger.credit_card(
        card,
        D("15"),
        "manual:t1",
        kind=Transfer.ADJUST,
        description="Sorry for the delay",
        note="Complaint 42",
        created_by=manager,
    )
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "olga@example.com" in content
    assert 'class="loyalty-balance h4">75<' in content  # 60 earned on the order + 15 by hand
    assert "Sorry for the delay" in content and "Complaint 42" in content
    assert manager.email in content  # who
    assert str(order.number) in content and str(pending_order.number) in content
    assert "<strong>30</strong>" in content  # pending points of the order in progress


def test_manager_accrues_and_debits_with_description_and_note(manager_client, card, manager):
    response = manager_client.post(
        url("loyalty-card-adjust", card.pk),
        {
            "direction": "accrue",
            "amount": "100",
            "description": "Birthday",
            "note": "by phone",
            "token": "one",
        },
    )
    assert response.status_code == 302
    transfer = Transfer.objects.get(card=card, kind=Transfer.ADJUST)
    assert (transfer.amount, transfer.description, transfer.note, transfer.created_by) == (
        D("100.00"),
        "Birthday",
        "by phone",
        manager,
    )
    manager_client.post(
        url("loyalty-card-adjust", card.pk),
        {"direction": "debit", "amount": "30", "description": "Correction", "token": "two"},
    )
    assert factories.refreshed(card).account.balance == D("70.00")
    assert Transfer.objects.filter(card=card).count() == 2  # nothing edited, one more transfer


def test_the_same_adjust_form_sent_twice_counts_once(manager_client, card):
    data = {"direction": "accrue", "amount": "40", "description": "Gift", "token": "same"}
    manager_client.post(url("loyalty-card-adjust", card.pk), data)
    manager_client.post(url("loyalty-card-adjust", card.pk), data)
    assert factories.refreshed(card).account.balance == D("40.00")


def test_the_adjust_form_sent_again_as_a_debit_says_it_was_used_and_changes_nothing(
    manager_client, card
):
    data = {"direction": "accrue", "amount": "100", "description": "Gift", "token": "same"}
    manager_client.post(url("loyalty-card-adjust", card.pk), data)

    response = manager_client.post(
        url("loyalty-card-adjust", card.pk), {**data, "direction": "debit"}
    )

    content = page(response)
    assert response.status_code == 200
    assert "already submitted with other details" in content
    assert "points debited" not in content
    assert factories.refreshed(card).account.balance == D("100.00")
    assert Transfer.objects.filter(card=card).count() == 1


def test_debit_beyond_the_balance_is_refused_with_a_message(manager_client, card):
    response = manager_client.post(
        url("loyalty-card-adjust", card.pk),
        {"direction": "debit", "amount": "5", "description": "Oops", "token": "x"},
    )
    content = page(response)
    assert "Not enough points" in content
    assert not Transfer.objects.filter(card=card).exists()


def test_a_closed_card_takes_no_adjustment(manager_client, card):
    """Blocked cards: see test_dashboard_manager (debits only)."""
    ledger.credit_card(card, D("5"), "test:before")
    cards.close(card, reason="gone")
    data = {"direction": "debit", "amount": "5", "description": "Fix", "token": "c"}
    content = page(manager_client.post(url("loyalty-card-adjust", card.pk), data))
    assert "closed" in content
    assert factories.refreshed(card).account.balance == D("5.00")


def test_block_unblock_and_close_with_reasons(manager_client, card, manager):
    status = url("loyalty-card-status", card.pk)
    content = page(manager_client.post(status, {"action": "block", "reason": ""}))
    assert "This field is required" in content
    assert Card.objects.get(pk=card.pk).status == Card.ACTIVE

    manager_client.post(status, {"action": "block", "reason": "Lost card"})
    assert Card.objects.get(pk=card.pk).status == Card.BLOCKED
    content = page(manager_client.get(url("loyalty-card-detail", card.pk)))
    assert "status_unblock_form" in content and "status_block_form" not in content

    manager_client.post(status, {"action": "unblock", "reason": "Found"})
    manager_client.post(status, {"action": "close", "reason": "Customer asked"})
    changes = list(
        StatusChange.objects.filter(card=card)
        .order_by("id")
        .values_list("new_status", "reason", "created_by")
    )
    assert changes == [
        ("blocked", "Lost card", manager.pk),
        ("active", "Found", manager.pk),
        ("closed", "Customer asked", manager.pk),
    ]
    content = page(manager_client.post(status, {"action": "unblock", "reason": "again"}))
    assert "cannot be done now" in content


def test_a_manual_grade_stays_whatever_the_customer_buys(manager_client, card, program):
    gold = factories.grade(program, "Gold")
    manager_client.post(
        url("loyalty-card-grade", card.pk), {"grade": str(gold.pk), "reason": "VIP"}
    )
    card = factories.refreshed(card)
    assert (card.grade, card.grade_is_manual) == (gold, True)
    change = GradeChange.objects.get(card=card, automatic=False)
    assert change.reason == "VIP"
    # Orders no longer move it (not even down to what the spend reaches).
    factories.set_status(
        factories.place_order(card.user, [(factories.make_product("100.00"), 1)]), "Complete"
    )
    assert factories.refreshed(card).grade == gold


def test_grade_change_refuses_an_accumulated_sum_below_the_actual(manager_client, card, program):
    factories.set_status(
        factories.place_order(card.user, [(factories.make_product("5000.00"), 1)]), "Complete"
    )
    silver = factories.grade(program, "Silver")
    response = manager_client.post(
        url("loyalty-card-grade", card.pk),
        {"grade": str(silver.pk), "accumulated": "100", "reason": "typo"},
    )
    assert "cannot be less than the actual one" in page(response)
    assert factories.refreshed(card).grade.name == "Base"


def test_not_participating_and_back_to_automatic(manager_client, card):
    manager_client.post(url("loyalty-card-grade", card.pk), {"grade": "none", "reason": "Staff"})
    assert factories.refreshed(card).participates is False
    assert "Not participating" in page(manager_client.get(url("loyalty-card-list")))
    manager_client.post(url("loyalty-card-grade", card.pk), {"grade": "auto", "reason": "Back"})
    card = factories.refreshed(card)
    assert card.participates is True and card.grade_is_manual is False


# --- issuing cards -------------------------------------------------------------------------


def test_issue_a_card_to_a_new_customer_in_one_step(manager_client, program, manager):
    response = manager_client.post(
        url("loyalty-card-create"),
        {
            "program": program.pk,
            "email": "new@example.com",
            "new_customer": "on",
            "first_name": "Nina",
            "last_name": "Orlova",
            "phone": "8 (916) 111-22-33",
        },
    )
    card = Card.objects.get(user__email="new@example.com")
    assert response["Location"] == url("loyalty-card-detail", card.pk)
    assert card.user.get_full_name() == "Nina Orlova"
    assert not card.user.has_usable_password()
    assert card.phone == "79161112233"
    assert card.grade == program.lowest_grade()
    assert cards.is_valid_number(card.number) and len(card.number) == program.card_number_length
    assert card.created_by == manager


def test_issue_to_an_existing_customer_with_a_number_and_grade(manager_client, program, customer):
    gold = factories.grade(program, "Gold")
    number = "4000001234" + cards.check_digit("4000001234")
    manager_client.post(
        url("loyalty-card-create"),
        {"program": program.pk, "email": "OLGA@example.com", "number": number, "grade": gold.pk},
    )
    card = Card.objects.get(user=customer)
    assert (card.number, card.grade) == (number, gold)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"email": "nobody@example.com"}, "No customer has this e-mail"),
        ({"email": "olga@example.com", "new_customer": "on"}, "exists already"),
        ({"new_customer": "on"}, "A new customer needs an e-mail"),
        ({}, "Give the customer"),
        ({"phone": "12"}, "is not a valid phone number"),
        ({"phone": "+79161112233", "number": "4000001235"}, "check digit does not match"),
    ],
)
def test_issue_form_says_what_is_wrong(manager_client, program, customer, data, message):
    content = page(manager_client.post(url("loyalty-card-create"), {"program": program.pk, **data}))
    assert message in content
    assert not Card.objects.exists()


def test_a_second_card_of_the_same_programme_is_refused(manager_client, card):
    content = page(
        manager_client.post(
            url("loyalty-card-create"), {"program": card.program_id, "email": card.user.email}
        )
    )
    assert "already has a card" in content
    assert Card.objects.count() == 1


def test_issue_from_the_customers_page(manager_client, program, customer):
    detail = page(manager_client.get(url("dashboard:user-detail", customer.pk)))
    issue_link = f"{url('loyalty-card-create')}?customer={customer.pk}"
    assert issue_link in detail and "This customer has no bonus card" in detail
    response = manager_client.post(issue_link, {"program": program.pk})
    card = Card.objects.get(user=customer)
    assert response["Location"] == url("loyalty-card-detail", card.pk)
    detail = page(manager_client.get(url("dashboard:user-detail", customer.pk)))
    assert card.number in detail


def test_a_phone_card_waits_for_its_customer(manager_client, program):
    manager_client.post(
        url("loyalty-card-create"), {"program": program.pk, "phone": "+7 916 000 11 22"}
    )
    card = Card.objects.get(phone="79160001122")
    assert card.user is None
    assert "Not a customer yet" in page(manager_client.get(url("loyalty-card-list")))


# --- programmes and grades -----------------------------------------------------------------


def test_create_a_programme_then_its_grades_sorted_by_threshold(manager_client):
    response = manager_client.post(
        url("loyalty-program-create"),
        {
            "name": "Club",
            "code": "club",
            "is_active": "on",
            "point_value": "1",
            "earn_step": "1",
            "accrual_delay_hours": "24",
            "card_number_length": "13",
            "max_pay_percent": "50",
            "min_spend_points": "0",
        },
    )
    program = Program.objects.get(code="club")
    assert response["Location"] == url("loyalty-program-update", program.pk)
    assert (program.accrual_delay_hours, program.max_pay_percent) == (24, D("50"))
    for name, spend_from in (("Gold", "30000"), ("Base", "0"), ("Silver", "10000")):
        grade = {"name": name, "spend_from": spend_from, "earn_percent": "5"}
        grade |= {"discount_type": "percent", "discount_value": "0", "colour": "#123456"}
        assert (
            manager_client.post(url("loyalty-grade-create", program.pk), grade).status_code == 302
        )
    content = page(manager_client.get(url("loyalty-program-update", program.pk)))
    positions = [content.index(f">{name}<") for name in ("Base", "Silver", "Gold")]
    assert positions == sorted(positions)


def test_two_grades_cannot_start_at_the_same_sum(manager_client, program):
    grade = {"name": "Twin", "spend_from": "10000", "earn_percent": "5"}
    grade |= {"discount_type": "percent", "discount_value": "0", "colour": "#123456"}
    content = page(manager_client.post(url("loyalty-grade-create", program.pk), grade))
    assert "already starts at this sum" in content
    assert program.grades.count() == 3


def test_grades_show_how_many_cards_they_have(manager_client, program, card):
    content = page(manager_client.get(url("loyalty-program-update", program.pk)))
    assert f'?grade={card.grade_id}">1<' in content


def test_a_grade_in_use_is_deleted_only_after_moving_its_cards(
    manager_client, card, program, manager
):
    base, silver = card.grade, factories.grade(program, "Silver")
    content = page(manager_client.get(url("loyalty-grade-delete", base.pk)))
    assert "1 card has this grade" in content
    content = page(manager_client.post(url("loyalty-grade-delete", base.pk), {}))
    assert "Choose the grade to move them to" in content
    assert Grade.objects.filter(pk=base.pk).exists()

    manager_client.post(url("loyalty-grade-delete", base.pk), {"move_to": silver.pk})
    assert not Grade.objects.filter(pk=base.pk).exists()
    assert factories.refreshed(card).grade == silver
    change = GradeChange.objects.get(card=card)
    assert (change.new_grade, change.created_by) == (silver, manager)
    assert "Base" in change.reason


def test_an_unused_grade_is_deleted_at_once(manager_client, program):
    gold = factories.grade(program, "Gold")
    manager_client.post(url("loyalty-grade-delete", gold.pk), {})
    assert not Grade.objects.filter(pk=gold.pk).exists()


def test_recalculate_records_the_last_completed_order(card, program):
    """grades.recalculate keeps the last completed order date the list filters on."""
    order = factories.place_order(card.user, [(factories.make_product("100.00"), 1)])
    factories.set_status(order, "Complete")
    card = grades.recalculate(card)
    assert card.last_order_at == order.date_placed
