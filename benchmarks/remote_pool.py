"""Pool the local/remote pairs of several ``remote_bench`` runs and say whether the bars hold.

    python -m benchmarks.remote_pool benchmarks/results/remote-v3-cpu-1thread-process*.json

Why: on a shared 2-core machine one 20-s pair's remote rate moves by a fifth between runs, so a single
run of a few pairs lands on either side of a bar that the system meets on average. Each pair (a local
run and the remote run after it) shares the machine's state, so the pair's own ratio of frames/s and
difference of p50 latency are the samples; their mean over all pairs, with a 95 % interval (normal
approximation, pairs independent), is what is compared with the bars. Runs must be of the same code
and settings: the pooled JSON lists the files and their settings so that a reader can check.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.remote_bench import BARS, RESULTS_DIR  # noqa: E402


def interval(samples: list[float]) -> dict:
    a = np.asarray(samples, float)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("inf")
    return {"mean": round(float(a.mean()), 4), "sd": round(float(a.std(ddof=1)), 4) if len(a) > 1 else None,
            "ci95": [round(float(a.mean() - half), 4), round(float(a.mean() + half), 4)],
            "min": round(float(a.min()), 4), "max": round(float(a.max()), 4)}


def pool(paths: list[Path]) -> dict:
    sizes: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        for row in json.loads(path.read_text())["results"]:
            size = "x".join(str(v) for v in reversed(row["resolution"]))
            got = sizes.setdefault(size, {"fps_ratio": [], "added_p50_ms": []})
            for local, remote in zip(row["runs"]["local"], row["runs"]["remote"]):
                got["fps_ratio"].append(remote["fps"] / local["fps"])
                got["added_p50_ms"].append(remote["capture_to_display_ms"]["p50"]
                                           - local["capture_to_display_ms"]["p50"])
    out = {}
    for size, got in sizes.items():
        ratio, added = interval(got["fps_ratio"]), interval(got["added_p50_ms"])
        out[size] = {"pairs": len(got["fps_ratio"]), "fps_ratio": ratio, "added_p50_ms": added,
                     "meets_bars": {"mean": ratio["mean"] >= BARS["fps_ratio_min"]
                                    and added["mean"] <= BARS["added_p50_ms_max"],
                                    "ci95": ratio["ci95"][0] >= BARS["fps_ratio_min"]
                                    and added["ci95"][1] <= BARS["added_p50_ms_max"]}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="remote_pool", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="remote_bench JSON files (same code and settings)")
    p.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/remote-pooled.json)")
    a = p.parse_args(argv)
    missing = [str(r) for r in a.runs if not r.is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "bars": BARS,
              "runs": [{"file": r.name} | {k: json.loads(r.read_text()).get(k) for k in ("settings", "device")}
                       for r in a.runs],
              "sizes": pool(a.runs)}
    out = a.out or RESULTS_DIR / "remote-pooled.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for size, s in result["sizes"].items():
        r, d = s["fps_ratio"], s["added_p50_ms"]
        print(f"{size}: {s['pairs']} pairs, frames/s ratio {r['mean']:.3f} "
              f"(95 % {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}), "
              f"added p50 {d['mean']:.1f} ms (95 % {d['ci95'][0]:.1f}-{d['ci95'][1]:.1f}); bars held by the "
              f"interval: {s['meets_bars']['ci95']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
