"""History lines, import sources and the points' payment method in the reader's language,
whatever language was active when the points moved; text a manager typed stays as typed."""

import importlib
import pkgutil
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from oscar.core.loading import get_model

import oscar_loyalty.migrations
from oscar_loyalty import cards, earning, excel, jobs, ledger, mass_jobs, paying, reports
from oscar_loyalty.card_import import drafts
from oscar_loyalty.card_import import undo as undoing
from tests import factories

Transfer = get_model("oscar_loyalty", "Transfer")
Job = get_model("oscar_loyalty", "Job")
SourceType = get_model("payment", "SourceType")

D = Decimal
HEADER = "Телефон\tНомер карты\tПополнение\tАктуальный баланс\n"
pytestmark = pytest.mark.django_db


def label_in(language, transfer):
    with translation.override(language):
        return transfer.label


def of_kind(card, kind):
    return Transfer.objects.filter(card=card, kind=kind).latest("id")


@pytest.fixture
def funded(card):
    ledger.credit_card(card, D("500"), "test:funds", kind=Transfer.ADJUST)
    return factories.refreshed(card)


# --- the order's movements ---------------------------------------------------------------


@pytest.mark.parametrize("written_in", ["en-gb", "ru"])
def test_points_for_an_order_read_in_the_readers_language(card, customer, kettle, written_in):
    with translation.override(written_in):
        order = factories.set_status(factories.place_order(customer, [(kettle, 1)]), "Complete")

    earned = of_kind(card, Transfer.EARN)
    assert earned.description == ""
    assert label_in("ru", earned) == f"Баллы за заказ {order.number}"
    assert label_in("en-gb", earned) == f"Points for order {order.number}"


def test_an_earning_taken_back_reads_in_the_readers_language(card, customer, kettle):
    order = factories.set_status(factories.place_order(customer, [(kettle, 1)]), "Complete")
    earning.cancel(order)

    reversal = of_kind(card, Transfer.REVERSE)
    assert label_in("ru", reversal) == f"Заказ {order.number} отменён"
    assert label_in("en-gb", reversal) == f"Order {order.number} cancelled"


def test_hold_capture_and_refund_read_in_the_readers_language(funded, customer, kettle):
    order = factories.place_order(customer, [(kettle, 1)])
    with translation.override("ru"):
        paying.hold_points(funded, order.number, D("100"), D("100"))
        paying.capture(order.number)
        paying.refund_order(order)

    hold, capture, refund = (
        of_kind(funded, kind) for kind in (Transfer.HOLD, Transfer.CAPTURE, Transfer.REFUND)
    )
    assert label_in("en-gb", hold) == f"Payment for order {order.number}"
    assert label_in("en-gb", capture) == f"Payment for order {order.number} confirmed"
    assert label_in("en-gb", refund) == f"Order {order.number} cancelled: points returned"
    assert label_in("ru", refund) == f"Заказ {order.number} отменён: баллы возвращены"


def test_released_holds_read_in_the_readers_language(funded):
    paying.hold_points(funded, "N100", D("100"), D("100"))
    paying.hold_points(funded, "N100", D("50"), D("50"))  # the customer changed the amount
    changed = of_kind(funded, Transfer.RELEASE)
    paying.release("N100")  # the order never came
    gone = of_kind(funded, Transfer.RELEASE)

    assert label_in("ru", changed) == "Резерв по заказу N100 изменён"
    assert label_in("ru", gone) == "Заказ N100 не оформлен: баллы возвращены"
    assert label_in("en-gb", gone) == "Order N100 was not placed: points returned"


# --- text a manager typed ------------------------------------------------------------------


def test_a_manual_adjustment_keeps_the_text_as_typed(card):
    with translation.override("ru"):
        typed = cards.adjust(card, "15", "manual:1", description="Подарок ко дню рождения")
    assert label_in("en-gb", typed) == "Подарок ко дню рождения"
    untyped = cards.adjust(card, "-5", "manual:2")
    assert label_in("ru", untyped) == ""  # the page shows the kind, translated


def test_a_mass_accrual_keeps_its_description_as_typed(card):
    job = mass_jobs.create(
        mass_jobs.ACCRUAL,
        cards.Card.objects.filter(pk=card.pk),
        amount="10",
        description="Spring gift",
    )
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)

    assert label_in("ru", of_kind(card, Transfer.BULK)) == "Spring gift"


# --- imports -------------------------------------------------------------------------------


def run_import(program, text):
    job = drafts.start(drafts.create_draft(excel.read_pasted(text), program))
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)
    job.refresh_from_db()
    return job


def test_import_top_up_and_its_undo_read_in_the_readers_language(program):
    card = cards.issue_card(program, phone="79123456701", number="4000000000006")
    with translation.override("en-gb"):
        job = run_import(program, HEADER + "79123456701\t\t25\t\n")
    top_up = of_kind(card, Transfer.IMPORT)
    assert label_in("ru", top_up) == "Баллы начислены магазином"

    undo = undoing.create_undo(job)
    for chunk_id in jobs.pending_chunks(undo):
        jobs.run_chunk(chunk_id)
    assert label_in("ru", of_kind(card, Transfer.REVERSE)) == "Импорт отменён магазином"
    assert label_in("en-gb", of_kind(card, Transfer.REVERSE)) == "Import cancelled by the shop"


