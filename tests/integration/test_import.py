"""Importing cards from Excel: the source documents' scenarios, applying, idempotency, undo."""

from decimal import Decimal

import pytest
from django.test import RequestFactory
from oscar.apps.customer.signals import user_registered
from oscar.core.loading import get_model

from oscar_loyalty import audit, cards, excel, jobs, ledger, tasks
from oscar_loyalty.card_import import cells, drafts, handlers, rows
from oscar_loyalty.card_import import undo as undoing
from tests import factories

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")
UserAddress = get_model("address", "UserAddress")

D = Decimal
HEADER = "Телефон\tНомер карты\tПополнение\tАктуальный баланс\n"

pytestmark = pytest.mark.django_db


def draft(program, text, by=None):
    return drafts.create_draft(excel.read_pasted(text), program, by=by)


def apply(job, again=False):
    return run_chunks(drafts.start(job, again=again))


def run_chunks(job):
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)
    job.refresh_from_db()
    return job


def run(program, text, by=None):
    return apply(draft(program, text, by))


def card_of(program, phone):
    return Card.objects.select_related("account", "debt_account").get(program=program, phone=phone)


def balance(card):
    return ledger.balance(card.account)


def reasons(job):
    return {n: reason for n, _cells, reason in drafts.error_rows(job)}


# --- new cards -------------------------------------------------------------------------------


def test_new_cards_with_numbers_from_the_file_or_generated(program):
    job = run(program, HEADER + "79123456701\t4000000000006\t\t500\n79123456702\t\t\t\n")
    assert (job.status, job.succeeded, job.failed) == (Job.DONE, 2, 0)
    first, second = card_of(program, "79123456701"), card_of(program, "79123456702")
    assert first.number == "4000000000006"
    assert balance(first) == D("500")
    # a blank number is generated: the programme's length, a valid check digit
    assert len(second.number) == program.card_number_length
    assert cards.is_valid_number(second.number)
    assert balance(second) == 0
    assert first.grade == program.lowest_grade()
    transfer = Transfer.objects.get(card=first)
    assert (transfer.kind, transfer.amount, transfer.key) == (
        Transfer.IMPORT,
        D("500"),
        f"import:{job.pk}:row:2",
    )
    assert transfer.credit_id == first.account_id
    assert not Transfer.objects.filter(card=second).exists()  # it opens at zero
    assert audit.audit() == []  # opening balances are exactly their transfers


def test_a_new_card_opens_with_actual_balance_plus_top_up(program):
    run(program, HEADER + "79123456701\t\t50\t100\n")
    assert balance(card_of(program, "79123456701")) == D("150")


def test_phones_in_any_form_become_7xxxxxxxxxx(program):
    run(program, HEADER + "8 (912) 345-67-01\t\t\t\n+7 912 345 67 02\t\t\t\n")
    assert set(Card.objects.values_list("phone", flat=True)) == {"79123456701", "79123456702"}


def test_unknown_phones_get_phone_cards_that_attach_when_the_customer_registers(program):
    run(program, HEADER + "79123456701\t\t\t300\n")
    card = card_of(program, "79123456701")
    assert card.user is None
    customer = factories.make_customer("new@example.com")
    request = RequestFactory().post("/accounts/register/", {"phone": "8 912 345-67-01"})
    user_registered.send(sender=None, request=request, user=customer)
    card.refresh_from_db()
    assert card.user == customer
    assert balance(card) == D("300")


def test_a_phone_of_a_known_customer_gets_a_card_bound_to_them(program, customer):
    UserAddress.objects.create(
        user=customer,
        first_name="Olga",
        last_name="K",
        line1="Tverskaya 1",
        line4="Moscow",
        postcode="101000",
        country=factories.Country.objects.get_or_create(
            iso_3166_1_a2="RU", defaults={"name": "Russia"}
        )[0],
        phone_number="+79123456701",
    )
    run(program, HEADER + "79123456701\t\t\t100\n")
    assert card_of(program, "79123456701").user == customer


# --- existing cards --------------------------------------------------------------------------


@pytest.fixture
def existing(program):
    card = cards.issue_card(program, phone="79123456701", number="4000000000006")
    ledger.credit_card(card, D("200"), "test:opening", kind=Transfer.ADJUST)
    return card


def test_actual_balance_sets_the_balance_through_one_import_transfer(program, existing):
    job = run(program, HEADER + "79123456701\t\t\t500\n")
    assert balance(existing) == D("500")
    history = list(ledger.history(existing))
    assert history[0].kind == Transfer.IMPORT
    assert history[0].change == D("300")
    assert history[0].label == "Balance updated by the shop"
    assert f"Import #{job.pk}, row 2" in history[0].note


