"""Which function runs each kind of job, and where an export's rows come from, in one place.

``LoyaltyConfig.ready()`` fills the tables with ``register()``, so a Celery worker or a
management command finds every handler whether or not anything imported the dashboard.
Export sources turn the dashboard's filters into rows; they are named here and loaded
with ``get_class`` when an export runs (a fork may override them), so the dashboard is
imported only by the export that needs it.
"""

from oscar.core.loading import get_model

from oscar_loyalty import jobs, mass_jobs, reports
from oscar_loyalty.card_import import handlers, undo
from oscar_loyalty.loading import get_class

Job = get_model("oscar_loyalty", "Job")


def _loaded_when_called(module_label, name):
    def source(query):
        return get_class(module_label, name)(query)

    return source


def register():
    jobs.HANDLERS.update(
        {
            mass_jobs.ACCRUAL: mass_jobs.mass_accrual,
            mass_jobs.DEBIT: mass_jobs.mass_debit,
            Job.IMPORT: handlers.run_rows,
            Job.EXPORT: reports.run_card_export,
            Job.REPORT: reports.run_report_export,
        }
    )
    jobs.FINISHERS.update({Job.IMPORT: undo.mark_undone})
    reports.SOURCES.update(
        {
            Job.EXPORT: _loaded_when_called("dashboard.excel.views", "card_source"),
            Job.REPORT: _loaded_when_called("dashboard.excel.views", "report_source"),
        }
    )
