"""``depthapp eval`` / ``depthapp predict`` end to end, on the real Motorcycle pair with OpenCV SGBM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.cli import main
from depthapp.evaluation import metrics
from depthapp.io import read_kitti_disparity, write_image, write_pfm

from eval_fixtures import random_image, write_kitti2015


@pytest.fixture
def motorcycle_folder(tmp_path, motorcycle):
    root = tmp_path / "motorcycle"
    write_image(root / "left" / "motorcycle.png", motorcycle.left)
    write_image(root / "right" / "motorcycle.png", motorcycle.right)
    write_pfm(root / "disp" / "motorcycle.pfm", motorcycle.gt_disparity)
    return root


def write_small_kitti(root, count, rng):
    """``count`` 64x24 KITTI 2015 frames with random ground truth everywhere (no objects)."""
    frames = []
    for _ in range(count):
        occ = rng.uniform(2, 14, size=(24, 64)).astype(np.float32)
        frames.append({"occ": occ, "noc": occ, "obj": np.zeros(occ.shape, np.uint8)})
    write_kitti2015(root, frames, rng)


@pytest.mark.slow
def test_eval_folder_with_opencv_sgbm_on_the_motorcycle_pair(tmp_path, motorcycle_folder, motorcycle, capsys):
    out = tmp_path / "run"
    code = main(["eval", "--dataset", "folder", "--root", str(motorcycle_folder), "--backend", "opencv-sgbm",
                 "--max-disp", "64", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 1 and summary["parameters"]["max_disp"] == 64
    # the same numbers as scoring the backend's output directly
    direct = create_backend("opencv-sgbm", max_disp=64).compute(motorcycle).disparity
    expected = metrics.generic_values(metrics.generic_counts(direct, motorcycle.gt_disparity))
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, rel=1e-9), key
    # SGBM on this pair: a real, imperfect result with holes
    assert 2 < summary["d1_all"] < 20 and 70 < summary["density"] < 99
    assert summary["d1_all_est"] < summary["d1_all"]
    assert "d1_all" in printed and (out / "errors" / "motorcycle.png").exists()
    # resumed: nothing recomputed, same numbers
    assert main(["eval", "--dataset", "folder", "--root", str(motorcycle_folder), "--backend", "opencv-sgbm",
                 "--max-disp", "64", "--out", str(out)]) == 0
    assert "0 computed, 1 from an earlier run" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_predict_kitti_then_eval_predictions_equals_eval_backend(tmp_path, rng, capsys):
    write_small_kitti(tmp_path / "kitti", 2, rng)
    base = ["--dataset", "kitti2015", "--root", str(tmp_path / "kitti")]
    backend = ["--backend", "opencv-sgbm", "--max-disp", "16", "--block-size", "3"]
    assert main(["predict", *base, *backend, "--out", str(tmp_path / "sub"), "--format", "kitti"]) == 0
    disparity = read_kitti_disparity(tmp_path / "sub" / "disp_0" / "000001_10.png")
    assert disparity.shape == (24, 64)
    assert main(["predict", *base, *backend, "--out", str(tmp_path / "sub"), "--format", "kitti"]) == 0
    assert "(2 already there)" in capsys.readouterr().out
    assert main(["eval", *base, "--predictions", str(tmp_path / "sub"), "--out", str(tmp_path / "a")]) == 0
    assert main(["eval", *base, *backend, "--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    from_files = json.loads((tmp_path / "a" / "summary.json").read_text())
    from_backend = json.loads((tmp_path / "b" / "summary.json").read_text())
    # SGBM disparities are multiples of 1/16, exact in KITTI's 1/256 PNG: identical numbers ...
    for key in ("d1_all", "d1_bg", "d1_all_noc", "density"):
        assert from_files[key] == pytest.approx(from_backend[key], rel=1e-12), key
    # ... except that the PNG stores a valid 0 px as 1/256 px (devkit writeDisparityMap: max(d*256, 1))
    assert from_files["epe"] == pytest.approx(from_backend["epe"], abs=1 / 256)
    assert from_backend["parameters"]["block_size"] == 3 and from_files["d1_fg"] is None


def test_cli_errors_are_one_line_with_the_right_exit_code(tmp_path, rng, capsys):
    root = tmp_path / "pairs"
    write_image(root / "left" / "a.png", random_image(rng, 8, 8))
    write_image(root / "right" / "a.png", random_image(rng, 8, 8))
    cases = [
        (["eval", "--dataset", "folder", "--root", str(root), "--backend", "opencv-bm", "--predictions", str(root)],
         2, "exclude each other"),
        (["eval", "--dataset", "folder", "--root", str(root)], 2, "--backend NAME"),
        (["eval", "--dataset", "folder", "--root", str(tmp_path / "missing"), "--predictions", str(root)],
         1, "no such folder"),
        (["eval", "--dataset", "folder", "--root", str(root), "--predictions", str(root), "--out",
          str(tmp_path / "o")], 1, "no ground truth"),
        (["eval", "--dataset", "folder", "--root", str(root), "--backend", "opencv-bm", "--p1", "3"],
         2, "does not take --p1"),
        (["eval", "--dataset", "folder", "--root", str(root), "--predictions", str(root), "--published", "x"],
         2, "KEY=NUMBER"),
        (["eval", "--dataset", "folder", "--root", str(root), "--predictions", str(root), "--published",
          "d1_fg=3"], 2, "unknown keys: d1_fg"),
        (["predict", "--dataset", "kitti2015", "--root", str(root), "--backend", "opencv-bm", "--out",
          str(tmp_path / "p")], 1, "no training/ folder"),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("depthapp: error:") and message in error[0], error


def test_published_numbers_come_from_the_weights_record():
    from depthapp.evaluation.benchmarks import published_from_weights

    published, source = published_from_weights("psmnet-kitti2015", "kitti2015")
    assert published == {"d1_all": 2.32, "d1_all_noc": 2.14}
    assert "Pyramid Stereo Matching" in source and "test set" in source
    assert published_from_weights("psmnet-kitti2015", "middlebury") == ({}, "")
    assert published_from_weights("/some/checkpoint.tar", "kitti2015") == ({}, "")


def test_eval_and_predict_show_progress_with_an_eta_on_stderr_and_quiet_hides_it(tmp_path, rng, capsys):
    import re

    write_small_kitti(tmp_path / "kitti", 3, rng)
    base = ["--dataset", "kitti2015", "--root", str(tmp_path / "kitti"), "--backend", "opencv-sgbm",
            "--max-disp", "16"]
    assert main(["eval", *base, "--out", str(tmp_path / "a")]) == 0
    assert main(["predict", *base, "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    for command in ("eval", "predict"):
        lines = [line for line in captured.err.splitlines() if line.startswith(f"{command} kitti2015 [")]
        assert lines and re.search(r"3/3 100% elapsed \d\d:\d\d ETA 00:00", lines[-1]), captured.err
        assert f"{command} kitti2015 [" not in captured.out
    assert main(["eval", *base, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert main(["predict", *base, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "d1_all" in captured.out


@pytest.mark.network
def test_mccnn_accurate_from_the_eval_runner_equals_the_cli_pixel_for_pixel(tmp_path, motorcycle):
    """The issue-16 bug: the eval runner ran the accurate MC-CNN checkpoint with the fast
    settings (it passed every declared default). ``depthapp predict`` (the eval runner) and
    ``depthapp run`` must now give the same disparities, bit for bit, on a small real crop."""
    import cv2

    from depthapp.io import read_pfm
    from depthapp.weights import fetch

    fetch("mccnn-accurate-middlebury")
    left, right = (cv2.resize(image, (185, 125), interpolation=cv2.INTER_AREA)[50:82, 60:124]
                   for image in (motorcycle.left, motorcycle.right))
    root = tmp_path / "crop"
    write_image(root / "left" / "crop.png", left)
    write_image(root / "right" / "crop.png", right)
    backend = ["--backend", "mccnn", "--weights", "mccnn-accurate-middlebury", "--max-disp", "16",
               "--device", "cpu", "--offline"]
    pair = [str(root / "left" / "crop.png"), str(root / "right" / "crop.png")]
    assert main(["run", *pair, *backend, "--out", str(tmp_path / "run")]) == 0
    assert main(["predict", "--dataset", "folder", "--root", str(root), *backend,
                 "--out", str(tmp_path / "predict"), "--format", "pfm"]) == 0
    from_cli = read_pfm(tmp_path / "run" / "disparity.pfm")
    [predicted] = list((tmp_path / "predict").rglob("*.pfm"))
    np.testing.assert_array_equal(read_pfm(predicted), from_cli)
    # the fast settings give other disparities here, so the comparison above can fail
    fast = ["--cbca-distance", "0", "--cbca-intensity", "0", "--cbca-before", "0", "--cbca-after", "0",
            "--p1", "2.3", "--p2", "24.3", "--sgm-q1", "4", "--sgm-vertical", "1.5",
            "--sgm-intensity", "0.08", "--blur-sigma", "6"]
    assert main(["run", *pair, *backend, *fast, "--out", str(tmp_path / "fast")]) == 0
    assert not np.array_equal(read_pfm(tmp_path / "fast" / "disparity.pfm"), from_cli)
