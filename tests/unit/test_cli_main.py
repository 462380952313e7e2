"""The CLI's shared behaviour: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import click
import pytest

from fleetscaler.cli.context import CliContext, CliError
from fleetscaler.cli.main import cli, main


@cli.command("probe-table", hidden=True)
@click.pass_obj
def _probe_table(obj: CliContext) -> None:
    click.echo(obj.table_name)


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_missing_table_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe-table"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --table is required (or --stack NAME whose outputs include TableName)"
    assert "Traceback" not in err


def test_global_table_option_reaches_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "meta", "probe-table"]) == 0
    assert capsys.readouterr().out.strip() == "meta"


def test_cli_error_is_one_line() -> None:
    assert CliError("x").exit_code == 2
