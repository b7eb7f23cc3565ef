"""Shared pytest setup: markers for tests that need a real service, and browser fixtures.

Markers (a test without the service is skipped with the reason shown in the summary):
    postgres  needs the PostgreSQL database (`make test-postgres`)
    redis     needs a reachable Redis broker in CELERY_BROKER_URL
    browser   needs Debian's Chromium at /usr/bin/chromium and the playwright package
"""

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LOYALTY_TEST_CHROMIUM", "/usr/bin/chromium"))

MARKERS = {
    "postgres": "needs PostgreSQL (run make test-postgres)",
    "redis": "needs a reachable Redis broker in CELERY_BROKER_URL",
    "browser": "drives Debian's Chromium with Playwright",
}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def database_vendor():
    from django.db import connection

    return connection.vendor


def redis_broker_url():
    """CELERY_BROKER_URL when it names a Redis server that answers PING, else None."""
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis
    except ImportError:
        return None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


def browser_available():
    return CHROMIUM.exists() and importlib.util.find_spec("playwright") is not None


def pytest_sessionstart(session):
    # `make test-postgres` must not pass by skipping every PostgreSQL test.
    if os.environ.get("LOYALTY_TEST_POSTGRES") == "1" and database_vendor() != "postgresql":
        raise pytest.UsageError(
            "LOYALTY_TEST_POSTGRES=1 but DATABASE_URL does not point at PostgreSQL"
        )


def pytest_collection_modifyitems(config, items):
    checks = {
        "postgres": (
            lambda: database_vendor() == "postgresql",
            "needs PostgreSQL: run make test-postgres",
        ),
        "redis": (
            lambda: redis_broker_url() is not None,
            "needs Redis: set CELERY_BROKER_URL=redis://... to a running server",
        ),
        "browser": (
            browser_available,
            f"needs {CHROMIUM} (apt-get install chromium) and playwright",
        ),
    }
    available = {}
    for item in items:
        for name, (check, reason) in checks.items():
            if item.get_closest_marker(name) is None:
                continue
            if name not in available:
                available[name] = check()
            if not available[name]:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium driven by Playwright (use with the `browser` marker)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
    # itself are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """Pages of separate browser contexts (separate logins, ``locale``), closed after the test."""
    contexts = []

    def make(locale="en-GB"):
        context = browser.new_context(locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


# --- loyalty fixtures (builders in tests/factories.py) -------------------------------------


@pytest.fixture(autouse=True)
def _default_language():
    """A request in Russian leaves Russian active in the thread; each test starts in English."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _forget_system_accounts():
    """The ledger caches system accounts in memory; each test rolls their rows back."""
    from oscar_loyalty import ledger

    ledger.clear_cache()
    yield
    ledger.clear_cache()


@pytest.fixture
def forked_loyalty(monkeypatch):
    """The shop has forked oscar_loyalty as ``tests.loyalty_fork``, with its own policies."""
    from django.apps import apps

    monkeypatch.setattr(apps.get_app_config("oscar_loyalty"), "name", "tests.loyalty_fork")


@pytest.fixture
def program(db):
    """Programme "bonus" with grades Base 0 → 3%, Silver 10 000 → 5%, Gold 30 000 → 7%."""
    from tests import factories

    return factories.make_program()


@pytest.fixture
def customer(db):
    from tests import factories

    return factories.make_customer("olga@example.com")


@pytest.fixture
def card(program, customer):
    from tests import factories

    return factories.make_card(program, user=customer)


@pytest.fixture
def kettle(db):
    """A product "Kettle" at 1 000.00 with stock."""
    from tests import factories

    return factories.make_product("1000", title="Kettle")


@pytest.fixture
def demo():
    """The sandbox's demo shop (``manage.py load_demo``): anna@example.com has points to spend."""
    from oscar_loyalty import ledger
    from tests.integration.checkout_support import load_demo

    ledger.clear_cache()
    load_demo()


# --- dashboard users (builders in tests/integration/dashboard_support.py) -------------------


@pytest.fixture
def manager(db):
    """manager@example.com: staff with every loyalty permission (password "manager")."""
    from tests.integration.dashboard_support import make_staff

    return make_staff()


@pytest.fixture
def manager_client(manager):
    """A client of its own logged in as ``manager``, so a test may also hold ``customer_client``."""
    from django.test import Client

    from tests.integration.dashboard_support import logged_in

    return logged_in(Client(), manager)


@pytest.fixture
def staff_without_permission(db):
    """clerk@example.com: staff, but with no loyalty permission."""
    from tests.integration.dashboard_support import make_staff

    return make_staff("clerk@example.com", perms=False)


@pytest.fixture
def card_viewer(db):
    """viewer@example.com: staff who may look at cards (``view_card``) and nothing more."""
    from django.contrib.auth.models import Permission

    from tests.integration.dashboard_support import make_staff

    viewer = make_staff("viewer@example.com", perms=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_card"))
    return viewer


@pytest.fixture
def customer_client(client, customer):
    """The test client logged in as ``customer`` (Olga)."""
    client.force_login(customer)
    return client
