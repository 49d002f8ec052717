#!/usr/bin/env bash
# Build the RTR Studio one-folder bundle and check it the way a user's machine would run it.
#
#     packaging/check.sh [--no-build] [--json FILE] [-- BUILD_OPTIONS...]
#
# 1. Builds dist/rtr-studio/ with packaging/build.py from the Python environment that has the
#    packaging extras (the active virtual environment, else .venv/ of this checkout, else python3;
#    PYTHON=... overrides). --no-build checks the bundle already there. Options after `--` go to
#    build.py (e.g. -- --no-trim).
# 2. Runs the frozen executable from a temporary folder outside the checkout, in a clean
#    environment (env -i: PATH=/usr/bin:/bin, a fresh HOME, TMPDIR and XDG_RUNTIME_DIR, LANG,
#    QT_QPA_PLATFORM=offscreen; no PYTHONPATH, no virtual environment, no LD_LIBRARY_PATH):
#      - `rtr-studio --help`: the lightest start (loader, Python, argument parsing; no torch, no Qt);
#      - `rtr-studio --selftest`: the sample clip stylized to a verified MP4, and the main window
#        opened off screen in a second process of the executable, which reports how long after
#        its own start the window was shown (the cold start a user sees) and the first stylized
#        frame appeared.
#    Both must exit 0, and the selftest must read its resources from inside the bundle.
# 3. Prints the bundle size (du) and file count, the start times and the selftest's wall time;
#    --json FILE also writes them as JSON.
#
# Linux and macOS (on Windows run `dist\rtr-studio\rtr-studio-cli.exe --selftest` by hand). Not part
# of the pytest suite: the build alone takes minutes. The page cache is warm (the build has just
# written the files), so these are warm-cache timings; a first start after a reboot is slower.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
JSON=""
BUILD_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --json) JSON="${2:?--json needs a file}"; shift ;;
        --) shift; BUILD_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

case "$JSON" in ""|/*) ;; *) JSON="$PWD/$JSON" ;; esac  # the checks run in a temporary folder

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ]; then PY="$VIRTUAL_ENV/bin/python"
elif [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"
else PY="python3"
fi

BUNDLE="$ROOT/dist/rtr-studio"
EXE="$BUNDLE/rtr-studio"

if [ "$BUILD" = 1 ]; then
    echo "== build ($PY)"
    "$PY" "$ROOT/packaging/build.py" ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}
fi
if [ ! -x "$EXE" ]; then
    echo "check.sh: no bundle at $EXE (run without --no-build)" >&2
    exit 1
fi

now() {  # seconds since the epoch, with a fraction
    local t
    t="$(date +%s.%N 2>/dev/null)"
    case "$t" in *N|"") "$PY" -c 'import time; print(f"{time.time():.6f}")' ;; *) echo "$t" ;; esac
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtr-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home" "$WORK/tmp" "$WORK/run" "$WORK/cwd"
chmod 700 "$WORK/run"
CLEAN_ENV=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" TMPDIR="$WORK/tmp" XDG_RUNTIME_DIR="$WORK/run"
           LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen)
cd "$WORK/cwd"

echo "== $EXE --help (clean environment, cwd $PWD)"
t0="$(now)"
if ! "${CLEAN_ENV[@]}" "$EXE" --help > "$WORK/help.out" 2>&1; then
    cat "$WORK/help.out" >&2
    echo "check.sh: FAILED: rtr-studio --help exited with an error" >&2
    exit 1
fi
HELP_S="$(elapsed "$t0" "$(now)")"
head -n 1 "$WORK/help.out"

echo "== $EXE --selftest (clean environment)"
t0="$(now)"
set +e
"${CLEAN_ENV[@]}" "$EXE" --selftest > "$WORK/selftest.out" 2> "$WORK/selftest.err"
STATUS=$?
set -e
SELFTEST_S="$(elapsed "$t0" "$(now)")"
sed 's/^/  /' "$WORK/selftest.err"
cat "$WORK/selftest.out"
if [ "$STATUS" != 0 ]; then
    echo "check.sh: FAILED: rtr-studio --selftest exited with status $STATUS" >&2
    exit 1
fi
LINE="$(grep '^selftest OK: ' "$WORK/selftest.out" || true)"
case "$LINE" in
    *"[frozen]"*) ;;
    *) echo "check.sh: FAILED: the selftest did not report a frozen build: $LINE" >&2; exit 1 ;;
esac
if ! grep -q "resources $BUNDLE/" "$WORK/selftest.err"; then
    echo "check.sh: FAILED: the selftest did not read its resources from inside $BUNDLE" >&2
    exit 1
fi
SHOWN_S="$(sed -n 's/.*window shown \([0-9.]*\) s after start.*/\1/p' <<< "$LINE")"
MODEL_S="$(sed -n 's/.*model loaded \([0-9.]*\) s.*/\1/p' <<< "$LINE")"
FRAME_S="$(sed -n 's/.*first stylized frame \([0-9.]*\) s.*/\1/p' <<< "$LINE")"
TORCH="$(sed -n 's/.*, torch \([^;]*\);.*/\1/p' <<< "$LINE")"

read -r BYTES FILES LINKS < <("$PY" - "$BUNDLE" <<'EOF'
import sys
from pathlib import Path
entries = list(Path(sys.argv[1]).rglob("*"))
files = [p for p in entries if p.is_file() and not p.is_symlink()]
print(sum(p.stat().st_size for p in files), len(files), sum(p.is_symlink() for p in entries))
EOF
)
DU="$(du -sh "$BUNDLE" | cut -f1)"

echo "== result"
echo "bundle:      $BUNDLE: $DU (du -sh), $BYTES bytes in $FILES files (+ $LINKS symbolic links), torch $TORCH"
echo "cold start:  window shown ${SHOWN_S} s after the process started (model loaded ${MODEL_S} s, first stylized frame ${FRAME_S} s)"
echo "light start: rtr-studio --help ${HELP_S} s"
echo "selftest:    ${SELFTEST_S} s wall time (render + MP4 check + window check)"

if [ -n "$JSON" ]; then
    "$PY" - "$JSON" "$BYTES" "$FILES" "$LINKS" "$DU" "$SHOWN_S" "$MODEL_S" "$FRAME_S" "$HELP_S" "$SELFTEST_S" "$TORCH" "$LINE" <<'EOF'
import datetime, json, os, platform, sys
from pathlib import Path
out, nbytes, files, links, du, shown, model, frame, helps, selftest, torch_version, line = sys.argv[1:]
result = {
    "what": "CPU one-folder bundle (dist/rtr-studio) built by packaging/build.py, checked by packaging/check.sh",
    "bundle_bytes": int(nbytes), "bundle_du": du, "files": int(files), "symlinks": int(links),
    "cold_start_window_shown_s": float(shown), "cold_start_model_loaded_s": float(model),
    "cold_start_first_stylized_frame_s": float(frame), "help_start_s": float(helps),
    "selftest_wall_s": float(selftest), "torch": torch_version,
    "platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
    "python": platform.python_version(),
    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "page_cache": "warm (files just written by the build)", "selftest_line": line,
}
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(json.dumps(result, indent=2) + "\n")
print(f"wrote {out}")
EOF
fi
echo "check.sh: OK"
