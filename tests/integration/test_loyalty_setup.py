"""``manage.py loyalty_setup``: a new shop's first programme, created once."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import translation

from oscar_loyalty import cards
from oscar_loyalty.models import Grade, Program
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("loyalty_setup", *args, stdout=out)
    return out.getvalue()


def test_creates_a_programme_that_issues_cards_with_grades():
    output = run()

    program = Program.objects.get(code="bonus")
    assert program.name == "Bonus programme"
    assert program.issue_on_registration
    assert [(g.name, g.spend_from, g.earn_percent) for g in program.grades.all()] == [
        ("Base", Decimal("0"), Decimal("3")),
        ("Silver", Decimal("10000"), Decimal("5")),
        ("Gold", Decimal("30000"), Decimal("7")),
    ]
    assert "Created the programme “Bonus programme” (bonus)" in output
    # a customer who registers now gets a card of the lowest grade
    customer = factories.make_customer("new@example.com")
    (card,) = cards.issue_on_registration(customer)
    assert card.grade.name == "Base"


def test_second_run_changes_nothing():
    run()
    program = Program.objects.get(code="bonus")
    program.grades.filter(name="Gold").update(earn_percent=Decimal("10"))  # a manager's edit

    output = run()

    assert Program.objects.count() == 1
    assert program.grades.count() == 3
    assert program.grades.get(name="Gold").earn_percent == Decimal("10")
    assert "nothing changed" in output


def test_a_programme_without_grades_gets_them():
    Program.objects.create(code="club", name="Club")

    output = run("--code", "club")

    assert Grade.objects.filter(program__code="club").count() == 3
    assert "Added the grades" in output
    assert not Program.objects.get(code="club").issue_on_registration  # left as it was


def test_names_in_the_shops_language_and_options():
    with translation.override("ru"):
        run("--code", "ru", "--no-issue-on-registration")
    run("--code", "named", "--name", "Клуб")

    program = Program.objects.get(code="ru")
    assert program.name == "Бонусная программа"
    assert not program.issue_on_registration
    assert list(program.grades.values_list("name", flat=True)) == [
        "Базовый",
        "Серебряный",
        "Золотой",
    ]
    assert Program.objects.get(code="named").name == "Клуб"
