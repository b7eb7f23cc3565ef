"""Descriptions in the reader's language.

Transfers the package wrote before this stored their description translated into the
language active at the time. Those whose text is exactly one of the package's generated
texts (English or Russian) get it replaced by its code, so they render in the reader's
language; anything else (a manager's typed text) stays as it is. The same for imports read
from pasted cells, and for the "Bonus points" payment source type still named in English:
it takes its name in the shop's ``LANGUAGE_CODE``. The texts are written out here, as they
were, so the migration never depends on the code of a later release.
"""

from django.conf import settings
from django.db import migrations, models
from django.utils import translation

ORDER_KINDS = ("earn", "repay", "hold", "capture", "release", "refund", "reverse", "debt")
IMPORT_KINDS = ("import", "repay", "reverse", "debt")

# code: (English, Russian), "{}" for the transfer's order number
ORDER_TEXTS = {
    "order-earn": ("Points for order {}", "Баллы за заказ {}"),
    "order-hold": ("Payment for order {}", "Оплата заказа {}"),
    "order-capture": ("Payment for order {} confirmed", "Оплата заказа {} подтверждена"),
    "hold-changed": ("Reservation changed for order {}", "Резерв по заказу {} изменён"),
    "order-not-placed": (
        "Order {} was not placed: points returned",
        "Заказ {} не оформлен: баллы возвращены",
    ),
    "order-refund": ("Order {} cancelled: points returned", "Заказ {} отменён: баллы возвращены"),
    "line-refund": (
        "Refund on order {}: points returned",
        "Возврат по заказу {}: баллы возвращены",
    ),
    "order-cancel": ("Order {} cancelled", "Заказ {} отменён"),
    "line-cancel": ("Refund on order {}", "Возврат по заказу {}"),
}
IMPORT_TEXTS = {
    "import-new": ("Opening balance of the card", "Начальный баланс карты"),
    "import-set": ("Balance updated by the shop", "Баланс обновлён магазином"),
    "import-add": ("Points added by the shop", "Баллы начислены магазином"),
    "import-take": ("Points taken by the shop", "Баллы списаны магазином"),
    "import-undo": ("Import cancelled by the shop", "Импорт отменён магазином"),
}
PASTED = ("Pasted cells", "Вставленные ячейки")
TRIGGER = "oscar_loyalty_transfer_immutable"


def _code(kind, order_number, description):
    if order_number and kind in ORDER_KINDS:
        for code, texts in ORDER_TEXTS.items():
            if description in (text.format(order_number) for text in texts):
                return code
    if kind in IMPORT_KINDS:
        for code, texts in IMPORT_TEXTS.items():
            if description in texts:
                return code
    return None


def _codes(Transfer):
    """``{code: [transfer ids]}`` of the transfers whose description was generated."""
    found = {}
    rows = Transfer.objects.exclude(description="").filter(
        kind__in=set(ORDER_KINDS) | set(IMPORT_KINDS)
    )
    for pk, kind, number, text in rows.values_list(
        "pk", "kind", "order_number", "description"
    ).iterator(chunk_size=2000):
        code = _code(kind, number, text)
        if code:
            found.setdefault(code, []).append(pk)
    return found


def transfers(apps, schema_editor):
    Transfer = apps.get_model("oscar_loyalty", "Transfer")
    found = _codes(Transfer)
    if not found:
        return
    postgres = schema_editor.connection.vendor == "postgresql"
    table = schema_editor.quote_name(Transfer._meta.db_table)
    if postgres:  # transfers are immutable; this one rewording of old rows is the exception
        # ALTER TABLE refuses while deferred foreign-key checks wait: run them first.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRIGGER}")
    for code, ids in found.items():
        for start in range(0, len(ids), 500):
            Transfer.objects.filter(pk__in=ids[start : start + 500]).update(
                description="", label_code=code
            )
    if postgres:
        schema_editor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRIGGER}")


def jobs(apps, schema_editor):
    Job = apps.get_model("oscar_loyalty", "Job")
    for job in Job.objects.filter(kind="import", params__source__in=PASTED):
        job.params.update(source="", source_kind="pasted")
        job.save(update_fields=["params"])


def source_type(apps, schema_editor):
    SourceType = apps.get_model("payment", "SourceType")
    with translation.override(settings.LANGUAGE_CODE):
        name = translation.gettext("Bonus points")
    SourceType.objects.filter(code="bonus-points", name="Bonus points").update(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("oscar_loyalty", "0008_phone_changes_replacement"),
        ("payment", "__first__"),
    ]

    operations = [
        migrations.AddField(
            model_name="transfer",
            name="label_code",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                max_length=32,
                verbose_name="generated description",
            ),
        ),
        migrations.AlterField(
            model_name="transfer",
            name="description",
            field=models.CharField(
                blank=True,
                help_text="The customer sees it. Typed by a manager; empty when generated.",
                max_length=255,
                verbose_name="description",
            ),
        ),
        migrations.RunPython(transfers, migrations.RunPython.noop),
        migrations.RunPython(jobs, migrations.RunPython.noop),
        migrations.RunPython(source_type, migrations.RunPython.noop),
    ]
