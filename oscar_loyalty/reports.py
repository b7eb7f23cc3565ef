"""The points report and the spreadsheet exports (card list, report).

The report reads transfers, never cached balances, so its figures can be checked against the
ledger. Each transfer counts once, by its kind, with its effect on the card's points
balance (``change``):

- earned   = points given to cards: earned on orders, manual adjustments, imports, mass
             accruals (their debits count against it);
- spent    = points paid at checkout: spends and holds, less holds released;
- expired  = points that lapsed;
- reversed = points taken back by corrections: reversals, refunds of spent points (they
             come back, so they lower it), debt repayments.

So, for any period, the cards' balances grow by ``earned - spent - expired - reversed``.
The outstanding points of a programme (the shop's liability) are its cards' balances plus
the points held for checkouts in progress, valued at the programme's point value.

Exports stream rows from the database into openpyxl's write-only mode (or csv) inside a job,
so a million rows take the memory of a few thousand; small ones are served at once.
"""

import os
import tempfile
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.files import File
from django.db import transaction
from django.db.models import Case, Count, DecimalField, F, Q, Sum, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from oscar.core.loading import get_model

from oscar_loyalty import conf, excel, jobs, ledger, phones, storage
from oscar_loyalty.descriptions import describe

Account = get_model("oscar_loyalty", "Account")
Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Program = get_model("oscar_loyalty", "Program")
Transfer = get_model("oscar_loyalty", "Transfer")
TotalsCheckpoint = get_model("oscar_loyalty", "TotalsCheckpoint")

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
EARNED, SPENT, EXPIRED, REVERSED = "earned", "spent", "expired", "reversed"
BUCKETS = {
    Transfer.EARN: EARNED,
    Transfer.ADJUST: EARNED,
    Transfer.IMPORT: EARNED,
    Transfer.BULK: EARNED,
    Transfer.SPEND: SPENT,
    Transfer.HOLD: SPENT,
    Transfer.RELEASE: SPENT,
    Transfer.CAPTURE: SPENT,
    Transfer.EXPIRE: EXPIRED,
    Transfer.REVERSE: REVERSED,
    Transfer.REFUND: REVERSED,
    Transfer.DEBT: REVERSED,
    Transfer.REPAY: REVERSED,
}
# Exports at most this long are written during the request; longer ones run as a job.
INLINE_ROWS = 5000
EXPORT_KINDS = (Job.EXPORT, Job.REPORT)


