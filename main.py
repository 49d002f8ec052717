"""RTR Studio entry point: the desktop app by default, headless subcommands otherwise (``serve`` hosts
the engine for the app on another machine: ``main.py serve --help``)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--selftest" in argv and argv[0].startswith("-"):  # check this installation (or frozen bundle)
        from app.selftest import main as selftest_main

        return selftest_main(argv)
    if argv and argv[0] == "serve":  # host the engine for the app on another machine
        from app.remote.server import main as serve_main

        return serve_main(argv[1:])
    from app.cli import main as cli_main
    from app.cli import opens_gui

    if not opens_gui(argv):
        return cli_main(argv)
    from app.gui import run_gui

    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
