"""The import's set-based path on PostgreSQL: array lookups, multi-row inserts, balance
moves in one statement, and what happens when other work runs at the same time.

Each test uses ``transaction=True`` so that threads have their own connections and commit.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connections
from oscar.core.loading import get_model

from oscar_loyalty import audit, cards, excel, jobs, ledger
from oscar_loyalty.card_import import drafts

Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Transfer = get_model("oscar_loyalty", "Transfer")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = Decimal
HEADER = "Телефон\tНомер карты\tПополнение\tАктуальный баланс\n"


def draft(program, text):
    return drafts.start(drafts.create_draft(excel.read_pasted(text), program))


def apply(job):
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)
    job.refresh_from_db()
    return job


def together(*operations):
    start = threading.Barrier(len(operations))
    results = [None] * len(operations)

    def worker(index):
        try:
            start.wait(timeout=60)
            results[index] = ("ok", operations[index]())
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(operations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_thousands_of_rows_of_every_kind_in_a_few_statements(program, settings):
    settings.OSCAR_LOYALTY_IMPORT_CHUNK_SIZE = 500
    existing = []
    for n in range(300):
        card = cards.issue_card(program, phone=f"7912300{n:04d}")
        ledger.credit_card(card, D("100"), f"test:{n}", kind=Transfer.ADJUST)
        existing.append(card)
    indebted = existing[0]
    ledger.debit_card(indebted, D("100"), "test:spend")
    ledger.take_back(indebted, D("40"), "test:back")  # owes 40
    lines = [f"7912300{n:04d}\t\t\t{n + 1}\n" for n in range(100)]  # balances set
    lines += [f"7912300{n:04d}\t\t-{n % 50}\t\n" for n in range(100, 300)]  # debits
    lines += [f"7912400{n:04d}\t\t{n % 7}\t{n}\n" for n in range(2000)]  # new cards
    job = apply(draft(program, HEADER + "".join(lines)))
    assert (job.status, job.failed) == (Job.DONE, 0)
    assert job.succeeded == 2295  # five rows change nothing (99 → 100 set, four "-0" top-ups)
    assert Card.objects.filter(program=program).count() == 2300
    by_phone = dict(Card.objects.values_list("phone", "account__balance"))
    assert by_phone["79123000001"] == D("2")
    assert by_phone["79123000150"] == D("100")  # -(150 % 50) = 0: unchanged
    assert by_phone["79123000151"] == D("99")
    assert by_phone["79124001999"] == D(1999 + 1999 % 7)
    # the indebted card repaid its 40 from the 1 point set... it had 0: +1 goes to the debt
    indebted.refresh_from_db()
    assert (ledger.balance(indebted.account), -ledger.balance(indebted.debt_account)) == (0, 39)
    assert audit.audit() == []
    generated = Card.objects.filter(phone__startswith="791240").values_list("number", flat=True)
    assert all(cards.is_valid_number(number) for number in generated)


def test_two_imports_of_the_same_phone_at_once_issue_one_card(program):
    first = draft(program, HEADER + "79123456701\t\t\t100\n79123456702\t\t\t5\n")
    second = draft(program, HEADER + "79123456701\t\t\t300\n79123456703\t\t\t5\n")
    results = together(lambda: apply(first), lambda: apply(second))
    assert [outcome for outcome, _value in results] == ["ok", "ok"]
    first.refresh_from_db()
    second.refresh_from_db()
    assert Card.objects.filter(program=program, phone="79123456701").count() == 1
    # one of the two got the phone's card; the other's row failed cleanly, with a reason
    assert first.failed + second.failed == 1
    failure = (first.errors or second.errors)[0]
    assert failure["item"] == 2
    assert "79123456701" in failure["reason"] or "+7 912 345-67-01" in failure["reason"]
    # the other rows of both imports were applied
    assert Card.objects.filter(program=program).count() == 3
    assert audit.audit() == []


def test_a_spend_during_the_import_never_takes_a_card_below_zero(program):
    card = cards.issue_card(program, phone="79123456701")
    ledger.credit_card(card, D("100"), "test:opening", kind=Transfer.ADJUST)
    job = draft(program, HEADER + "79123456701\t\t-80\t\n")

    def spend():
        fresh = Card.objects.select_related("program", "account", "debt_account").get(pk=card.pk)
        try:
            ledger.debit_card(fresh, D("80"), "test:spend")
        except Exception as exc:
            return exc
        return None

    together(lambda: apply(job), spend)
    job.refresh_from_db()
    balance = ledger.balance(card.account)
    assert balance >= 0
    # exactly one of the two 80-point debits happened
    assert balance == D("20")
    assert job.succeeded + Transfer.objects.filter(key="test:spend").count() == 1
    assert audit.audit() == []


def test_array_lookups_find_what_in_lists_find(program):
    from oscar_loyalty.lookups import among

    made = [cards.issue_card(program, phone=f"7912345670{n}") for n in range(5)]
    phones = [c.phone for c in made[:3]] + ["70000000000"]
    found = set(Card.objects.filter(among(Card, "phone", phones)).values_list("pk", flat=True))
    assert found == {c.pk for c in made[:3]}
    ids = set(Card.objects.filter(among(Card, "id", [made[4].pk])).values_list("pk", flat=True))
    assert ids == {made[4].pk}
    assert not Card.objects.filter(among(Card, "id", [])).exists()  # an empty list finds none


def test_two_managers_confirming_one_table_at_once_start_it_once(program):
    text = HEADER + "79123456701\t\t100\t\n79123456702\t\t\t5\n"
    both = [drafts.create_draft(excel.read_pasted(text), program) for _ in range(2)]
    results = together(*[lambda job=job: drafts.start(job) for job in both])
    outcomes = sorted(type(value).__name__ for _outcome, value in results)
    assert outcomes == ["ImportRepeated", "Job"]
    started = next(value for _outcome, value in results if isinstance(value, Job))
    refused = next(job for job in both if job.pk != started.pk)
    refused.refresh_from_db()
    assert drafts.is_draft(refused)  # nothing a periodic task would run later
    assert refused not in jobs.stalled_jobs(minutes=-1)
    apply(started)
    card = Card.objects.get(program=program, phone="79123456701")
    assert ledger.balance(card.account) == D("100")  # not doubled
    assert audit.audit() == []


def test_consents_ride_the_array_inserts_and_updates(program, settings):
    """New cards get their consent in the cards' ``unnest`` insert (booleans, times and NULLs
    as arrays); existing cards change in one array-matched UPDATE per value."""
    from django.contrib.auth import get_user_model

    settings.OSCAR_LOYALTY_IMPORT_CHUNK_SIZE = 500
    manager = get_user_model().objects.create_user("m@example.com", "m@example.com", "x")
    for n in range(40):
        card = cards.issue_card(program, phone=f"7912300{n:04d}")
        if n % 4 == 0:
            cards.set_consent(card, True)  # on already: "нет" below switches it off
    header = HEADER.rstrip("\n") + "\tСогласие\n"
    lines = [f"7912300{n:04d}\t\t{n % 3}\t\t{'да' if n % 2 else 'нет'}\n" for n in range(40)]
    lines += [f"7912400{n:04d}\t\t\t{n}\t{'+' if n % 2 else ''}\n" for n in range(60)]
    job = drafts.create_draft(excel.read_pasted(header + "".join(lines)), program, by=manager)
    job = apply(drafts.start(job))
    assert (job.status, job.failed) == (Job.DONE, 0)
    found = {
        phone: (consent, source, by, changed is not None)
        for phone, consent, source, by, changed in Card.objects.values_list(
            "phone", "marketing_consent", "consent_source", "consent_changed_by", "consent_changed"
        )
    }
    imported = ("import", manager.pk, True)
    for n in range(40):
        phone = f"7912300{n:04d}"
        if n % 2:
            assert found[phone] == (True, *imported), phone
        elif n % 4 == 0:
            assert found[phone] == (False, *imported), phone  # switched off
        else:
            assert found[phone] == (False, "", None, False), phone  # "нет" on an off card
    for n in range(60):
        phone = f"7912400{n:04d}"
        assert found[phone] == ((True, *imported) if n % 2 else (False, "", None, False)), phone
    assert audit.audit() == []
