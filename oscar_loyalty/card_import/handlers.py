"""The job handler of import jobs: a chunk of an import is applied, one of an undo undone."""

from django.utils import translation

from oscar_loyalty.card_import.apply import _apply_rows
from oscar_loyalty.card_import.drafts import is_undo
from oscar_loyalty.card_import.undo import _undo_rows


def run_rows(job, items):
    """Job handler: apply a chunk of import rows (or undo them, for an undo job)."""
    with translation.override(job.params.get("language") or None):
        if is_undo(job):
            return _undo_rows(job, items)
        return _apply_rows(job, items)
