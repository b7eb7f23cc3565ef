"""Messages about my points: the customer switches them on and off on the "Bonus card" page."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oscar_loyalty import cards
from tests.factories import make_card, make_customer, make_program, refreshed
from tests.integration.dashboard_support import logged_in, make_staff
from tests.integration.test_account_page import PAGE, section, text

pytestmark = pytest.mark.django_db


def consent_url(card):
    return reverse("loyalty-account-consent", kwargs={"pk": card.pk})


def test_the_page_says_messages_are_off_and_what_they_would_be(customer_client, card):
    fragment = section(customer_client.get(PAGE), card)
    panel = text(fragment)
    assert "Messages about my points: off" in panel
    assert "by e-mail, by SMS and in your account's inbox" in panel
    assert "when your grade changes" in panel
    assert "They are off until you switch them on" in panel
    assert f'action="{consent_url(card)}"' in fragment
    assert 'method="post"' in fragment
    assert "csrfmiddlewaretoken" in fragment
    assert "Switch on" in panel


def test_the_owner_switches_them_on_then_off(customer_client, card):
    before = timezone.now()
    response = customer_client.post(consent_url(card), {"consent": "1"}, follow=True)

    card = refreshed(card)
    assert card.marketing_consent is True
    assert card.consent_source == card.CONSENT_CUSTOMER
    assert card.consent_changed_by is None  # the customer, not a manager
    assert card.consent_changed >= before
    assert response.redirect_chain[-1][0] == f"{PAGE}#card-{card.number}"
    page = response.content.decode()
    assert f"Messages about your points on the card {card.number} are now on." in page
    panel = text(section(response, card))
    assert "Messages about my points: on" in panel
    assert "Switch off" in panel

    response = customer_client.post(consent_url(card), {"consent": "0"}, follow=True)
    assert refreshed(card).marketing_consent is False
    assert "are now off." in response.content.decode()
    assert "Messages about my points: off" in text(section(response, card))


def test_each_card_has_its_own_consent(customer_client, card, customer):
    coffee = make_program(code="coffee", name="Coffee club", grades=[("Bean", "0", "10", "#333")])
    coffee_card = make_card(coffee, user=customer)
    customer_client.post(consent_url(coffee_card), {"consent": "1"})
    assert refreshed(coffee_card).marketing_consent is True
    assert refreshed(card).marketing_consent is False
    response = customer_client.get(PAGE)
    assert "Messages about my points: on" in text(section(response, coffee_card))
    assert "Messages about my points: off" in text(section(response, card))


def test_switching_on_what_is_on_keeps_when_it_was_given(customer_client, card):
    cards.set_consent(card, True)
    given = refreshed(card).consent_changed
    response = customer_client.post(consent_url(card), {"consent": "1"}, follow=True)
    assert refreshed(card).consent_changed == given
    assert "are now on." in response.content.decode()


def test_another_customers_card_is_not_found(client, card):
    other = make_customer("boris@example.com")
    client.force_login(other)
    response = client.post(consent_url(card), {"consent": "1"})
    assert response.status_code == 404
    assert refreshed(card).marketing_consent is False


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client, card):
    response = client.post(consent_url(card), {"consent": "1"})
    assert response.status_code == 302
    assert reverse("customer:login") in response["Location"]
    assert refreshed(card).marketing_consent is False


@pytest.mark.parametrize("with_permission", [False, True])
def test_staff_cannot_change_a_customers_consent_here(client, card, with_permission):
    """Managers change consent on the card's dashboard page; this page is the customer's."""
    staff = make_staff("clerk@example.com", perms=False)
    if with_permission:
        staff.user_permissions.add(Permission.objects.get(codename="change_card"))
    logged_in(client, staff)
    response = client.post(consent_url(card), {"consent": "1"})
    assert response.status_code == 404
    assert refreshed(card).marketing_consent is False


def test_a_get_changes_nothing(customer_client, card):
    response = customer_client.get(consent_url(card), {"consent": "1"})
    assert response.status_code == 405
    assert refreshed(card).marketing_consent is False
    assert refreshed(card).consent_changed is None


def test_a_post_without_the_csrf_token_is_refused(card, customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(consent_url(card), {"consent": "1"})
    assert response.status_code == 403
    assert refreshed(card).marketing_consent is False


@pytest.mark.parametrize("data", [{}, {"consent": "yes"}])
def test_an_answer_that_is_neither_on_nor_off_changes_nothing(customer_client, card, data):
    response = customer_client.post(consent_url(card), data, follow=True)
    assert refreshed(card).marketing_consent is False
    assert "Choose whether you want messages about your points." in response.content.decode()


def test_the_russian_page(customer_client, card):
    customer_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    panel = text(section(customer_client.get(PAGE), card))
    assert "Сообщения о моих баллах: выключены" in panel
    assert "Включить" in panel
    response = customer_client.post(consent_url(card), {"consent": "1"}, follow=True)
    assert "Сообщения о моих баллах: включены" in text(section(response, card))
    assert f"Сообщения о баллах по карте {card.number} включены." in response.content.decode()
