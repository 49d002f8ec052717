"""main.py opens the desktop app when no subcommand is given, and runs the command line otherwise;
the command line never answers with a code that secretly means "open the app"."""
from __future__ import annotations

import pytest

from app.cli import main as cli_main
from app.cli import opens_gui


@pytest.mark.parametrize("argv", [[], ["--model", "m"], ["--source", "camera:0", "--device", "cpu"],
                                  ["-platform", "offscreen"]])
def test_no_subcommand_opens_the_app(argv):
    assert opens_gui(argv)


@pytest.mark.parametrize("argv", [["stylize", "in.mp4"], ["models", "check"], ["bench"], ["-h"], ["--help"]])
def test_a_subcommand_or_help_is_the_command_line(argv):
    assert not opens_gui(argv)


def test_the_command_line_without_a_subcommand_is_an_error_not_a_signal(capsys):
    assert cli_main([]) == 2 and cli_main(["--model", "m"]) == 2
    assert "no subcommand" in capsys.readouterr().err
