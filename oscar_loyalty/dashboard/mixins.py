"""What the views of several dashboard areas share: the templates' folder, the page size of
Oscar's dashboard, and which jobs a manager may see."""

from django.apps import apps
from django.conf import settings

TEMPLATES = "oscar_loyalty/dashboard/"


def per_page():
    return getattr(settings, "OSCAR_DASHBOARD_ITEMS_PER_PAGE", 20)


def hidden_job_kinds(user):
    """Export kinds whose data ``user`` may not see (see the dashboard's export_screens)."""
    return apps.get_app_config("oscar_loyalty_dashboard").hidden_job_kinds(user)
