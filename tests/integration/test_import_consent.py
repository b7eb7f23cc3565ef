"""The import's optional "Consent to messages" column: new and existing cards, who and when is
recorded, blanks, bad values, the preview, the careful row-by-row path and undo."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from oscar.core.loading import get_model

from oscar_loyalty import cards, ledger
from oscar_loyalty.card_import import apply as applying
from oscar_loyalty.card_import import cells, drafts, rows
from oscar_loyalty.card_import import undo as undoing
from oscar_loyalty.exceptions import InsufficientPoints
from tests.integration.test_import import apply, balance, card_of, draft, run, run_chunks

Card = get_model("oscar_loyalty", "Card")
JobChunk = get_model("oscar_loyalty", "JobChunk")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal
HEADER = "Телефон\tНомер карты\tПополнение\tАктуальный баланс\tСогласие на рассылку\n"

pytestmark = pytest.mark.django_db


@pytest.fixture
def existing(program, customer):
    """Olga's card, phone 79123456701, 200 points; she agreed to messages a week ago."""
    card = cards.issue_card(program, user=customer, phone="79123456701", number="4000000000006")
    ledger.credit_card(card, D("200"), "test:opening", kind=Transfer.ADJUST)
    cards.set_consent(card, True)
    week_ago = timezone.now() - timedelta(days=7)
    Card.objects.filter(pk=card.pk).update(consent_changed=week_ago)
    return Card.objects.get(pk=card.pk)


def consent_of(card):
    card = Card.objects.get(pk=card.pk)
    return (card.marketing_consent, card.consent_source, card.consent_changed_by_id)


def test_the_russian_and_english_headers_name_the_column(program):
    for header in ("Согласие", "согласие на рассылку", "Consent", "Marketing consent"):
        assert cells.role_of_header(header) == cells.CONSENT, header
    # "по карте" would otherwise read as the card number column
    assert cells.role_of_header("Согласие на рассылку по карте") == cells.CONSENT
    job = draft(program, HEADER + "79123456701\t\t\t\tда\n")
    assert job.params["mapping"][4] == cells.CONSENT


def test_new_cards_start_with_the_consent_of_the_file(program, manager):
    before = timezone.now()
    job = run(
        program,
        HEADER + "79123456701\t\t\t100\tда\n79123456702\t\t\t\tнет\n79123456703\t\t\t\t\n",
        by=manager,
    )
    assert (job.succeeded, job.failed) == (3, 0)
    agreed = card_of(program, "79123456701")
    assert consent_of(agreed) == (True, Card.CONSENT_IMPORT, manager.pk)
    assert agreed.consent_changed >= before
    assert balance(agreed) == D("100")
    # "no" and blank: the default, nothing recorded
    for phone in ("79123456702", "79123456703"):
        card = card_of(program, phone)
        assert (card.marketing_consent, card.consent_changed, card.consent_source) == (
            False,
            None,
            "",
        )
    totals = drafts.totals(job)
    assert (totals["consent_on"], totals["consent_off"]) == (1, 0)


def test_an_existing_card_is_written_only_when_its_consent_changes(program, existing, manager):
    given = existing.consent_changed
    other = cards.issue_card(program, phone="79123456702")  # no consent yet
    job = draft(
        program,
        HEADER
        + "79123456701\t\t\t\tyes\n"  # already on: left as it is
        + "79123456702\t\t\t\t+\n",  # off → on, the balance untouched
        by=manager,
    )
    totals = drafts.totals(job)
    assert (totals[rows.SAME], totals[rows.CONSENTED], totals["consent_on"]) == (1, 1, 1)
    job = apply(job)
    assert (job.succeeded, job.failed) == (1, 0)  # the unchanged row is not "applied"
    existing.refresh_from_db()
    assert consent_of(existing) == (True, Card.CONSENT_CUSTOMER, None)
    assert existing.consent_changed == given
    assert consent_of(other) == (True, Card.CONSENT_IMPORT, manager.pk)
    assert not Transfer.objects.filter(key__startswith=f"import:{job.pk}:").exists()


def test_an_existing_card_switched_off_with_a_top_up_in_the_same_row(program, existing, manager):
    job = run(program, HEADER + "79123456701\t\t50\t\tнет\n", by=manager)
    assert (job.succeeded, job.failed) == (1, 0)
    assert balance(existing) == D("250")
    existing.refresh_from_db()
    assert consent_of(existing) == (False, Card.CONSENT_IMPORT, manager.pk)
    assert existing.consent_changed > timezone.now() - timedelta(minutes=1)


def test_a_blank_consent_leaves_it_as_it_is(program, existing):
    given = existing.consent_changed
    run(program, HEADER + "79123456701\t\t10\t\t\n")
    existing.refresh_from_db()
    assert balance(existing) == D("210")
    assert consent_of(existing) == (True, Card.CONSENT_CUSTOMER, None)
    assert existing.consent_changed == given


