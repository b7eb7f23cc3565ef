"""A 100,000-row .xlsx imported end to end, against plain openpyxl reading the same file.

The file is what the source documents describe: a header ("Телефон", "Номер карты",
"Пополнение", "Актуальный баланс") and 100,000 phones of people who have no card yet, a
quarter of them with a card number (valid check digit), the rest to be generated, with
top-ups and actual balances. Every row issues a card and most open it with points.

Ours is the whole import as the dashboard runs it, in one process:

- parse: ``excel.read_file`` (zip checks, the sheet streamed through expat, cells as text);
- validate: ``imports.create_draft`` (column guess, every row parsed and checked against the
  database, duplicates, the draft's rows stored in its job chunks);
- apply: ``imports.start`` and every chunk through ``jobs.run_chunk``, the code a Celery
  worker runs (cards, accounts and one transfer per row, idempotency keys, counts).

The floor is ``openpyxl.load_workbook(read_only=True)`` iterating every row of the same
file (``values_only``) and doing nothing with it. Each round runs the floor then ours, into a
new programme so that every row issues a card again; the median round counts. The ratio is
our seconds over the floor's (target at most 2).

Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child process that runs
the import (a fresh process per round, so the figure is that import's), printed with the same
process's resident size after ``django.setup()`` and before reading the file (target: peak
under 300 MB).

Environment: DATABASE_URL (the server; database ``loyalty_bench_import`` is created and
dropped), BENCH_IMPORT_ROWS (100000), BENCH_IMPORT_ROUNDS (3).
"""

import os
import random
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks import common

DATABASE = "loyalty_bench_import"
TARGET = 2.0
MEMORY_TARGET_MB = 300


def settings():
    return {
        "rows": int(os.environ.get("BENCH_IMPORT_ROWS", "100000")),
        "rounds": int(os.environ.get("BENCH_IMPORT_ROUNDS", "3")),
    }


def _luhn(body):
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


def write_file(path, rows):
    """The import file, written with openpyxl's write-only mode (cells as text)."""
    import openpyxl

    generator = random.Random(5)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Карты")
    sheet.append(["Телефон", "Номер карты", "Пополнение", "Актуальный баланс"])
    for n in range(rows):
        number = _luhn(f"{1_000_000_000_000 + n * 7:013d}"[:12]) if n % 4 == 0 else ""
        topup = str(generator.choice([0, 50, 100, 250])) if n % 3 else ""
        balance = str(generator.randint(0, 5000)) if n % 5 else ""
        sheet.append([f"79{n + 100_000_000:09d}", number, topup, balance])
    workbook.save(path)


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def floor(path):
    """Child: plain openpyxl read-only iteration over every row."""
    import openpyxl

    started = time.perf_counter()
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    count = sum(1 for _row in workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    return count, time.perf_counter() - started


def ours(url, path, round_number):
    """Child: the whole import of ``path`` into a new programme, timed by phase."""
    common.django_child(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import excel, imports, jobs

    Program = get_model("oscar_loyalty", "Program")
    Grade = get_model("oscar_loyalty", "Grade")
    program = Program.objects.create(name=f"Bench {round_number}", code=f"bench{round_number}")
    Grade.objects.create(program=program, name="Base", earn_percent=3)
    baseline = rss_mb()

    started = time.perf_counter()
    with open(path, "rb") as file:
        table = excel.read_file(file, os.path.basename(path))
    parsed = time.perf_counter()
    job = imports.create_draft(table, program)
    del table
    checked = time.perf_counter()
    job = imports.start(job)
    for chunk_id in jobs.pending_chunks(job):
        jobs.run_chunk(chunk_id)
    applied = time.perf_counter()

    job.refresh_from_db()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "parse": parsed - started,
        "validate": checked - parsed,
        "apply": applied - checked,
        "total": applied - started,
        "rows": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "status": job.status,
        "cards": program.cards.count(),
        "baseline_mb": baseline,
        "peak_mb": peak,
    }


def verify(url):
    """Child: the ledger still adds up after the imports."""
    common.django_child(url)
    from oscar_loyalty import audit

    return audit.audit()


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"import: {conf['rows']} rows of .xlsx, {conf['rounds']} rounds (floor, then ours)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder, common.bench_database(DATABASE) as url:
        path = os.path.join(folder, "cards.xlsx")
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(write_file, path, conf["rows"]).result()
            child.submit(common.migrate, url).result()
        print(f"  file: {os.path.getsize(path) / 1024 / 1024:.1f} MB", flush=True)
        floors, results = [], []
        for round_number in range(conf["rounds"]):
            # a fresh process for each, so neither inherits the other's memory or caches
            with ProcessPoolExecutor(1, mp_context=ctx) as child:
                count, seconds = child.submit(floor, path).result()
            floors.append(seconds)
            common.figures("floor: openpyxl read-only rows", count, seconds)
            with ProcessPoolExecutor(1, mp_context=ctx) as child:
                result = child.submit(ours, url, path, round_number).result()
            results.append(result)
            if (result["status"], result["failed"], result["cards"]) != (
                "done",
                0,
                conf["rows"],
            ):
                raise AssertionError(f"the import did not apply every row: {result}")
            common.figures(
                "ours: parse + validate + apply",
                result["rows"],
                result["total"],
                note=(
                    f"parse {result['parse']:.1f} s, validate {result['validate']:.1f} s, "
                    f"apply {result['apply']:.1f} s"
                ),
            )
            print(
                f"  peak memory (ru_maxrss of the import process): {result['peak_mb']:.0f} MB"
                f" (after django.setup(): {result['baseline_mb']:.0f} MB)",
                flush=True,
            )
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            problems = child.submit(verify, url).result()
        if problems:
            raise AssertionError("the ledger is not sound after the import: " + str(problems))
        print(f"  checked: {conf['rows']} cards per round, loyalty_audit clean", flush=True)
    ratios = [r["total"] / f for r, f in zip(results, floors, strict=True)]
    peak = max(r["peak_mb"] for r in results)
    print(
        "  ratios per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f"; median floor {common.median(floors):.1f} s,"
        f" median ours {common.median([r['total'] for r in results]):.1f} s",
        flush=True,
    )
    print(
        f"  peak memory {peak:.0f} MB, target < {MEMORY_TARGET_MB} MB: "
        f"{'PASS' if peak < MEMORY_TARGET_MB else 'MISS'}",
        flush=True,
    )
    return common.bench_line("import_100k", common.median(ratios), "<=", TARGET)


if __name__ == "__main__":
    main()
