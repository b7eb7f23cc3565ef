"""The README's install guide, followed to the letter on a brand-new Oscar project.

``django-admin startproject`` in a temporary folder, then the settings of Oscar 4.2's
"Building your own shop", then every README code block marked ``<!-- install-step: KIND
[PATH] -->``, in order (so the guide and this test cannot drift apart). Then, in the new
project's own process (``install_guide_order.py`` fed to its ``manage.py shell``), a customer
pays part of an order with points through Oscar's checkout, the order is completed and the
points must be posted.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PROJECT = "yourproject"
ORDER_SCRIPT = Path(__file__).with_name("install_guide_order.py")

pytestmark = pytest.mark.skipif(
    os.environ.get("LOYALTY_TEST_POSTGRES") == "1",
    reason="runs in make test: the new project has its own SQLite database",
)

# Oscar 4.2, docs/source/internals/getting_started.rst, as a shop would type it in.
OSCAR_SETTINGS = """
from oscar.defaults import *

TEMPLATES[0]['OPTIONS']['context_processors'] += [
    'oscar.apps.search.context_processors.search_form',
    'oscar.apps.checkout.context_processors.checkout',
    'oscar.apps.communication.notifications.context_processors.notifications',
    'oscar.core.context_processors.metadata',
]
INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',

    'django.contrib.sites',
    'django.contrib.flatpages',

    'oscar.config.Shop',
    'oscar.apps.analytics.apps.AnalyticsConfig',
    'oscar.apps.checkout.apps.CheckoutConfig',
    'oscar.apps.address.apps.AddressConfig',
    'oscar.apps.shipping.apps.ShippingConfig',
    'oscar.apps.catalogue.apps.CatalogueConfig',
    'oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig',
    'oscar.apps.communication.apps.CommunicationConfig',
    'oscar.apps.partner.apps.PartnerConfig',
    'oscar.apps.basket.apps.BasketConfig',
    'oscar.apps.payment.apps.PaymentConfig',
    'oscar.apps.offer.apps.OfferConfig',
    'oscar.apps.order.apps.OrderConfig',
    'oscar.apps.customer.apps.CustomerConfig',
    'oscar.apps.search.apps.SearchConfig',
    'oscar.apps.voucher.apps.VoucherConfig',
    'oscar.apps.wishlists.apps.WishlistsConfig',
    'oscar.apps.dashboard.apps.DashboardConfig',
    'oscar.apps.dashboard.reports.apps.ReportsDashboardConfig',
    'oscar.apps.dashboard.users.apps.UsersDashboardConfig',
    'oscar.apps.dashboard.orders.apps.OrdersDashboardConfig',
    'oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig',
    'oscar.apps.dashboard.offers.apps.OffersDashboardConfig',
    'oscar.apps.dashboard.partners.apps.PartnersDashboardConfig',
    'oscar.apps.dashboard.pages.apps.PagesDashboardConfig',
    'oscar.apps.dashboard.ranges.apps.RangesDashboardConfig',
    'oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig',
    'oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig',
    'oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig',
    'oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig',

    # 3rd-party apps that oscar depends on
    'widget_tweaks',
    'haystack',
    'treebeard',
    'sorl.thumbnail',   # Default thumbnail backend, can be replaced
    'django_tables2',
]

SITE_ID = 1

MIDDLEWARE += [
    'oscar.apps.basket.middleware.BasketMiddleware',
    'django.contrib.flatpages.middleware.FlatpageFallbackMiddleware',
]

AUTHENTICATION_BACKENDS = (
    'oscar.apps.customer.auth_backends.EmailBackend',
    'django.contrib.auth.backends.ModelBackend',
)

MEDIA_URL = '/media/'
MEDIA_ROOT = BASE_DIR / 'media'
STATIC_ROOT = BASE_DIR / 'static'

HAYSTACK_CONNECTIONS = {
    'default': {
        'ENGINE': 'haystack.backends.simple_backend.SimpleEngine',
    },
}

DATABASES['default']['ATOMIC_REQUESTS'] = True
"""

OSCAR_URLS = """
from django.apps import apps
from django.urls import include, path
from django.contrib import admin

urlpatterns = [
    path('i18n/', include('django.conf.urls.i18n')),
    path('admin/', admin.site.urls),
    path('', include(apps.get_app_config('oscar').urls[0])),
]
"""

STEP = re.compile(
    r"^(?P<indent> *)<!-- install-step: (?P<kind>\w+)(?: (?P<target>\S+))? -->\n"
    r"(?P=indent)```\w*\n(?P<body>.*?)\n(?P=indent)```$",
    re.MULTILINE | re.DOTALL,
)


def readme_steps():
    """``(kind, target, body)`` of each marked code block, in the README's order."""
    steps = []
    for match in STEP.finditer(README.read_text(encoding="utf-8")):
        cut = len(match["indent"])
        body = "\n".join(line[cut:] for line in match["body"].split("\n"))
        steps.append((match["kind"], match["target"], body))
    return steps


