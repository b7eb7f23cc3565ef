"""The dashboard's card list with 1,000,000 cards: time and queries per page.

"Stays fast with a million cards" is measured against the same page of a small shop: the same
requests (Django's test client GETs ``/dashboard/loyalty/cards/`` as a manager: session,
permissions, filter form, table, template) on a database of 1,000,000 cards and on one of
1,000, in the same process, rounds alternating. The ratio is the million's time over the
thousand's (lower is better; 1.0 means the number of cards costs nothing); target at most 2.

Also printed, for each page: its query count (the benchmark raises if it differs between pages
or between the two shops: it must not depend on the number of cards or on the filter), its
slowest query, and the raw-SQL floor on the million (with psycopg: the number of matching
cards, the 20 cards of the page with account, grade, programme and customer, and those
customers' categories), i.e. what the database itself must do for the page.

Scenarios: the first page (newest cards), a filter on completed orders (1000 to 7000, the
source documents' example of a mass accrual) and a search by a phone typed in another format.

Environment: DATABASE_URL (the server; databases ``loyalty_bench_cards`` and
``loyalty_bench_cards_small`` are created and dropped), BENCH_CARDS (1000000),
BENCH_SMALL_CARDS (1000), BENCH_ROUNDS (5).
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks import common

DATABASE = "loyalty_bench_cards"
SMALL_DATABASE = "loyalty_bench_cards_small"
TARGET = 2.0
PAGE = 20

# name: (querystring, the WHERE clause of the floor, its parameters, the floor's ORDER BY)
SCENARIOS = {
    "card_list_first_page_1m": ("", "TRUE", [], "c.created DESC"),
    "card_list_filter_orders_1000_7000": (
        "spend_min=1000&spend_max=7000",
        "c.lifetime_spend >= %s AND c.lifetime_spend <= %s",
        [1000, 7000],
        "c.created DESC",
    ),
    "card_list_search_phone": (
        "q=8+(912)+000-01-23",
        "(c.number LIKE %s OR c.phone = %s)",
        ["89120000123%", "79120000123"],
        "c.created DESC",
    ),
}


def settings():
    return {
        "cards": int(os.environ.get("BENCH_CARDS", "1000000")),
        "small": int(os.environ.get("BENCH_SMALL_CARDS", "1000")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "5")),
    }


def prepare(url, count):
    """Child: schema; ``count`` customers with a card each, made set-based in SQL."""
    common.migrate(url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection
    from oscar.core.loading import get_model

    Category = get_model("oscar_loyalty", "Category")
    Grade = get_model("oscar_loyalty", "Grade")
    Program = get_model("oscar_loyalty", "Program")
    User = get_user_model()
    program = Program.objects.create(code="bench", name="Bench")
    grades = [
        Grade.objects.create(program=program, name=name, spend_from=spend, earn_percent=percent).pk
        for name, spend, percent in (("Base", 0, 3), ("Silver", 10000, 5), ("Gold", 30000, 7))
    ]
    manager = User.objects.create_user(
        "manager", email="manager@example.com", password="manager", is_staff=True
    )
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="oscar_loyalty")
    )
    users, members = User._meta.db_table, Category.customers.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {users} (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT '!', false, 'u' || n, 'Name' || (n %% 5000), 'Surname' || (n %% 7919),"
            " 'customer' || n || '@example.com', false, true, now()"
            " FROM generate_series(1, %s) n",
            [count],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_account (unit, kind, program_id, code, balance)"
            " SELECT 'points', 'points', %s, '', n %% 3000 FROM generate_series(1, %s) n",
            [program.pk, count],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_card (program_id, number, phone, user_id, grade_id,"
            " grade_is_manual, participates, spend_adjustment, lifetime_spend, last_order_at,"
            " status, status_reason, account_id, created)"
            " SELECT %s, (4000000000000 + p.n)::text, (79120000000 + p.n)::text, u.id,"
            " (ARRAY[%s, %s, %s]::bigint[])[1 + p.n %% 3], false, true, 0, (p.n * 37) %% 40000,"
            " now() - ((p.n %% 700) || ' days')::interval,"
            " CASE WHEN p.n %% 50 = 0 THEN 'blocked' ELSE 'active' END, '', p.id,"
            " now() - (p.n || ' seconds')::interval"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM oscar_loyalty_account"
            "       WHERE kind = 'points') p"
            f" JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM {users}"
            "       WHERE username LIKE 'u%%') u ON u.n = p.n",
            [program.pk, *grades],
        )
        cursor.execute(
            f"INSERT INTO {members} (category_id, user_id)"
            " SELECT (SELECT id FROM oscar_loyalty_category ORDER BY id LIMIT 1), id"
            f" FROM {users} WHERE id %% 10 = 0 AND username LIKE %s",
            ["u%"],
        )
        cursor.execute("VACUUM ANALYZE")
    return Program.objects.get(code="bench").pk


def floor_sql(where, order):
    card = "oscar_loyalty_card c"
    return {
        "count": f"SELECT count(*) FROM {card} WHERE {where}",
        "page": (
            "SELECT c.id, c.number, c.phone, c.status, c.participates, c.grade_is_manual,"
            " c.lifetime_spend, c.last_order_at, c.created, a.balance, g.name, g.colour,"
            " p.name, u.id, u.email, u.first_name, u.last_name"
            f" FROM {card} JOIN oscar_loyalty_account a ON a.id = c.account_id"
            " JOIN oscar_loyalty_program p ON p.id = c.program_id"
            " LEFT JOIN oscar_loyalty_grade g ON g.id = c.grade_id"
            " LEFT JOIN auth_user u ON u.id = c.user_id"
            f" WHERE {where} ORDER BY {order} LIMIT {PAGE}"
        ),
        "categories": (
            "SELECT cc.user_id, k.name, k.colour FROM oscar_loyalty_category_customers cc"
            " JOIN oscar_loyalty_category k ON k.id = cc.category_id WHERE cc.user_id = ANY(%s)"
        ),
    }


def floor_page(db, where, params, order):
    sql = floor_sql(where, order)
    with db.cursor() as cursor:
        cursor.execute(sql["count"], params)
        (count,) = cursor.fetchone()
        cursor.execute(sql["page"], params)
        users = [row[13] for row in cursor.fetchall() if row[13]]
        cursor.execute(sql["categories"], [users])
        cursor.fetchall()
    return count


def measure(big_url, small_url, rounds):
    """Child: per scenario and shop, the page's queries and times; the floor on the big one."""
    common.django_child(big_url)
    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    names = {url: url.rsplit("/", 1)[1] for url in (big_url, small_url)}

    def use(url):
        """Point Django's connection at the shop of ``url`` and connect before any timing."""
        if connection.settings_dict["NAME"] != names[url]:
            connection.close()
            connection.settings_dict["NAME"] = names[url]
        connection.ensure_connection()

    clients = {}
    for url in (big_url, small_url):
        use(url)
        clients[url] = Client()
        clients[url].force_login(get_user_model().objects.get(email="manager@example.com"))
    base = reverse("loyalty-card-list")
    results = {}
    with psycopg.connect(big_url) as db:
        for name, (query, where, params, order) in SCENARIOS.items():
            target = f"{base}?{query}" if query else base
            result = {"floor": [], "rows": floor_page(db, where, params, order)}
            for url in (big_url, small_url):
                use(url)
                with CaptureQueriesContext(connection) as captured:
                    response = clients[url].get(target)  # warm-up, and the queries it makes
                if response.status_code != 200:
                    raise AssertionError(f"{target}: HTTP {response.status_code}")
                queries = list(captured.captured_queries)  # now: later requests reset the log
                result[url] = {
                    "queries": len(queries),
                    "slowest": max(queries, key=lambda q: float(q["time"])),
                    "times": [],
                }
            for _ in range(rounds):
                began = time.perf_counter()
                floor_page(db, where, params, order)
                result["floor"].append(time.perf_counter() - began)
                for url in (big_url, small_url):
                    use(url)
                    began = time.perf_counter()
                    clients[url].get(target)
                    result[url]["times"].append(time.perf_counter() - began)
            results[name] = result
    return results