@pytest.mark.parametrize(
    "value, agrees",
    [
        ("да", True),
        ("Нет", False),
        ("1", True),
        ("0", False),
        ("TRUE", True),
        ("false", False),
        ("ИСТИНА", True),
        ("ложь", False),
        ("+", True),
        ("-", False),
        ("−", False),  # a typographic minus
        (" Yes ", True),
        ("n", False),
    ],
)
def test_the_values_a_manager_types(value, agrees):
    assert cells.parse_consent(value) is agrees


def test_a_bad_value_is_an_error_naming_row_column_and_value_and_nothing_of_the_row_applies(
    program, existing
):
    job = draft(program, HEADER + "79123456701\t\t50\t\tможет быть\n79123456702\t\t\t\tда\n")
    errors = drafts.error_list(job)
    assert len(errors) == 1
    n, column, value, reason = errors[0]
    assert (n, column, value) == (2, "E (Согласие на рассылку)", "может быть")
    assert reason == (
        "“может быть” is not a yes or a no: write yes or no, да or нет, 1 or 0, + or −."
    )
    job = apply(job)
    assert (job.succeeded, job.failed) == (1, 1)
    assert balance(existing) == D("200")  # its top-up skipped with it
    assert "“может быть” is not a yes or a no" in dict(
        (n, reason) for n, _cells, reason in drafts.error_rows(job)
    ).get(2, "")
    assert card_of(program, "79123456702").marketing_consent is True  # the good row applies


def test_a_row_refused_for_its_balance_leaves_the_consent(program, existing):
    cards.block(existing, "lost")
    job = run(program, HEADER + "79123456701\t\t10\t\tнет\n")
    assert job.failed == 1
    assert consent_of(existing)[0] is True


def test_a_blocked_card_may_still_have_its_consent_changed(program, existing, manager):
    cards.block(existing, "lost")
    job = run(program, HEADER + "79123456701\t\t\t\tнет\n", by=manager)
    assert (job.succeeded, job.failed) == (1, 0)
    assert consent_of(existing) == (False, Card.CONSENT_IMPORT, manager.pk)


def test_a_card_spending_after_the_confirmation_is_refused_with_its_consent(program, existing):
    job = drafts.start(draft(program, HEADER + "79123456701\t\t-150\t\tнет\n"))
    ledger.debit_card(existing, D("100"), "test:spend")  # the customer pays meanwhile
    job = run_chunks(job)
    assert job.failed == 1
    assert consent_of(existing)[0] is True  # the ledger refused the row: nothing of it


def _queries_to_apply(job):
    with CaptureQueriesContext(connection) as queries:
        job = run_chunks(job)
    assert job.failed == 0
    return len(queries)


def test_a_row_the_ledger_refuses_keeps_its_consent(program, existing, monkeypatch):
    """The ledger has the last word on a balance (a card changed under the chunk's check):
    a row it refuses changes nothing, its consent included."""
    other = cards.issue_card(program, phone="79123456702")
    job = drafts.start(draft(program, HEADER + "79123456701\t\t5\t\tнет\n79123456702\t\t\t\tда\n"))

    def refuse(movements, **details):
        return [], [(m, InsufficientPoints(D("0"), D("5"))) for m in movements]

    monkeypatch.setattr(applying.ledger, "post_movements", refuse)
    job = run_chunks(job)
    assert (job.succeeded, job.failed) == (1, 1)
    assert consent_of(existing)[0] is True
    assert consent_of(other)[0] is True  # a row with nothing for the ledger still applies


def test_consents_are_written_in_a_statement_per_value_not_per_row(program, manager):
    for n in range(30):
        cards.issue_card(program, phone=f"791234567{n:02d}")
        cards.issue_card(program, phone=f"791234569{n:02d}")
    # the same kinds of rows without the column, on other cards: what applying costs anyway
    plain = "".join(f"791234569{n:02d}\t\t1\t\n" for n in range(30))
    plain += "".join(f"791234570{n:02d}\t\t1\t\n" for n in range(30))
    baseline = _queries_to_apply(
        drafts.start(draft(program, HEADER.rsplit("\t", 1)[0] + "\n" + plain, by=manager))
    )
    lines = "".join(f"791234567{n:02d}\t\t1\t\t{'да' if n % 2 else 'нет'}\n" for n in range(30))
    lines += "".join(f"791234568{n:02d}\t\t1\t\tда\n" for n in range(30))  # new cards
    job = drafts.start(draft(program, HEADER + lines, by=manager))
    cards.set_consent(Card.objects.get(phone="79123456700"), True)  # "нет" now changes it
    assert _queries_to_apply(job) <= baseline + 2  # one UPDATE per value
    on = Card.objects.filter(program=program, marketing_consent=True)
    assert on.count() == 15 + 30
    assert not Card.objects.get(phone="79123456700").marketing_consent


