from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig


class LoyaltyDashboardConfig(OscarDashboardConfig):
    """Manager screens of the loyalty programme, mounted at e.g. ``dashboard/loyalty/``."""

    label = "oscar_loyalty_dashboard"
    name = "oscar_loyalty.dashboard"
    verbose_name = _("Loyalty dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    default_permissions = ["is_staff"]
    permissions_map = {}

    def get_urls(self):
        urls = []
        return self.post_process_urls(urls)
