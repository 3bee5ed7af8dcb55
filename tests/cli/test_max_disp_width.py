"""``--max-disp`` beyond the image width (issue 15): one rule for every command. Classical
backends search what the image can hold and say so; no command refuses the pair."""

from __future__ import annotations

import json

import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.cli import main
from depthapp.data import StereoPair
from depthapp.io import write_image, write_pfm


def narrow_pair(width=64, height=40, shift=3):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return left, np.roll(left, -shift, axis=1)


@pytest.mark.parametrize("backend", ["opencv-sgbm", "opencv-bm", "sgm"])
def test_compute_clamps_for_this_pair_only_and_says_so(backend):
    left, right = narrow_pair()
    matcher = create_backend(backend, max_disp=2000)
    result = matcher.compute(StereoPair(left=left, right=right, name="narrow"))
    limit = matcher.max_disp_for_width(64)
    assert result.max_disp == limit < 2000
    assert any(f"max disparity 2000 is beyond the 64 px wide image: searching {limit}" in m
               for m in result.messages)
    assert matcher.max_disp == 2000  # a later, wider pair gets the range that was asked for
    if backend != "opencv-bm":  # BM leaves the leftmost max_disp columns invalid: all of them here
        assert np.isfinite(result.disparity).any()


def test_compute_says_nothing_when_the_range_fits():
    left, right = narrow_pair()
    result = create_backend("opencv-bm", max_disp=16).compute(StereoPair(left=left, right=right))
    assert result.max_disp == 16 and not any("beyond" in m for m in result.messages)


@pytest.fixture
def narrow_folder(tmp_path):
    left, right = narrow_pair()
    root = tmp_path / "narrow"
    write_image(root / "left" / "a.png", left)
    write_image(root / "right" / "a.png", right)
    gt = np.full(left.shape[:2], 3.0, np.float32)
    write_pfm(root / "disp" / "a.pfm", gt)
    return root


@pytest.mark.parametrize("backend", ["opencv-sgbm", "sgm"])
def test_predict_and_eval_clamp_like_run(tmp_path, narrow_folder, capsys, backend):
    base = ["--dataset", "folder", "--root", str(narrow_folder), "--backend", backend, "--max-disp", "2000"]
    assert main(["predict", *base, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "a.pfm").exists()
    assert main(["eval", *base, "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["images"] == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    said = [line for line in captured.out.splitlines()
            if line.startswith("note: a: max disparity 2000 is beyond the 64 px wide image")]
    assert len(said) == 2, captured.out  # once by predict, once by eval


def test_the_camera_loop_says_it_once(tmp_path):
    from depthapp.camera.loop import CameraLoop
    from depthapp.sources import open_source

    left, right = narrow_pair()
    for name in ("a", "b", "c"):
        write_image(tmp_path / "left" / f"{name}.png", left)
        write_image(tmp_path / "right" / f"{name}.png", right)
    said = []
    loop = CameraLoop(open_source(folder=str(tmp_path)), create_backend("opencv-sgbm", max_disp=2000),
                      on_status=said.append)
    assert loop.run().processed == 3
    notes = [line for line in said if "is beyond the 64 px wide image" in line]
    assert len(notes) == 1 and notes[0].startswith("note: max disparity 2000"), said