def test_a_lower_actual_balance_takes_points_away(program, existing):
    run(program, HEADER + "79123456701\t\t\t50\n")
    assert balance(existing) == D("50")
    assert ledger.history(existing)[0].change == D("-150")


def test_an_actual_balance_of_zero_or_blank_keeps_the_balance(program, existing):
    job = run(program, HEADER + "79123456701\t\t\t0\n")
    assert balance(existing) == D("200")
    assert drafts.totals(job)[rows.SAME] == 1
    assert not Transfer.objects.filter(key__startswith=f"import:{job.pk}:").exists()


def test_top_up_is_added_and_a_negative_one_debits(program, existing):
    run(program, HEADER + "79123456701\t\t25,50\t\n")
    assert balance(existing) == D("225.50")
    run(program, HEADER + "79123456701\t\t-100\t\n")
    assert balance(existing) == D("125.50")


def test_balance_then_top_up_in_one_row_is_one_transfer(program, existing):
    job = run(program, HEADER + "79123456701\t\t-20\t500\n")
    assert balance(existing) == D("480")
    assert Transfer.objects.filter(key__startswith=f"import:{job.pk}:").count() == 1


def test_a_top_up_below_zero_is_an_error_row_and_changes_nothing(program, existing):
    job = draft(program, HEADER + "79123456701\t\t-300\t\n")
    assert drafts.totals(job)["errors"] == 1
    assert "would take the card below zero: it has 200" in drafts.error_list(job)[0][3]
    job = apply(job)
    assert (job.succeeded, job.failed) == (0, 1)
    assert balance(existing) == D("200")


def test_below_zero_with_an_actual_balance_says_the_balance_came_from_the_file(program, existing):
    ledger.credit_card(existing, D("1800"), "test:more", kind=Transfer.ADJUST)  # it has 2000
    job = draft(program, HEADER + "79123456701\t\t-600\t500\n")
    assert drafts.error_list(job)[0][3] == (
        "The top-up -600 would take the actual balance 500 from the file below zero."
    )


def test_points_earned_between_check_and_confirmation_do_not_stop_it(program, existing):
    job = draft(program, HEADER + "79123456701\t\t\t500\n")
    ledger.credit_card(existing, D("7"), "test:earned", kind=Transfer.ADJUST)  # an order
    job = apply(job)
    assert balance(existing) == D("500")  # set to what the file says


def test_a_row_that_became_an_error_since_the_check_asks_for_a_new_look(program, existing):
    job = draft(program, HEADER + "79123456701\t\t-150\t\n")
    ledger.debit_card(existing, D("100"), "test:spend")
    with pytest.raises(drafts.PreviewChanged):
        drafts.start(job)
    job.refresh_from_db()
    assert drafts.totals(job)["errors"] == 1 and drafts.is_draft(job)


def test_a_card_that_spent_its_points_after_the_confirmation_is_not_overdrawn(program, existing):
    job = drafts.start(draft(program, HEADER + "79123456701\t\t-150\t\n"))
    assert drafts.totals(job)[rows.TOPPED] == 1
    ledger.debit_card(existing, D("100"), "test:spend")  # the customer pays meanwhile
    job = run_chunks(job)
    assert job.failed == 1
    assert "below zero: it has 100" in reasons(job)[2]
    assert balance(existing) == D("100")


def test_the_card_is_found_by_its_number_when_the_phone_is_blank(program, existing):
    run(program, HEADER + "\t4000000000006\t10\t\n")
    assert balance(existing) == D("210")


def test_a_blocked_card_is_an_error_row(program, existing):
    cards.block(existing, "lost")
    job = draft(program, HEADER + "79123456701\t\t10\t\n")
    assert "is blocked" in drafts.error_list(job)[0][3]


def test_card_of_a_customer_with_debt_repays_it_first(program, existing):
    ledger.debit_card(existing, D("200"), "test:spend")
    ledger.take_back(existing, D("50"), "test:refund")  # 50 owed
    run(program, HEADER + "79123456701\t\t100\t\n")
    existing.refresh_from_db()
    assert balance(existing) == D("50")
    assert -ledger.balance(existing.debt_account) == 0


# --- errors found in the file ----------------------------------------------------------------


