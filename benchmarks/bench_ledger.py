"""Spends per second through ``ledger.debit_card`` on PostgreSQL, against a raw-SQL floor.

Client processes (8 unless BENCH_CLIENTS says otherwise) each set Django up with their own
connection and spend 1 point per call, in two scenarios:

``ledger_spend_many_cards``
    every client spends on cards of its own (a shop's ordinary traffic). Every spend still
    credits the programme's one "redeemed" system account. The ledger derives system
    balances from transfers instead of storing them, so no spend waits for another: its
    ``lock waits`` stay at 0 %, while the reference side (the floor plus an UPDATE of the
    redeemed row per spend, as storing them would need) shows most backends waiting.
``ledger_spend_hot_card``
    every client spends on the same card. The card's row lock serialises the spends by design
    (that is what keeps the balance from going below zero), in the floor as in the ledger.

The floor does the same writes with psycopg and nothing else, in one transaction per spend:
INSERT the transfer row, then ``UPDATE account SET balance = balance - x WHERE id = ... AND
balance >= x``. The ledger runs the same two statements; it adds Python (Django's ORM, key
and amount checks), no statement. Both sides bind parameters the way Django does by default
(client side; BENCH_BINDING=server switches both to server-side binding). The sides of a
round run back to back and the ratio is the median of the rounds' ratios, so load from other
processes on the machine hits both.

Environment: DATABASE_URL (the server; a database ``loyalty_bench_ledger`` is created and
dropped), BENCH_CLIENTS (8), BENCH_OPS (spends per client per round, 250), BENCH_ROUNDS (5),
BENCH_BINDING (client).
"""

import multiprocessing
import os
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

from benchmarks import common

DATABASE = "loyalty_bench_ledger"
AMOUNT = Decimal("1.00")
CARDS_PER_CLIENT = 100
START_BALANCE = Decimal("1000000.00")

OURS, FLOOR, HOT_SYSTEM = "ours", "floor", "hot_system"
LABELS = {
    OURS: "ours: ledger.debit_card",
    FLOOR: "floor: raw SQL INSERT + UPDATE",
    HOT_SYSTEM: "reference: floor + system row UPDATE",
}

# name: (target ratio ours / floor, why, sides measured).
SCENARIOS = {
    "ledger_spend_many_cards": (
        0.5,
        "the issue's target: the ledger keeps at least half the floor's throughput",
        (FLOOR, OURS, HOT_SYSTEM),
    ),
    "ledger_spend_hot_card": (
        0.4,
        "spends on one card queue on its row lock in both, taken at the same point (the "
        "conditional UPDATE just before COMMIT); about 0.6 to 0.8 measured, and a ledger that "
        "locked the card before its INSERT measured 0.17, so 0.4 catches that with room "
        "for a busy machine (benchmarks/README.md)",
        (FLOOR, OURS),
    ),
}


def settings():
    return {
        "clients": int(os.environ.get("BENCH_CLIENTS", "8")),
        "ops": int(os.environ.get("BENCH_OPS", "250")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "5")),
        "binding": os.environ.get("BENCH_BINDING", "client"),
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


def floor_spend(db, sql, key, card_id, account_id, redeemed_id, now, system_row=False):
    """One spend in bare SQL: the same two writes as the ledger, one transaction.

    ``system_row`` also rewrites the "redeemed" account's row, as a ledger that stored system
    balances would: the reference that shows what such a hot row costs.
    """
    with db.cursor() as cursor:
        cursor.execute(sql["insert"], (key, "spend", account_id, redeemed_id, AMOUNT, card_id, now))
        cursor.execute(sql["update"], (AMOUNT, account_id, AMOUNT))
        if cursor.rowcount != 1:
            db.rollback()
            raise RuntimeError(f"floor: not enough points on account {account_id}")
        if system_row:
            cursor.execute(sql["system"], (redeemed_id,))
    db.commit()


def client(index, url, plan, card_ids, conf, start, results):
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
        # Both sides talk to PostgreSQL the same way (see BINDINGS).
        server_side = conf["binding"] == "server"
        connection.close()
        connection.settings_dict.setdefault("OPTIONS", {})["server_side_binding"] = server_side
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
            # A system account's stored balance must stay 0 (check constraint), so the
            # reference rewrites the row unchanged: the same row lock and new row version.
            "system": f"UPDATE {Account._meta.db_table} SET balance = balance WHERE id = %s",
        }
        cursor_class = psycopg.Cursor if server_side else psycopg.ClientCursor
        with psycopg.connect(url, cursor_factory=cursor_class) as db:
            for round_no, (scenario, impl) in enumerate(plan):
                mine = [loaded[pk] for pk in card_ids[scenario]]
                prefix = f"bench:spend:{round_no}:{index}:"
                start.wait(timeout=600)
                began, cpu = time.perf_counter(), time.process_time()
                for i in range(conf["ops"]):
                    card = mine[i % len(mine)]
                    if impl == OURS:
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
                            system_row=impl == HOT_SYSTEM,
                        )
                ended, cpu = time.perf_counter(), time.process_time() - cpu
                results.put(("ok", round_no, (began, ended, cpu)))
    except BaseException:
        start.abort()
        results.put(("error", index, traceback.format_exc()))
        raise


