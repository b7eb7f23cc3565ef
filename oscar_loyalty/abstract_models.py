"""Forkable models of the loyalty programme.

A shop forks them the Oscar way: subclass the abstract model in its own ``models.py`` and the
package's ``models.py`` skips registering that one (``is_model_registered``).
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from oscar_loyalty import conf
from oscar_loyalty.descriptions import describe
from oscar_loyalty.storage import export_storage

ZERO = Decimal("0")
AMOUNT = {"max_digits": 14, "decimal_places": 2}


def default_card_number_length():
    return conf.card_number_length


colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour like #1f77b4."))


class AbstractProgram(models.Model):
    """A kind of card a shop issues ("card type") and the rules its cards follow."""

    name = models.CharField(pgettext_lazy("programme", "name"), max_length=128)
    code = models.SlugField(_("code"), max_length=64, unique=True)
    is_active = models.BooleanField(pgettext_lazy("programme", "active"), default=True)
    point_value = models.DecimalField(
        _("value of one point"),
        help_text=_("How much money one point pays for at checkout."),
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        **AMOUNT,
    )
    earn_step = models.DecimalField(
        _("earning step"),
        help_text=_("Earned points are rounded down to a multiple of this (1 = whole points)."),
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        **AMOUNT,
    )
    accrual_delay_hours = models.PositiveIntegerField(
        _("hours before earned points become available"),
        help_text=_("Counted from the moment the order is complete."),
        default=0,
    )
    history_start = models.DateField(
        _("history start date"),
        help_text=_("Orders completed before this date do not count towards grades. Empty: all."),
        null=True,
        blank=True,
    )
    card_number_length = models.PositiveSmallIntegerField(
        _("length of generated card numbers"),
        help_text=_("Including the check digit."),
        default=default_card_number_length,
        validators=[MinValueValidator(6)],
    )
    issue_on_registration = models.BooleanField(_("issue a card on registration"), default=False)
    shipping_earns = models.BooleanField(_("shipping earns points"), default=False)
    max_pay_percent = models.DecimalField(
        _("largest share of an order payable with points, %"),
        default=Decimal("100"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(ZERO)],
    )
    min_spend_points = models.DecimalField(_("least points usable at once"), default=ZERO, **AMOUNT)
    shipping_payable = models.BooleanField(_("shipping may be paid with points"), default=False)
    excluded_products = models.ManyToManyField(
        "catalogue.Product",
        blank=True,
        related_name="+",
        verbose_name=_("products that earn nothing"),
    )
    excluded_categories = models.ManyToManyField(
        "catalogue.Category",
        blank=True,
        related_name="+",
        verbose_name=_("categories that earn nothing"),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["name"]
        verbose_name = _("programme")
        verbose_name_plural = _("programmes")

    def __str__(self):
        return self.name

    def lowest_grade(self):
        return self.grades.order_by("spend_from").first()


class AbstractGrade(models.Model):
    """A tier of a programme, reached by lifetime spend."""

    DISCOUNT_PERCENT, DISCOUNT_AMOUNT = "percent", "amount"
    DISCOUNT_TYPES = [
        (DISCOUNT_PERCENT, _("percent")),
        (DISCOUNT_AMOUNT, _("money")),
    ]

    program = models.ForeignKey(
        "oscar_loyalty.Program",
        on_delete=models.CASCADE,
        related_name="grades",
        verbose_name=_("programme"),
    )
    name = models.CharField(_("name"), max_length=128)
    spend_from = models.DecimalField(
        _("spend from"),
        help_text=_("Total of completed orders from which a customer reaches this grade."),
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
        **AMOUNT,
    )
    earn_percent = models.DecimalField(
        _("earn, %"),
        default=ZERO,
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(ZERO)],
    )
    discount_type = models.CharField(
        _("discount type"), max_length=16, choices=DISCOUNT_TYPES, default=DISCOUNT_PERCENT
    )
    discount_value = models.DecimalField(
        _("discount"), default=ZERO, validators=[MinValueValidator(ZERO)], **AMOUNT
    )
    colour = models.CharField(
        _("colour"), max_length=7, default="#6c757d", validators=[colour_validator]
    )

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["program", "spend_from"]
        verbose_name = _("grade")
        verbose_name_plural = _("grades")
        constraints = [
            models.UniqueConstraint(
                fields=["program", "spend_from"], name="loyalty_grade_unique_threshold"
            ),
        ]

    def __str__(self):
        return self.name


class AbstractCard(models.Model):
    """A customer's (or a not-yet-customer phone's) membership of one programme."""

    ACTIVE, BLOCKED, CLOSED = "active", "blocked", "closed"
    STATUSES = [
        (ACTIVE, pgettext_lazy("card status", "Active")),
        (BLOCKED, pgettext_lazy("card status", "Blocked")),
        (CLOSED, pgettext_lazy("card status", "Closed")),
    ]
    # What an operation needs of the card's status (the ledger's ``check=``): USABLE for
    # earning, spending, holding and importing (an active card taking part in the
    # programme), OPEN for a manager's adjustment (any card but a closed one).
    USABLE, OPEN = "usable", "open"

    program = models.ForeignKey(
        "oscar_loyalty.Program",
        on_delete=models.PROTECT,
        related_name="cards",
        verbose_name=_("programme"),
        db_index=False,  # loyalty_card_number starts with it
    )
    number = models.CharField(_("card number"), max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="loyalty_cards",
        verbose_name=_("customer"),
        db_index=False,  # loyalty_card_user
    )
    phone = models.CharField(
        _("phone"),
        max_length=20,
        blank=True,
        help_text=_("Digits only, with the country code: 79123456789."),
    )
    grade = models.ForeignKey(
        "oscar_loyalty.Grade",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cards",
        verbose_name=_("grade"),
    )
    grade_is_manual = models.BooleanField(_("grade set by a manager"), default=False)
    participates = models.BooleanField(
        _("participates"),
        default=True,
        help_text=_("A card that does not participate earns nothing and cannot spend."),
    )
    spend_adjustment = models.DecimalField(
        _("spend counted before the shop's records"),
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
        **AMOUNT,
    )
    lifetime_spend = models.DecimalField(
        _("lifetime spend"), default=ZERO, editable=False, db_index=True, **AMOUNT
    )
    # Kept by ``grades.recalculate`` so that a million cards filter and sort on it.
    last_order_at = models.DateTimeField(
        _("last completed order"), null=True, blank=True, editable=False, db_index=True
    )
    status = models.CharField(_("status"), max_length=16, choices=STATUSES, default=ACTIVE)
    status_reason = models.CharField(
        _("internal reason"),
        max_length=255,
        blank=True,
        help_text=_("Why the card was blocked or closed; staff only."),
    )
    # db_default: cards inserted by set-based SQL (imports, benchmarks' floors) name no message.
    status_message = models.CharField(
        _("message to the customer"),
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text=_("What the customer reads about the blocked or closed card."),
    )
    account = models.OneToOneField(
        "oscar_loyalty.Account",
        on_delete=models.PROTECT,
        related_name="card",
        verbose_name=_("points account"),
    )
    # Opened with the card's first debt (``ledger.take_back``); most cards never have one.
    debt_account = models.OneToOneField(
        "oscar_loyalty.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="debt_card",
        verbose_name=_("debt account"),
    )
    # Set when the card was replaced (lost): the new card took over everything it held.
    replaced_by = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaces",
        verbose_name=_("replaced by"),
    )
    created = models.DateTimeField(_("issued"), default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
        db_index=False,  # loyalty_card_created_by
    )
    # The customer's consent to this programme's messages (``oscar_loyalty.notifications``):
    # off until the customer, a manager or an import says otherwise, with who and when.
    marketing_consent = models.BooleanField(
        _("agrees to receive messages"), default=False, db_default=False
    )
    consent_changed = models.DateTimeField(_("consent changed"), null=True, blank=True)
    consent_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consent changed by"),
        db_index=False,
    )
    CONSENT_CUSTOMER, CONSENT_MANAGER, CONSENT_IMPORT = "customer", "manager", "import"
    CONSENT_SOURCES = [
        (CONSENT_CUSTOMER, _("the customer")),
        (CONSENT_MANAGER, _("a manager")),
        (CONSENT_IMPORT, _("an import")),
    ]
    consent_source = models.CharField(
        _("consent changed through"),
        max_length=16,
        choices=CONSENT_SOURCES,
        blank=True,
        default="",
        db_default="",
    )

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created"]
        verbose_name = _("card")
        verbose_name_plural = _("cards")
        constraints = [
            models.UniqueConstraint(fields=["program", "number"], name="loyalty_card_number"),
            models.UniqueConstraint(
                fields=["program", "user"],
                condition=Q(user__isnull=False),
                name="loyalty_card_one_per_customer",
            ),
            models.UniqueConstraint(
                fields=["program", "phone"],
                condition=~Q(phone=""),
                name="loyalty_card_one_per_phone",
            ),
        ]
        # Only the indexes a query needs: an import writes every one of them for each new
        # card (benchmarks/README.md). The number index serves the dashboard's "starts with"
        # search as well as equality; columns that are mostly empty index only their values.
        indexes = [
            models.Index(
                fields=["number"],
                name="loyalty_card_number_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(fields=["phone"], name="loyalty_card_phone"),
            # "active" is nearly every card, a value no query needs an index for
            models.Index(
                fields=["status"], condition=~Q(status="active"), name="loyalty_card_status"
            ),
            models.Index(
                fields=["user"], condition=Q(user__isnull=False), name="loyalty_card_user"
            ),
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="loyalty_card_created_by",
            ),
        ]

    def __str__(self):
        return self.number

    @property
    def balance(self):
        return self.account.balance

    @property
    def debt(self):
        """Points taken back after they were spent, repaid first from later earnings."""
        return -self.debt_account.balance if self.debt_account_id else ZERO

    @property
    def is_active(self):
        return self.status == self.ACTIVE

    @property
    def customer_notice(self):
        """What the customer reads under a blocked or closed card's refusal: the manager's
        message to them, never the internal reason."""
        if self.status == self.ACTIVE:
            return ""
        return self.status_message or _("For details, please contact the shop.")

    def refusal(self, check=USABLE):
        """Why this card cannot earn or spend right now (or, with ``check``, take an
        operation that needs it), or ``None``."""
        return self.refusal_of(self.number, self.status, self.participates, check)

    @classmethod
    def refusal_of(cls, number, status, participates, check=USABLE):
        """``refusal`` from a card's values, for code that reads cards as values rather than
        objects (the import's rows, the ledger's bulk operations): the one list of the
        reasons a card refuses an operation, and their wording."""
        if check == cls.OPEN:
            if status == cls.CLOSED:
                return _("The card %(number)s is closed.") % {"number": number}
            return None
        if check != cls.USABLE:
            return None
        if status == cls.BLOCKED:
            return _("The card %(number)s is blocked.") % {"number": number}
        if status == cls.CLOSED:
            return _("The card %(number)s is closed.") % {"number": number}
        if not participates:
            return _("The card %(number)s does not take part in the programme.") % {
                "number": number
            }
        return None


class AbstractAccount(models.Model):
    """A balance in one unit. Only ``oscar_loyalty.ledger`` changes it.

    Card and debt accounts cache their balance on the row; system accounts keep ``balance``
    at zero and derive theirs from transfers, so they never become a row every transfer locks.
    """

    POINTS, DEBT, SYSTEM = "points", "debt", "system"
    KINDS = [
        (POINTS, _("card points")),
        (DEBT, _("card debt")),
        (SYSTEM, _("system")),
    ]

    unit = models.CharField(_("unit"), max_length=16, default="points")
    kind = models.CharField(_("kind"), max_length=16, choices=KINDS)
    program = models.ForeignKey(
        "oscar_loyalty.Program",
        on_delete=models.PROTECT,
        related_name="accounts",
        verbose_name=_("programme"),
    )
    code = models.CharField(
        _("system code"), max_length=32, blank=True, help_text=_("Only for system accounts.")
    )
    balance = models.DecimalField(_("balance"), default=ZERO, editable=False, **AMOUNT)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="points") | Q(balance__gte=0),
                name="loyalty_points_never_negative",
            ),
            models.CheckConstraint(
                condition=~Q(kind="debt") | Q(balance__lte=0),
                name="loyalty_debt_never_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind="system") | Q(balance=0),
                name="loyalty_system_balance_derived",
            ),
            models.UniqueConstraint(
                fields=["program", "unit", "code"],
                condition=Q(kind="system"),
                name="loyalty_one_system_account",
            ),
        ]

    def __str__(self):
        if self.kind == self.SYSTEM:
            return f"{self.program.code}:{self.code}"
        return f"{self.get_kind_display()} #{self.pk}"


class AbstractTransfer(models.Model):
    """An immutable movement of ``amount`` from ``debit`` to ``credit``.

    Never updated or deleted: a mistake is corrected by a new transfer that ``reverses`` it.
    """

    EARN = "earn"
    SPEND = "spend"
    ADJUST = "adjust"
    REVERSE = "reverse"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    DEBT = "debt"
    REPAY = "repay"
    EXPIRE = "expire"
    IMPORT = "import"
    BULK = "bulk"
    MOVE = "move"
    KINDS = [
        (EARN, _("Earned on an order")),
        (SPEND, _("Spent")),
        (ADJUST, _("Manual adjustment")),
        (REVERSE, _("Reversal")),
        (HOLD, _("Reserved for checkout")),
        (CAPTURE, _("Paid for an order")),
        (RELEASE, _("Reservation released")),
        (REFUND, _("Returned from an order")),
        (DEBT, _("Debt recorded")),
        (REPAY, _("Debt repaid")),
        (EXPIRE, _("Expired")),
        (IMPORT, _("Imported")),
        (BULK, _("Mass accrual or debit")),
        (MOVE, _("Card replacement")),
    ]

    key = models.CharField(_("idempotency key"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=KINDS)
    debit = models.ForeignKey(
        "oscar_loyalty.Account",
        on_delete=models.PROTECT,
        related_name="debits",
        verbose_name=_("from account"),
    )
    credit = models.ForeignKey(
        "oscar_loyalty.Account",
        on_delete=models.PROTECT,
        related_name="credits",
        verbose_name=_("to account"),
    )
    amount = models.DecimalField(_("amount"), **AMOUNT)
    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transfers",
        verbose_name=_("card"),
        db_index=False,  # loyalty_transfer_card starts with it
    )
    order_number = models.CharField(_("order number"), max_length=128, blank=True)
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
        db_index=False,  # loyalty_transfer_reverses
    )
    description = models.CharField(
        _("description"),
        max_length=255,
        blank=True,
        help_text=_("The customer sees it. Typed by a manager; empty when generated."),
    )
    # What a generated description says (``oscar_loyalty.descriptions``), rendered in the
    # reader's language rather than stored translated.
    # db_default: rows written by set-based SQL (imports, mass jobs, benchmarks' floors) that
    # name no code get none.
    label_code = models.CharField(
        _("generated description"), max_length=32, blank=True, default="", db_default=""
    )
    note = models.TextField(_("internal note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        db_index=False,  # loyalty_transfer_created_by
    )
    created = models.DateTimeField(_("date"), default=timezone.now, db_index=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created", "-id"]
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="loyalty_transfer_positive"),
            models.CheckConstraint(
                condition=~Q(debit=models.F("credit")), name="loyalty_transfer_two_accounts"
            ),
            # A constraint rather than unique=True, which on PostgreSQL adds a second,
            # pattern-matching index that no query uses.
            models.UniqueConstraint(fields=["key"], name="loyalty_transfer_key"),
        ]
        # As for cards: what queries need, and mostly-empty columns indexed where set.
        indexes = [
            models.Index(fields=["card", "-created"], name="loyalty_transfer_card"),
            models.Index(fields=["kind"], name="loyalty_transfer_kind"),
            models.Index(
                fields=["order_number"],
                condition=~Q(order_number=""),
                name="loyalty_transfer_order",
            ),
            models.Index(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="loyalty_transfer_reverses",
            ),
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="loyalty_transfer_created_by",
            ),
        ]

    def __str__(self):
        return f"{self.key}: {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("Transfers are immutable; post a reversal instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Transfers are immutable; post a reversal instead.")

    @property
    def label(self):
        """The description in the reader's language ("" if none: show the kind)."""
        return describe(self.label_code, self.order_number, self.description)

    def signed_amount(self, account):
        """The amount as ``account`` sees it: positive in, negative out."""
        return self.amount if self.credit_id == account.pk else -self.amount


