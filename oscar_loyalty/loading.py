"""Class loading that lets a shop fork oscar_loyalty the way it forks an Oscar app.

Oscar's own ``get_class`` falls back to ``oscar.apps.*``, where this package does not live,
so the fallback here is the installed ``oscar_loyalty`` package itself.
"""

from importlib import import_module

from django.apps import apps


def _import(module_name):
    try:
        return import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module does not exist" means "not forked"; a broken import must surface.
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def get_class(module_label, classname):
    """Return ``classname`` from ``<fork>.<module_label>``, else from ``oscar_loyalty``."""
    fork = apps.get_app_config("oscar_loyalty").name
    for package in dict.fromkeys([fork, "oscar_loyalty"]):
        module = _import(f"{package}.{module_label}")
        if module is not None and hasattr(module, classname):
            return getattr(module, classname)
    raise ImportError(f"{classname} not found in {module_label} of {fork} or oscar_loyalty")
