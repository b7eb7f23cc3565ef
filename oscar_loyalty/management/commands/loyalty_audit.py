from django.core.management.base import BaseCommand, CommandError
from oscar.core.loading import get_model

from oscar_loyalty import checkpoints, reports
from oscar_loyalty.audit import audit

Transfer = get_model("oscar_loyalty", "Transfer")


class Command(BaseCommand):
    help = "Recompute every balance and checkpoint from transfers; exit non-zero on any difference."

    def handle(self, *args, **options):
        problems = audit()
        problems += checkpoints.verify() + reports.verify_checkpoint()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found")
        self.stdout.write(
            self.style.SUCCESS(f"Ledger sound: {Transfer.objects.count()} transfers checked.")
        )
