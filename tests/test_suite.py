"""The suite's own rules (style.md, habit 9), checked so they hold for the next test too."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_test_says_what_it_proves():
    """Each test function, in every test module, has a docstring."""
    silent = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.name.startswith("test_") and not ast.get_docstring(node):
                silent.append(f"{path.relative_to(TESTS)}::{node.name}")
    assert silent == []
