"""The streaming benchmark runs end to end on CPU and writes a complete JSON record (no speed assertions)."""
from __future__ import annotations

import json

import pytest


def check_record(data: dict, config: str, resolution: list[int]) -> None:
    assert data["device"]["type"] == "cpu" and data["device"]["name"] and data["device"]["torch"]
    assert data["settings"]["config"] == config and data["settings"]["resolution"] == resolution
    assert data["settings"]["weights"] == "random" and data["config"]["name"] == config
    f = data["figures"]
    assert f["frames_out"] == data["settings"]["frames_in"] and f["chunks"] >= 1
    for key in ("fps", "first_frame_latency_ms", "total_s"):
        assert isinstance(f[key], float) and f[key] > 0
    assert f["chunk_ms"]["p50"] > 0 and f["chunk_ms"]["p99"] >= f["chunk_ms"]["p50"]
    assert set(f["frame_interval_ms"]) == {"p50", "p99"} and set(f["output_gap_ms"]) == {"p50", "p99"}
    s = data["stages_ms_per_chunk"]
    assert len(s["steps"]) == len(data["settings"]["steps"]) and all(v > 0 for v in s["steps"])
    for key in ("encode", "cache_write", "decode"):
        assert s[key] > 0
    assert data["stages_ms_per_frame"]["frames"] == f["frames_out"]
    assert data["memory"]["cuda_peak_allocated_mib"] is None and data["memory"]["peak_rss_mib"] > 0
    assert data["parameters"]["dit"] > 0 and data["parameters"]["codec"] > 0


def test_tiny_bench_writes_json(tmp_path, capsys):
    from app.cli import main

    out = tmp_path / "tiny.json"
    rc = main(["bench", "--config", "tiny", "--resolution", "64x96", "--frames", "6", "--steps", "2",
               "--warmup", "1", "--out", str(out)])
    assert rc == 0
    assert "FPS" in capsys.readouterr().out
    data = json.loads(out.read_text())
    check_record(data, "tiny", [64, 96])
    assert data["figures"]["chunks"] == 3 and data["figures"]["frame_interval_ms"]["p50"] > 0
    assert data["settings"]["steps"] == [1000, 500]


def test_wan_bench_code_path_at_reduced_size(tmp_path):
    from benchmarks.stream_bench import main

    out = tmp_path / "wan.json"
    rc = main(["--config", "wan-1.3b", "--layers", "1", "--resolution", "16x16", "--frames", "9", "--steps", "1",
               "--warmup", "0", "--out", str(out), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    check_record(data, "wan-1.3b", [16, 16])
    assert data["settings"]["layers"] == 1 and data["config"]["dim"] == 1536
    assert data["settings"]["chunk_video_frames"] == {"first": 9, "steady": 12}


@pytest.mark.parametrize("argv,msg", [
    (["--resolution", "12x16"], "resolution"),
    (["--resolution", "big"], "HxW"),
    (["--steps", "0"], "steps"),
    (["--model", "/nonexistent/model"], "not found"),
])
def test_bench_bad_arguments_fail_clearly(argv, msg, tmp_path, capsys):
    from benchmarks.stream_bench import main

    assert main(argv + ["--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and msg in err
    assert not (tmp_path / "x.json").exists()


def test_remote_bench_measures_a_source_size_model_at_the_camera_size(tmp_path):
    """The embedded model renders at the source's size: each row must be a camera of that size with no
    working-size override (an override of 640x384 used to enlarge a 640x360 camera to 683x384)."""
    from benchmarks.remote_bench import parse_resolutions, plan_rows, renders_at_source_size

    sizes = parse_resolutions("320x192,640x360")
    assert renders_at_source_size(None)
    assert [(r.size, r.camera, r.resolution) for r in plan_rows(sizes, True)] == [
        ((192, 320), (192, 320), None), ((360, 640), (360, 640), None)]
    # a model with a fixed working size streams a 640x360 camera at each size, rounded up to 16 pixels
    assert [(r.camera, r.resolution) for r in plan_rows(sizes, False)] == [
        ((360, 640), (192, 320)), ((360, 640), (368, 640))]


def test_remote_pool_judges_the_bars_on_the_pairs_mean_and_its_interval(tmp_path, capsys):
    from benchmarks.remote_pool import main as pool_main

    def run(path, ratios, added):
        pairs = [({"fps": 10.0, "capture_to_display_ms": {"p50": 100.0}},
                  {"fps": 10.0 * r, "capture_to_display_ms": {"p50": 100.0 + a}}) for r, a in zip(ratios, added)]
        path.write_text(json.dumps({"settings": {"repeats": len(pairs)}, "device": {"threads": 1}, "results": [
            {"resolution": [360, 640], "runs": {"local": [p[0] for p in pairs], "remote": [p[1] for p in pairs]}}]}))
        return path

    steady = [run(tmp_path / f"s{i}.json", [0.93, 0.95, 0.94], [30, 32, 31]) for i in range(3)]
    out = tmp_path / "pooled.json"
    assert pool_main([*map(str, steady), "--out", str(out)]) == 0
    got = json.loads(out.read_text())["sizes"]["640x360"]
    assert got["pairs"] == 9 and abs(got["fps_ratio"]["mean"] - 0.94) < 1e-6 and got["meets_bars"]["ci95"]
    # one run below the bar and a mean just above it: the mean passes, its interval does not
    noisy = [run(tmp_path / "n1.json", [0.99, 0.85], [20, 45]), run(tmp_path / "n2.json", [0.96, 0.84], [25, 40])]
    assert pool_main([*map(str, noisy), "--out", str(out)]) == 0
    got = json.loads(out.read_text())["sizes"]["640x360"]
    assert got["meets_bars"] == {"mean": True, "ci95": False}
    with pytest.raises(SystemExit):
        pool_main([str(tmp_path / "missing.json")])
    assert "no such file" in capsys.readouterr().err
