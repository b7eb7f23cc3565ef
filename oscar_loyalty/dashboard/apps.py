from django.urls import path
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig
from oscar.views.decorators import check_permissions

from oscar_loyalty.loading import get_class


def perms(*codenames):
    """Staff with the model permissions ``codenames`` of oscar_loyalty (all of them)."""
    return ["is_staff", *(f"oscar_loyalty.{codename}" for codename in codenames)]


class LoyaltyDashboardConfig(OscarDashboardConfig):
    """Manager screens of the loyalty programme, mounted at e.g. ``dashboard/loyalty/``.

    Every view needs its model permissions (see ``permissions_map``); a staff user without
    them gets 403. To add screens, name the view in its area's ``area_views``, add its ``path``
    to ``get_urls()`` (names start with ``loyalty-``) and its permissions here.
    """

    label = "oscar_loyalty_dashboard"
    name = "oscar_loyalty.dashboard"
    verbose_name = _("Loyalty dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    default_permissions = ["is_staff"]
    permissions_map = {
        # programmes and grades
        "loyalty-program-list": perms("view_program"),
        "loyalty-program-create": perms("add_program"),
        "loyalty-program-update": perms("view_program", "change_program"),
        "loyalty-grade-create": perms("add_grade"),
        "loyalty-grade-update": perms("change_grade"),
        "loyalty-grade-delete": perms("delete_grade", "change_card"),
        # cards
        "loyalty-card-list": perms("view_card"),
        "loyalty-card-create": perms("add_card"),
        "loyalty-card-detail": perms("view_card"),
        "loyalty-card-phone": perms("change_card"),
        "loyalty-card-replace": perms("add_card", "change_card", "add_transfer"),
        "loyalty-card-grade": perms("change_card"),
        "loyalty-card-status": perms("change_card"),
        "loyalty-card-adjust": perms("add_transfer"),
        "loyalty-card-consent": perms("change_card"),
        "loyalty-card-categories": perms("view_card", "change_category"),
        "loyalty-mass-accrual": perms("view_card", "add_job", "add_transfer"),
        "loyalty-mass-debit": perms("view_card", "add_job", "add_transfer"),
        # customer categories
        "loyalty-category-list": perms("view_category"),
        "loyalty-category-create": perms("add_category"),
        "loyalty-category-update": perms("change_category"),
        "loyalty-category-delete": perms("delete_category"),
        "loyalty-customer-categories": perms("change_category"),
        # jobs
        "loyalty-job-list": perms("view_job"),
        "loyalty-job-detail": perms("view_job"),
        "loyalty-job-progress": perms("view_job"),
        "loyalty-job-resume": perms("change_job"),
        # messages to customers
        "loyalty-message-list": perms("view_message"),
        "loyalty-message-resend": perms("view_message", "change_message"),
        # Excel: import, exports, points report
        "loyalty-import": perms("add_card", "add_transfer", "add_job"),
        "loyalty-import-preview": perms("add_card", "add_transfer", "add_job"),
        "loyalty-import-job": perms("view_job"),
        "loyalty-import-errors": perms("view_job"),
        "loyalty-import-undo": perms("add_transfer", "add_job"),
        "loyalty-card-export": perms("view_card", "add_job"),
        "loyalty-report": perms("view_transfer"),
        "loyalty-report-export": perms("view_transfer", "add_job"),
        "loyalty-export-download": perms("view_job"),
    }
    # An export holds the data of the screen it was made from: its job, page and file are
    # for managers who may open that screen (besides view_job), with its permissions above.
    export_screens = {"export": "loyalty-card-list", "report": "loyalty-report"}

    def hidden_job_kinds(self, user):
        """Kinds of export jobs whose data ``user`` may not see."""
        return [
            kind
            for kind, screen in self.export_screens.items()
            if not check_permissions(user, self.get_permissions(screen))
        ]

    # Each screen area is a subpackage with its own views, forms and tables, loaded with
    # ``get_class`` (a fork overrides one class in ``<fork>.dashboard.<area>.<module>``).
    # They are not apps of their own, so a shop installs this one config only.
    area_views = {
        "programs": {
            "program_list_view": "ProgramListView",
            "program_create_view": "ProgramCreateView",
            "program_update_view": "ProgramUpdateView",
            "grade_create_view": "GradeCreateView",
            "grade_update_view": "GradeUpdateView",
            "grade_delete_view": "GradeDeleteView",
        },
        "cards": {
            "card_list_view": "CardListView",
            "card_create_view": "CardIssueView",
            "card_detail_view": "CardDetailView",
            "card_phone_view": "CardPhoneView",
            "card_replace_view": "CardReplaceView",
            "card_grade_view": "CardGradeView",
            "card_status_view": "CardStatusView",
            "card_adjust_view": "CardAdjustView",
            "card_consent_view": "CardConsentView",
            "card_categories_view": "CategoryBulkView",
            "mass_accrual_view": "MassJobView",
            "mass_debit_view": "MassDebitView",
        },
        "categories": {
            "category_list_view": "CategoryListView",
            "category_create_view": "CategoryCreateView",
            "category_update_view": "CategoryUpdateView",
            "category_delete_view": "CategoryDeleteView",
            "customer_categories_view": "CustomerCategoryView",
        },
        "jobs": {
            "job_list_view": "JobListView",
            "job_detail_view": "JobDetailView",
            "job_progress_view": "JobProgressView",
            "job_resume_view": "JobResumeView",
        },
        "notifications": {
            "message_list_view": "MessageListView",
            "message_resend_view": "MessageResendView",
        },
        "excel": {
            "import_view": "ImportView",
            "import_preview_view": "ImportPreviewView",
            "import_job_view": "ImportJobView",
            "import_errors_view": "ImportErrorsView",
            "import_undo_view": "ImportUndoView",
            "card_export_view": "CardExportView",
            "report_view": "ReportView",
            "report_export_view": "ReportExportView",
            "export_download_view": "ExportDownloadView",
        },
    }

    def ready(self):
        for area, views in self.area_views.items():
            for attribute, classname in views.items():
                setattr(self, attribute, get_class(f"dashboard.{area}.views", classname))

    def get_urls(self):
        urls = [
            # programmes and grades
            path("programmes/", self.program_list_view.as_view(), name="loyalty-program-list"),
            path(
                "programmes/new/",
                self.program_create_view.as_view(),
                name="loyalty-program-create",
            ),
            path(
                "programmes/<int:pk>/",
                self.program_update_view.as_view(),
                name="loyalty-program-update",
            ),
            path(
                "programmes/<int:program_pk>/grades/new/",
                self.grade_create_view.as_view(),
                name="loyalty-grade-create",
            ),
            path("grades/<int:pk>/", self.grade_update_view.as_view(), name="loyalty-grade-update"),
            path(
                "grades/<int:pk>/delete/",
                self.grade_delete_view.as_view(),
                name="loyalty-grade-delete",
            ),
            # cards
            path("cards/", self.card_list_view.as_view(), name="loyalty-card-list"),
            path("cards/new/", self.card_create_view.as_view(), name="loyalty-card-create"),
            path("cards/<int:pk>/", self.card_detail_view.as_view(), name="loyalty-card-detail"),
            path(
                "cards/<int:pk>/phone/", self.card_phone_view.as_view(), name="loyalty-card-phone"
            ),
            path(
                "cards/<int:pk>/replace/",
                self.card_replace_view.as_view(),
                name="loyalty-card-replace",
            ),
            path(
                "cards/<int:pk>/grade/", self.card_grade_view.as_view(), name="loyalty-card-grade"
            ),
            path(
                "cards/<int:pk>/status/",
                self.card_status_view.as_view(),
                name="loyalty-card-status",
            ),
            path(
                "cards/<int:pk>/adjust/",
                self.card_adjust_view.as_view(),
                name="loyalty-card-adjust",
            ),
            path(
                "cards/<int:pk>/consent/",
                self.card_consent_view.as_view(),
                name="loyalty-card-consent",
            ),
            path(
                "cards/categories/",
                self.card_categories_view.as_view(),
                name="loyalty-card-categories",
            ),
            path("cards/accrue/", self.mass_accrual_view.as_view(), name="loyalty-mass-accrual"),
            path("cards/debit/", self.mass_debit_view.as_view(), name="loyalty-mass-debit"),
            # customer categories
            path("categories/", self.category_list_view.as_view(), name="loyalty-category-list"),
            path(
                "categories/new/",
                self.category_create_view.as_view(),
                name="loyalty-category-create",
            ),
            path(
                "categories/<int:pk>/",
                self.category_update_view.as_view(),
                name="loyalty-category-update",
            ),
            path(
                "categories/<int:pk>/delete/",
                self.category_delete_view.as_view(),
                name="loyalty-category-delete",
            ),
            path(
                "customers/<int:pk>/categories/",
                self.customer_categories_view.as_view(),
                name="loyalty-customer-categories",
            ),
            # jobs
            path("jobs/", self.job_list_view.as_view(), name="loyalty-job-list"),
            path("jobs/<int:pk>/", self.job_detail_view.as_view(), name="loyalty-job-detail"),
            path(
                "jobs/<int:pk>/progress/",
                self.job_progress_view.as_view(),
                name="loyalty-job-progress",
            ),
            path(
                "jobs/<int:pk>/resume/",
                self.job_resume_view.as_view(),
                name="loyalty-job-resume",
            ),
            # messages to customers
            path("messages/", self.message_list_view.as_view(), name="loyalty-message-list"),
            path(
                "messages/resend/",
                self.message_resend_view.as_view(),
                name="loyalty-message-resend",
            ),
            # Excel: import, exports, points report
            path("import/", self.import_view.as_view(), name="loyalty-import"),
            path(
                "import/<int:pk>/check/",
                self.import_preview_view.as_view(),
                name="loyalty-import-preview",
            ),
            path("import/<int:pk>/", self.import_job_view.as_view(), name="loyalty-import-job"),
            path(
                "import/<int:pk>/errors.xlsx",
                self.import_errors_view.as_view(),
                name="loyalty-import-errors",
            ),
            path(
                "import/<int:pk>/undo/",
                self.import_undo_view.as_view(),
                name="loyalty-import-undo",
            ),
            path("cards/export/", self.card_export_view.as_view(), name="loyalty-card-export"),
            path("report/", self.report_view.as_view(), name="loyalty-report"),
            path(
                "report/export/",
                self.report_export_view.as_view(),
                name="loyalty-report-export",
            ),
            path(
                "jobs/<int:pk>/file/",
                self.export_download_view.as_view(),
                name="loyalty-export-download",
            ),
        ]
        return self.post_process_urls(urls)