def change_expression():
    """A transfer's effect on its card's points balance: + in, - out, 0 for other legs."""
    return Case(
        When(credit_id=F("card__account_id"), then=F("amount")),
        When(debit_id=F("card__account_id"), then=F("amount") * -1),
        default=Value(ZERO),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _start_of(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def transfers(date_from=None, date_to=None, program=None, kind="", manager=None, card=""):
    """Transfers of cards matching the report's filters, newest first, with ``change``.

    Dates are whole days in the shop's time zone, both ends included.
    """
    qs = Transfer.objects.filter(card__isnull=False)
    if date_from:
        qs = qs.filter(created__gte=_start_of(date_from))
    if date_to:
        qs = qs.filter(created__lt=_start_of(date_to + timedelta(days=1)))
    if program:
        qs = qs.filter(card__program=program)
    if kind:
        qs = qs.filter(kind=kind)
    if manager:
        qs = qs.filter(created_by=manager)
    if card:
        number = "".join(str(card).split())
        phone = phones.normalise_or_none(card)
        condition = Q(card__number=number)
        if phone:
            condition |= Q(card__phone=phone)
        qs = qs.filter(condition)
    return qs.annotate(change=change_expression()).order_by("-created", "-id")


def _by_kind(queryset):
    """``{kind: (change, count)}`` of the transfers: one grouped query."""
    rows = queryset.order_by().values_list("kind").annotate(total=Sum("change"), n=Count("id"))
    return {kind: ((total or ZERO).quantize(CENT), n) for kind, total, n in rows}


def _bucketed(by_kind):
    sums = dict.fromkeys((EARNED, SPENT, EXPIRED, REVERSED), ZERO)
    for kind, (change, _count) in by_kind.items():
        bucket = BUCKETS.get(kind)
        if bucket is not None:
            sums[bucket] += change
    result = {
        EARNED: sums[EARNED],
        SPENT: -sums[SPENT],
        EXPIRED: -sums[EXPIRED],
        REVERSED: -sums[REVERSED],
    }
    result["net"] = sum(sums.values(), ZERO)
    return result


def totals(queryset):
    """Earned, spent, expired and reversed points of the transfers, and the net change."""
    return _bucketed(_by_kind(queryset))


# Filters of ``transfers`` the totals checkpoints answer; the others need the transfers read.
CHECKPOINTED = {"program", "kind"}


def summary(**filters):
    """The report's totals (as ``totals``) and the number of transfers the filters select.

    With no filter but the programme and the kind (the report's default, all time) both come
    from the totals checkpoints plus the transfers after them, so the cost does not grow
    with the ledger; a period, a manager or a card sums what they select.
    """
    if any(value for name, value in filters.items() if name not in CHECKPOINTED):
        by_kind = _by_kind(transfers(**filters))
    else:
        by_kind = _checkpointed(filters.get("program"), filters.get("kind") or "")
    return _bucketed(by_kind), sum(count for _change, count in by_kind.values())


def _checkpointed(program, kind):
    marks = list(TotalsCheckpoint.objects.all())
    start = max((mark.transfer_id for mark in marks), default=0)
    by_kind = _by_kind(transfers(program=program, kind=kind).filter(id__gt=start))
    for mark in marks:
        if (program and mark.program_id != program.pk) or (kind and mark.kind != kind):
            continue
        change, count = by_kind.get(mark.kind, (ZERO, 0))
        by_kind[mark.kind] = (change + mark.change, count + mark.count)
    return by_kind


def _by_program_kind(start, end):
    queryset = transfers().filter(id__gt=start, id__lte=end).order_by()
    rows = queryset.values_list("card__program_id", "kind").annotate(
        total=Sum("change"), n=Count("id")
    )
    return {
        (program, kind): ((total or ZERO).quantize(CENT), n) for program, kind, total, n in rows
    }


def take_checkpoint(bound):
    """Move the totals checkpoints forward to transfer id ``bound`` (from
    ``checkpoints.safe_bound``). Every row moves, so all share one ``transfer_id``."""
    with transaction.atomic():
        marks = {(m.program_id, m.kind): m for m in TotalsCheckpoint.objects.select_for_update()}
        start = max((mark.transfer_id for mark in marks.values()), default=0)
        if start >= bound:
            return
        now = timezone.now()
        added = _by_program_kind(start, bound)
        for key in marks.keys() | added.keys():
            change, count = added.get(key, (ZERO, 0))
            mark = marks.get(key) or TotalsCheckpoint(
                program_id=key[0], kind=key[1], change=ZERO, count=0
            )
            mark.change += change
            mark.count += count
            mark.transfer_id, mark.created = bound, now
            mark.save()


def verify_checkpoint():
    """Problems of the totals checkpoints, each recomputed from the first transfer."""
    problems = []
    marks = list(TotalsCheckpoint.objects.order_by("program_id", "kind"))
    if len({mark.transfer_id for mark in marks}) > 1:
        problems.append("report totals checkpoints are not all at the same transfer")
    actual = _by_program_kind(0, max((m.transfer_id for m in marks), default=0))
    for mark in marks:
        change, count = actual.pop((mark.program_id, mark.kind), (ZERO, 0))
        if (change, count) != (mark.change, mark.count):
            problems.append(
                f"report totals checkpoint of programme {mark.program_id}, {mark.kind} at "
                f"transfer {mark.transfer_id} says {mark.change} in {mark.count} transfers, "
                f"transfers give {change} in {count}"
            )
    for (program_id, kind), (change, count) in sorted(actual.items()):
        problems.append(
            f"report totals checkpoint of programme {program_id}, {kind} is missing "
            f"({change} in {count} transfers)"
        )
    return problems


def outstanding(program=None):
    """Per programme: points on cards, points held at checkout, debt owed, and their value."""
    programs = list(Program.objects.order_by("name"))
    if program:
        programs = [item for item in programs if item.pk == program.pk]
    balances = {}
    for row in (
        Account.objects.filter(kind__in=[Account.POINTS, Account.DEBT])
        .values("program_id", "kind")
        .annotate(total=Sum("balance"))
    ):
        balances[row["program_id"], row["kind"]] = row["total"] or ZERO
    # Read, not created: a programme that never held points has no "held" account yet.
    held_accounts = {
        account.program_id: account
        for account in Account.objects.filter(
            kind=Account.SYSTEM, code=ledger.HELD, unit="points", program__in=programs
        )
    }
    held = ledger.system_balances(held_accounts.values())
    result = []
    for item in programs:
        on_cards = balances.get((item.pk, Account.POINTS), ZERO)
        account = held_accounts.get(item.pk)
        reserved = held[account.pk] if account else ZERO
        points = on_cards + reserved
        result.append(
            {
                "program": item,
                "on_cards": on_cards,
                "held": reserved,
                "points": points,
                "debt": -balances.get((item.pk, Account.DEBT), ZERO),
                "value": (points * item.point_value).quantize(Decimal("0.01")),
            }
        )
    return result


# --- export rows -----------------------------------------------------------------------------


def report_header():
    return [
        _("Date"),
        _("Programme"),
        _("Card number"),
        _("Phone"),
        _("Customer"),
        _("Kind"),
        pgettext("balance change", "Change"),
        _("Amount"),
        _("Description"),
        _("Internal note"),
        _("Order number"),
        _("By"),
    ]


def report_rows(queryset):
    kinds = dict(Transfer.KINDS)
    rows = queryset.values_list(
        "created",
        "card__program__name",
        "card__number",
        "card__phone",
        "card__user__first_name",
        "card__user__last_name",
        "card__user__email",
        "kind",
        "change",
        "amount",
        "label_code",
        "description",
        "note",
        "order_number",
        "created_by__email",
    )
    for (
        created,
        program,
        number,
        phone,
        first,
        last,
        email,
        kind,
        change,
        amount,
        label_code,
        description,
        note,
        order_number,
        by,
    ) in rows.iterator(chunk_size=2000):
        customer = " ".join(part for part in (first, last) if part) or email or ""
        yield (
            created,
            program,
            number,
            phone,
            customer,
            str(kinds.get(kind, kind)),
            change,
            amount,
            describe(label_code, order_number, description),
            note,
            order_number,
            by or "",
        )


def card_header():
    return [
        _("Card number"),
        _("Phone"),
        _("Customer"),
        _("E-mail"),
        _("Programme"),
        _("Grade"),
        _("Status"),
        _("Balance"),
        _("Debt"),
        _("Completed orders"),
        _("Issued"),
    ]


def card_rows(queryset):
    statuses = dict(Card.STATUSES)
    rows = queryset.order_by("pk").values_list(
        "number",
        "phone",
        "user__first_name",
        "user__last_name",
        "user__email",
        "program__name",
        "grade__name",
        "status",
        "account__balance",
        "debt_account__balance",
        "lifetime_spend",
        "created",
    )
    for number, phone, first, last, email, program, grade, status, *rest in rows.iterator(
        chunk_size=2000
    ):
        balance, debt, spend, created = rest
        customer = " ".join(part for part in (first, last) if part)
        yield (
            number,
            phone,
            customer,
            email or "",
            program,
            grade or "",
            str(statuses.get(status, status)),
            balance,
            -debt if debt else ZERO,
            spend,
            created,
        )


# --- writing files ---------------------------------------------------------------------------


def write(file, fmt, header, rows, title=""):
    return excel.write_table(file, fmt, header, rows, title)


def filename(stem, fmt):
    return f"{stem}-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"


def start_export(kind, fmt, query, by=None, program=None):
    """A job that writes the export of ``kind`` (``Job.EXPORT`` cards, ``Job.REPORT`` report)
    for the filter ``query`` (a querystring) into its ``result_file``; the caller queues it."""
    return jobs.create(
        kind,
        [{"format": fmt, "query": query}],
        program=program,
        params={"format": fmt, "query": query, "language": translation.get_language()},
        by=by,
    )


# kind -> ``function(querystring) -> (header, rows, stem)``, the dashboard's filters turned
# into rows; filled by ``registry.register()``.
SOURCES = {}


def _write_job_file(job, items):
    """Write the export into the private export storage under a name nobody can guess; the
    readable name (``cards-20250131-1200.xlsx``) is kept for the download."""
    item = items[0]
    header, rows, stem = SOURCES[job.kind](item["query"])
    fmt = item["format"]
    handle, path = tempfile.mkstemp(suffix="." + fmt)
    try:
        with os.fdopen(handle, "w+b") as file:
            count = write(file, fmt, header, rows, stem)
            file.seek(0)
            job.result_file.save(storage.export_name(fmt), File(file), save=False)
    finally:
        os.unlink(path)
    params = {**job.params, "rows": count, "filename": filename(stem, fmt)}
    Job.objects.filter(pk=job.pk).update(result_file=job.result_file.name, params=params)
    return 1, []


def download_name(job):
    """The name an export job's file is downloaded as."""
    return job.params.get("filename") or os.path.basename(job.result_file.name)


def delete_expired_exports():
    """Delete the files of exports finished more than OSCAR_LOYALTY_EXPORT_RETENTION_DAYS
    ago; each job keeps ``file_deleted`` so its page and download say what happened."""
    now = timezone.now()
    since = now - timedelta(days=conf.export_retention_days)
    expired = Job.objects.filter(kind__in=EXPORT_KINDS, finished__lt=since).exclude(result_file="")
    count = 0
    for job in expired.iterator():
        job.result_file.delete(save=False)  # a file already gone is no error
        Job.objects.filter(pk=job.pk).update(result_file="", file_deleted=now)
        count += 1
    return count


def run_card_export(job, items):
    with translation.override(job.params.get("language") or None):
        return _write_job_file(job, items)


def run_report_export(job, items):
    with translation.override(job.params.get("language") or None):
        return _write_job_file(job, items)
