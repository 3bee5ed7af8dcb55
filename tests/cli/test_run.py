"""``depthapp run``: the foundation's CLI contract, exit codes and one-line errors."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from depthapp.cli import main
from depthapp.io import read_pfm, read_ply, read_rgb, write_image


def run_cli(*args):
    """Run the real console entry point in a fresh process (exit code, no traceback)."""
    process = subprocess.run([sys.executable, "-m", "depthapp", *map(str, args)],
                             capture_output=True, text=True, timeout=300)
    return process.returncode, process.stdout, process.stderr


def test_sample_writes_the_four_files_and_prints_timings(tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("run", "--sample", "--max-disp", "64", "--out", out)
    assert code == 0, stderr
    assert "timings:" in stdout and "max disparity 64 levels (--max-disp)" in stdout
    assert "bad-2 all 18." in stdout  # opencv-sgbm on Motorcycle, the 18.9 %
    disparity = read_pfm(out / "disparity.pfm")
    depth = read_pfm(out / "depth.pfm")
    assert disparity.shape == depth.shape == (500, 741)
    assert np.isposinf(disparity).any()  # invalid is +inf in PFM
    assert np.all(np.isposinf(depth) == np.isposinf(disparity))
    points, colors = read_ply(out / "cloud.ply")
    assert len(points) == int(np.isfinite(disparity).sum()) and colors.dtype == np.uint8
    assert 1.5 < np.median(points[:, 2]) < 5.0  # metres
    assert read_rgb(out / "disparity.png").shape[1] == 741
    assert "Traceback" not in stderr


def test_existing_outputs_need_force(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--sample", "--backend", "opencv-bm", "--max-disp", "64", "--out", str(out)]) == 0
    before = (out / "disparity.pfm").read_bytes()
    assert main(["run", "--sample", "--backend", "opencv-bm", "--out", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert (out / "disparity.pfm").read_bytes() == before
    assert main(["run", "--sample", "--backend", "opencv-bm", "--block-size", "21",
                 "--max-disp", "64", "--out", str(out), "--force"]) == 0
    assert (out / "disparity.pfm").read_bytes() != before


def _pair(tmp_path, left_shape=(20, 30, 3), right_shape=(20, 30, 3)):
    write_image(tmp_path / "l.png", np.zeros(left_shape, np.uint8))
    write_image(tmp_path / "r.png", np.zeros(right_shape, np.uint8))
    return tmp_path / "l.png", tmp_path / "r.png"


@pytest.mark.parametrize("case,expected_code,message", [
    ("missing", 1, "missing.png: no such file"),
    ("size", 1, "r.png: size 31x20 differs"),
    ("empty", 1, "l.png: file is empty"),
    ("zero-baseline", 1, "field 'baseline' must be positive"),
    ("bad-flag", 2, "does not take --p9"),
    ("no-input", 2, "give LEFT and RIGHT"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, case, expected_code, message):
    left, right = _pair(tmp_path, right_shape=(20, 31, 3) if case == "size" else (20, 30, 3))
    args = ["run", str(left), str(right), "--out", str(tmp_path / "o")]
    if case == "missing":
        args[1] = str(tmp_path / "missing.png")
    elif case == "empty":
        left.write_bytes(b"")
    elif case == "zero-baseline":
        (tmp_path / "calib.txt").write_text("cam0=[100 0 15; 0 100 10; 0 0 1]\n"
                                            "cam1=[100 0 15; 0 100 10; 0 0 1]\nbaseline=0\n")
        args += ["--calib", str(tmp_path / "calib.txt")]
    elif case == "bad-flag":
        args += ["--p9", "3"]
    elif case == "no-input":
        args = ["run", "--out", str(tmp_path / "o")]
    assert main(args) == expected_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("depthapp: error:") and message in err[0]


def test_real_process_has_no_traceback_for_user_errors(tmp_path):
    code, _, stderr = run_cli("run", tmp_path / "nope.png", tmp_path / "nope2.png")
    assert code == 1 and "Traceback" not in stderr and "nope.png" in stderr


def test_version_and_backends_listing(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("depthapp ")
    assert main(["backends"]) == 0
    listing = capsys.readouterr().out
    assert "opencv-sgbm" in listing and "--p1 int" in listing


def test_uncalibrated_pair_gets_disparity_only(tmp_path, motorcycle):
    write_image(tmp_path / "a_left.png", motorcycle.left)
    write_image(tmp_path / "a_right.png", motorcycle.right)
    out = tmp_path / "o"
    assert main(["run", str(tmp_path / "a_left.png"), str(tmp_path / "a_right.png"),
                 "--max-disp", "64", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["disparity.pfm", "disparity.png"]


def test_calibration_without_image_size_takes_the_pairs_size(tmp_path, motorcycle, capsys):
    # A Middlebury calib.txt without width/height: the size comes from the images, not a guess.
    write_image(tmp_path / "l.png", motorcycle.left)
    write_image(tmp_path / "r.png", motorcycle.right)
    (tmp_path / "calib.txt").write_text(
        "cam0=[994.97775 0 311.193; 0 994.97775 254.87675; 0 0 1]\n"
        "cam1=[994.97775 0 342.27875; 0 994.97775 254.87675; 0 0 1]\n"
        "doffs=31.08575\nbaseline=193.001\n")
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--calib",
                 str(tmp_path / "calib.txt"), "--max-disp", "64", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "cloud.ply").exists()


def test_full_resolution_calibration_is_scaled_to_quarter_size_images(tmp_path, motorcycle, capsys):
    write_image(tmp_path / "l.png", motorcycle.left)
    write_image(tmp_path / "r.png", motorcycle.right)
    (tmp_path / "calib.txt").write_text(
        "cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]\n"
        "cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]\n"
        "doffs=124.343\nbaseline=193.001\nwidth=2964\nheight=2000\nndisp=270\n")
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--calib",
                 str(tmp_path / "calib.txt"), "--max-disp", "64", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "scaled by 0.25" in out and "f=994.98px" in out


def test_library_errors_name_parameters_and_the_cli_shows_flags(tmp_path, capsys):
    from depthapp.backends import create_backend
    from depthapp.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^max_disp must be 1\.\.16384, got -5$"):
        create_backend("opencv-sgbm", max_disp=-5)
    # issue 15: 0, negative and absurd ranges are usage errors (2), caught by the flag's type
    assert main(["run", "--sample", "--backend", "opencv-sgbm", "--max-disp", "-5",
                 "--out", str(tmp_path / "a")]) == 2
    assert "argument --max-disp: must be 1..16384, got -5" in capsys.readouterr().err
    assert main(["run", "--sample", "--backend", "opencv-sgbm", "--p1", "500", "--p2", "100",
                 "--out", str(tmp_path / "b")]) == 2
    assert "error: --p2 (100) must be larger than --p1 (500)" in capsys.readouterr().err
    assert main(["run", "--sample", "--backend", "opencv-sgbm", "--block-size", "4",
                 "--out", str(tmp_path / "c")]) == 2
    assert "error: --block-size: 4 must be odd" in capsys.readouterr().err
    with pytest.raises(ParameterError, match=r"^backend onnx needs model "):
        create_backend("onnx")
    assert main(["run", "--sample", "--backend", "onnx", "--out", str(tmp_path / "d")]) == 2
    assert "error: backend onnx needs --model (a file of `depthapp export`)" in capsys.readouterr().err


def test_the_default_output_folder_is_ignored_by_git(tmp_path):
    """`depthapp run --sample` in a clone writes depthapp-out/, which must not show as new files."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip(f"{root} is not a git checkout")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    paths = ["depthapp-out/disparity.pfm", "docs/depthapp-out/cloud.ply"]
    git = subprocess.run(["git", "-C", str(root), "check-ignore", *paths], capture_output=True, text=True)
    if git.returncode == 128:
        pytest.skip(f"git cannot read the checkout: {git.stderr.strip()}")
    assert git.stdout.split() == paths