def rounds_text(times):
    return ", ".join(f"{t * 1000:.0f}" for t in times)


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"card list: {conf['cards']} cards against {conf['small']}, {conf['rounds']} timed"
        " rounds per page (median shown, ms)",
        flush=True,
    )
    with (
        common.bench_database(DATABASE) as big,
        common.bench_database(SMALL_DATABASE) as small,
    ):
        began = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(prepare, big, conf["cards"]).result()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(prepare, small, conf["small"]).result()
        print(f"  data made in {time.perf_counter() - began:.0f} s", flush=True)
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            results = child.submit(measure, big, small, conf["rounds"]).result()
    grown = []
    for name, result in results.items():
        mine, theirs = result[big], result[small]
        if mine["queries"] != theirs["queries"]:
            grown.append((name, theirs["queries"], mine["queries"]))
        print(f"{name}: {result['rows']} matching cards of {conf['cards']}", flush=True)
        slowest = mine["slowest"]
        print(
            f"  queries per page: {mine['queries']} ({theirs['queries']} with {conf['small']}"
            f" cards); slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:120]}",
            flush=True,
        )
        big_time, small_time = common.median(mine["times"]), common.median(theirs["times"])
        floor = common.median(result["floor"])
        print(
            f"  page, {conf['cards']} cards {big_time * 1000:9.1f}   rounds: "
            f"{rounds_text(mine['times'])}",
            flush=True,
        )
        print(
            f"  page, {conf['small']} cards {small_time * 1000:12.1f}   rounds: "
            f"{rounds_text(theirs['times'])}",
            flush=True,
        )
        print(
            f"  raw SQL floor, {conf['cards']} cards {floor * 1000:6.1f}   rounds: "
            f"{rounds_text(result['floor'])}",
            flush=True,
        )
        common.bench_line(name, big_time / small_time, "<=", TARGET)
    # A page may need its own queries (a phone search reads the customers with that phone
    # first); what must not happen is a page needing more of them in the larger shop.
    if grown:
        raise AssertionError(f"the query count grows with the shop: {grown}")
    print("  query count: the same in both shops on every page", flush=True)


if __name__ == "__main__":
    main()
