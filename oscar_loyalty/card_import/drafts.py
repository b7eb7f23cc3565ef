"""Draft imports: a table checked and stored before anything is written, then started.

A draft is an import ``Job`` with ``params["draft"]``; its chunks hold every row as
``rows.Stored``. The preview, its totals and its errors are read from them.
"""

import hashlib
from decimal import Decimal

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from oscar_loyalty import conf, jobs, phones
from oscar_loyalty.card_import.cells import ROLE_LABELS, column_letter, guess_header, guess_mapping
from oscar_loyalty.card_import.rows import (
    CONSENTED,
    NEW,
    SAME,
    SET,
    TOPPED,
    ZERO,
    Cards,
    Stored,
    check_duplicates,
    classify,
    parse_row,
)
from oscar_loyalty.exceptions import LoyaltyError

Job = get_model("oscar_loyalty", "Job")
JobChunk = get_model("oscar_loyalty", "JobChunk")
Program = get_model("oscar_loyalty", "Program")


def _digest(program, rows):
    """A fingerprint of the table for this programme, to notice the same file imported twice.
    Cells are joined with control characters that cells do not hold (a contrived clash would
    only show or hide the warning about a repeated import)."""
    text = "\x1e".join("\x1f".join(cells) for _n, cells in rows)
    return hashlib.sha256(f"{program.pk}\x1d{text}".encode()).hexdigest()


def create_draft(table, program, by=None, language=None):
    """Store a read table as a draft import (nothing applied) and check it."""
    purge_drafts()
    has_header = guess_header(table)
    params = {
        "draft": True,
        "source": table.source,
        "source_kind": Job.PASTED if table.pasted else Job.FILE,
        "notes": [str(note) for note in table.notes],
        "width": table.width,
        "first": list(table.rows[0][1]),
        "first_n": table.rows[0][0],
        "header": has_header,
        "mapping": guess_mapping(table, has_header),
        "language": language or translation.get_language(),
        "digest": _digest(program, table.rows),
    }
    job = Job.objects.create(kind=Job.IMPORT, program=program, params=params, created_by=by)
    _check(job, table.rows, params["mapping"], has_header)
    return job


def table_rows(job, items=None):
    """Every row of a draft (its stored ``items`` when the caller has read them), the first
    one included, as ``(n, cells)``."""
    rows = [] if not job.params.get("header") else [(job.params["first_n"], job.params["first"])]
    rows.extend((item.n, tuple(item.cells)) for item in items or iter_items(job))
    rows.sort()
    return rows


def recheck(job, mapping, has_header):
    """Check a draft again with another column mapping or header choice."""
    _check(job, table_rows(job), mapping, has_header)


def _check(job, rows, mapping, has_header):
    """Parse and check every row, then store them in the draft's chunks with the totals."""
    items, totals = _classified(job.program, rows, mapping, has_header)
    return _store(job, items, totals, mapping, has_header)


@jobs.cycle_collector_paused()
def _classified(program, rows, mapping, has_header):
    """``(items, totals)``: every row parsed and checked against the database, as stored."""
    data = rows[1:] if has_header else rows
    reader = phones.Reader()
    first_phone, first_number, seen_cards = {}, {}, {}
    totals = dict.fromkeys(
        ("rows", NEW, SET, TOPPED, CONSENTED, SAME, "errors", "consent_on", "consent_off"), 0
    )
    totals.update(opening=ZERO, added=ZERO, taken=ZERO)
    items = []
    size = conf.import_chunk_size
    for start in range(0, len(data), size):
        batch = [
            parse_row(n, tuple(cells), mapping, reader) for n, cells in data[start : start + size]
        ]
        for row in batch:
            check_duplicates(row, first_phone, first_number)
        known = Cards(program).load([r for r in batch if not r.errors])
        for row in batch:
            classify(row, known, seen_cards)
            totals["rows"] += 1
            if row.errors:
                totals["errors"] += 1
            else:
                totals[row.action] += 1
                if row.consent_changes:
                    totals["consent_on" if row.consent else "consent_off"] += 1
                if row.action == NEW:
                    totals["opening"] += row.diff
                elif row.diff > 0:
                    totals["added"] += row.diff
                else:
                    totals["taken"] -= row.diff
            items.append(row.item())
    return items, {k: str(v) for k, v in totals.items()}


def _store(job, items, totals, mapping, has_header):
    """Save checked rows into the draft's chunks, with the totals and a new check token."""
    size = conf.import_chunk_size
    params = dict(job.params)
    params.update(
        mapping=list(mapping),
        header=bool(has_header),
        totals=totals,
        checked=timezone.now().isoformat(),
    )
    with transaction.atomic():
        job.chunks.all().delete()
        # One INSERT per chunk: Django's bulk_create sends the JSON of every chunk inside one
        # PostgreSQL array, which the driver escapes character by character (slow).
        for i, s in enumerate(range(0, len(items), size)):
            JobChunk.objects.create(job=job, index=i, items=items[s : s + size])
        job.params, job.total = params, len(items)
        job.save(update_fields=["params", "total"])
    return job


def totals(job):
    return {
        key: (Decimal(value) if key in ("opening", "added", "taken") else int(value))
        for key, value in job.params.get("totals", {}).items()
    }