def test_the_careful_row_by_row_path_records_the_same(program, existing, manager, monkeypatch):
    def clash(job, rows):
        raise IntegrityError("a card was issued meanwhile")

    monkeypatch.setattr(applying, "_apply_bulk", clash)
    other = cards.issue_card(program, phone="79123456702")
    job = run(
        program,
        HEADER + "79123456701\t\t5\t\tнет\n79123456702\t\t\t\tда\n79123456703\t\t\t20\tда\n",
        by=manager,
    )
    assert (job.succeeded, job.failed) == (3, 0)
    assert balance(existing) == D("205")
    assert consent_of(existing) == (False, Card.CONSENT_IMPORT, manager.pk)
    assert consent_of(other) == (True, Card.CONSENT_IMPORT, manager.pk)
    new = card_of(program, "79123456703")
    assert consent_of(new) == (True, Card.CONSENT_IMPORT, manager.pk)
    assert balance(new) == D("20")


def test_undo_reverses_the_points_and_leaves_the_consent(program, existing, manager):
    job = run(program, HEADER + "79123456701\t\t50\t\tнет\n79123456702\t\t\t30\tда\n", by=manager)
    undo_job = run_chunks(undoing.create_undo(job, by=manager))
    assert undo_job.failed == 0
    assert balance(existing) == D("200")
    assert consent_of(existing) == (False, Card.CONSENT_IMPORT, manager.pk)
    new = card_of(program, "79123456702")
    assert (balance(new), new.marketing_consent) == (0, True)


def test_an_import_stored_before_the_column_still_runs_and_undoes(program, existing):
    job = drafts.start(
        draft(program, "Телефон\tНомер карты\tПополнение\tАктуальный баланс\n79123456701\t\t5\t\n")
    )
    for chunk in JobChunk.objects.filter(job=job):  # the ten fields rows used to have
        chunk.items = [item[:10] for item in chunk.items]
        chunk.save(update_fields=["items"])
    job = run_chunks(job)
    assert (job.succeeded, job.failed) == (1, 0)
    assert balance(existing) == D("205")
    assert run_chunks(undoing.create_undo(job)).failed == 0
    assert balance(existing) == D("200")


def test_without_a_header_a_column_of_yes_and_no_is_guessed(program):
    job = draft(program, "79123456701\tда\n79123456702\tнет\n79123456703\t\n")
    assert job.params["mapping"] == [cells.PHONE, cells.CONSENT]


# --- the screens ------------------------------------------------------------------------------


def test_the_preview_shows_the_column_and_what_each_row_does(manager_client, program, existing):
    text = (
        HEADER + "79123456701\t\t10\t\tнет\n79123456702\t\t\t\tда\n79123456703\t\t\t\tбыть может\n"
    )
    response = manager_client.post(reverse("loyalty-import"), {"program": program.pk, "text": text})
    page = manager_client.get(response.url).content.decode()
    assert "Balance 200 → 210; messages switched off" in page
    assert "New card; messages switched on" in page
    assert "E (Согласие на рассылку)" in page
    assert "быть может" in page
    assert "2 rows will change cards of" in page


def test_the_import_page_explains_the_column_and_undo(manager_client):
    page = manager_client.get(reverse("loyalty-import")).content.decode()
    assert "Consent to messages" in page
    assert "undoing the import does not change it back" in page


def test_the_undo_page_says_consent_stays(manager_client, program, existing, manager):
    job = run(program, HEADER + "79123456701\t\t50\t\tнет\n", by=manager)
    page = manager_client.get(reverse("loyalty-import-undo", args=[job.pk])).content.decode()
    assert "Consent to messages the import changed stays as the import left it." in page


def test_the_error_reads_in_russian_for_a_russian_manager(program):
    with translation.override("ru"):
        job = draft(program, HEADER + "79123456701\t\t\t\tможет быть\n")
        n, column, value, reason = drafts.error_list(job)[0]
    assert (n, column, value) == (2, "E (Согласие на рассылку)", "может быть")
    assert reason.startswith("«может быть» — не «да» и не «нет»")


def test_the_card_page_says_the_import_changed_it_and_who_ran_it(manager_client, program, manager):
    card = cards.issue_card(program, phone="79123456702")
    run(program, HEADER + "79123456702\t\t\t\tда\n", by=manager)
    response = manager_client.get(reverse("loyalty-card-detail", args=[card.pk]))
    panel = response.content.decode().split('id="consent_panel"')[1].split("</tr>")[0]
    assert "Agrees to receive them" in panel
    assert "through an import" in panel
    assert "manager@example.com" in panel
