"""The order-status system checks: a shop whose orders cannot reach a complete or a cancelled
status is told so at start-up (points would otherwise stay pending forever)."""

from django.conf import settings
from django.core import checks
from django.test import override_settings
from django.utils import translation

from oscar_loyalty import grades
from oscar_loyalty.checks import check_order_statuses

# Oscar 4.2's "Building your own shop" page, "Defining the order pipeline".
OSCAR_DOCS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Processed", "Cancelled"),
    "Cancelled": (),
}


def ids(found):
    return [message.id for message in found]


def test_fresh_oscar_defaults_warn_about_both():
    # A fresh project sets neither: oscar.defaults has no pipeline and no initial status.
    with override_settings():
        del settings.OSCAR_INITIAL_ORDER_STATUS
        del settings.OSCAR_ORDER_STATUS_PIPELINE
        del settings.OSCAR_ORDER_STATUS_CASCADE
        found = check_order_statuses()
        registered = checks.run_checks()

    assert ids(found) == ["oscar_loyalty.W001", "oscar_loyalty.W002"]
    assert all(message.level == checks.WARNING for message in found)
    assert "“Complete”" in found[0].msg and "pending forever" in found[0].msg
    assert "initial status (OSCAR_INITIAL_ORDER_STATUS is not set)" in found[0].msg
    assert "“Cancelled”" in found[1].msg
    assert "OSCAR_ORDER_STATUS_PIPELINE" in found[0].hint
    # registered, so `manage.py check` and runserver show them
    assert {"oscar_loyalty.W001", "oscar_loyalty.W002"} <= set(ids(registered))


def test_sandbox_settings_pass():
    # tests.settings are the sandbox's: Pending → ... → Complete / Cancelled
    assert settings.OSCAR_INITIAL_ORDER_STATUS == "Pending"
    assert check_order_statuses() == []


@override_settings(
    OSCAR_ORDER_STATUS_PIPELINE={"Pending": ("Complete",), "Complete": ()},
)
def test_pipeline_without_cancelled_status_warns_about_that_one():
    assert ids(check_order_statuses()) == ["oscar_loyalty.W002"]


@override_settings(
    OSCAR_ORDER_STATUS_PIPELINE={
        "Pending": ("Shipped", "Cancelled"),
        "Shipped": ("Delivered", "Cancelled"),
        "Delivered": (),
        "Cancelled": (),
        # a status no order can reach from "Pending" does not count
        "Imported": ("Complete",),
        "Complete": (),
    },
    OSCAR_LOYALTY_COMPLETE_STATUSES=("Complete",),
)
def test_complete_status_only_reachable_from_elsewhere_warns():
    found = check_order_statuses()
    assert ids(found) == ["oscar_loyalty.W001"]
    assert "OSCAR_LOYALTY_COMPLETE_STATUSES" in found[0].hint


@override_settings(OSCAR_ORDER_STATUS_PIPELINE=OSCAR_DOCS_PIPELINE)
def test_oscars_documented_pipeline_completes_on_its_last_status():
    # "Processed" is only named as a next status, yet it is where a good order ends.
    assert grades.complete_statuses() == ("Processed",)
    assert check_order_statuses() == []


@override_settings(OSCAR_INITIAL_ORDER_STATUS="Complete")
def test_an_order_placed_complete_never_changes_status():
    # Points post on a status *change*; an order created "Complete" gets none.
    assert ids(check_order_statuses()) == ["oscar_loyalty.W001"]


@override_settings(OSCAR_ORDER_STATUS_PIPELINE={})
def test_warnings_are_translated():
    with translation.override("ru"):
        found = check_order_statuses()
    assert "ожидающими" in found[0].msg
    assert "отменённый заказ" in found[1].msg
    assert found[0].hint.startswith("Задайте OSCAR_INITIAL_ORDER_STATUS")
