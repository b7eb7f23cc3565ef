"""A 100,000-row .xlsx imported end to end, against plain openpyxl reading the same file.

The file is what the source documents describe: a header ("Телефон", "Номер карты",
"Пополнение", "Актуальный баланс") and 100,000 phones of people who have no card yet, a
quarter of them with a card number (valid check digit), the rest to be generated, with
top-ups and actual balances. Every row issues a card and most open it with points.

Ours is the whole import as the shop runs it, by a manager:

- parse: ``excel.read_file`` (zip checks, the sheet measured, python-calamine, cells as text);
- validate: ``drafts.create_draft`` (column guess, every row parsed and checked against the
  database, duplicates, the draft's rows stored in its job chunks);
- confirm: ``drafts.start`` (the rows checked again under the programme's lock);
- apply: every chunk through ``jobs.run_chunk`` in worker processes, as a Celery worker runs
  the tasks ``tasks.start_job`` queues, measured with one worker process and with two (Celery
  starts one per CPU by default, 2 on this machine; ``BENCH_IMPORT_WORKERS`` sets another).

Parse and validate run in one fresh process (the web request's work). The worker processes
have set Django up before the clock starts, as a running worker has.

The floor is what a developer would otherwise write by hand (``floor``): python-calamine
reading the file, and set-based raw SQL writing the same cards, points accounts and transfers,
as the mass accrual's floor does. Each round reads the file with openpyxl (printed for
comparison), runs the floor, then ours with one worker process and with two, each import into
its own copy of the same freshly migrated database after a checkpoint; the median round
counts. Two ratios, our seconds over the floor's, one per worker count (target at most 2).

Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the process that parses and
validates (it holds the whole table) and of each worker process, printed with the first
one's resident size after ``django.setup()`` (target: every peak under 300 MB).

Environment: DATABASE_URL (the server; databases ``loyalty_bench_import*`` are created and
dropped), BENCH_IMPORT_ROWS (100000), BENCH_IMPORT_ROUNDS (3), BENCH_IMPORT_WORKERS (2),
BENCH_IMPORT_DATABASE (the databases' name).
"""

import os
import random
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks import common

# BENCH_IMPORT_DATABASE names the databases, so that two runs on one server do not collide.
DATABASE = os.environ.get("BENCH_IMPORT_DATABASE", "loyalty_bench_import")
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


def openpyxl_read(path):
    """Child: plain openpyxl read-only iteration over every row (printed for comparison)."""
    import openpyxl

    started = time.perf_counter()
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    count = sum(1 for _row in workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    return count, time.perf_counter() - started


def _text(value):
    """A cell as text, as a hand-written import would take it (the file's cells are text)."""
    return value if isinstance(value, str) else str(value)


def floor(url, path, round_number):
    """Child: what a developer would write by hand for this file: python-calamine reads the
    sheet, and set-based SQL in one transaction writes the same cards, their points accounts
    opened with the row's balance (else its top-up) and the "issued" transfers that explain
    them. No check beyond what the file needs: numbers are generated where a row has none,
    no job, no draft, no lock, no idempotency check."""
    common.django_child(url)
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from oscar.core.loading import get_model
    from python_calamine import CalamineWorkbook

    from oscar_loyalty import ledger

    Program = get_model("oscar_loyalty", "Program")
    Grade = get_model("oscar_loyalty", "Grade")
    program = Program.objects.create(name=f"Floor {round_number}", code=f"floor{round_number}")
    grade = Grade.objects.create(program=program, name="Base", earn_percent=3)
    manager = get_user_model().objects.create(username="bench-floor", is_staff=True)
    issued = ledger.system_account(program, ledger.ISSUED).pk

    started = time.perf_counter()
    with CalamineWorkbook.from_path(path) as workbook:
        rows = workbook.get_sheet_by_index(0).to_python()[1:]
    phones, numbers, amounts = [], [], []
    for n, (phone, number, topup, balance, *_rest) in enumerate(rows):
        phones.append(_text(phone))
        numbers.append(_text(number) or f"9{n:012d}")
        amounts.append(_text(balance) or _text(topup) or "0")
    count = len(rows)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('oscar_loyalty_account', 'id')),"
            " nextval(pg_get_serial_sequence('oscar_loyalty_card', 'id'))"
            " FROM generate_series(1, %s)",
            [count],
        )
        accounts, cards = map(list, zip(*cursor.fetchall(), strict=True))
        cursor.execute(
            "INSERT INTO oscar_loyalty_account (id, unit, kind, program_id, code, balance)"
            " SELECT a, 'points', 'points', %s, '', b"
            " FROM unnest(%s::bigint[], %s::numeric[]) AS t(a, b)",
            [program.pk, accounts, amounts],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_card (id, program_id, number, phone, grade_id,"
            " grade_is_manual, participates, spend_adjustment, lifetime_spend, status,"
            " status_reason, account_id, created_by_id, created)"
            " SELECT c, %s, n, p, %s, false, true, 0, 0, 'active', '', a, %s, now()"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) AS t(c, n, p, a)",
            [program.pk, grade.pk, manager.pk, cards, numbers, phones, accounts],
        )
        cursor.execute(
            "INSERT INTO oscar_loyalty_transfer (key, kind, debit_id, credit_id, amount,"
            " card_id, order_number, description, label_code, note, created_by_id, created)"
            " SELECT 'floor:' || c, 'import', %s, a, b, c, '', '', 'import', 'Import', %s, now()"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[]) AS t(c, a, b)"
            " WHERE b > 0",
            [issued, manager.pk, cards, accounts, amounts],
        )
    return count, time.perf_counter() - started