class AbstractBalanceCheckpoint(models.Model):
    """A system account's balance as of a transfer id: the sum of its transfers up to and
    including ``transfer_id``, so that reading the balance adds only the transfers after it.

    Written by ``oscar_loyalty.checkpoints.take`` (a periodic task), never by a transfer,
    so the account stays a row no spend waits for. ``loyalty_audit`` recomputes each one.
    """

    account = models.OneToOneField(
        "oscar_loyalty.Account",
        on_delete=models.CASCADE,
        related_name="checkpoint",
        verbose_name=_("account"),
    )
    balance = models.DecimalField(_("balance"), **AMOUNT)
    transfer_id = models.BigIntegerField(_("up to transfer"))
    created = models.DateTimeField(_("taken"), default=timezone.now)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        verbose_name = _("balance checkpoint")
        verbose_name_plural = _("balance checkpoints")

    def __str__(self):
        return f"{self.account_id}@{self.transfer_id}: {self.balance}"


class AbstractTotalsCheckpoint(models.Model):
    """What the points report's totals add up per programme and kind (the change of the
    cards' balances and the number of transfers), for transfers up to ``transfer_id``.

    Every row carries the same ``transfer_id``: they are taken together, with the balance
    checkpoints, and verified by ``loyalty_audit``.
    """

    program = models.ForeignKey(
        "oscar_loyalty.Program",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("programme"),
    )
    kind = models.CharField(_("kind"), max_length=16)
    change = models.DecimalField(_("change"), **AMOUNT)
    count = models.PositiveBigIntegerField(_("transfers"))
    transfer_id = models.BigIntegerField(_("up to transfer"))
    created = models.DateTimeField(_("taken"), default=timezone.now)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        verbose_name = _("report totals checkpoint")
        verbose_name_plural = _("report totals checkpoints")
        constraints = [
            models.UniqueConstraint(fields=["program", "kind"], name="loyalty_one_kind_total"),
        ]

    def __str__(self):
        return f"{self.program_id}:{self.kind}@{self.transfer_id}: {self.change}"