def test_a_new_card_from_an_import_opens_with_a_translated_line(program):
    with translation.override("ru"):
        run_import(program, HEADER + "79123456709\t\t\t40\n")
    card = cards.Card.objects.get(program=program, phone="79123456709")
    assert label_in("en-gb", of_kind(card, Transfer.IMPORT)) == "Opening balance of the card"


def test_pasted_cells_are_named_in_the_readers_language(program):
    with translation.override("ru"):
        job = drafts.create_draft(excel.read_pasted(HEADER + "79123456701\t\t25\t\n"), program)
    assert (job.params["source"], job.params["source_kind"]) == ("", Job.PASTED)
    with translation.override("en-gb"):
        assert job.source_label == "Pasted cells"
    with translation.override("ru"):
        assert job.source_label == "Вставленные ячейки"


def test_the_import_page_names_pasted_cells_in_the_managers_language(manager_client, program):
    job = drafts.create_draft(excel.read_pasted(HEADER + "79123456701\t\t25\t\n"), program)

    response = manager_client.get(
        reverse("loyalty-import-job", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="ru", follow=True
    )

    assert "Вставленные ячейки" in text(response)
    assert "Pasted cells" not in text(response)


def test_a_file_keeps_its_name(program):
    table = excel.read_csv(HEADER.replace("\t", ";").encode() + b"79123456701;;25;\n", "may.csv")
    job = drafts.create_draft(table, program)
    with translation.override("ru"):
        assert job.source_label == "may.csv"


# --- the pages and the export ----------------------------------------------------------------


def text(response):
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_the_customers_history_is_in_russian_for_a_russian_reader(client, card, customer, kettle):
    order = factories.set_status(factories.place_order(customer, [(kettle, 1)]), "Complete")
    client.force_login(customer)

    page = text(client.get("/accounts/bonus-cards/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert f"Баллы за заказ {order.number}" in page
    assert "Points for order" not in page


def test_the_card_page_and_the_report_are_in_the_managers_language(
    manager_client, card, customer, kettle
):
    order = factories.set_status(factories.place_order(customer, [(kettle, 1)]), "Complete")

    card_page = text(
        manager_client.get(
            reverse("loyalty-card-detail", args=[card.pk]), HTTP_ACCEPT_LANGUAGE="ru"
        )
    )
    report = text(manager_client.get(reverse("loyalty-report"), HTTP_ACCEPT_LANGUAGE="ru"))

    for page in (card_page, report):
        assert f"Баллы за заказ {order.number}" in page
        assert "Points for order" not in page


def test_export_rows_are_in_the_exporting_managers_language(card, customer, kettle):
    order = factories.set_status(factories.place_order(customer, [(kettle, 1)]), "Complete")
    cards.adjust(card, "5", "manual:1", description="Typed by hand")
    with translation.override("ru"):
        rows = {row[-4] for row in reports.report_rows(reports.transfers())}
    assert rows == {f"Баллы за заказ {order.number}", "Typed by hand"}


# --- the payment source type ---------------------------------------------------------------


def test_the_points_source_type_is_named_in_the_shops_language():
    with override_settings(LANGUAGE_CODE="ru"), translation.override("en-gb"):
        found = paying.source_type()
    assert (found.code, found.name) == ("bonus-points", "Бонусные баллы")


def test_a_customer_reading_russian_does_not_name_it_for_an_english_shop():
    with translation.override("ru"):
        found = paying.source_type()
    assert (found.code, found.name) == ("bonus-points", "Bonus points")


# --- rows written before --------------------------------------------------------------------


def migration_function(name):
    for module in pkgutil.iter_modules(oscar_loyalty.migrations.__path__):
        migration = importlib.import_module(f"oscar_loyalty.migrations.{module.name}")
        if hasattr(migration, "ORDER_TEXTS") and hasattr(migration, name):
            return getattr(migration, name)
    raise AssertionError(f"no migration has {name}")


def migrate(name):
    editor = SimpleNamespace(
        connection=connection,
        quote_name=connection.ops.quote_name,
        execute=lambda sql: connection.cursor().execute(sql),
    )
    migration_function(name)(apps, editor)


def test_old_generated_descriptions_render_in_the_readers_language(card):
    earned = ledger.credit_card(
        card, D("30"), "old:1", kind=Transfer.EARN, order_number="7", description="Баллы за заказ 7"
    )
    imported = ledger.credit_card(
        card, D("5"), "old:2", kind=Transfer.IMPORT, description="Points added by the shop"
    )
    typed = ledger.credit_card(
        card, D("1"), "old:3", kind=Transfer.ADJUST, description="Points for order 7"
    )

    migrate("transfers")

    earned, imported, typed = (Transfer.objects.get(pk=t.pk) for t in (earned, imported, typed))
    assert earned.description == "" and label_in("en-gb", earned) == "Points for order 7"
    assert label_in("ru", imported) == "Баллы начислены магазином"
    assert (typed.description, typed.label_code) == ("Points for order 7", "")


def test_old_pasted_imports_and_the_english_source_type_are_renamed(program):
    job = Job.objects.create(kind=Job.IMPORT, program=program, params={"source": "Pasted cells"})
    SourceType.objects.create(code="bonus-points", name="Bonus points")

    migrate("jobs")
    with override_settings(LANGUAGE_CODE="ru"):
        migrate("source_type")

    job.refresh_from_db()
    with translation.override("ru"):
        assert job.source_label == "Вставленные ячейки"
    assert SourceType.objects.get(code="bonus-points").name == "Бонусные баллы"
