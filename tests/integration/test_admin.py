"""Django admin shows the ledger but cannot change it; programmes and grades stay editable."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty import ledger

Transfer = get_model("oscar_loyalty", "Transfer")
Account = get_model("oscar_loyalty", "Account")

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser(
        username="root@example.com", email="root@example.com", password="root"
    )
    client.force_login(user)
    return client


@pytest.fixture
def transfer(card):
    return ledger.credit_card(card, "100", "manual:1", description="Welcome points")


@pytest.mark.parametrize(
    "model", ["transfer", "account", "card", "accrual", "hold", "job", "message"]
)
def test_ledger_models_are_listed_without_an_add_button(admin_client, transfer, model):
    response = admin_client.get(reverse(f"admin:oscar_loyalty_{model}_changelist"))
    assert response.status_code == 200
    assert reverse(f"admin:oscar_loyalty_{model}_add") not in response.content.decode()
    assert admin_client.get(reverse(f"admin:oscar_loyalty_{model}_add")).status_code == 403


def test_a_transfer_is_shown_read_only_and_a_forged_post_changes_nothing(admin_client, transfer):
    url = reverse("admin:oscar_loyalty_transfer_change", args=[transfer.pk])
    response = admin_client.get(url)
    content = response.content.decode()
    assert response.status_code == 200
    assert "Welcome points" in content
    assert 'name="amount"' not in content
    assert 'name="_save"' not in content

    response = admin_client.post(url, {"amount": "1000", "description": "forged"})
    assert response.status_code == 403
    assert Transfer.objects.get(pk=transfer.pk).amount == 100


def test_a_transfer_cannot_be_deleted_in_the_admin(admin_client, transfer):
    url = reverse("admin:oscar_loyalty_transfer_delete", args=[transfer.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:oscar_loyalty_transfer_changelist")
    response = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [transfer.pk], "post": "yes"}
    )
    assert Transfer.objects.filter(pk=transfer.pk).exists()
    assert response.status_code in (200, 302)


def test_a_card_balance_cannot_be_edited_in_the_admin(admin_client, card, transfer):
    url = reverse("admin:oscar_loyalty_account_change", args=[card.account_id])
    assert 'name="balance"' not in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"balance": "5000"}).status_code == 403
    assert Account.objects.get(pk=card.account_id).balance == 100


def test_programmes_stay_editable(admin_client, program):
    response = admin_client.get(reverse("admin:oscar_loyalty_program_change", args=[program.pk]))
    assert response.status_code == 200
    assert 'name="earn_step"' in response.content.decode()
