from django.urls import path
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarConfig

from oscar_loyalty.loading import get_class


class LoyaltyConfig(OscarConfig):
    """The customer-facing part of the loyalty programme and its signal wiring."""

    label = "oscar_loyalty"
    name = "oscar_loyalty"
    verbose_name = _("Loyalty")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # checks and excel register system checks
        from oscar_loyalty import checks, excel, receivers, registry  # noqa: F401

        registry.register()
        receivers.connect()
        self.card_list_view = get_class("views", "CardListView")
        self.consent_view = get_class("views", "ConsentView")

    def get_urls(self):
        urls = [
            path(
                "accounts/bonus-cards/", self.card_list_view.as_view(), name="loyalty-account-cards"
            ),
            path(
                "accounts/bonus-cards/<int:pk>/consent/",
                self.consent_view.as_view(),
                name="loyalty-account-consent",
            ),
        ]
        return self.post_process_urls(urls)
