"""Pages that must not slow down as the ledger grows: the card page and the points report.

The card page (``/dashboard/loyalty/cards/<id>/``: history, orders with their points, grade
and status changes) of a card with 100,000 transfers against that of a card with 100, both
in one database; and the points report's default page (``/dashboard/loyalty/report/``: totals
of all time, outstanding points, the newest transfers) on a ledger of 1,000,000 transfers
against one of 10,000. Django's test client GETs each page as a manager, rounds alternating;
the ratio is the long history's median time over the short one's (lower is better; 1.0 means
history costs nothing), target at most 1.5. The same pages are measured deep in the history
too (``?before=`` a transfer near the oldest): a keyset page costs what the first does.

Each page must run the same number of queries for both histories (the benchmark raises
otherwise); the count and the slowest query are printed.

The data is made set-based in SQL: orders of the cards' customers, each with a posted accrual,
a captured hold and its three transfers (hold, capture, earn), balances to match. Then the
periodic task ``take_checkpoints`` runs (its time is printed) and a few hundred transfers are
made through the ledger after it, so every page also adds what came after the checkpoint.
``loyalty_audit`` must be clean afterwards.

Environment: DATABASE_URL (the server; databases ``loyalty_bench_history``,
``loyalty_bench_report_small`` and ``loyalty_bench_report_big`` are created and dropped),
BENCH_CARD_TRANSFERS (100000), BENCH_CARD_SMALL (100), BENCH_REPORT_TRANSFERS (1000000),
BENCH_REPORT_SMALL (10000), BENCH_REPORT_CARDS (1000), BENCH_TAIL (300), BENCH_ROUNDS (5).
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks import common

CARD_DATABASE = "loyalty_bench_history"
REPORT_SMALL = "loyalty_bench_report_small"
REPORT_BIG = "loyalty_bench_report_big"
TARGET = 1.5
LEGS = 3  # transfers per order: hold, capture, earn


def settings():
    def number(name, default):
        return int(os.environ.get(name, default))

    return {
        "card": number("BENCH_CARD_TRANSFERS", "100000"),
        "card_small": number("BENCH_CARD_SMALL", "100"),
        "report": number("BENCH_REPORT_TRANSFERS", "1000000"),
        "report_small": number("BENCH_REPORT_SMALL", "10000"),
        "report_cards": number("BENCH_REPORT_CARDS", "1000"),
        "tail": number("BENCH_TAIL", "300"),
        "rounds": number("BENCH_ROUNDS", "5"),
    }


def make_shop(url, cards):
    """Child: schema, a programme, a manager with every loyalty permission and ``cards``
    customers with a card each. Returns the programme."""
    common.migrate(url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from oscar.core.loading import get_model

    from oscar_loyalty import cards as card_service

    Grade = get_model("oscar_loyalty", "Grade")
    Program = get_model("oscar_loyalty", "Program")
    User = get_user_model()
    program = Program.objects.create(code="bench", name="Bench")
    Grade.objects.create(program=program, name="Base", spend_from=0, earn_percent=3)
    manager = User.objects.create_user(
        "manager", email="manager@example.com", password="manager", is_staff=True
    )
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="oscar_loyalty"),
        Permission.objects.get(content_type__app_label="order", codename="view_order"),
    )
    for n in range(cards):
        user = User.objects.create_user(f"u{n}", email=f"customer{n}@example.com")
        card_service.issue_card(program, user=user)
    return program


def seed(orders_by_card):
    """Child: ``{card id: orders}`` orders for each card's customer, with their accruals,
    holds and transfers (three an order), oldest first, in a handful of statements."""
    from django.db import connection

    from oscar_loyalty import ledger
    from oscar_loyalty.models import Card

    program = Card.objects.select_related("program").first().program
    accounts = {code: ledger.system_account(program, code).pk for code in ledger.SYSTEM_CODES}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE plan AS"
            " SELECT row_number() OVER (ORDER BY g.n, c.id) AS seq, c.id AS card_id,"
            "  c.user_id, c.account_id, now() - interval '400 days' AS start"
            " FROM oscar_loyalty_card c JOIN unnest(%s::int[], %s::int[]) AS o(card_id, orders)"
            "  ON o.card_id = c.id"
            " CROSS JOIN LATERAL generate_series(1, o.orders) AS g(n)",
            [list(orders_by_card), list(orders_by_card.values())],
        )
        cursor.execute("UPDATE plan SET start = start + seq * interval '1 second'")
        cursor.execute(
            "INSERT INTO order_order (number, user_id, currency, total_incl_tax, total_excl_tax,"
            " shipping_incl_tax, shipping_excl_tax, shipping_method, shipping_code, status,"
            " guest_email, date_placed, analytics_tracked)"
            " SELECT 'B' || seq, user_id, 'RUB', 100, 100, 0, 0, 'Free', 'free', 'Complete', '',"
            " start, false FROM plan ORDER BY seq"
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_accrual (card_id, order_number, base, percent, points,"
            " reversed_points, reversal_keys, description, status, available_at, created, posted)"
            " SELECT card_id, 'B' || seq, 100, 3, 3, 0, '[]', '', 'posted', start, start, start"
            " FROM plan ORDER BY seq"
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_hold (card_id, order_number, points, money,"
            " refunded_points, status, created, closed)"
            " SELECT card_id, 'B' || seq, 1, 1, 0, 'captured', start, start FROM plan ORDER BY seq"
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_transfer (key, kind, debit_id, credit_id, amount, card_id,"
            " order_number, description, note, created)"
            " SELECT 'order:B' || p.seq || ':' || l.kind, l.kind,"
            "  CASE l.kind WHEN 'hold' THEN p.account_id WHEN 'capture' THEN %(held)s"
            "   ELSE %(issued)s END,"
            "  CASE l.kind WHEN 'hold' THEN %(held)s WHEN 'capture' THEN %(redeemed)s"
            "   ELSE p.account_id END,"
            "  CASE l.kind WHEN 'earn' THEN 3 ELSE 1 END, p.card_id, 'B' || p.seq, '', '',"
            "  p.start + l.step * interval '1 millisecond'"
            " FROM plan p"
            " CROSS JOIN (VALUES (0, 'hold'), (1, 'capture'), (2, 'earn')) l(step, kind)"
            " ORDER BY p.seq, l.step",
            {
                "held": accounts[ledger.HELD],
                "redeemed": accounts[ledger.REDEEMED],
                "issued": accounts[ledger.ISSUED],
            },
        )
        cursor.execute(
            "UPDATE oscar_loyalty_account a SET balance = a.balance + 2 * o.orders"
            " FROM oscar_loyalty_card c JOIN unnest(%s::int[], %s::int[]) AS o(card_id, orders)"
            "  ON o.card_id = c.id WHERE a.id = c.account_id",
            [list(orders_by_card), list(orders_by_card.values())],
        )
        cursor.execute("DROP TABLE plan")
        cursor.execute("VACUUM ANALYZE")


def checkpoint_and_tail(tail):
    """Child: run the periodic checkpoint task (timed), then ``tail`` adjustments through
    the ledger after it. Returns the task's seconds."""
    from oscar_loyalty import ledger, tasks
    from oscar_loyalty.models import Card, Transfer

    began = time.perf_counter()
    tasks.take_checkpoints()
    seconds = time.perf_counter() - began
    cards = list(Card.objects.select_related("program", "account")[:50])
    for n in range(tail):
        ledger.credit_card(cards[n % len(cards)], 1, f"tail:{n}", kind=Transfer.ADJUST)
    return seconds