# --- the parent ----------------------------------------------------------------------------


def sample_lock_waits(url, stop, samples):
    """Thread: ~20 times a second, how many of the benchmark's backends that are inside a
    statement or transaction wait for a lock held by another transaction."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        while not stop.is_set():
            waiting, busy = db.execute(
                "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*)"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND state <> 'idle' AND pid <> pg_backend_pid()"
            ).fetchone()
            samples.append((time.perf_counter(), waiting, busy))
            stop.wait(0.05)


def run_clients(ctx, url, layout, plan, conf):
    """Start the clients, collect per round its wall time, the clients' CPU time and the
    share of busy backends waiting on a lock; fail loudly."""
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
            args=(index, url, plan, card_ids, conf, start, results),
            daemon=True,
        )
        process.start()
        processes.append(process)
    spans = {n: [] for n in range(len(plan))}
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=sample_lock_waits, args=(url, stop, samples), daemon=True)
    sampler.start()
    try:
        for _ in range(len(plan) * conf["clients"]):
            status, number, detail = results.get(timeout=900)
            if status == "error":
                raise RuntimeError(f"client {number} failed:\n{detail}")
            spans[number].append(detail)
    finally:
        stop.set()
        sampler.join(timeout=10)
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    measured = {}
    for n, span in spans.items():
        began, ended = min(b for b, _, _ in span), max(e for _, e, _ in span)
        inside = [(w, b) for t, w, b in samples if began <= t <= ended]
        measured[n] = {
            "wall": ended - began,
            "cpu": sum(c for _, _, c in span),
            "waiting": sum(w for w, _ in inside),
            "busy": sum(b for _, b in inside),
        }
    return measured


def make_plan(rounds):
    """Rounds of (scenario, side): the sides of a round run one after the other, their order
    rotating from round to round, so each round's sides share the background load and drift
    favours none."""
    plan = []
    for scenario, (_target, _why, sides) in SCENARIOS.items():
        for n in range(rounds):
            turn = n % len(sides)
            plan += [(scenario, side) for side in sides[turn:] + sides[:turn]]
    return plan


def report(scenario, plan, measured, per_round):
    """Raw figures of each side, then the BENCH line. The ratio is the median over rounds of
    ours / floor within the round."""
    target, why, sides = SCENARIOS[scenario]
    print(f"{scenario}:", flush=True)
    rates = {}
    for side in sides:
        rounds = [measured[n] for n, step in enumerate(plan) if step == (scenario, side)]
        rates[side] = [common.rate(per_round, r["wall"]) for r in rounds]
        cpu = common.median([r["cpu"] for r in rounds]) / per_round * 1000
        busy = sum(r["busy"] for r in rounds)
        waiting = 100 * sum(r["waiting"] for r in rounds) / busy if busy else 0
        common.figures(
            LABELS[side],
            per_round,
            common.median([r["wall"] for r in rounds]),
            rates[side],
            f"client CPU {cpu:.2f} ms/op, lock waits {waiting:.0f}%",
        )

    def ratios(side):
        return [a / b for a, b in zip(rates[side], rates[FLOOR], strict=True)]

    if HOT_SYSTEM in sides:
        print(
            "  a stored system balance (reference / floor) gives ratio "
            f"{common.median(ratios(HOT_SYSTEM)):.2f}",
            flush=True,
        )
    print("  ours / floor per round: " + ", ".join(f"{r:.2f}" for r in ratios(OURS)))
    print(f"  target: {why}", flush=True)
    common.bench_line(scenario, common.median(ratios(OURS)), ">=", target)


def main():
    common.add_paths()
    conf = settings()
    ctx = multiprocessing.get_context("spawn")
    plan = make_plan(conf["rounds"])
    per_round = conf["clients"] * conf["ops"]
    print(
        f"ledger: {conf['clients']} client processes, {conf['rounds']} rounds of "
        f"{per_round} spends per side and scenario, {conf['binding']}-side parameter binding "
        "on both sides (median round shown)",
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
    for scenario in SCENARIOS:
        report(scenario, plan, measured, per_round)


if __name__ == "__main__":
    main()