def test_every_row_is_checked_and_errors_name_row_column_and_reason(program, existing):
    text = HEADER + (
        "abc\t\t\t\n"  # 2
        "79123456702\t4000000000007\t\t\n"  # 3 check digit
        "79123456703\t4000000000006\t\t\n"  # 4 number of another phone
        "79123456704\t\t1,500\t\n"  # 5 ambiguous
        "79123456704\t\t5\t\n"  # 6 first of a phone...
        "8 912 345-67-04\t\t5\t\n"  # 7 ...repeated in another form
        "\t4000000000014\t5\t\n"  # 8 unknown number, no phone
        "79123456705\t\t\t-1\n"  # 9 negative balance
        "79123456706\t\t-5\t\n"  # 10 a new card below zero
    )
    job = draft(program, text)
    errors = {n: (column, reason) for n, column, _value, reason in drafts.error_list(job)}
    assert set(errors) == {2, 3, 4, 5, 7, 8, 9, 10}
    assert errors[2] == ("A (Телефон)", "“abc” is not a phone number.")
    assert "check digit" in errors[3][1] and errors[3][0] == "B (Номер карты)"
    assert "belongs to the phone +7 912 345-67-01" in errors[4][1]
    assert "ambiguous" in errors[5][1] and errors[5][0] == "C (Пополнение)"
    assert errors[7][1] == "The phone +7 912 345-67-04 is also in row 6."
    assert "a new card needs a phone" in errors[8][1]
    assert "cannot be negative" in errors[9][1]
    assert "cannot start below zero" in errors[10][1]
    totals = drafts.totals(job)
    assert (totals["errors"], totals[rows.NEW]) == (8, 1)


def test_a_phone_with_letters_or_an_extension_issues_no_card(program):
    job = run(program, HEADER + "+7 912 ABC-68-62\t\t100\t\n+7 916 000-00-35;10\t\t5\t\n")
    errors = {n: (column, value, reason) for n, column, value, reason in drafts.error_list(job)}
    assert errors[2] == (
        "A (Телефон)",
        "+7 912 ABC-68-62",
        "“+7 912 ABC-68-62” has letters; write the phone in digits.",
    )
    assert errors[3][0] == "A (Телефон)" and "has an extension (10)" in errors[3][2]
    assert (job.succeeded, job.failed) == (0, 2)
    assert not Card.objects.filter(program=program).exists()


def test_two_rows_for_the_same_card_the_second_is_an_error(program, existing):
    job = draft(program, HEADER + "79123456701\t\t5\t\n\t4000000000006\t5\t\n")
    assert drafts.error_list(job)[0][3] == "The card 4000000000006 is also in row 2."


def test_a_card_number_repeated_in_the_file(program):
    job = draft(
        program, HEADER + "79123456701\t4000000000006\t\t\n79123456702\t4000000000006\t\t\n"
    )
    assert "also in row 2" in drafts.error_list(job)[0][3]


def test_rows_with_errors_are_skipped_and_downloadable_with_the_reason(program):
    job = run(program, HEADER + "79123456701\t\t\t10\nabc\t\t5\t\n=1+1\t\t\t\n")
    assert (job.succeeded, job.failed) == (1, 2)
    rows = list(drafts.error_rows(job))
    assert [(n, cells[0]) for n, cells, _reason in rows] == [(3, "abc"), (4, "=1+1")]
    assert drafts.error_header(job) == [
        "Row",
        "Телефон",
        "Номер карты",
        "Пополнение",
        "Актуальный баланс",
        "Error",
    ]


# --- mapping and header ----------------------------------------------------------------------


def test_remapped_columns_are_checked_again(program):
    job = draft(program, "79123456701\t100\t7\n")
    assert job.params["mapping"] == [cells.PHONE, cells.TOPUP, cells.BALANCE]
    drafts.recheck(job, [cells.PHONE, cells.BALANCE, ""], False)
    job.refresh_from_db()
    assert drafts.preview_rows(job)[0].balance == "100.00"
    drafts.recheck(job, [cells.PHONE, cells.BALANCE, ""], True)  # row 1 is now a header
    job.refresh_from_db()
    assert job.total == 0


def test_the_same_table_imported_again_is_flagged(program):
    text = HEADER + "79123456701\t\t10\t\n"
    first = run(program, text)
    second = draft(program, text)
    assert list(drafts.previous_imports(second)) == [first]


