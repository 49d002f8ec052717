"""Desktop app entry: ``run_gui(argv)`` creates the QApplication, runs asyncio on the Qt event loop
(qasync) and opens the main window.

    python main.py [--model DIR] [--source FILE|camera:N] [--device auto|cpu|cuda|mps]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="RTR Studio desktop app (real-time video stylization)")
    p.add_argument("--model", metavar="DIR", help="model folder for this run (default: the one chosen in "
                                                  "the app, else the embedded model)")
    p.add_argument("--source", metavar="FILE|camera:N", help="start with this video file or camera")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (for this run)")
    p.add_argument("--settings", metavar="INI", help="keep settings in this file instead of the user's store")
    return p


def ensure_qasync_loop(app) -> asyncio.AbstractEventLoop:
    """The asyncio loop running on the Qt event loop. When Qt's loop is already being driven by
    someone else (pytest-qt, an embedding application), a qasync loop is attached to it."""
    import qasync

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop = qasync.QEventLoop(app, already_running=True)
    asyncio.set_event_loop(loop)
    return loop


def run_gui(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, qt_args = build_parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .qt_platform import startup_problem

    problem = startup_problem()  # Qt would abort the process with a core dump instead
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    import qasync
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from .ui.main_window import MainWindow
    from .ui.settings import APPLICATION, ORGANIZATION, AppSettings

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "rtr-studio", *qt_args])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    settings = AppSettings(path=args.settings) if args.settings else AppSettings()
    window = MainWindow(settings=settings, model_dir=args.model, source=args.source, device=args.device)
    window.show()
    # Ctrl+C in the terminal closes the window cleanly (threads joined, settings saved)
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    keepalive = QTimer()
    keepalive.start(250)  # lets Python see the SIGINT while Qt's loop runs
    keepalive.timeout.connect(lambda: None)
    QTimer.singleShot(0, window.start)
    with loop:
        loop.run_forever()  # returns when the last window closes
    window.shutdown()
    return 0
