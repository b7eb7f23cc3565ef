"""Spends per second through ``ledger.debit_card`` on PostgreSQL, against a raw-SQL floor.

Client processes (8 unless BENCH_CLIENTS says otherwise) each set Django up with their own
connection and spend 1 point per call, in two scenarios:

``ledger_spend_many_cards``
    every client spends on cards of its own (a shop's ordinary traffic). Every spend still
    credits the programme's one "redeemed" system account: if the ledger kept a balance on
    that row, all clients would queue on its lock and the ratio would collapse. It does not
    (system balances are derived from transfers), which is what this scenario proves.
``ledger_spend_hot_card``
    every client spends on the same card. The card's row lock serialises the spends by design
    (that is what keeps the balance from going below zero), in the floor as in the ledger.

The floor does the same writes with psycopg and nothing else, in one transaction per spend:
INSERT the transfer row, then ``UPDATE account SET balance = balance - x WHERE id = ... AND
balance >= x``. The ledger adds Python (Django's ORM, key and amount checks, the idempotent
replay path), no extra statement. Rounds of the floor and of the ledger alternate, and each
figure is the median of its rounds, so load from other processes on the machine hits both.

Environment: DATABASE_URL (the server; a database ``loyalty_bench_ledger`` is created and
dropped), BENCH_CLIENTS (8), BENCH_OPS (spends per client per round, 250), BENCH_ROUNDS (3).
"""

import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

from benchmarks import common

DATABASE = "loyalty_bench_ledger"
AMOUNT = Decimal("1.00")
CARDS_PER_CLIENT = 100
START_BALANCE = Decimal("1000000.00")

# name, target ratio (ours / floor) and why.
SCENARIOS = {
    "ledger_spend_many_cards": (
        0.5,
        "the issue's target: the ledger costs at most twice the bare writes",
    ),
    "ledger_spend_hot_card": (
        0.3,
        "spends on one card queue on its row lock in both; the ledger holds that lock a "
        "little longer (Python between the UPDATE and the COMMIT), and with every client "
        "waiting on one row the ratio swings with the scheduler, so a lower bar than for "
        "many cards, still far above what a second hot row (a stored system balance) gives",
    ),
}


def settings():
    return {
        "clients": int(os.environ.get("BENCH_CLIENTS", "8")),
        "ops": int(os.environ.get("BENCH_OPS", "250")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "3")),
    }


# --- child processes -----------------------------------------------------------------------


