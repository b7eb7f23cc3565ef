"""A shop that forks oscar_loyalty overrides one class of one dashboard area, the Oscar way:
the dashboard serves the fork's class, and the package's own for everything else."""

import copy
import html
import re
import sys
import types

import pytest
from django.apps import apps
from django.urls import include, path

import oscar_loyalty.dashboard.cards
from tests.integration.dashboard_support import card_for, logged_in, make_staff, url

pytestmark = pytest.mark.django_db

CARDS_VIEWS = "oscar_loyalty.dashboard.cards.views"


@pytest.fixture
def forked_dashboard(forked_loyalty, monkeypatch, settings):
    """The dashboard as it starts in a shop with the fork ``tests.loyalty_fork`` installed:
    the card area's views are imported again (so their ``get_class`` looks in the fork
    first), every view is loaded by the app config's ``ready()`` and served at the usual
    URLs. Modules, config and URLs are put back afterwards."""
    monkeypatch.delitem(sys.modules, CARDS_VIEWS)
    monkeypatch.setattr(oscar_loyalty.dashboard.cards, "views", sys.modules.get(CARDS_VIEWS))
    started = copy.copy(apps.get_app_config("oscar_loyalty_dashboard"))
    started.ready()
    from sandbox import urls

    urlconf = types.ModuleType("forked_dashboard_urls")
    urlconf.urlpatterns = [
        path("dashboard/loyalty/", include(started.get_urls()))
        if str(pattern.pattern) == "dashboard/loyalty/"
        else pattern
        for pattern in urls.urlpatterns
    ]
    settings.ROOT_URLCONF = urlconf
    return started


def card_list(client):
    """The card list's column headings and its first row's cells, as the manager reads them."""
    content = logged_in(client, make_staff()).get(url("loyalty-card-list")).content.decode()
    table = content[content.index('class="table table-striped') :]

    def cells(tag, fragment):
        found = re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", fragment, re.S)
        return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in found]

    headings = cells("th", table[: table.index("</thead>")])
    first_row = cells(
        "td", table[table.index("<tbody") : table.index("</tr>", table.index("<tbody"))]
    )
    return headings, first_row


def test_the_forks_card_table_is_the_one_served(client, program, forked_dashboard):
    card_for(program, "olga@example.com", balance="150")
    headings, row = card_list(client)
    assert "Customer's e-mail" in headings
    assert "olga@example.com" in row
    # the package's own columns are all still there, in their order
    assert headings[1:4] == ["Card number", "Customer", "Phone"]


def test_without_the_fork_the_card_table_is_the_packages(client, program):
    card_for(program, "olga@example.com", balance="150")
    headings, _row = card_list(client)
    assert "Customer's e-mail" not in headings
    assert headings[1:4] == ["Card number", "Customer", "Phone"]


def test_areas_the_fork_does_not_touch_come_from_the_package(forked_dashboard):
    from oscar_loyalty.dashboard.jobs import views as job_views

    assert forked_dashboard.job_list_view is job_views.JobListView
    assert forked_dashboard.card_list_view.table_class.__module__ == (
        "tests.loyalty_fork.dashboard.cards.tables"
    )
