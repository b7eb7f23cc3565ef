"""Settings of the sandbox shop: a plain Oscar 4.2 project with django-oscar-loyalty installed.

Environment:
    DATABASE_URL       database (default: SQLite file sandbox/db.sqlite3)
    CELERY_BROKER_URL  Celery broker (default: none, tasks run eagerly in-process)
    DEBUG              "0"/"false" to turn debug off (default: on)
    SECRET_KEY         (default: an insecure sandbox key)
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _
from oscar.defaults import *

SANDBOX_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


DEBUG = env_flag("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "sandbox-insecure-key-do-not-use-in-production")
ALLOWED_HOSTS = ["*"]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{SANDBOX_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    # the package: before Oscar, so its templates can extend Oscar's (account tab, panels)
    "oscar_loyalty.apps.LoyaltyConfig",
    "oscar_loyalty.dashboard.apps.LoyaltyDashboardConfig",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    # Oscar's checkout, forked so that PaymentDetailsView takes bonus points (see README)
    "sandbox.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    # 3rd-party apps that Oscar depends on
    "widget_tweaks",
    "haystack",
    "treebeard",
    "sorl.thumbnail",
    "django_tables2",
    # used by the loyalty dashboard
    "django_filters",
    # sandbox only: the load_demo command
    "sandbox.demo",
]

SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

ROOT_URLCONF = "sandbox.urls"
WSGI_APPLICATION = "sandbox.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SANDBOX_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.media",
                "django.template.context_processors.static",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = []  # sandbox: demo passwords are short on purpose

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Internationalisation
LANGUAGE_CODE = "en-gb"
LANGUAGES = [
    ("en-gb", _("English")),
    ("ru", _("Russian")),
]
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True
# The sandbox's own strings (templates/, checkout fork, settings); the package brings its own.
LOCALE_PATHS = [SANDBOX_DIR / "sandbox" / "locale"]

# Static files and media
STATIC_URL = "/static/"
STATIC_ROOT = SANDBOX_DIR / "static_collected"
MEDIA_URL = "/media/"
MEDIA_ROOT = SANDBOX_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Loyalty exports hold customers' data: a folder outside MEDIA_ROOT, with no URL
    # (OSCAR_LOYALTY_EXPORT_STORAGE names this alias).
    "loyalty_exports": {
        "BACKEND": "oscar_loyalty.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": SANDBOX_DIR / "private" / "exports"},
    },
}

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# Oscar 4.2's catalogue pages filter the search index on is_public/structure, which haystack's
# simple backend cannot do (it would list no products), so the sandbox uses pure-Python Whoosh.
# `manage.py load_demo` (re)builds the index.
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(SANDBOX_DIR / "whoosh_index"),
    },
}

# Whoosh can do neither Oscar's price-range query facets nor untokenised field facets.
OSCAR_SEARCH_FACETS = {"fields": {}, "queries": {}}

THUMBNAIL_DEBUG = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"simple": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "simple"}},
    "loggers": {
        "oscar.checkout": {"handlers": ["console"], "level": "INFO"},
        "oscar_loyalty": {"handlers": ["console"], "level": "INFO"},
    },
}

# Oscar
OSCAR_SHOP_NAME = "Oscar Loyalty Sandbox"
OSCAR_SHOP_TAGLINE = _("Bonus cards for django-oscar")
OSCAR_DEFAULT_CURRENCY = "RUB"
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_FROM_EMAIL = "shop@example.com"

# Order statuses. Points are posted on "Complete" (the last status that is not cancelled) and
# voided or returned on "Cancelled"; a completed order may still be cancelled (a refund).
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Complete", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Complete": ("Cancelled",),
    "Cancelled": (),
}
OSCAR_ORDER_STATUS_CASCADE = {
    "Being processed": "Being processed",
    "Complete": "Complete",
    "Cancelled": "Cancelled",
}
OSCAR_LINE_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Complete", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Complete": ("Refunded",),
    "Cancelled": (),
    "Refunded": (),
}

# ---------------------------------------------------------------------------------------------
# Loyalty dashboard menu: the block to copy into your own project's settings (see README).
# ---------------------------------------------------------------------------------------------
LOYALTY_DASHBOARD_NAVIGATION = {
    "label": _("Loyalty"),
    "icon": "fas fa-id-card",
    "children": [
        {"label": _("Programmes"), "url_name": "loyalty-program-list"},
        {"label": _("Cards"), "url_name": "loyalty-card-list"},
        {"label": _("Categories"), "url_name": "loyalty-category-list"},
        {"label": _("Jobs"), "url_name": "loyalty-job-list"},
        {"label": _("Messages to customers"), "url_name": "loyalty-message-list"},
        {"label": _("Import from Excel"), "url_name": "loyalty-import"},
        {"label": _("Points report"), "url_name": "loyalty-report"},
    ],
}
OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, LOYALTY_DASHBOARD_NAVIGATION]

# django-oscar-loyalty
OSCAR_LOYALTY_PHONE_REGION = "RU"
# The demo writes each SMS to the log; a shop names its gateway's backend here (README).
OSCAR_LOYALTY_SMS_BACKEND = "oscar_loyalty.notifications.sms.ConsoleBackend"
OSCAR_LOYALTY_MESSAGE_URL_SCHEME = "http"

# Celery: with no broker configured, tasks run eagerly in the web process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = "CELERY_BROKER_URL" not in os.environ
CELERY_TASK_EAGER_PROPAGATES = CELERY_TASK_ALWAYS_EAGER
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Periodic tasks for `celery -A sandbox beat` (see README). Each is idempotent; a run that
# waited longer than its interval in the queue (no worker) expires, the next one does its work.
CELERY_BEAT_SCHEDULE = {
    "loyalty-post-due-accruals": {
        "task": "oscar_loyalty.tasks.post_due_accruals",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "loyalty-resume-stalled-jobs": {
        "task": "oscar_loyalty.tasks.resume_stalled_jobs",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "loyalty-release-stale-holds": {
        "task": "oscar_loyalty.tasks.release_stale_holds",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "loyalty-delete-expired-exports": {
        "task": "oscar_loyalty.tasks.delete_expired_exports",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "loyalty-send-due-messages": {
        "task": "oscar_loyalty.tasks.send_due_messages",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "loyalty-take-checkpoints": {
        "task": "oscar_loyalty.tasks.take_checkpoints",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(SANDBOX_DIR / "celerybeat-schedule")
