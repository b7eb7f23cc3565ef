"""What every benchmark shares: its own PostgreSQL database, Django in child processes,
and the one result line per scenario.

The parent process never sets Django up: each benchmark runs Django in spawned children
(`django_child`), so two benchmarks in one `run.py` can each use a database of their own.
"""

import math
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def add_paths():
    """Make ``oscar_loyalty``, ``sandbox`` and ``benchmarks`` importable (children too:
    multiprocessing's spawn copies ``sys.path``)."""
    for path in (ROOT / "sandbox", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def server_url():
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def with_database(url, name):
    return urlsplit(url)._replace(path=f"/{name}").geturl()


@contextmanager
def bench_database(name, template=None):
    """Create the database ``name`` on the server of DATABASE_URL (empty, or a copy of the
    database ``template``), yield its URL, drop it.

    Set BENCH_KEEP_DB=1 to keep it for a look afterwards.
    """
    import psycopg

    url = server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        raise RuntimeError(f"benchmarks need PostgreSQL; DATABASE_URL is {url!r}")
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield with_database(url, name)
    finally:
        if os.environ.get("BENCH_KEEP_DB") != "1":
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_child(url):
    """Set Django up in this (child) process on database ``url``: sandbox settings, debug off
    (no query log), no broker (nothing is queued)."""
    add_paths()
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "sandbox.settings"
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()


def migrate(url):
    """Child: create the schema with Django's own migrations."""
    django_child(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def checkpoint():
    """Write out the server's dirty pages now, so that a checkpoint due to the WAL of earlier
    work does not land in the middle of the next measurement. Needs a superuser (or the
    pg_checkpoint role); without one the measurement simply runs without it."""
    import psycopg

    try:
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        print("  (no CHECKPOINT before the round: needs a superuser)", flush=True)


def rate(ops, seconds):
    return ops / seconds if seconds > 0 else float("inf")


def median(values):
    return statistics.median(values)


def figures(label, ops, seconds, per_round=None, note=""):
    """One line of raw figures: operations, seconds, operations per second (and per round)."""
    line = f"  {label:<34} {ops:>6d} ops {seconds:>7.3f} s {rate(ops, seconds):>8.1f} ops/s"
    if per_round:
        line += "  rounds: " + ", ".join(f"{r:.1f}" for r in per_round)
    if note:
        line += f"  {note}"
    print(line, flush=True)


def bench_line(name, ratio, op, target):
    """The result line `make bench` promises: ``BENCH <name> ratio=<r> target<op><t> PASS|MISS``."""
    passed = ratio >= target if op == ">=" else ratio <= target
    # Two decimals, rounded towards a MISS, so the printed ratio never contradicts the verdict.
    shown = math.floor(ratio * 100) / 100 if op == ">=" else math.ceil(ratio * 100) / 100
    print(
        f"BENCH {name} ratio={shown:.2f} target{op}{target} {'PASS' if passed else 'MISS'}",
        flush=True,
    )
    return passed
