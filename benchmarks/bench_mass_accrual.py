"""A mass accrual to 100,000 cards end to end, against set-based raw SQL doing the same writes.

Ours is what the dashboard's "Accrue to all N matching cards" runs: ``mass_jobs.create`` freezes the
card ids into a job and its chunks, ``tasks.start_job`` runs every chunk as a Celery task
(eager here: no broker, the same task code a worker runs), and each chunk locks its cards'
accounts, inserts their transfers and moves their balances (``ledger.credit_cards``, over
``ledger.post_movements``), then marks the chunk done and counts it on the job.

The floor is the least any implementation must do, in one transaction of two statements:

    INSERT INTO oscar_loyalty_transfer (...) SELECT ... FROM oscar_loyalty_card;   -- 100,000 rows
    UPDATE oscar_loyalty_account SET balance = balance + 1 FROM oscar_loyalty_card ...;

with no job, no chunks, no idempotency check and no per-card rule. Rounds of the floor and of
ours alternate; each figure is the median round. The result is time over floor (lower is
better); the target is at most 3 times the floor.

Environment: DATABASE_URL (the server; database ``loyalty_bench_mass`` is created and
dropped), BENCH_MASS_CARDS (100000), BENCH_ROUNDS (3).
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from multiprocessing import get_context

from benchmarks import common

DATABASE = "loyalty_bench_mass"
TARGET = 3.0
AMOUNT = Decimal("1.00")


def settings():
    return {
        "cards": int(os.environ.get("BENCH_MASS_CARDS", "100000")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "3")),
    }


def prepare(url, count):
    """Child: schema, a programme with a grade, ``count`` cards made set-based in SQL."""
    common.migrate(url)
    from django.db import connection
    from oscar.core.loading import get_model

    Program = get_model("oscar_loyalty", "Program")
    Grade = get_model("oscar_loyalty", "Grade")
    program = Program.objects.create(name="Bench", code="bench")
    grade = Grade.objects.create(program=program, name="Base", earn_percent=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO oscar_loyalty_account (unit, kind, program_id, code, balance)"
            " SELECT 'points', 'points', %s, '', 0 FROM generate_series(1, %s)",
            [program.pk, count],
        )
        # as the package issues them: a points account each, no debt account until a debt
        cursor.execute(
            "INSERT INTO oscar_loyalty_card (program_id, number, phone, grade_id,"
            " grade_is_manual, participates, spend_adjustment, lifetime_spend, status,"
            " status_reason, account_id, created)"
            " SELECT %s, (7000000000000 + p.n)::text, '', %s, false, true, 0, 0, 'active', '',"
            " p.id, now()"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM oscar_loyalty_account"
            "       WHERE kind = 'points') p",
            [program.pk, grade.pk],
        )
        cursor.execute("VACUUM ANALYZE")
    return program.pk


def run_rounds(url, rounds, count):
    """Child: alternate floor and ours; return seconds per round of each."""
    common.django_child(url)
    from django.db import connection, transaction
    from django.utils import timezone
    from oscar.core.loading import get_model

    from oscar_loyalty import ledger, mass_jobs, tasks

    Card = get_model("oscar_loyalty", "Card")
    Job = get_model("oscar_loyalty", "Job")
    Program = get_model("oscar_loyalty", "Program")
    issued = ledger.system_account(Program.objects.get(code="bench"), ledger.ISSUED)
    times = {"floor": [], "ours": []}
    for round_no in range(rounds):
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO oscar_loyalty_transfer (key, kind, debit_id, credit_id, amount,"
                " card_id, order_number, description, note, created)"
                " SELECT 'floor:' || %s || ':card:' || c.id, 'bulk', %s, c.account_id, %s, c.id,"
                " '', 'Gift', '', %s FROM oscar_loyalty_card c",
                [round_no, issued.pk, AMOUNT, timezone.now()],
            )
            cursor.execute(
                "UPDATE oscar_loyalty_account a SET balance = a.balance + %s"
                " FROM oscar_loyalty_card c WHERE a.id = c.account_id",
                [AMOUNT],
            )
        times["floor"].append(time.perf_counter() - began)

        began = time.perf_counter()
        job = mass_jobs.create(
            mass_jobs.ACCRUAL, Card.objects.all(), amount=AMOUNT, description="Gift"
        )
        tasks.start_job(job)  # no broker: every chunk runs now, as a worker would run it
        times["ours"].append(time.perf_counter() - began)
        job.refresh_from_db()
        if (job.status, job.succeeded) != (Job.DONE, count):
            raise AssertionError(f"job {job.pk}: {job.status}, {job.succeeded} of {count}")
        print(
            f"  round {round_no + 1}: floor {times['floor'][-1]:.2f} s,"
            f" ours {times['ours'][-1]:.2f} s ({job.chunks.count()} chunks)",
            flush=True,
        )
    return times


def verify(url, rounds, count):
    """Child: every card got exactly 2 × rounds points, the ledger audits clean."""
    common.django_child(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import audit

    Account = get_model("oscar_loyalty", "Account")
    Transfer = get_model("oscar_loyalty", "Transfer")
    problems = audit.audit()
    expected = AMOUNT * 2 * rounds
    wrong = Account.objects.filter(kind="points").exclude(balance=expected).count()
    if wrong:
        problems.append(f"{wrong} cards do not hold {expected}")
    jobs_made = Transfer.objects.filter(key__startswith="job:").count()
    if jobs_made != count * rounds:
        problems.append(f"{jobs_made} job transfers, expected {count * rounds}")
    return problems


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"mass accrual: {conf['cards']} cards, {conf['rounds']} rounds per implementation"
        " (median round shown)",
        flush=True,
    )
    with common.bench_database(DATABASE) as url:
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(prepare, url, conf["cards"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            times = child.submit(run_rounds, url, conf["rounds"], conf["cards"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            problems = child.submit(verify, url, conf["rounds"], conf["cards"]).result()
    if problems:
        raise AssertionError("the ledger is not sound after the benchmark: " + "; ".join(problems))
    print("  checked: every card credited once per round, loyalty_audit clean", flush=True)
    ours, floor = common.median(times["ours"]), common.median(times["floor"])
    common.figures("ours: job + chunks + credit_cards", conf["cards"], ours)
    common.figures("floor: raw SQL INSERT ... SELECT + UPDATE", conf["cards"], floor)
    print("  ratio: time of ours over time of the floor (lower is better)", flush=True)
    common.bench_line("mass_accrual_100k", ours / floor, "<=", TARGET)


if __name__ == "__main__":
    main()
