"""The dashboard's card list on 1,000,000 cards: time and queries per page, against raw SQL.

Ours is the whole page as a manager gets it: Django's test client GETs
``/dashboard/loyalty/cards/`` (session, permissions, filter form, the table, the template).
The floor is what any card list must ask the database for the same page, run with psycopg in
the same process: the number of matching cards, the 20 cards of the page with their account,
grade, programme and customer, and the categories of those customers.

Scenarios: the first page (newest cards), a filter on completed orders (1000 to 7000, the
source documents' example of a mass accrual) and a search by a phone typed in another format.
Each figure is the median of BENCH_ROUNDS timed requests after a warm-up; rounds of ours and
of the floor alternate. The ratio is time over floor (lower is better), target at most 3.
The query count of each page is printed; the benchmark raises if it differs between pages
(it must not depend on the number of cards or on the filter).

Environment: DATABASE_URL (the server; database ``loyalty_bench_cards`` is created and
dropped), BENCH_CARDS (1000000), BENCH_ROUNDS (5).
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks import common

DATABASE = "loyalty_bench_cards"
TARGET = 3.0
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
        "q=8+(912)+000-12-34",
        "(c.number LIKE %s OR c.phone = %s)",
        ["89120001234%", "79120001234"],
        "c.created DESC",
    ),
}


def settings():
    return {
        "cards": int(os.environ.get("BENCH_CARDS", "1000000")),
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
            " SELECT 'points', k.kind, %s, '',"
            " CASE WHEN k.kind = 'points' THEN n %% 3000 ELSE 0 END"
            " FROM generate_series(1, %s) n, (VALUES ('points'), ('debt')) k(kind)",
            [program.pk, count],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_card (program_id, number, phone, user_id, grade_id,"
            " grade_is_manual, participates, spend_adjustment, lifetime_spend, last_order_at,"
            " status, status_reason, account_id, debt_account_id, created)"
            " SELECT %s, (4000000000000 + p.n)::text, (79120000000 + p.n)::text, u.id,"
            " (ARRAY[%s, %s, %s]::bigint[])[1 + p.n %% 3], false, true, 0, (p.n * 37) %% 40000,"
            " now() - ((p.n %% 700) || ' days')::interval,"
            " CASE WHEN p.n %% 50 = 0 THEN 'blocked' ELSE 'active' END, '', p.id, d.id,"
            " now() - (p.n || ' seconds')::interval"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM oscar_loyalty_account"
            "       WHERE kind = 'points') p"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM oscar_loyalty_account"
            "       WHERE kind = 'debt') d ON d.n = p.n"
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
        cursor.fetchone()
        cursor.execute(sql["page"], params)
        users = [row[13] for row in cursor.fetchall() if row[13]]
        cursor.execute(sql["categories"], [users])
        cursor.fetchall()


def measure(url, rounds):
    """Child: per scenario, the page's query count and the times of ours and of the floor."""
    common.django_child(url)
    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from django.core.signals import request_started
    from django.db import reset_queries

    request_started.disconnect(reset_queries)  # keep each request's queries for the count
    client = Client()
    client.force_login(get_user_model().objects.get(email="manager@example.com"))
    base = reverse("loyalty-card-list")
    results = {}
    with psycopg.connect(url) as db:
        for name, (query, where, params, order) in SCENARIOS.items():
            target = f"{base}?{query}" if query else base
            with CaptureQueriesContext(connection) as captured:
                response = client.get(target)  # warm-up, and the queries it makes
            if response.status_code != 200:
                raise AssertionError(f"{target}: HTTP {response.status_code}")
            floor_page(db, where, params, order)
            ours, floor = [], []
            for _ in range(rounds):
                began = time.perf_counter()
                floor_page(db, where, params, order)
                floor.append(time.perf_counter() - began)
                began = time.perf_counter()
                client.get(target)
                ours.append(time.perf_counter() - began)
            results[name] = {
                "queries": len(captured),
                "slowest": max(captured.captured_queries, key=lambda q: float(q["time"])),
                "ours": ours,
                "floor": floor,
                "rows": response.context["cards"].paginator.count,
            }
    return results


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(f"card list: {conf['cards']} cards, {conf['rounds']} timed rounds per page", flush=True)
    with common.bench_database(DATABASE) as url:
        began = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(prepare, url, conf["cards"]).result()
        print(f"  data made in {time.perf_counter() - began:.0f} s", flush=True)
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            results = child.submit(measure, url, conf["rounds"]).result()
    counts = {name: result["queries"] for name, result in results.items()}
    for name, result in results.items():
        ours, floor = common.median(result["ours"]), common.median(result["floor"])
        print(f"{name}: {result['rows']} matching cards, {result['queries']} queries", flush=True)
        slowest = result["slowest"]
        print(f"  slowest query {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:160]}")
        print(
            f"  ours  (the page)  {ours * 1000:8.1f} ms   rounds: "
            + ", ".join(f"{t * 1000:.0f}" for t in result["ours"]),
            flush=True,
        )
        print(
            f"  floor (raw SQL)   {floor * 1000:8.1f} ms   rounds: "
            + ", ".join(f"{t * 1000:.0f}" for t in result["floor"]),
            flush=True,
        )
        common.bench_line(name, ours / floor, "<=", TARGET)
    if len(set(counts.values())) != 1:
        raise AssertionError(f"the query count depends on the page: {counts}")
    print(f"  query count per page: {next(iter(counts.values()))} on every page", flush=True)


if __name__ == "__main__":
    main()