def test_two_drafts_of_one_table_the_second_is_refused_until_imported_again(program):
    text = HEADER + "79123456701\t\t100\t\n"
    first, second = draft(program, text), draft(program, text)
    assert list(drafts.previous_imports(second)) == []  # drafts are not imports yet
    started = drafts.start(first)
    assert list(drafts.previous_imports(second)) == [started]  # running counts, not only done
    with pytest.raises(drafts.ImportRepeated, match=f"imported as import #{first.pk}"):
        drafts.start(second)
    second.refresh_from_db()
    assert drafts.is_draft(second)  # refused: nothing started, nothing to resume later
    assert second not in jobs.stalled_jobs(minutes=-1)
    assert jobs.run_chunk(jobs.pending_chunks(second)[0]) is False
    assert run_chunks(started).succeeded == 1
    assert balance(card_of(program, "79123456701")) == D("100")


def test_a_draft_checked_before_another_import_is_checked_again_at_confirmation(program):
    text = HEADER + "79123456701\t\t100\t\n"
    first, second = draft(program, text), draft(program, text)
    assert drafts.preview_rows(second)[0].action == rows.NEW
    apply(first)  # issues the card with 100 points
    with pytest.raises(drafts.PreviewChanged):
        drafts.start(second, again=True)
    second.refresh_from_db()
    assert drafts.is_draft(second)
    row = drafts.preview_rows(second)[0]
    assert (row.action, row.diff) == (rows.TOPPED, "100.00")  # no longer a "new card"
    assert drafts.totals(second)[rows.TOPPED] == 1
    with pytest.raises(drafts.ImportRepeated):
        drafts.start(second)
    job = apply(second, again=True)  # confirmed: "import it again"
    assert job.status == Job.DONE and balance(card_of(program, "79123456701")) == D("200")


# --- applying: jobs and idempotency ----------------------------------------------------------


def test_a_draft_is_never_resumed_or_run_before_it_is_confirmed(program):
    from datetime import timedelta

    from django.utils import timezone

    job = draft(program, HEADER + "79123456701\t\t\t10\n")
    started = drafts.start(draft(program, HEADER + "79123456702\t\t\t10\n"))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk__in=[job.pk, started.pk]).update(
        created=an_hour_ago, progressed=an_hour_ago
    )
    assert list(jobs.stalled_jobs()) == [started]  # a started job whose worker died is resumed
    assert jobs.run_chunk(jobs.pending_chunks(job)[0]) is False
    assert not Card.objects.filter(phone="79123456701").exists()


def test_confirming_runs_the_celery_job(program, django_capture_on_commit_callbacks):
    job = drafts.start(draft(program, HEADER + "79123456701\t\t\t10\n"))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.start_job(job)
    job.refresh_from_db()
    assert job.status == Job.DONE
    assert balance(card_of(program, "79123456701")) == D("10")


def test_a_redelivered_chunk_changes_nothing(program, existing):
    job = drafts.start(draft(program, HEADER + "79123456701\t\t10\t\n79123456702\t\t\t5\n"))
    (chunk_id,) = jobs.pending_chunks(job)
    assert jobs.run_chunk(chunk_id) is True
    assert jobs.run_chunk(chunk_id) is False  # Celery delivered it again
    assert balance(existing) == D("210")
    assert Card.objects.filter(program=program).count() == 2


def test_rows_applied_again_by_the_handler_change_nothing(program, existing):
    """Even if a chunk's done mark were lost, every row's ledger key stops a second change."""
    job = run(program, HEADER + "79123456701\t\t10\t\n79123456702\t\t\t5\n")
    items = list(drafts.iter_items(job))
    succeeded, failures = handlers.run_rows(job, items)
    assert (succeeded, failures) == (2, [])
    assert balance(existing) == D("210")
    assert balance(card_of(program, "79123456702")) == D("5")
    assert Card.objects.filter(program=program).count() == 2


def test_a_started_import_cannot_be_started_again(program):
    job = run(program, HEADER + "79123456701\t\t\t10\n")
    with pytest.raises(Exception, match="already been started"):
        drafts.start(job)


def test_many_rows_go_through_several_chunks(program, settings):
    settings.OSCAR_LOYALTY_IMPORT_CHUNK_SIZE = 7
    lines = "".join(f"791234{n:05d}\t\t\t{n}\n" for n in range(1, 31))
    job = run(program, HEADER + lines)
    assert job.chunks.count() == 5
    assert (job.succeeded, job.failed) == (30, 0)
    assert ledger.balance(card_of(program, "79123400030").account) == D("30")


def test_counts_say_how_many_rows_changed_a_card_and_how_many_changed_nothing(program, existing):
    job = run(program, HEADER + "79123456701\t\t\t200\n79123456702\t\t\t7\nabc\t\t\t\n")
    assert (job.done, job.succeeded, job.failed) == (3, 1, 1)  # row 2 is unchanged


# --- undo ------------------------------------------------------------------------------------


