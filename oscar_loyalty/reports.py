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
from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from oscar.core.loading import get_model

from oscar_loyalty import conf, excel, jobs, ledger, phones, storage

Account = get_model("oscar_loyalty", "Account")
Card = get_model("oscar_loyalty", "Card")
Job = get_model("oscar_loyalty", "Job")
Program = get_model("oscar_loyalty", "Program")
Transfer = get_model("oscar_loyalty", "Transfer")

ZERO = Decimal("0.00")
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


def totals(queryset):
    """Earned, spent, expired and reversed points of the transfers, and the net change."""
    sums = dict.fromkeys((EARNED, SPENT, EXPIRED, REVERSED), ZERO)
    rows = queryset.order_by().values("kind").annotate(total=Sum("change"))
    for row in rows:
        bucket = BUCKETS.get(row["kind"])
        if bucket is not None and row["total"] is not None:
            sums[bucket] += row["total"]
    result = {
        EARNED: sums[EARNED],
        SPENT: -sums[SPENT],
        EXPIRED: -sums[EXPIRED],
        REVERSED: -sums[REVERSED],
    }
    result["net"] = sum(sums.values(), ZERO)
    return result


def outstanding(program=None):
    """Per programme: points on cards, points held at checkout, debt owed, and their value."""
    programs = Program.objects.order_by("name")
    if program:
        programs = programs.filter(pk=program.pk)
    balances = {}
    for row in (
        Account.objects.filter(kind__in=[Account.POINTS, Account.DEBT])
        .values("program_id", "kind")
        .annotate(total=Sum("balance"))
    ):
        balances[row["program_id"], row["kind"]] = row["total"] or ZERO
    result = []
    for item in programs:
        on_cards = balances.get((item.pk, Account.POINTS), ZERO)
        held = ledger.balance(ledger.system_account(item, ledger.HELD))
        points = on_cards + held
        result.append(
            {
                "program": item,
                "on_cards": on_cards,
                "held": held,
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
            description,
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


# The views register how a querystring becomes rows (they own the filter forms).
SOURCES = {}


def source(kind):
    """Register ``function(querystring) -> (header, rows, stem)`` for export jobs of ``kind``."""

    def register(function):
        SOURCES[kind] = function
        return function

    return register


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


@jobs.handler(Job.EXPORT)
def run_card_export(job, items):
    with translation.override(job.params.get("language") or None):
        return _write_job_file(job, items)


@jobs.handler(Job.REPORT)
def run_report_export(job, items):
    with translation.override(job.params.get("language") or None):
        return _write_job_file(job, items)
