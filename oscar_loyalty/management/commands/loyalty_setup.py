"""``manage.py loyalty_setup``: a first programme with grades, so that a new shop works at once.

A command and not a data migration: a migration would create a programme in every project,
including those that build their own (and their tests), and the shop would have to delete it;
the command runs when the shop asks, in the shop's language, and a second run changes nothing.
"""

from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from oscar.core.loading import get_model

Grade = get_model("oscar_loyalty", "Grade")
Program = get_model("oscar_loyalty", "Program")

# spend from (the shop's currency), earn %, colour; names below, in the shop's language
GRADES = [("0", "3", "#6c757d"), ("10000", "5", "#8a9597"), ("30000", "7", "#c9a227")]


def grade_names():
    return [pgettext("grade", "Base"), pgettext("grade", "Silver"), pgettext("grade", "Gold")]


class Command(BaseCommand):
    help = gettext_lazy(
        "Create a loyalty programme with the grades Base (3%), Silver (5% from 10 000) and "
        "Gold (7% from 30 000) that gives a card to every customer who registers. Names are "
        "in the shop's LANGUAGE_CODE; edit everything in the dashboard afterwards. Running "
        "it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--code", default="bonus", help=gettext_lazy("The programme's code (default: bonus).")
        )
        parser.add_argument(
            "--name", help=gettext_lazy("The programme's name (default: “Bonus programme”).")
        )
        parser.add_argument(
            "--no-issue-on-registration",
            action="store_true",
            help=gettext_lazy("Do not give a card to customers who register."),
        )

    @transaction.atomic
    def handle(self, *args, code, name, no_issue_on_registration, **options):
        program, created = Program.objects.get_or_create(
            code=code,
            defaults={
                "name": name or _("Bonus programme"),
                "issue_on_registration": not no_issue_on_registration,
            },
        )
        if program.grades.exists():
            self.stdout.write(
                _("The programme “%(name)s” (%(code)s) and its grades exist; nothing changed.")
                % {"name": program.name, "code": program.code}
            )
            return
        Grade.objects.bulk_create(
            Grade(
                program=program,
                name=grade_name,
                spend_from=Decimal(spend_from),
                earn_percent=Decimal(percent),
                colour=colour,
            )
            for grade_name, (spend_from, percent, colour) in zip(grade_names(), GRADES, strict=True)
        )
        message = (
            _("Created the programme “%(name)s” (%(code)s) with the grades %(grades)s.")
            if created
            else _("Added the grades %(grades)s to the programme “%(name)s” (%(code)s).")
        )
        self.stdout.write(
            self.style.SUCCESS(
                message
                % {"name": program.name, "code": program.code, "grades": ", ".join(grade_names())}
            )
        )
        if program.issue_on_registration:
            self.stdout.write(_("Customers who register get a card of it."))
