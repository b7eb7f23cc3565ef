"""System checks of the settings the package depends on (``manage.py check`` and start-up).

A fresh Oscar project has no order status pipeline: its orders never change status, so
points would stay pending forever and cancellations would return nothing. These checks say
so at start-up rather than on the first customer's complaint.
"""

from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _

from oscar_loyalty import conf, grades


def reachable_statuses():
    """Order statuses a new order can be moved to, one pipeline step after another."""
    pipeline = getattr(settings, "OSCAR_ORDER_STATUS_PIPELINE", None) or {}
    initial = getattr(settings, "OSCAR_INITIAL_ORDER_STATUS", None)
    reached, todo = set(), list(pipeline.get(initial, ()))
    while todo:
        status = todo.pop()
        if status not in reached:
            reached.add(status)
            todo.extend(pipeline.get(status, ()))
    return reached


def _quoted(statuses):
    return ", ".join(f"“{status}”" for status in statuses)


def _unreachable(message, statuses, setting, check_id):
    initial = getattr(settings, "OSCAR_INITIAL_ORDER_STATUS", None)
    initial = _quoted([initial]) if initial else _("(OSCAR_INITIAL_ORDER_STATUS is not set)")
    return checks.Warning(
        message % {"statuses": _quoted(statuses), "initial": initial},
        hint=_(
            "Set OSCAR_INITIAL_ORDER_STATUS and OSCAR_ORDER_STATUS_PIPELINE as in the README's "
            "step “Order statuses”, or name your own statuses in %(setting)s."
        )
        % {"setting": setting},
        id=check_id,
    )


@checks.register()
def check_order_statuses(app_configs=None, **kwargs):
    """Warn when no status that posts points, or none that returns them, can be reached."""
    reached = reachable_statuses()
    found = []
    complete = grades.complete_statuses()
    if not reached.intersection(complete):
        message = _(
            "No order status that posts points (%(statuses)s) can be reached from the initial "
            "status %(initial)s: earned points would stay pending forever and grades would "
            "never change."
        )
        found.append(
            _unreachable(message, complete, "OSCAR_LOYALTY_COMPLETE_STATUSES", "oscar_loyalty.W001")
        )
    cancelled = tuple(conf.cancelled_statuses)
    if not reached.intersection(cancelled):
        message = _(
            "No order status that returns points (%(statuses)s) can be reached from the initial "
            "status %(initial)s: a cancelled order would keep the points it earned and never "
            "give back the points it was paid with."
        )
        found.append(
            _unreachable(
                message, cancelled, "OSCAR_LOYALTY_CANCELLED_STATUSES", "oscar_loyalty.W002"
            )
        )
    return found
