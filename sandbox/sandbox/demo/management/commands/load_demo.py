from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from sandbox.demo import catalogue_data
from sandbox.demo.loyalty_data import load_loyalty_demo


class Command(BaseCommand):
    help = "Load the sandbox demo shop: catalogue, users and loyalty data. Safe to run again."

    def handle(self, *args, **options):
        with transaction.atomic():
            catalogue_data.load_site()
            catalogue_data.load_countries()
            catalogue_data.load_catalogue()
            catalogue_data.load_users()
        catalogue_data.load_missing_image()
        load_loyalty_demo(self.stdout)
        # Oscar's catalogue pages list what the search index holds.
        call_command("update_index", remove=True, verbosity=0)

        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write("Shop:      http://127.0.0.1:8000/")
        self.stdout.write("Dashboard: http://127.0.0.1:8000/dashboard/")
        for email, password, role in catalogue_data.demo_logins():
            self.stdout.write(f"  {role:<10} {email:<22} password: {password}")
