"""Cards: numbers with a check digit, one card per customer and programme, phone cards that
find their customer, automatic issue, and block / unblock / close keeping the history."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger, receivers
from oscar_loyalty.exceptions import (
    CardExists,
    CardNumberInvalid,
    CardUnavailable,
    LoyaltyError,
    StatusChangeRefused,
)
from tests.factories import (
    make_customer,
    make_product,
    make_program,
    place_order,
    refreshed,
)

Card = get_model("oscar_loyalty", "Card")
StatusChange = get_model("oscar_loyalty", "StatusChange")
Transfer = get_model("oscar_loyalty", "Transfer")
Accrual = get_model("oscar_loyalty", "Accrual")

D = Decimal


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("length", [6, 8, 13, 16])
def test_a_generated_number_has_the_programmes_length_and_a_valid_check_digit(length):
    program = make_program(card_number_length=length)
    numbers = {cards.new_numbers(program, 1)[0] for _ in range(50)}
    for number in numbers:
        assert len(number) == length
        assert number.isdigit() and number[0] != "0"
        assert cards.clean_number(number) == number
    assert len(numbers) > 40  # random, not a sequence a customer could guess


@pytest.mark.django_db
def test_a_new_number_is_never_one_a_card_has_or_the_caller_is_giving_out(monkeypatch):
    program = make_program(card_number_length=6)  # bodies 10000-99999: 11 random bytes each
    taken = "12345" + cards.check_digit("12345")
    cards.issue_card(program, phone="79123456789", number=taken)
    draws = iter(
        [
            # the card's number, one the caller gives out, and a free one
            b"".join((body - 10000).to_bytes(11, "big") for body in (12345, 23456, 34567)),
            (45678 - 10000).to_bytes(11, "big") + (56789 - 10000).to_bytes(11, "big"),
        ]
    )
    monkeypatch.setattr(cards.secrets, "token_bytes", lambda size: next(draws))
    numbers = cards.new_numbers(program, 3, taken={"23456" + cards.check_digit("23456")})
    assert sorted(numbers) == [
        body + cards.check_digit(body) for body in ("34567", "45678", "56789")
    ]


def test_a_number_with_any_single_digit_mistyped_is_refused():
    number = "4006381333932"  # a valid 13-digit number
    assert cards.clean_number(number) == number
    for position in range(len(number)):
        wrong = str((int(number[position]) + 3) % 10)
        typo = number[:position] + wrong + number[position + 1 :]
        with pytest.raises(CardNumberInvalid, match="check digit"):
            cards.clean_number(typo)


def test_swapping_two_neighbouring_digits_is_caught():
    with pytest.raises(CardNumberInvalid, match="mistyped"):
        cards.clean_number("4006318333932")  # ...381... typed as ...318...


def test_spaces_and_dashes_in_a_typed_number_are_ignored():
    assert cards.clean_number(" 4006 3813-3393 2 ") == "4006381333932"


@pytest.mark.parametrize(
    "raw, says",
    [("40063A1333931", "digits only"), ("12345", "from 6 to 32 digits"), ("1" * 33, "from 6")],
)
def test_a_malformed_number_is_refused_saying_why(raw, says):
    with pytest.raises(CardNumberInvalid, match=says):
        cards.clean_number(raw)


@override_settings(OSCAR_LOYALTY_CARD_NUMBER_CHECK_DIGIT=False)
def test_without_check_digits_any_digits_are_a_number():
    assert cards.clean_number("4006381333931") == "4006381333931"


# --- issuing -------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def test_a_card_gets_a_generated_number_and_the_lowest_grade(program, customer):
    card = cards.issue_card(program, user=customer)
    assert len(card.number) == program.card_number_length == 13
    assert cards.clean_number(card.number) == card.number
    assert card.grade.name == "Base"
    assert (card.balance, card.debt, card.status) == (D("0"), D("0"), Card.ACTIVE)


def test_a_card_can_be_issued_with_a_given_number(program, customer):
    card = cards.issue_card(program, user=customer, number="4006 3813 3393 2")
    assert card.number == "4006381333932"


def test_a_mistyped_given_number_issues_nothing(program, customer):
    with pytest.raises(CardNumberInvalid):
        cards.issue_card(program, user=customer, number="4006381333931")
    assert not Card.objects.exists()


def test_a_number_cannot_be_taken_twice_in_one_programme(program, customer):
    cards.issue_card(program, user=customer, number="4006381333932")
    with pytest.raises(CardExists, match="already taken"):
        cards.issue_card(program, user=make_customer(), number="4006381333932")


def test_a_customer_has_one_card_per_programme_but_may_hold_several_programmes(program, customer):
    cards.issue_card(program, user=customer)
    with pytest.raises(CardExists, match="already has a card"):
        cards.issue_card(program, user=customer)

    coffee = make_program(code="coffee", name="Coffee club")
    cards.issue_card(coffee, user=customer)
    assert [c.program.code for c in cards.cards_of(customer)] == ["bonus", "coffee"]


def test_a_card_needs_a_customer_or_a_phone(program):
    with pytest.raises(LoyaltyError, match="customer or a phone"):
        cards.issue_card(program)


# --- phone cards ---------------------------------------------------------------------------


def test_a_card_can_wait_for_a_phone_that_is_not_a_customer_yet(program):
    card = cards.issue_card(program, phone="8 912 345-67-89")
    assert card.user is None
    assert card.phone == "79123456789"


def test_one_phone_has_one_card_per_programme_however_it_is_written(program):
    cards.issue_card(program, phone="8 912 345-67-89")
    with pytest.raises(CardExists, match=r"\+7 912 345-67-89"):
        cards.issue_card(program, phone="+7 (912) 345 67 89")


def test_issuing_to_a_customer_with_a_waiting_phone_attaches_that_card(program, customer):
    waiting = cards.issue_card(program, phone="79123456789")
    card = cards.issue_card(program, user=customer, phone="8 912 345 67 89")
    assert card.pk == waiting.pk
    assert refreshed(card).user == customer


def test_registration_with_the_phone_attaches_the_waiting_card(client, program):
    waiting = cards.issue_card(program, phone="79123456789")
    ledger.credit_card(waiting, "200", "welcome", description="Welcome points")

    response = client.post(
        reverse("customer:register"),
        {
            "email": "new@example.com",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
            "phone": "+7 (912) 345 67 89",
        },
    )

    assert response.status_code == 302
    user = get_user_model().objects.get(email="new@example.com")
    card = refreshed(waiting)
    assert card.user == user
    assert card.balance == D("200.00")  # the card comes with what it earned while waiting


def test_a_profile_with_the_phone_attaches_the_waiting_card(program, customer):
    """A shop whose user model has a phone field: saving the customer attaches the card."""
    waiting = cards.issue_card(program, phone="79123456789")
    customer.phone = "8 912 345-67-89"
    receivers.on_user_saved(sender=type(customer), instance=customer)
    assert refreshed(waiting).user == customer


def test_an_order_to_the_phone_attaches_the_waiting_card_and_earns_on_it(program, customer):
    waiting = cards.issue_card(program, phone="79123456789")
    order = place_order(customer, [(make_product("1000"), 1)], phone="+7 (912) 345 67 89")

    card = refreshed(waiting)
    assert card.user == customer
    accrual = Accrual.objects.get(order_number=order.number)
    assert (accrual.card, accrual.points) == (card, D("30.00"))


def test_a_waiting_card_is_not_attached_to_a_customer_who_has_a_card_of_that_programme(
    program, customer
):
    own = cards.issue_card(program, user=customer)
    waiting = cards.issue_card(program, phone="79123456789")
    assert cards.attach_phone_cards(customer, "8 912 345-67-89") == []
    assert refreshed(waiting).user is None
    assert list(cards.cards_of(customer)) == [own]


def test_a_wrong_phone_attaches_nothing(program, customer):
    cards.issue_card(program, phone="79123456789")
    assert cards.attach_phone_cards(customer, "12345") == []


# --- issue on registration ------------------------------------------------------------------


def test_registration_issues_cards_of_programmes_that_ask_for_it(client):
    make_program(code="auto", name="Auto", issue_on_registration=True)
    make_program(code="manual", name="Manual")

    client.post(
        reverse("customer:register"),
        {
            "email": "new@example.com",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
        },
    )

    user = get_user_model().objects.get(email="new@example.com")
    assert [c.program.code for c in cards.cards_of(user)] == ["auto"]


def test_registration_attaches_a_waiting_card_instead_of_issuing_a_second(client):
    program = make_program(issue_on_registration=True)
    waiting = cards.issue_card(program, phone="79123456789")

    client.post(
        reverse("customer:register"),
        {
            "email": "new@example.com",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
            "phone": "89123456789",
        },
    )

    user = get_user_model().objects.get(email="new@example.com")
    assert list(cards.cards_of(user)) == [waiting]


# --- block, unblock, close ------------------------------------------------------------------


def test_blocking_keeps_the_card_and_its_history_and_is_recorded(card, customer):
    ledger.credit_card(card, "100", "earn-1")
    manager = make_customer("manager@example.com", is_staff=True)

    blocked = cards.block(card, reason="Card lost", by=manager)

    assert blocked.status == Card.BLOCKED
    assert blocked.refusal() == f"The card {card.number} is blocked."
    assert refreshed(card).balance == D("100.00")
    assert Transfer.objects.filter(card=card).count() == 1
    change = StatusChange.objects.get(card=card)
    assert (change.old_status, change.new_status) == (Card.ACTIVE, Card.BLOCKED)
    assert (change.reason, change.created_by) == ("Card lost", manager)


def test_an_unblocked_card_earns_and_spends_again(card):
    ledger.credit_card(card, "100", "earn-1")
    card = cards.block(card)
    with pytest.raises(CardUnavailable):
        ledger.debit_card(card, "10", "spend-1")

    card = cards.unblock(card, reason="Found")
    ledger.debit_card(refreshed(card), "10", "spend-1")
    assert refreshed(card).balance == D("90.00")
    assert list(
        StatusChange.objects.filter(card=card).order_by("id").values_list("new_status", flat=True)
    ) == [Card.BLOCKED, Card.ACTIVE]


def test_a_closed_card_stays_closed_with_its_history(card):
    ledger.credit_card(card, "100", "earn-1")
    card = cards.close(card, reason="Customer left")

    with pytest.raises(StatusChangeRefused, match="is closed"):
        cards.unblock(card)
    with pytest.raises(StatusChangeRefused, match="is closed"):
        cards.block(card)
    with pytest.raises(CardUnavailable, match="is closed"):
        ledger.credit_card(card, "10", "earn-2")
    assert Card.objects.filter(pk=card.pk).exists()
    assert refreshed(card).balance == D("100.00")
    assert Transfer.objects.filter(card=card).count() == 1


def test_an_active_card_cannot_be_unblocked(card):
    with pytest.raises(StatusChangeRefused, match="is active"):
        cards.unblock(card)


def test_a_blocked_card_can_be_closed(card):
    card = cards.close(cards.block(card))
    assert card.status == Card.CLOSED