def prepare(url, clients):
    """Child: schema, one programme, a hot card and CARDS_PER_CLIENT cards per client."""
    common.migrate(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import cards, ledger

    Program = get_model("oscar_loyalty", "Program")
    program = Program.objects.create(name="Bench", code="bench")

    def card(n):
        issued = cards.issue_card(program, phone=f"7912{n:07d}")
        ledger.credit_card(issued, START_BALANCE, f"bench:setup:{issued.pk}")
        return issued.pk

    hot = card(0)
    many = [
        [card(1 + c * CARDS_PER_CLIENT + i) for i in range(CARDS_PER_CLIENT)]
        for c in range(clients)
    ]
    return {"hot": hot, "many": many}


def verify(url, spends):
    """Child: the spends are all there, no balance is negative, ``loyalty_audit`` is clean."""
    common.django_child(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import audit

    Account = get_model("oscar_loyalty", "Account")
    Transfer = get_model("oscar_loyalty", "Transfer")
    problems = audit.audit()
    recorded = Transfer.objects.filter(key__startswith="bench:spend:").count()
    if recorded != spends:
        problems.append(f"{recorded} spends recorded, {spends} made")
    if Account.objects.filter(balance__lt=0, kind=Account.POINTS).exists():
        problems.append("a card balance is negative")
    return problems


def floor_spend(db, sql, key, card_id, account_id, redeemed_id, now):
    """One spend in bare SQL: the same two writes as the ledger, one transaction."""
    with db.cursor() as cursor:
        cursor.execute(sql["insert"], (key, "spend", account_id, redeemed_id, AMOUNT, card_id, now))
        cursor.execute(sql["update"], (AMOUNT, account_id, AMOUNT))
        if cursor.rowcount != 1:
            db.rollback()
            raise RuntimeError(f"floor: not enough points on account {account_id}")
    db.commit()


def client(index, url, plan, card_ids, ops, start, results):
    """Child: run the rounds of ``plan`` ((scenario, impl) pairs) in step with the others."""
    try:
        common.django_child(url)
        import psycopg
        from django.db import connection
        from django.utils import timezone
        from oscar.core.loading import get_model

        from oscar_loyalty import ledger

        Account = get_model("oscar_loyalty", "Account")
        Card = get_model("oscar_loyalty", "Card")
        Transfer = get_model("oscar_loyalty", "Transfer")

        loaded = Card.objects.select_related("program", "account", "debt_account").in_bulk(
            [pk for ids in card_ids.values() for pk in ids]
        )
        redeemed = ledger.system_account(next(iter(loaded.values())).program, ledger.REDEEMED)
        connection.ensure_connection()
        sql = {
            "insert": (
                f"INSERT INTO {Transfer._meta.db_table} (key, kind, debit_id, credit_id, amount,"
                " card_id, order_number, description, note, created)"
                " VALUES (%s, %s, %s, %s, %s, %s, '', '', '', %s) RETURNING id"
            ),
            "update": (
                f"UPDATE {Account._meta.db_table} SET balance = balance - %s"
                " WHERE id = %s AND balance >= %s"
            ),
        }
        with psycopg.connect(url) as db:
            for round_no, (scenario, impl) in enumerate(plan):
                mine = [loaded[pk] for pk in card_ids[scenario]]
                prefix = f"bench:spend:{round_no}:{index}:"
                start.wait(timeout=600)
                began, cpu = time.perf_counter(), time.process_time()
                for i in range(ops):
                    card = mine[i % len(mine)]
                    if impl == "ours":
                        ledger.debit_card(card, AMOUNT, f"{prefix}{i}")
                    else:
                        floor_spend(
                            db,
                            sql,
                            f"{prefix}{i}",
                            card.pk,
                            card.account_id,
                            redeemed.pk,
                            timezone.now(),
                        )
                ended, cpu = time.perf_counter(), time.process_time() - cpu
                results.put(("ok", round_no, (began, ended, cpu)))
    except BaseException:
        start.abort()
        results.put(("error", index, traceback.format_exc()))
        raise


# --- the parent ----------------------------------------------------------------------------


def run_clients(ctx, url, layout, plan, conf):
    """Start the clients, collect (began, ended) per round and client; fail loudly."""
    start = ctx.Barrier(conf["clients"])
    results = ctx.Queue()
    processes = []
    for index in range(conf["clients"]):
        card_ids = {
            "ledger_spend_many_cards": layout["many"][index],
            "ledger_spend_hot_card": [layout["hot"]],
        }
        process = ctx.Process(
            target=client,
            args=(index, url, plan, card_ids, conf["ops"], start, results),
            daemon=True,
        )
        process.start()
        processes.append(process)
    spans = {n: [] for n in range(len(plan))}
    try:
        for _ in range(len(plan) * conf["clients"]):
            status, number, detail = results.get(timeout=900)
            if status == "error":
                raise RuntimeError(f"client {number} failed:\n{detail}")
            spans[number].append(detail)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return {
        n: (max(e for _, e, _ in s) - min(b for b, _, _ in s), sum(c for _, _, c in s))
        for n, s in spans.items()
    }


def main():
    common.add_paths()
    conf = settings()
    ctx = multiprocessing.get_context("spawn")
    plan = [
        (scenario, impl)
        for scenario in SCENARIOS
        for _round in range(conf["rounds"])
        for impl in ("floor", "ours")
    ]
    per_round = conf["clients"] * conf["ops"]
    print(
        f"ledger: {conf['clients']} client processes, {conf['rounds']} rounds of "
        f"{per_round} spends per implementation and scenario (median round shown)",
        flush=True,
    )
    with common.bench_database(DATABASE) as url:
        with ProcessPoolExecutor(1, mp_context=ctx) as admin:
            layout = admin.submit(prepare, url, conf["clients"]).result()
        measured = run_clients(ctx, url, layout, plan, conf)
        with ProcessPoolExecutor(1, mp_context=ctx) as admin:
            problems = admin.submit(verify, url, per_round * len(plan)).result()
        if problems:
            raise AssertionError(
                "the ledger is not sound after the benchmark: " + "; ".join(problems)
            )
        print(
            f"  checked: {per_round * len(plan)} spends recorded, no negative balance, "
            "loyalty_audit clean",
            flush=True,
        )

    for scenario, (target, why) in SCENARIOS.items():
        rates = {}
        print(f"{scenario}:", flush=True)
        for impl, label in (
            ("ours", "ours: ledger.debit_card"),
            ("floor", "floor: raw SQL INSERT + UPDATE"),
        ):
            rounds = [measured[n] for n, step in enumerate(plan) if step == (scenario, impl)]
            taken = common.median([wall for wall, _cpu in rounds])
            cpu = common.median([cpu for _wall, cpu in rounds]) / per_round * 1000
            rates[impl] = common.rate(per_round, taken)
            common.figures(
                label,
                per_round,
                taken,
                [common.rate(per_round, wall) for wall, _cpu in rounds],
                f"client CPU {cpu:.2f} ms/op",
            )
        print(f"  target: {why}", flush=True)
        common.bench_line(scenario, rates["ours"] / rates["floor"], ">=", target)


if __name__ == "__main__":
    main()