def prepare_cards(url, small, big):
    """Child: one shop, a card with ``small`` transfers and one with ``big``."""
    make_shop(url, 2)
    from oscar_loyalty.models import Card

    small_card, big_card = Card.objects.order_by("pk").values_list("pk", flat=True)
    seed({small_card: small // LEGS, big_card: big // LEGS})
    checkpoint_and_tail(0)
    return small_card, big_card


def prepare_report(url, transfers, cards, tail):
    """Child: a shop of ``cards`` cards sharing ``transfers`` transfers; checkpoint; tail."""
    make_shop(url, cards)
    from oscar_loyalty.models import Card

    per_card = max(transfers // LEGS // cards, 1)
    seed(dict.fromkeys(Card.objects.values_list("pk", flat=True), per_card))
    return checkpoint_and_tail(tail)


def deep_cursor(card_id=None):
    """Child helper: the id of a transfer a few dozen from the oldest (of the card)."""
    from oscar_loyalty.models import Transfer

    transfers = Transfer.objects.order_by("created", "id")
    if card_id:
        transfers = transfers.filter(card_id=card_id)
    return transfers.values_list("pk", flat=True)[60]


def measure(scenarios, rounds):
    """Child: per scenario ``(name, (big url, big path), (small url, small path))`` the
    queries of each page (counted on a warm-up) and its times."""
    common.django_child(scenarios[0][1][0])
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    def use(url):
        """Point Django's connection at the shop of ``url`` and connect before any timing."""
        name = url.rsplit("/", 1)[1]
        if connection.settings_dict["NAME"] != name:
            connection.close()
            connection.settings_dict["NAME"] = name
        connection.ensure_connection()

    clients, results = {}, {}
    for _, *sides in scenarios:
        for url, _path in sides:
            if url not in clients:
                use(url)
                clients[url] = Client()
                clients[url].force_login(get_user_model().objects.get(username="manager"))
    for name, *sides in scenarios:
        result = results[name] = []
        for url, path in sides:
            use(url)
            with CaptureQueriesContext(connection) as captured:
                response = clients[url].get(path)
            if response.status_code != 200:
                raise AssertionError(f"{path}: HTTP {response.status_code}")
            queries = list(captured.captured_queries)
            slowest = max(queries, key=lambda q: float(q["time"]))
            result.append({"queries": len(queries), "slowest": slowest, "times": []})
        for _ in range(rounds):
            for (url, path), side in zip(sides, result, strict=True):
                use(url)
                began = time.perf_counter()
                clients[url].get(path)
                side["times"].append(time.perf_counter() - began)
    return results


def audit(url):
    """Child: ``loyalty_audit`` must be clean (it raises otherwise)."""
    common.django_child(url)
    import io

    from django.core.management import call_command

    call_command("loyalty_audit", stdout=io.StringIO())


def child(ctx, function, *args):
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(function, *args).result()


def in_shop(url, function, *args):
    """Child: ``function(*args)`` with Django set up on ``url``."""
    common.django_child(url)
    return function(*args)


def report(name, results, sizes, unit):
    big, small = results
    slowest = big["slowest"]
    print(
        f"{name}: queries per page {big['queries']} ({small['queries']} with {sizes[1]} {unit});"
        f" slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:110]}",
        flush=True,
    )
    for side, size in zip(results, sizes, strict=True):
        times = ", ".join(f"{t * 1000:.0f}" for t in side["times"])
        print(
            f"  page, {size:>9} {unit} {common.median(side['times']) * 1000:8.1f} ms"
            f"   rounds: {times}",
            flush=True,
        )
    if big["queries"] != small["queries"]:
        raise AssertionError(f"{name}: the query count grows with history")
    return common.bench_line(
        name, common.median(big["times"]) / common.median(small["times"]), "<=", TARGET
    )


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"history: card page {conf['card']} against {conf['card_small']} transfers, report"
        f" {conf['report']} against {conf['report_small']}; {conf['rounds']} rounds",
        flush=True,
    )
    with (
        common.bench_database(CARD_DATABASE) as cards_url,
        common.bench_database(REPORT_SMALL) as small_url,
        common.bench_database(REPORT_BIG) as big_url,
    ):
        began = time.perf_counter()
        small_card, big_card = child(
            ctx, prepare_cards, cards_url, conf["card_small"], conf["card"]
        )
        small_task = child(
            ctx, prepare_report, small_url, conf["report_small"], conf["report_cards"], conf["tail"]
        )
        big_task = child(
            ctx, prepare_report, big_url, conf["report"], conf["report_cards"], conf["tail"]
        )
        print(f"  data made in {time.perf_counter() - began:.0f} s", flush=True)
        print(
            f"  take_checkpoints, first run: {big_task:.1f} s on {conf['report']} transfers,"
            f" {small_task:.2f} s on {conf['report_small']}",
            flush=True,
        )
        deep_big = child(ctx, in_shop, cards_url, deep_cursor, big_card)
        deep_small = child(ctx, in_shop, cards_url, deep_cursor, small_card)
        deep_report_big = child(ctx, in_shop, big_url, deep_cursor)
        deep_report_small = child(ctx, in_shop, small_url, deep_cursor)
        card_page = "/dashboard/loyalty/cards/{}/"
        report_page = "/dashboard/loyalty/report/"
        scenarios = [
            (
                "card_page_100k",
                (cards_url, card_page.format(big_card)),
                (cards_url, card_page.format(small_card)),
            ),
            (
                "card_page_oldest_history_100k",
                (cards_url, card_page.format(big_card) + f"?before={deep_big}"),
                (cards_url, card_page.format(small_card) + f"?before={deep_small}"),
            ),
            ("report_default_1m", (big_url, report_page), (small_url, report_page)),
            (
                "report_oldest_page_1m",
                (big_url, report_page + f"?before={deep_report_big}"),
                (small_url, report_page + f"?before={deep_report_small}"),
            ),
        ]
        results = child(ctx, measure, scenarios, conf["rounds"])
        card_sizes = (conf["card"], conf["card_small"])
        report_sizes = (conf["report"], conf["report_small"])
        for name, *_ in scenarios:
            sizes = card_sizes if name.startswith("card") else report_sizes
            report(name, results[name], sizes, "transfers")
        for url in (cards_url, small_url, big_url):
            child(ctx, audit, url)
        print("  loyalty_audit clean on every shop (checkpoints included)", flush=True)


if __name__ == "__main__":
    main()