def is_draft(job):
    return job.kind == Job.IMPORT and job.status == Job.NEW and job.params.get("draft")


def is_undo(job):
    return bool(job.params.get("undo_of"))


def iter_items(job):
    """The stored rows of an import (``Stored``), in file order."""
    for items in job.chunks.order_by("index").values_list("items", flat=True).iterator(20):
        yield from (Stored(*item) for item in items)


def preview_rows(job, limit=20):
    """The first rows with what each will do, for the preview table."""
    rows = []
    for item in iter_items(job):
        rows.append(item)
        if len(rows) >= limit:
            break
    return rows


def previous_imports(job):
    """Imports of the same table into the same programme, started (running or waiting for a
    worker) or finished: importing it again would repeat their top-ups."""
    return (
        Job.objects.filter(
            kind=Job.IMPORT, program=job.program, status__in=[Job.NEW, Job.RUNNING, Job.DONE]
        )
        .filter(params__digest=job.params.get("digest"))
        .exclude(params__has_key="draft")
        .exclude(pk=job.pk)
        .order_by("-created")
    )


class ImportRepeated(LoyaltyError):
    """The same table was started or finished meanwhile; confirm with ``again`` to repeat it."""


class PreviewChanged(LoyaltyError):
    """What the rows do changed since the preview; the draft now holds the new check."""


def _outcome(item):
    """What a stored row does, for telling whether a check again changed it: its card and
    action, or that it is skipped. Not the amount: a balance that moved does not change what
    "set to" or "add" means, and the chunk applies it to the balance it then finds."""
    n, _cells, _phone, _number, _topup, _balance, errors, action, _diff, card_id, *_ = item
    return n, bool(errors), action, card_id


def start(job, again=False):
    """Turn a checked draft into a job the workers may run; the caller then queues it.

    Confirmations of one programme take turns (a lock on its row, one that card inserts do
    not wait for), so two managers confirming the same table cannot both miss the other.
    Under that lock the rows are checked again against the database: when what one does
    changed (another import issued its card, a row became an error or stopped being one),
    the new check is saved and ``PreviewChanged`` raised. The same table started or
    finished before raises ``ImportRepeated`` unless ``again``. Either way the job stays a
    draft that nothing runs.
    """
    with transaction.atomic():
        list(Program.objects.select_for_update(no_key=True).filter(pk=job.program_id))
        job = Job.objects.select_for_update().get(pk=job.pk)
        if not is_draft(job):
            raise LoyaltyError(_("This import has already been started."))
        mapping, header = job.params["mapping"], job.params["header"]
        stored = list(iter_items(job))
        with translation.override(job.params.get("language") or None):
            items, totals = _classified(job.program, table_rows(job, stored), mapping, header)
        changed = list(map(_outcome, items)) != list(map(_outcome, stored))
        earlier = None if again else previous_imports(job).first()
        if changed:
            _store(job, items, totals, mapping, header)
        elif earlier is None:
            params = dict(job.params)
            params.pop("draft")
            job.params = params
            job.created = job.progressed = timezone.now()
            job.save(update_fields=["params", "created", "progressed"])
    if changed:
        raise PreviewChanged(
            _(
                "The cards changed since the table was checked; the preview now shows what "
                "each row will do. Look at it and confirm again."
            )
        )
    if earlier is not None:
        raise ImportRepeated(
            _(
                "This same table was imported as import #%(job)s; importing it again adds "
                "its top-ups again. Tick “Import it again” if that is what you want."
            )
            % {"job": earlier.pk}
        )
    return job


def purge_drafts(hours=24):
    """Drop drafts nobody confirmed within ``hours``: they hold a whole file each."""
    since = timezone.now() - timezone.timedelta(hours=hours)
    Job.objects.filter(
        kind=Job.IMPORT, status=Job.NEW, params__draft=True, created__lt=since
    ).delete()


# --- errors ----------------------------------------------------------------------------------


def error_rows(job):
    """``(n, cells, reason)`` of every row that was or will be skipped, in file order."""
    failed = {}
    for failure in job.errors:
        item = failure.get("item")
        if isinstance(item, int):
            failed[item] = failure.get("reason", "")
    for item in iter_items(job):
        reasons = [message for _role, message in item.errors]
        if not reasons and item.n in failed:
            reasons = [failed[item.n]]
        if reasons:
            yield item.n, item.cells, " ".join(reasons)


def error_list(job, limit=200):
    """Errors with their column, for the preview: ``(n, column, value, reason)``."""
    mapping = job.params.get("mapping", [])
    header = job.params.get("first", []) if job.params.get("header") else []
    result = []
    for item in iter_items(job):
        for role, message in item.errors:
            index = mapping.index(role) if role in mapping else None
            column = ""
            value = ""
            if index is not None:
                column = column_letter(index)
                name = header[index] if index < len(header) else ""
                column += f" ({name or ROLE_LABELS[role]})"
                value = item.cells[index] if index < len(item.cells) else ""
            result.append((item.n, column, value, message))
            if len(result) >= limit:
                return result
    return result


def error_header(job):
    width = job.params.get("width", 0)
    first = job.params.get("first", []) if job.params.get("header") else []
    names = [first[i] if i < len(first) and first[i] else column_letter(i) for i in range(width)]
    return [_("Row"), *names, _("Error")]