def environment():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    # This checkout's package, whatever the virtualenv's editable install points at.
    env["PYTHONPATH"] = str(ROOT)
    return env


def run(args, cwd, stdin=None):
    started = time.monotonic()
    done = subprocess.run(
        args, cwd=cwd, env=environment(), input=stdin, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{shlex.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    print(f"{time.monotonic() - started:5.1f}s {shlex.join(map(str, args))}")
    return done


def check_installed(command):
    """A ``pip install`` line: each requirement (and each extra's) is in this virtualenv.

    Nothing is downloaded; versions of an extra's packages are not compared (the test
    virtualenv may hold a newer one than Oscar's extra would pick).
    """
    words = shlex.split(command)
    assert words[:2] == ["pip", "install"], command
    for word in words[2:]:
        requirement = Requirement(word)
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (word, installed)
        for extra in requirement.extras:
            needs = [
                Requirement(line)
                for line in metadata.requires(requirement.name) or ()
                if "extra ==" in line
            ]
            named = [r.name for r in needs if r.marker.evaluate({"extra": extra})]
            assert named, f"{requirement.name} has no extra {extra!r}"
            for name in named:
                metadata.version(name)  # raises PackageNotFoundError if missing


def apply_step(kind, target, body, project):
    settings = project / PROJECT / "settings.py"
    if kind == "pip":
        for line in body.splitlines():
            check_installed(line)
    elif kind == "settings":
        with settings.open("a", encoding="utf-8") as out:
            out.write(f"\n{body}\n")
    elif kind == "file":
        path = project / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + "\n", encoding="utf-8")
    elif kind == "edit":
        lines = body.split("\n")
        old = "\n".join(line[1:] for line in lines if line[:1] in (" ", "-"))
        new = "\n".join(line[1:] for line in lines if line[:1] in (" ", "+"))
        path = project / target
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{target} should contain once:\n{old}"
        path.write_text(text.replace(old, new), encoding="utf-8")
    elif kind == "run":
        for line in body.splitlines():
            words = shlex.split(line)
            assert words[:2] == ["python", "manage.py"], line
            run([sys.executable, *words[1:]], cwd=project)
    else:
        raise AssertionError(f"unknown install step {kind!r}")


def test_readme_marks_every_install_step():
    steps = readme_steps()
    commands = [line for kind, _t, body in steps if kind == "run" for line in body.splitlines()]
    assert commands == [
        "python manage.py migrate",
        "python manage.py loyalty_setup",
        "python manage.py oscar_fork_app checkout yourproject",
    ]
    files = {target for kind, target, _body in steps if kind == "file"}
    assert {
        "yourproject/checkout/views.py",
        "templates/oscar/checkout/payment_details.html",
    } <= files
    assert [kind for kind, _t, _b in steps].count("pip") == 1


def test_fresh_oscar_project_by_the_readme_posts_points(tmp_path):
    run([sys.executable, "-m", "django", "startproject", PROJECT], cwd=tmp_path)
    project = tmp_path / PROJECT
    with (project / PROJECT / "settings.py").open("a", encoding="utf-8") as out:
        out.write(OSCAR_SETTINGS)
    (project / PROJECT / "urls.py").write_text(OSCAR_URLS, encoding="utf-8")

    for kind, target, body in readme_steps():
        apply_step(kind, target, body, project)

    checked = run([sys.executable, "manage.py", "check"], cwd=project)
    assert "oscar_loyalty.W00" not in checked.stdout + checked.stderr

    script = ORDER_SCRIPT.read_text(encoding="utf-8")
    output = run([sys.executable, "manage.py", "shell"], cwd=project, stdin=script)
    facts = json.loads(output.stdout.split("FACTS ", 1)[1])

    assert facts["package"].startswith(str(ROOT))
    assert facts["catalogue_lists_product"]
    assert facts["card_grade"] == "Base"  # loyalty_setup's programme issued it on registration
    assert facts["payment_page"] == "/checkout/payment-details/"
    assert facts["panel_shown"] and facts["continue_shown"]
    assert facts["preview_says_points"]
    assert facts["thank_you"] == "/checkout/thank-you/"
    assert facts["order_status"] == "Pending"
    # 200 welcome points - 150 paid; 3 % of the 850 paid in money is pending
    assert facts["balance_placed"] == "50.00"
    assert facts["accrual_placed"] == ["pending", "25.00"]
    assert facts["sources"] == [["Bonus points", "150.00"], ["Cash on delivery", "850.00"]]
    assert ["Cash on delivery", "850.00"] in facts["payment_events"]
    # completing the order posts them
    assert facts["balance_complete"] == "75.00"
    assert facts["accrual_complete"] == ["posted", "25.00"]
