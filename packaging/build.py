"""Build the RTR Studio one-folder bundle with PyInstaller, from the active Python environment.

    python packaging/build.py [--no-trim] [--dist DIR] [--work DIR] [--clean]

The bundle is ``DIST/rtr-studio/`` (and ``DIST/RTR Studio.app`` on macOS); its executable is
``rtr-studio`` (``rtr-studio.exe`` plus the console twin ``rtr-studio-cli.exe`` on Windows). Whether it
is a CPU or a CUDA build follows the torch installed in the environment. Prints the bundle size
and its largest parts. ``--no-trim`` builds without the spec's exclusions (to measure them).
Works the same on Linux, macOS and Windows.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "rtr_studio.spec"
NAME = "rtr-studio"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(bundle: Path, n: int = 12) -> list[tuple[int, str]]:
    """Sizes of the bundle's main pieces: top-level packages and the biggest single files."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    parts = []
    for child in internal.iterdir():
        if child.is_symlink():
            continue
        size = folder_size(child) if child.is_dir() else child.stat().st_size
        parts.append((size, child.name + ("/" if child.is_dir() else "")))
    return sorted(parts, reverse=True)[:n]


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    ap.add_argument("--no-trim", action="store_true", help="build without the size exclusions (for comparison)")
    ap.add_argument("--clean", action="store_true", help="discard PyInstaller's cache first")
    args = ap.parse_args(argv)
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print('error: PyInstaller is not installed here: pip install -e ".[packaging]"', file=sys.stderr)
        return 2
    import torch

    kind = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU"
    print(f"building {NAME} with torch {torch.__version__} ({kind}) from {sys.prefix}"
          f"{' without trimming' if args.no_trim else ''}", flush=True)
    env = dict(os.environ, RTR_TRIM="0" if args.no_trim else "1")
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(args.dist), "--workpath", str(args.work), str(SPEC)]
    if args.clean:
        cmd.insert(3, "--clean")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0:
        print(f"error: PyInstaller failed (exit status {proc.returncode})", file=sys.stderr)
        return proc.returncode
    bundle = args.dist / NAME
    exe = bundle / (NAME + (".exe" if sys.platform == "win32" else ""))
    if not exe.is_file():
        print(f"error: the build did not produce {exe}", file=sys.stderr)
        return 1
    broken = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_symlink() and not p.exists())
    if broken:
        print(f"error: {len(broken)} broken links in the bundle (a needed file was dropped): "
              + ", ".join(broken[:8]), file=sys.stderr)
        return 1
    size = folder_size(bundle)
    files = sum(1 for p in bundle.rglob("*") if p.is_file())
    print(f"built {bundle} in {time.perf_counter() - t0:.0f} s: {human(size)} in {files} files ({kind} torch)")
    for part_size, name in largest_parts(bundle):
        print(f"  {human(part_size):>10}  {name}")
    print(f"try it: {exe} --selftest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
