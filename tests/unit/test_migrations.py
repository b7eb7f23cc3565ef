"""Migrations keep working when the package's services change: the code they run is their
own. A migration may import a package module only at its top, for what its fields name
(a default, a storage), never inside the functions it runs."""

import ast
from pathlib import Path

import pytest

MIGRATIONS = sorted((Path(__file__).parents[2] / "oscar_loyalty" / "migrations").glob("0*.py"))


def package_uses(function):
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("oscar_loyalty"):
            yield f"line {node.lineno}: from {node.module} import ..."
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("oscar_loyalty"):
                    yield f"line {node.lineno}: import {alias.name}"
        elif isinstance(node, ast.Name) and node.id == "oscar_loyalty":
            yield f"line {node.lineno}: uses oscar_loyalty"


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda path: path.stem)
def test_a_migrations_functions_use_no_package_code(path):
    tree = ast.parse(path.read_text())
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    found = [use for function in functions for use in package_uses(function)]
    assert not found, f"{path.name} runs package code: {'; '.join(found)}"