def undo(job):
    return apply_undo(undoing.create_undo(job))


def apply_undo(undo_job):
    for chunk_id in jobs.pending_chunks(undo_job):
        jobs.run_chunk(chunk_id)
    undo_job.refresh_from_db()
    return undo_job


def test_undo_reverses_a_whole_import(program, existing):
    job = run(program, HEADER + "79123456701\t\t\t500\n79123456702\t\t\t100\n79123456703\t\t-5\t\n")
    assert job.failed == 1  # row 4: a new card cannot start below zero
    undo_job = undo(job)
    assert (undo_job.succeeded, undo_job.failed) == (2, 0)
    assert balance(existing) == D("200")
    assert balance(card_of(program, "79123456702")) == 0
    job.refresh_from_db()
    assert job.status == Job.UNDONE  # the undo job marked it when it finished
    reversal = ledger.history(existing)[0]
    assert reversal.kind == Transfer.REVERSE and reversal.reverses.key == f"import:{job.pk}:row:2"


def test_an_undo_counts_only_the_rows_it_reversed(program, existing):
    other = cards.issue_card(program, phone="79123456704")
    ledger.credit_card(other, D("50"), "test:other", kind=Transfer.ADJUST)
    lines = [
        "79123456701\t\t10\t",
        "79123456702\t\t\t",
        "79123456703\t\t\t0",
        "79123456704\t\t\t50",
    ]
    job = run(program, HEADER + "\n".join(lines) + "\n")
    assert (job.done, job.succeeded, job.failed) == (4, 3, 0)  # two empty new cards, one same
    undo_job = undo(job)
    assert (undo_job.done, undo_job.succeeded, undo_job.failed) == (4, 1, 0)
    assert balance(existing) == D("200")


def test_undo_gives_back_what_the_import_took(program, existing):
    job = run(program, HEADER + "79123456701\t\t-150\t\n")
    undo(job)
    assert balance(existing) == D("200")


def test_undo_refuses_a_card_that_spent_the_points_and_undoes_the_rest(program, existing):
    job = run(program, HEADER + "79123456701\t\t300\t\n79123456702\t\t\t100\n")
    ledger.debit_card(existing, D("450"), "test:spend")  # 50 left of the 500
    check = undoing.undo_check(job)
    assert (check["rows"], check["refused"]) == (1, 1)
    assert "has spent 250 of the 300 imported points" in check["reasons"][0][1]
    undo_job = undo(job)
    assert (undo_job.succeeded, undo_job.failed) == (1, 1)
    assert "4000000000006" in undo_job.errors[0]["reason"]
    assert balance(existing) == D("50")  # left as it is
    assert balance(card_of(program, "79123456702")) == 0
    job.refresh_from_db()
    assert job.status == Job.DONE  # not wholly undone
    # once the card has the points again, undoing again reverses the rest only
    ledger.credit_card(existing, D("250"), "test:earn")
    second = undo(job)
    assert (second.succeeded, second.failed) == (1, 0)  # row 3 was reversed by the first undo
    assert balance(existing) == D("0")
    job.refresh_from_db()
    assert job.status == Job.UNDONE


def test_undo_of_points_that_repaid_a_debt_records_the_debt_again(program, existing):
    ledger.debit_card(existing, D("200"), "test:spend")
    ledger.take_back(existing, D("50"), "test:refund")  # 50 owed
    job = run(program, HEADER + "79123456701\t\t100\t\n79123456702\t\t\t30\n")
    existing.refresh_from_db()
    assert (balance(existing), existing.debt) == (D("50"), D("0"))

    undo_job = undo(job)

    assert (undo_job.succeeded, undo_job.failed) == (2, 0)
    existing.refresh_from_db()
    assert (balance(existing), existing.debt) == (D("0"), D("50"))  # as before the import
    assert balance(card_of(program, "79123456702")) == 0
    assert audit.audit() == []


def test_undo_run_twice_changes_nothing_more(program):
    job = run(program, HEADER + "79123456701\t\t\t100\n")
    undo_job = undoing.create_undo(job)
    apply_undo(undo_job)
    handlers.run_rows(undo_job, [2])  # the same rows handled again
    assert balance(card_of(program, "79123456701")) == 0
    assert Transfer.objects.filter(kind=Transfer.REVERSE).count() == 1


def test_only_a_finished_import_can_be_undone(program):
    job = draft(program, HEADER + "79123456701\t\t\t100\n")
    assert not undoing.can_undo(job)
    with pytest.raises(Exception, match="Only a finished import"):
        undoing.create_undo(job)
