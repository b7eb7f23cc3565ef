from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Sandbox-only app: the ``load_demo`` management command and its data."""

    name = "sandbox.demo"
    label = "sandbox_demo"
    verbose_name = "Sandbox demo data"
