"""Export framework on a small real network: parity, metadata, the onnx backend, failure path."""

import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from depthapp.cli import main
from depthapp.errors import UsageError
from depthapp.export.exporter import ExportVerificationError, export_backend, read_onnx_metadata
from depthapp.io import read_pfm, write_image


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_export_verifies_parity_and_records_metadata(tmp_path, tiny_backend, fmt):
    report = export_backend("test-tiny-net", None, fmt, 50, 70, tmp_path / f"m.{fmt}", log=lambda s: None)
    assert report.max_abs_diff < 0.05 and report.path.exists()
    assert report.metadata["depthapp.padded_height"] == "64" and report.metadata["depthapp.padded_width"] == "80"
    if fmt == "onnx":
        meta = read_onnx_metadata(report.path)
        assert meta["depthapp.backend"] == "test-tiny-net" and meta["depthapp.pad_mode"] == "top_right"
        assert meta["depthapp.max_disp"] == "8" and meta["depthapp.height"] == "50"


def test_exports_get_the_mode_the_umask_asks_for(tmp_path, tiny_backend, check_modes):
    check_modes([export_backend("test-tiny-net", None, fmt, 40, 40, tmp_path / f"m.{fmt}",
                                log=lambda s: None).path for fmt in ("onnx", "torchscript")])


def test_onnx_backend_through_the_cli_matches_torch(tmp_path, tiny_backend, motorcycle):
    import cv2

    model = tmp_path / "tiny.onnx"
    assert main(["export", "--backend", "test-tiny-net", "--format", "onnx", "--height", "60",
                 "--width", "90", "--out", str(model)]) == 0
    left = cv2.resize(motorcycle.left, (90, 60))
    right = cv2.resize(motorcycle.right, (90, 60))
    write_image(tmp_path / "l.png", left)
    write_image(tmp_path / "r.png", right)
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--backend", "onnx",
                 "--model", str(model), "--out", str(tmp_path / "o")]) == 0
    onnx_disparity = read_pfm(tmp_path / "o" / "disparity.pfm")
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--backend",
                 "test-tiny-net", "--out", str(tmp_path / "t")]) == 0
    torch_disparity = read_pfm(tmp_path / "t" / "disparity.pfm")
    assert np.max(np.abs(onnx_disparity - torch_disparity)) < 0.01


def test_onnx_backend_rejects_other_sizes_and_falls_back_in_one_line(tmp_path, tiny_backend, motorcycle, capsys):
    model = tmp_path / "tiny.onnx"
    export_backend("test-tiny-net", None, "onnx", 60, 90, model, log=lambda s: None)
    write_image(tmp_path / "l.png", motorcycle.left)
    write_image(tmp_path / "r.png", motorcycle.right)
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--backend", "onnx",
                 "--model", str(model), "--out", str(tmp_path / "o")]) == 1
    assert "exported for 90x60" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_corrupted_export_is_detected_and_removed(tmp_path, tiny_backend, fmt):
    # The stateful net's export freezes a call counter: its output is off by whole pixels.
    with pytest.raises(ExportVerificationError, match="differs from torch by [1-9]"):
        export_backend("test-tiny-stateful", None, fmt, 40, 40, tmp_path / f"bad.{fmt}",
                       log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_classical_backends_cannot_be_exported(tmp_path, capsys):
    assert main(["export", "--backend", "opencv-sgbm", "--format", "onnx", "--height", "64",
                 "--width", "64", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "cannot be exported" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dynamic_export_is_also_verified_at_another_size(tmp_path, tiny_backend):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export_backend("test-tiny-net", None, "onnx", 50, 70, tmp_path / "dynamic.onnx",
                                dynamic=True, log=lambda s: None)
    assert report.max_abs_diff < 0.05 and report.metadata["depthapp.padded_width"] == "dynamic"
    # torch.onnx's note that both inputs share the height and width axes is no user's business.
    assert not [str(w.message) for w in caught if issubclass(w.category, (UserWarning, FutureWarning))]
    # A graph fixed to the export size passes there, so only the second size can catch it.
    with pytest.raises(ExportVerificationError, match=r"returns 64x64 for a 96x80 input .*removed"):
        export_backend("test-tiny-fixed-size", None, "onnx", 50, 60, tmp_path / "fixed.onnx",
                       dynamic=True, log=lambda s: None)
    assert not (tmp_path / "fixed.onnx").exists()


def test_dynamic_is_refused_for_traced_formats(tmp_path, tiny_backend):
    with pytest.raises(UsageError, match="--dynamic is supported for --format onnx only"):
        export_backend("test-tiny-net", None, "pt2", 50, 70, tmp_path / "m.pt2", dynamic=True)
    assert list(tmp_path.iterdir()) == []


def test_export_shows_each_stage_with_an_eta_and_quiet_hides_them(tmp_path, tiny_backend, capsys):
    argv = ["export", "--backend", "test-tiny-net", "--format", "torchscript", "--height", "40",
            "--width", "60"]
    assert main(argv + ["--out", str(tmp_path / "a.pt")]) == 0
    captured = capsys.readouterr()
    stages = [line.split(" [")[0] for line in captured.err.splitlines()]
    assert stages == ["export test-tiny-net torchscript: " + stage for stage in (
        "loading the network", "exporting", "verifying: torch on the sample",
        "verifying: the export on the sample", "done")], captured.err
    assert all(re.search(r"ETA (\d\d:\d\d|--:--)", line) for line in captured.err.splitlines())
    assert re.search(r"ETA \d\d:\d\d", captured.err.splitlines()[2])
    assert captured.out.startswith("exporting test-tiny-net") and "verified:" in captured.out
    assert main(argv + ["--out", str(tmp_path / "b.pt"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "verified:" in captured.out


@pytest.mark.slow
def test_a_successful_onnx_export_prints_progress_and_no_third_party_warning(tmp_path):
    """In a fresh process, where torch.onnx registers its operators (and warns about the
    missing torchvision ones) on first use."""
    out = tmp_path / "features.onnx"
    process = subprocess.run([sys.executable, "-m", "depthapp", "export", "--backend", "mccnn",
                              "--format", "onnx", "--height", "32", "--width", "48", "--offline",
                              "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    lines = process.stderr.splitlines()
    assert lines and all(line.startswith("export mccnn onnx: ") for line in lines), process.stderr
    assert any(re.search(r"ETA \d\d:\d\d", line) for line in lines)
    assert "verified:" in process.stdout and out.is_file()