class AbstractAccrual(models.Model):
    """Points an order will earn: pending until the order is complete and the delay passed."""

    PENDING, POSTED, VOIDED = "pending", "posted", "voided"
    STATUSES = [
        (PENDING, _("pending")),
        (POSTED, _("posted")),
        (VOIDED, _("voided")),
    ]

    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.PROTECT,
        related_name="accruals",
        verbose_name=_("card"),
    )
    # An accrual is an order's (its number) or a mass accrual's with a later date (its job,
    # and no number); the ledger key that posts it is made from the one it has (``keys``).
    order_number = models.CharField(_("order number"), max_length=128, blank=True, db_index=True)
    job = models.ForeignKey(
        "oscar_loyalty.Job",
        # The job's ledger keys name it: a job that left accruals is never deleted.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="accruals",
        verbose_name=_("job"),
        help_text=_("The mass accrual that made it; empty for an order's points."),
    )
    base = models.DecimalField(_("money that earns"), **AMOUNT)
    percent = models.DecimalField(_("earn, %"), max_digits=5, decimal_places=2)
    points = models.DecimalField(_("points"), **AMOUNT)
    reversed_points = models.DecimalField(_("points taken back"), default=ZERO, **AMOUNT)
    reversal_keys = models.JSONField(
        _("reversals applied"), default=list, blank=True, editable=False
    )
    description = models.CharField(
        _("description"),
        max_length=255,
        blank=True,
        help_text=_("The customer sees it. Empty for an order's points."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=STATUSES, default=PENDING, db_index=True
    )
    available_at = models.DateTimeField(
        _("available from"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_("Set when the order is complete; empty while the order is in progress."),
    )
    created = models.DateTimeField(_("created"), default=timezone.now)
    posted = models.DateTimeField(_("posted"), null=True, blank=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created"]
        verbose_name = _("accrual")
        verbose_name_plural = _("accruals")
        constraints = [
            # One accrual per card and order, one per card and job: a rerun adds nothing.
            models.UniqueConstraint(
                fields=["card", "order_number"],
                condition=Q(job__isnull=True),
                name="loyalty_one_accrual",
            ),
            models.UniqueConstraint(
                fields=["card", "job"],
                condition=Q(job__isnull=False),
                name="loyalty_one_job_accrual",
            ),
            models.CheckConstraint(
                condition=(Q(job__isnull=True) & ~Q(order_number=""))
                | (Q(job__isnull=False) & Q(order_number="")),
                name="loyalty_accrual_of_order_or_job",
            ),
        ]
        # The card page's newest orders (``dashboard.cards.views.orders_with_points``).
        indexes = [models.Index(fields=["card", "-created"], name="loyalty_accrual_card")]

    def __str__(self):
        return f"{self.order_number or f'#{self.job_id}'}: {self.points}"

    @property
    def remaining(self):
        return self.points - self.reversed_points


class AbstractHold(models.Model):
    """Points reserved for an order being paid: captured into the order or released."""

    HELD, CAPTURED, RELEASED = "held", "captured", "released"
    STATUSES = [
        (HELD, _("held")),
        (CAPTURED, _("captured")),
        (RELEASED, _("released")),
    ]

    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.PROTECT,
        related_name="holds",
        verbose_name=_("card"),
    )
    order_number = models.CharField(_("order number"), max_length=128, unique=True)
    points = models.DecimalField(_("points"), **AMOUNT)
    money = models.DecimalField(_("money paid"), **AMOUNT)
    refunded_points = models.DecimalField(_("points returned"), default=ZERO, **AMOUNT)
    status = models.CharField(
        _("status"), max_length=16, choices=STATUSES, default=HELD, db_index=True
    )
    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    closed = models.DateTimeField(_("captured or released"), null=True, blank=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created"]
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        indexes = [models.Index(fields=["card", "-created"], name="loyalty_hold_card")]

    def __str__(self):
        return f"{self.order_number}: {self.points}"


class AbstractCardChange(models.Model):
    """What every record of a change to a card says besides the change: who and when."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created = models.DateTimeField(_("date"), default=timezone.now)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created", "-id"]


class AbstractGradeChange(AbstractCardChange):
    """Who moved a card to which grade, when and why."""

    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.CASCADE,
        related_name="grade_changes",
        verbose_name=_("card"),
    )
    old_grade = models.ForeignKey(
        "oscar_loyalty.Grade",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from grade"),
    )
    new_grade = models.ForeignKey(
        "oscar_loyalty.Grade",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("to grade"),
    )
    participates = models.BooleanField(_("participates"), default=True)
    automatic = models.BooleanField(_("automatic"), default=False)
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    class Meta(AbstractCardChange.Meta):
        abstract = True
        verbose_name = _("grade change")
        verbose_name_plural = _("grade changes")


class AbstractStatusChange(AbstractCardChange):
    """Who blocked, unblocked or closed a card, when and why."""

    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.CASCADE,
        related_name="status_changes",
        verbose_name=_("card"),
    )
    old_status = models.CharField(_("from status"), max_length=16)
    new_status = models.CharField(_("to status"), max_length=16)
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    class Meta(AbstractCardChange.Meta):
        abstract = True
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")


class AbstractPhoneChange(AbstractCardChange):
    """Who changed a card's phone, when, from what to what."""

    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.CASCADE,
        related_name="phone_changes",
        verbose_name=_("card"),
    )
    old_phone = models.CharField(_("from phone"), max_length=20, blank=True)
    new_phone = models.CharField(_("to phone"), max_length=20, blank=True)

    class Meta(AbstractCardChange.Meta):
        abstract = True
        verbose_name = _("phone change")
        verbose_name_plural = _("phone changes")


# The categories a new shop starts with (migration 0003): stored in English, shown translated.
DEFAULT_CATEGORY_NAMES = {
    "Regular": _("Regular"),
    "Loyal": _("Loyal"),
    "VIP": _("VIP"),
}


class AbstractCategory(models.Model):
    """A coloured label on customers ("Regular", "Loyal", "VIP")."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    colour = models.CharField(
        _("colour"), max_length=7, default="#0d6efd", validators=[colour_validator]
    )
    customers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="loyalty_categories",
        verbose_name=_("customers"),
    )

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["name"]
        verbose_name = _("customer category")
        verbose_name_plural = _("customer categories")

    def __str__(self):
        return str(self.label)

    @property
    def label(self):
        """The name to show: a default category's name in the reader's language."""
        return DEFAULT_CATEGORY_NAMES.get(self.name, self.name)


class AbstractJob(models.Model):
    """A long bulk operation run by Celery in chunks, with its progress and errors."""

    MASS_ACCRUAL, MASS_DEBIT, IMPORT, EXPORT, REPORT = (
        "mass_accrual",
        "mass_debit",
        "import",
        "export",
        "report",
    )
    KINDS = [
        (MASS_ACCRUAL, _("Mass accrual")),
        (MASS_DEBIT, _("Mass debit")),
        (IMPORT, _("Import from Excel")),
        (EXPORT, _("Card export")),
        (REPORT, _("Points report export")),
    ]
    # Where an import's rows came from (``params["source_kind"]``).
    FILE, PASTED = "file", "pasted"
    NEW, RUNNING, DONE, FAILED, UNDONE = "new", "running", "done", "failed", "undone"
    STATUSES = [
        # shown beside a job of any kind ("Import #3 finished"), so worded to suit them all
        (NEW, pgettext_lazy("job status", "waiting")),
        (RUNNING, pgettext_lazy("job status", "running")),
        (DONE, pgettext_lazy("job status", "finished")),
        (FAILED, pgettext_lazy("job status", "failed")),
        (UNDONE, pgettext_lazy("job status", "undone")),
    ]

    kind = models.CharField(_("kind"), max_length=32, choices=KINDS)
    status = models.CharField(_("status"), max_length=16, choices=STATUSES, default=NEW)
    program = models.ForeignKey(
        "oscar_loyalty.Program",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
        verbose_name=_("programme"),
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    total = models.PositiveIntegerField(_("items"), default=0)
    done = models.PositiveIntegerField(_("processed"), default=0)
    succeeded = models.PositiveIntegerField(_("succeeded"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    # Exports: private storage, unguessable names (oscar_loyalty/storage.py); the file is
    # deleted after OSCAR_LOYALTY_EXPORT_RETENTION_DAYS and ``file_deleted`` says when.
    result_file = models.FileField(
        _("result file"), upload_to="exports/", storage=export_storage, blank=True
    )
    file_deleted = models.DateTimeField(_("file deleted"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now)
    # When a chunk last finished (or the job started): a job is stalled when this is old,
    # not when it was created long ago.
    progressed = models.DateTimeField(_("last progress"), default=timezone.now)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["-created", "-id"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def percent(self):
        return int(self.done * 100 / self.total) if self.total else (100 if self.finished else 0)

    @property
    def source_label(self):
        """Where an import's rows came from: the file's name, or pasted cells in the reader's
        language (``params["source_kind"]`` is "pasted"; the name is then empty)."""
        if self.params.get("source_kind") == self.PASTED:
            return _("Pasted cells")
        return self.params.get("source", "")


class AbstractJobChunk(models.Model):
    """One slice of a job, its items frozen when the job starts.

    ``done`` makes a redelivered chunk a no-op and lets a stopped job resume where it was.
    """

    job = models.ForeignKey(
        "oscar_loyalty.Job", on_delete=models.CASCADE, related_name="chunks", verbose_name=_("job")
    )
    index = models.PositiveIntegerField(_("number"))
    items = models.JSONField(_("items"), default=list)
    done = models.BooleanField(_("done"), default=False, db_index=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="loyalty_job_chunk"),
        ]


class AbstractMessage(models.Model):
    """One message to a customer on one channel, recorded in the transaction of what caused
    it and sent after commit (``oscar_loyalty.notifications``).

    ``key`` is derived from the cause (a transfer's key, a grade change, a card), so a
    replayed signal, a redelivered task or a re-run job finds it recorded and adds nothing.
    """

    EMAIL, SMS, SITE = "email", "sms", "site"
    CHANNELS = [(EMAIL, _("E-mail")), (SMS, _("SMS")), (SITE, _("Account inbox"))]
    QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
    STATUSES = [
        (QUEUED, pgettext_lazy("message status", "queued")),
        (SENDING, pgettext_lazy("message status", "sending")),
        (SENT, pgettext_lazy("message status", "sent")),
        (FAILED, pgettext_lazy("message status", "failed")),
    ]

    key = models.CharField(_("key"), max_length=255)
    event = models.CharField(_("event"), max_length=64)
    channel = models.CharField(_("channel"), max_length=8, choices=CHANNELS)
    recipient = models.CharField(_("recipient"), max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="loyalty_messages",
        verbose_name=_("customer"),
        # No database constraint: Django deletes a customer's messages with the customer,
        # and the check would cost a mass job's chunk a lookup per message.
        db_constraint=False,
    )
    card = models.ForeignKey(
        "oscar_loyalty.Card",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("card"),
        # No database constraint: a card is never deleted (its transfers protect it), and
        # checking it once a message costs a mass job's chunk a lookup per card.
        db_constraint=False,
    )
    transfer = models.ForeignKey(
        "oscar_loyalty.Transfer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("transfer"),
        db_index=False,
        # No database constraint: transfers are never deleted (a trigger refuses it), so it
        # could never fire, and a mass job's chunk would check it once a message at COMMIT.
        db_constraint=False,
    )
    grade_change = models.ForeignKey(
        "oscar_loyalty.GradeChange",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("grade change"),
        db_index=False,
    )
    # The card's balance right after the cause, read in its transaction.
    balance_after = models.DecimalField(_("balance after"), null=True, blank=True, **AMOUNT)
    # Values the templates get beyond those read from the cause (later events' own).
    context = models.JSONField(_("template values"), default=dict, blank=True)
    # Asked for by the customer (a gift card's code): goes without marketing consent.
    requested = models.BooleanField(_("requested by the customer"), default=False)
    # With a copy in the customer's account inbox (an Oscar ``Notification``): the e-mail
    # carries it, or a message of channel "site" is only that, for a customer without an
    # address. ``inbox_sent``: the copy is written (once, whatever the e-mail's retries).
    inbox = models.BooleanField(_("with a copy in the account inbox"), default=False)
    inbox_sent = models.DateTimeField(_("inbox copy written"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=16)
    status = models.CharField(_("status"), max_length=8, choices=STATUSES, default=QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now)
    # When a queued message is (next) to be sent: a failed attempt puts it off.
    due = models.DateTimeField(_("due"), default=timezone.now)
    sent = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        abstract = True
        app_label = "oscar_loyalty"
        # Newest first by id, the order they were recorded in: the primary key serves the
        # log, so no date index is written for each of a mass job's messages.
        ordering = ["-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        # A constraint rather than unique=True, which on PostgreSQL adds a second,
        # pattern-matching index that no query uses (a mass job writes thousands of rows).
        constraints = [models.UniqueConstraint(fields=["key"], name="loyalty_message_key")]
        indexes = [models.Index(fields=["status", "due"], name="loyalty_message_status")]

    def __str__(self):
        return f"{self.event} → {self.recipient} ({self.channel})"

    @property
    def channel_label(self):
        """ "E-mail + account inbox" for an e-mail carrying the inbox copy, else the channel."""
        if self.inbox and self.channel != self.SITE:
            return _("%(channel)s + account inbox") % {"channel": self.get_channel_display()}
        return self.get_channel_display()
