"""Oscar's template editor (Content → Email templates) lists, for the loyalty event types
only, the variables their templates may use with an example each."""

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from oscar.core.loading import get_model

from oscar_loyalty.notifications import events
from tests.integration.dashboard_support import logged_in, make_staff

CommunicationEventType = get_model("communication", "CommunicationEventType")

pytestmark = pytest.mark.django_db

PANEL = "loyalty-message-variables"


def editor(code):
    return reverse("dashboard:comms-update", kwargs={"slug": code})


@pytest.fixture
def editor_client(client):
    """A manager who may edit Oscar's e-mail templates (and nothing of the loyalty app)."""
    manager = make_staff(perms=False)
    manager.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="communication",
            codename__in=["view_communicationeventtype", "change_communicationeventtype"],
        )
    )
    return logged_in(client, manager)


def variables_shown(page):
    return re.findall(r"<code>\{\{ (\w+) \}\}</code>", page)


def test_the_points_credited_template_lists_every_variable(editor_client):
    response = editor_client.get(editor(events.POINTS_CREDITED))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert PANEL in page
    assert variables_shown(page) == list(events.VARIABLES)
    for meaning in events.VARIABLES.values():
        assert str(meaning) in page
    # examples: the made-up change, and this shop's own address
    assert "Anna Ivanova" in page and "2000000012342" in page and "1,350" in page
    assert "://example.com/accounts/bonus-cards/" in page
    # Oscar's editor is still all there
    assert 'id="update_communication_event_form"' in page


def test_a_russian_manager_reads_the_variables_in_russian(editor_client):
    editor_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    page = html.unescape(editor_client.get(editor(events.GRADE_CHANGED)).content.decode())
    assert "Переменные сообщений программы лояльности" in page
    assert "баланс карты сразу после этого" in page
    assert "Анна Иванова" in page and "Золотой" in page and "1\xa0350" in page


def test_oscars_own_event_types_show_no_loyalty_variables(editor_client):
    CommunicationEventType.objects.get_or_create(
        code="ORDER_PLACED", defaults={"name": "Order placed", "category": "Order related"}
    )
    response = editor_client.get(editor("ORDER_PLACED"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="update_communication_event_form"' in page
    assert PANEL not in page
    assert "{{ amount }}" not in html.unescape(page)


def test_staff_without_the_permission_do_not_get_the_editor(client):
    response = logged_in(client, make_staff(perms=False)).get(editor(events.POINTS_CREDITED))
    assert response.status_code == 403
    assert PANEL not in response.content.decode()
