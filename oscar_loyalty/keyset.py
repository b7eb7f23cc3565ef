"""Pages of a history, newest first, cut at a row rather than at an OFFSET.

An OFFSET makes the database read and skip every row before the page, so the last page of a
long history costs the whole history. A keyset page starts after a row it names (its id):
``before=<id>`` shows the next older rows, ``after=<id>`` the next newer ones, and either
costs what the first page costs with an index on the date. No COUNT is made: the page links
to the newer and older pages, not to page numbers.

Rows are ordered by ``(date, id)`` descending, as ``ledger.history`` and the points report
list transfers.
"""

from django.db.models import Q, Subquery


class Page:
    """Rows of one page and the cursors of its neighbours (``None``: there is none)."""

    def __init__(self, rows, newer, older):
        self.rows, self.newer, self.older = rows, newer, older

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __bool__(self):
        return bool(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    @property
    def has_other_pages(self):
        return self.newer is not None or self.older is not None


def cursor(value):
    """A cursor from a query parameter: a positive id, else ``None`` (the first page).
    Longer than any id is ignored too: the database would refuse the number."""
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) <= 18 and int(text) > 0 else None


def page(queryset, size, before=None, after=None, date="created"):
    """One page of ``queryset`` (ordered by ``-date, -id``): the newest rows, or the ones
    just older than row ``before``, or just newer than row ``after``."""
    before, after = cursor(before), cursor(after)
    pivot_id = before or after
    if pivot_id is None:
        rows = list(queryset[: size + 1])
        return Page(rows[:size], None, rows[size - 1].pk if len(rows) > size else None)
    pivot = Subquery(queryset.model._base_manager.filter(pk=pivot_id).values(date)[:1])
    if before:
        # The redundant ``date <= pivot`` lets the date index start at the pivot.
        rows = list(
            queryset.filter(
                Q(**{f"{date}__lt": pivot}) | Q(**{date: pivot, "id__lt": pivot_id}),
                **{f"{date}__lte": pivot},
            )[: size + 1]
        )
        shown = rows[:size]
        older = shown[-1].pk if len(rows) > size else None
        return Page(shown, shown[0].pk if shown else None, older)
    rows = list(
        queryset.filter(
            Q(**{f"{date}__gt": pivot}) | Q(**{date: pivot, "id__gt": pivot_id}),
            **{f"{date}__gte": pivot},
        ).order_by(date, "id")[: size + 1]
    )
    shown = rows[:size][::-1]
    newer = shown[0].pk if len(rows) > size else None
    return Page(shown, newer, shown[-1].pk if shown else None)
