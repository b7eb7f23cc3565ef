"""Loyalty part of the demo data: programmes, grades, cards, categories and orders.

Called by ``manage.py load_demo`` after the catalogue and the users exist. Must stay
idempotent: a second run finds what the first one made and changes nothing.
"""


def load_loyalty_demo(stdout):
    """Create the loyalty demo data (filled in by the loyalty side of the project)."""
    return