def prepare(url, path, round_number):
    """Child: parse and validate ``path`` for a new programme and start the job, timed."""
    common.django_child(url)
    from django.contrib.auth import get_user_model
    from oscar.core.loading import get_model

    from oscar_loyalty import excel, jobs
    from oscar_loyalty.card_import import drafts

    Program = get_model("oscar_loyalty", "Program")
    Grade = get_model("oscar_loyalty", "Grade")
    program = Program.objects.create(name=f"Bench {round_number}", code=f"bench{round_number}")
    Grade.objects.create(program=program, name="Base", earn_percent=3)
    # As from the dashboard: a manager imports, so every card and transfer records who did it.
    manager = get_user_model().objects.create(username="bench-manager", is_staff=True)
    baseline = rss_mb()

    started = time.perf_counter()
    with open(path, "rb") as file:
        table = excel.read_file(file, os.path.basename(path))
    parsed = time.perf_counter()
    job = drafts.create_draft(table, program, by=manager)
    del table
    checked = time.perf_counter()
    job = drafts.start(job)
    return {
        "parse": parsed - started,
        "validate": checked - parsed,
        "confirm": time.perf_counter() - checked,
        "job": job.pk,
        "chunks": jobs.pending_chunks(job),
        "baseline_mb": baseline,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def start_worker(url, ready):
    """Worker process initializer: Django set up, then wait for the other workers."""
    common.django_child(url)
    ready.wait()


def worker_pid(_task):
    return os.getpid()


def run_chunk(chunk_id):
    """Worker: what the ``run_job_chunk`` task does; returns the process's peak memory."""
    from oscar_loyalty import jobs

    jobs.run_chunk(chunk_id)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def outcome(url, job_id):
    """Child: what the import did, and whether the ledger still adds up."""
    common.django_child(url)
    from oscar.core.loading import get_model

    from oscar_loyalty import audit

    Job = get_model("oscar_loyalty", "Job")
    Card = get_model("oscar_loyalty", "Card")
    job = Job.objects.get(pk=job_id)
    return {
        "status": job.status,
        "rows": job.total,
        "failed": job.failed,
        "cards": Card.objects.filter(program=job.program).count(),
        "problems": audit.audit(),
    }


def ours(ctx, template, path, round_number, workers, rows):
    """One import into a fresh copy of ``template``, applied by ``workers`` processes."""
    with common.bench_database(DATABASE + "_round", template=template) as url:
        ready = ctx.Barrier(workers)
        with ctx.Pool(workers, initializer=start_worker, initargs=(url, ready)) as pool:
            pool.map(worker_pid, range(workers), chunksize=1)  # every worker is up and idle
            common.checkpoint()
            with ProcessPoolExecutor(1, mp_context=ctx) as child:
                result = child.submit(prepare, url, path, round_number).result()
            started = time.perf_counter()
            worker_peaks = pool.map(run_chunk, result["chunks"], chunksize=1)
            result["apply"] = time.perf_counter() - started
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            done = child.submit(outcome, url, result["job"]).result()
    if done.pop("problems"):
        raise AssertionError(f"the ledger is not sound after the import: {done}")
    if (done["status"], done["failed"], done["cards"]) != ("done", 0, rows):
        raise AssertionError(f"the import did not apply every row: {done}")
    result["total"] = result["parse"] + result["validate"] + result["confirm"] + result["apply"]
    result["worker_peak_mb"] = max(worker_peaks)
    return result


def measured_floor(ctx, template, path, round_number):
    """The floor into a fresh copy of ``template``, as ours gets one."""
    with common.bench_database(DATABASE + "_floor", template=template) as url:
        common.checkpoint()
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            return child.submit(floor, url, path, round_number).result()


def main():
    common.add_paths()
    conf = settings()
    ctx = get_context("spawn")
    print(
        f"import: {conf['rows']} rows of .xlsx, {conf['rounds']} rounds"
        " (floor, then ours with 1 worker process and with more)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder, common.bench_database(DATABASE) as url:
        path = os.path.join(folder, "cards.xlsx")
        with ProcessPoolExecutor(1, mp_context=ctx) as child:
            child.submit(write_file, path, conf["rows"]).result()
            child.submit(common.migrate, url).result()
        print(f"  file: {os.path.getsize(path) / 1024 / 1024:.1f} MB", flush=True)
        workers = int(os.environ.get("BENCH_IMPORT_WORKERS") or 2)
        counts = sorted({1, workers})
        floors, reads, results = [], [], {count: [] for count in counts}
        for round_number in range(conf["rounds"]):
            # a fresh process for each, so neither inherits the other's memory or caches
            with ProcessPoolExecutor(1, mp_context=ctx) as child:
                count, seconds = child.submit(openpyxl_read, path).result()
            reads.append(seconds)
            common.figures("openpyxl read-only rows (info)", count, seconds)
            count, seconds = measured_floor(ctx, DATABASE, path, round_number)
            floors.append(seconds)
            common.figures("floor: calamine + set-based SQL", count, seconds)
            for processes in counts:
                result = ours(ctx, DATABASE, path, round_number, processes, conf["rows"])
                results[processes].append(result)
                common.figures(
                    f"ours, {processes} worker process{'es' if processes > 1 else ''}",
                    conf["rows"],
                    result["total"],
                    note=(
                        f"parse {result['parse']:.1f} s, validate {result['validate']:.1f} s, "
                        f"confirm {result['confirm']:.1f} s, apply {result['apply']:.1f} s"
                    ),
                )
            result = results[counts[-1]][-1]
            print(
                f"  peak memory (ru_maxrss): {result['peak_mb']:.0f} MB parsing and validating"
                f" (after django.setup(): {result['baseline_mb']:.0f} MB),"
                f" {result['worker_peak_mb']:.0f} MB in a worker",
                flush=True,
            )
        print(f"  checked: {conf['rows']} cards per import, loyalty_audit clean", flush=True)
    print(
        f"  median floor {common.median(floors):.1f} s (calamine + SQL); for comparison,"
        f" openpyxl read-only only reads the file in {common.median(reads):.1f} s",
        flush=True,
    )
    everything = [r for measured in results.values() for r in measured]
    peak = max(max(r["peak_mb"], r["worker_peak_mb"]) for r in everything)
    print(
        f"  peak memory {peak:.0f} MB, target < {MEMORY_TARGET_MB} MB: "
        f"{'PASS' if peak < MEMORY_TARGET_MB else 'MISS'}",
        flush=True,
    )
    passed = True
    for processes in counts:
        ratios = [r["total"] / f for r, f in zip(results[processes], floors, strict=True)]
        print(
            f"  {processes} worker process{'es' if processes > 1 else ''}: ratios per round "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; median ours {common.median([r['total'] for r in results[processes]]):.1f} s",
            flush=True,
        )
        name = f"import_100k_{processes}_worker{'s' if processes > 1 else ''}"
        passed &= common.bench_line(name, common.median(ratios), "<=", TARGET)
    return passed


if __name__ == "__main__":
    main()
