"""Django admin: programmes and grades are editable; the ledger is read-only."""

from django.contrib import admin
from oscar.core.loading import get_model

Program = get_model("oscar_loyalty", "Program")
Grade = get_model("oscar_loyalty", "Grade")
Card = get_model("oscar_loyalty", "Card")
Account = get_model("oscar_loyalty", "Account")
Transfer = get_model("oscar_loyalty", "Transfer")
Accrual = get_model("oscar_loyalty", "Accrual")
Hold = get_model("oscar_loyalty", "Hold")
Category = get_model("oscar_loyalty", "Category")
Job = get_model("oscar_loyalty", "Job")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger rows change only through ``oscar_loyalty.ledger``; the admin only shows them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class GradeInline(admin.TabularInline):
    model = Grade
    extra = 0


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "is_active", "point_value", "accrual_delay_hours"]
    prepopulated_fields = {"code": ["name"]}
    inlines = [GradeInline]


@admin.register(Card)
class CardAdmin(ReadOnlyAdmin):
    list_display = ["number", "program", "user", "phone", "grade", "status"]
    list_filter = ["program", "status", "grade"]
    search_fields = ["number", "phone", "user__email"]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ["created", "key", "kind", "debit", "credit", "amount", "card", "order_number"]
    list_filter = ["kind"]
    search_fields = ["key", "order_number", "card__number"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["pk", "program", "kind", "code", "unit", "balance"]
    list_filter = ["kind", "program"]


@admin.register(Accrual)
class AccrualAdmin(ReadOnlyAdmin):
    # An accrual has an order number or, made by a mass accrual, its job.
    list_display = [
        "order_number",
        "job",
        "card",
        "points",
        "reversed_points",
        "status",
        "available_at",
    ]
    list_filter = ["status"]
    list_select_related = ["card", "job"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["order_number", "card", "points", "money", "status", "created"]
    list_filter = ["status"]


admin.site.register(Category)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    # Export files have no URL (private storage); the dashboard's job page serves them.
    exclude = ["result_file"]


@admin.register(get_model("oscar_loyalty", "Message"))
class MessageAdmin(ReadOnlyAdmin):
    """Messages are recorded and sent by ``oscar_loyalty.notifications``; the dashboard's
    message log resends failed ones."""

    list_display = ["created", "event", "channel", "recipient", "status", "attempts", "sent"]
    list_filter = ["status", "channel", "event"]
    search_fields = ["recipient", "key", "card__number"]
    list_select_related = ["card"]
