"""Default customer categories, and what the dashboard's card list needs for a million cards.

- Categories "Regular", "Loyal" and "VIP": stored in English, shown translated
  (``AbstractCategory.label``).
- ``Card.last_order_at`` (kept by ``grades.recalculate``) and indexes on the columns the card
  list searches, filters and sorts on (number, lifetime spend, last order).
- ``Accrual.description``: what the customer sees on pending points of a mass accrual.
"""

from decimal import Decimal

from django.conf import settings
from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery

DEFAULT_CATEGORIES = [
    # name (translated when shown), colour
    ("Regular", "#17a2b8"),
    ("Loyal", "#28a745"),
    ("VIP", "#6f42c1"),
]


def create_categories(apps, schema_editor):
    Category = apps.get_model("oscar_loyalty", "Category")
    for name, colour in DEFAULT_CATEGORIES:
        Category.objects.get_or_create(name=name, defaults={"colour": colour})


def remove_unused_categories(apps, schema_editor):
    Category = apps.get_model("oscar_loyalty", "Category")
    names = [name for name, _ in DEFAULT_CATEGORIES]
    Category.objects.filter(name__in=names, customers__isnull=True).delete()


def complete_statuses():
    """The complete statuses as ``grades.complete_statuses`` read them when this was written:
    the setting, else the pipeline's last statuses that are not cancelled."""
    configured = getattr(settings, "OSCAR_LOYALTY_COMPLETE_STATUSES", None)
    if configured:
        return tuple(configured)
    cancelled = getattr(settings, "OSCAR_LOYALTY_CANCELLED_STATUSES", ("Cancelled",))
    pipeline = getattr(settings, "OSCAR_ORDER_STATUS_PIPELINE", {}) or {}
    named = list(pipeline) + [s for nexts in pipeline.values() for s in nexts]
    finals = [s for s in dict.fromkeys(named) if not pipeline.get(s)]
    return tuple(s for s in finals if s not in cancelled) or ("Complete",)


def fill_last_order(apps, schema_editor):
    """Cards issued before this migration learn the date of their last completed order."""
    Card = apps.get_model("oscar_loyalty", "Card")
    Order = apps.get_model("order", "Order")
    last = (
        Order.objects.filter(user_id=OuterRef("user_id"), status__in=complete_statuses())
        .values("user_id")
        .annotate(m=Max("date_placed"))
        .values("m")[:1]
    )
    Card.objects.filter(user__isnull=False).update(last_order_at=Subquery(last))


class Migration(migrations.Migration):
    dependencies = [
        ("oscar_loyalty", "0002_transfer_immutable"),
        ("order", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="accrual",
            name="description",
            field=models.CharField(
                blank=True,
                help_text="The customer sees it. Empty for an order's points.",
                max_length=255,
                verbose_name="description",
            ),
        ),
        migrations.AddField(
            model_name="card",
            name="last_order_at",
            field=models.DateTimeField(
                blank=True,
                db_index=True,
                editable=False,
                null=True,
                verbose_name="last completed order",
            ),
        ),
        migrations.AlterField(
            model_name="card",
            name="lifetime_spend",
            field=models.DecimalField(
                db_index=True,
                decimal_places=2,
                default=Decimal("0"),
                editable=False,
                max_digits=14,
                verbose_name="lifetime spend",
            ),
        ),
        migrations.AlterField(
            model_name="card",
            name="number",
            field=models.CharField(db_index=True, max_length=32, verbose_name="card number"),
        ),
        migrations.RunPython(create_categories, remove_unused_categories),
        migrations.RunPython(fill_last_order, migrations.RunPython.noop),
    ]
