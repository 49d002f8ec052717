"""Before Qt starts on Linux: find what its xcb platform plugin lacks, and say it in one line.

Qt aborts the process (SIGABRT, a core dump) when its xcb plugin cannot load, with a message that
names the plugin folder and, since Qt 6.5, only one of the libraries it may be missing. This module
asks the dynamic loader (``ldd``) which libraries of the plugin are not found and names the Debian
packages that hold them, so ``run_gui`` can exit with one line instead. Qt-free: nothing here imports
PySide6's Qt modules, only locates its plugin file.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, or None where there is none (not Linux, another Qt)."""
    try:
        import PySide6
    except ImportError:
        return None
    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def parse_ldd(output: str) -> list[str]:
    """The libraries ``ldd`` reports as 'not found', each once, in order."""
    missing = re.findall(r"^\s*(\S+)\s+=>\s+not found", output, flags=re.MULTILINE)
    return list(dict.fromkeys(missing))


def debian_package(soname: str) -> str:
    """The Debian package that ships a library, by the policy's naming rule: the name before
    '.so', lower case, then the version, with a hyphen when the name ends in a digit
    (libxcb-cursor.so.0 -> libxcb-cursor0, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0)."""
    m = re.fullmatch(r"(lib[^/]+?)\.so\.(\d+)(?:\..*)?", soname)
    if not m:
        return soname
    name, version = m.group(1).lower(), m.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_xcb_libraries(plugin: Path | None = None) -> list[tuple[str, str]]:
    """(library, Debian package) for each library the xcb plugin needs and the loader cannot find;
    empty when nothing is missing or it cannot be told (no plugin, no ldd)."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [(lib, debian_package(lib)) for lib in parse_ldd(out)]


def uses_xcb(environ=os.environ) -> bool:
    """Whether Qt will pick its xcb platform: asked for, or the default on Linux outside Wayland."""
    if not sys.platform.startswith("linux"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if asked:
        return asked == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def startup_problem(environ=os.environ) -> str | None:
    """One line saying why the window cannot open on this system, or None when it should."""
    if not uses_xcb(environ):
        return None
    missing = missing_xcb_libraries()
    if missing:
        libs = ", ".join(lib for lib, _ in missing)
        packages = " ".join(dict.fromkeys(pkg for _, pkg in missing))
        return (f"the window cannot open: Qt's X11 (xcb) platform needs {libs}, which this system lacks; "
                f"install it with `apt-get install {packages}` (or your distribution's equivalent)")
    if not environ.get("DISPLAY"):
        return ("the window cannot open: no X11 display (DISPLAY is not set); run it in a desktop session, "
                "or use the headless commands (main.py stylize --help)")
    return None
