"""The README tells the truth: every setting, every command, the shipped forms file."""

from __future__ import annotations

import re
from pathlib import Path

import click

from relay.cli import COMMANDS, main, short_help
from relay.config import Settings, example_forms_file

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "relay") -> list[str]:
    names = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            names.extend(_commands(command, f"{prefix} {name}"))
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_setting_is_in_the_readme_table():
    """Each Settings field has a row `| RELAY_NAME |` in the README's settings table."""
    rows = set(re.findall(r"^\| `(RELAY_[A-Z0-9_]+)` \|", README, flags=re.MULTILINE))
    expected = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
    assert expected == rows


def _default_cells() -> dict[str, str]:
    row = re.compile(r"^\| `(RELAY_[A-Z0-9_]+)` \| ((?:[^|\\]|\\.)*) \|", flags=re.MULTILINE)
    rows = row.findall(README)
    return {name: cell.strip() for name, cell in rows}


def _documented(default: object) -> str:
    """A default as the README writes it: `true`, `1.0`, `var`, `30/minute`."""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def test_every_default_in_the_readme_is_the_real_one():
    """Each row's default column shows the Settings default, or says `unset` when there is none."""
    cells = _default_cells()
    wrong = {}
    for name, field in Settings.model_fields.items():
        cell = cells[f"RELAY_{name.upper()}"]
        default = field.default
        if default is None or default == ():
            ok = cell.startswith("unset")
        else:
            ok = cell == _documented(default)
        if not ok:
            wrong[name] = (default, cell)
    assert wrong == {}


def test_every_command_is_in_the_readme():
    """Each click command appears in the README's CLI table."""
    missing = [name for name in _commands(main) if f"`{name}" not in README]
    assert missing == []


def test_readme_forms_example_is_the_shipped_file():
    """The TOML shown in the README is, byte for byte, the example forms file relay ships."""
    shipped = example_forms_file().read_text(encoding="utf-8")
    assert f"```toml\n{shipped}```" in README


def test_every_command_docstring_has_an_example():
    """Each command's help includes an example line, so `relay X --help` shows how to use it."""
    lacking = []
    for name in _commands(main):
        command: click.Command = main
        for part in name.split()[1:]:
            assert isinstance(command, click.Group)
            found = command.get_command(click.Context(command), part)
            assert found is not None
            command = found
        if "Example:" not in (command.help or ""):
            lacking.append(name)
    assert lacking == []


def test_relay_help_lists_each_command_with_its_own_first_line():
    """`relay --help` lists commands without importing them: COMMANDS holds each one's first
    paragraph, and it shortens to what the command's own docstring gives at any width."""
    context = click.Context(main)
    for name, (_, first) in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None
        for width in (30, 45, 80, 500):
            assert short_help(first, width) == command.get_short_help_str(width)
    assert set(COMMANDS) == set(main.list_commands(context))
