"""The command's verbs are English; the French names of earlier versions
still run the same commands, unlisted."""

from __future__ import annotations

from click.testing import CliRunner

from itte.cli import main

OLD_NAMES = {"rejets": "batch", "typologie": "typology", "comparer": "compare"}


def test_old_names_run_the_same_commands_and_are_not_listed() -> None:
    listed = CliRunner().invoke(main, ["--help"]).output
    for old, new in OLD_NAMES.items():
        assert main.commands[old].callback is main.commands[new].callback
        assert main.commands[old].hidden and not main.commands[new].hidden
        assert f"  {new} " in listed and f"  {old} " not in listed


def test_an_old_name_takes_the_same_arguments() -> None:
    for old, new in OLD_NAMES.items():
        help_old = CliRunner().invoke(main, [old, "--help"]).output
        help_new = CliRunner().invoke(main, [new, "--help"]).output
        assert help_old.replace(old, new) == help_new
