"""The command line under bad input, bad numbers and bad folders (issue 15): one line, exit 1
(input) or 2 (usage), no traceback, and no output of a failed run left behind."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depthapp.cli import main
from depthapp.io import write_image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
    right = np.roll(left, -3, axis=1)
    write_image(tmp_path / "l.png", left)
    write_image(tmp_path / "r.png", right)
    return tmp_path / "l.png", tmp_path / "r.png"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("depthapp: error:"), err
    return err[0]


@pytest.mark.parametrize("value", ["0", "-5", "99999999999", "abc", "16385"])
def test_max_disp_out_of_range_is_a_usage_error(pair, tmp_path, capsys, value):
    left, right = pair
    assert main(["run", str(left), str(right), "--out", str(tmp_path / "o"), "--max-disp", value]) == 2
    assert "--max-disp" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("backend", ["opencv-sgbm", "sgm"])
def test_max_disp_beyond_the_width_is_clamped_and_said(pair, tmp_path, capsys, backend):
    left, right = pair
    assert main(["run", str(left), str(right), "--backend", backend, "--out", str(tmp_path / "o"),
                 "--max-disp", "2000"]) == 0
    out = capsys.readouterr().out
    assert "max disparity 2000 is beyond the 64 px wide image" in out
    assert (tmp_path / "o" / "disparity.pfm").exists()


@pytest.mark.parametrize("backend,size", [("opencv-sgbm", (1, 1)), ("opencv-bm", (1, 1)),
                                          ("opencv-bm", (10, 40)), ("sgm", (1, 1))])
def test_pairs_too_small_for_the_window(tmp_path, capsys, backend, size):
    height, width = size
    for name in ("l.png", "r.png"):
        write_image(tmp_path / name, np.zeros((height, width, 3), np.uint8))
    code = main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--backend", backend,
                 "--out", str(tmp_path / "o")])
    assert code == 1
    assert f"{width}x{height} is too small for backend {backend}" in one_error_line(capsys)


def test_memory_estimate_refuses_before_work():
    from depthapp.backends import create_backend
    from depthapp.data import StereoPair
    from depthapp.errors import InputError

    # max_disp is first clamped to the width: 8000 levels on 48 MP need ~56 GiB, more than any
    # machine running the suite has free (3000x4000 clamped to 4000 levels is a real 7 GiB job)
    image = np.zeros((6000, 8000, 3), np.uint8)
    backend = create_backend("sgm", max_disp=16384, device="cpu")
    with pytest.raises(InputError, match=r"needs about \d+\.\d GiB for backend sgm"):
        backend.compute(StereoPair(image, image, name="big"))
    for name in ("opencv-sgbm", "opencv-bm", "sgm"):
        assert create_backend(name, max_disp=64, device="cpu").estimate_memory(375, 1242) > 0


def test_output_parent_is_a_file(pair, tmp_path, capsys):
    left, right = pair
    (tmp_path / "afile").write_text("x")
    assert main(["run", str(left), str(right), "--out", str(tmp_path / "afile" / "sub")]) == 1
    line = one_error_line(capsys)
    assert "afile is a file, not a folder" in line
    assert "timings" not in capsys.readouterr().out


def test_unwritable_output_folder_is_refused_before_compute(pair, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the check needs an ordinary user")
    left, right = pair
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    assert main(["run", str(left), str(right), "--out", str(locked / "o")]) == 1
    assert "cannot write into" in one_error_line(capsys)


def test_stale_temporaries_of_a_killed_run_are_removed(pair, tmp_path):
    left, right = pair
    out = tmp_path / "o"
    out.mkdir()
    stale = [out / ".disparity.abcd1234.tmp.pfm", out / ".cloud.999999999-x1y2z3w4.tmp.ply"]
    live = out / f".depth.{os.getpid()}-live0000.tmp.pfm"
    for path in stale + [live]:
        path.write_bytes(b"partial")
    assert main(["run", str(left), str(right), "--out", str(out)]) == 0
    assert not any(path.exists() for path in stale)
    assert live.exists()  # a concurrent writer's file (here: this process) is kept


def test_killed_run_leaves_nothing_that_blocks_the_next(pair, tmp_path):
    """A run killed with -9 while writing: the next run into the folder cleans up and succeeds."""
    left, right = pair
    out = tmp_path / "o"
    script = ("import os, signal, sys\n"
              "import depthapp.io.atomic as atomic\n"
              "original = atomic.OutputSet._commit\n"
              "def die(self):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
              "atomic.OutputSet._commit = die\n"
              "from depthapp.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    child = subprocess.run([sys.executable, "-c", script, "run", str(left), str(right), "--out", str(out)],
                           capture_output=True, text=True, timeout=120, env=_env())
    assert child.returncode == -signal.SIGKILL
    assert any(name.endswith(".tmp.pfm") for name in os.listdir(out))
    assert not (out / "disparity.pfm").exists()
    assert main(["run", str(left), str(right), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["disparity.pfm", "disparity.png"]


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
            "HOME": os.environ.get("HOME", "/tmp")}


def _limited_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_half_way_leaves_nothing_and_the_rerun_works(tmp_path):
    """Writing fails (a file size limit, as a full disk would) after three of the four outputs
    are written: none of them remain, the message is one line, and the rerun is not blocked."""
    out = tmp_path / "o"
    args = [sys.executable, "-m", "depthapp", "run", "--sample", "--out", str(out)]
    # Motorcycle: each PFM is 741 x 500 x 4 bytes; the point cloud is several times larger.
    child = subprocess.run(args, capture_output=True, text=True, timeout=300, env=_env(),
                           preexec_fn=_limited_file_size(741 * 500 * 4 + 65536))
    assert child.returncode == 1, child.stderr
    lines = child.stderr.strip().splitlines()
    assert len(lines) == 1 and "cloud.ply: cannot write" in lines[0], child.stderr
    assert not out.exists() or not os.listdir(out)
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300, env=_env())
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(os.listdir(out)) == ["cloud.ply", "depth.pfm", "disparity.pfm", "disparity.png"]


def test_force_without_calibration_removes_the_old_depth(pair, tmp_path):
    """--force replaces the whole output set: a depth map of an earlier run does not stay beside
    a new disparity it does not belong to."""
    left, right = pair
    out = tmp_path / "o"
    out.mkdir()
    (out / "depth.pfm").write_bytes(b"old")
    assert main(["run", str(left), str(right), "--out", str(out), "--force"]) == 0
    assert sorted(os.listdir(out)) == ["disparity.pfm", "disparity.png"]


def test_predict_refuses_to_mix_backends(tmp_path, capsys):
    rng = np.random.default_rng(2)
    data = tmp_path / "data"
    for side in ("left", "right"):
        (data / side).mkdir(parents=True)
        write_image(data / side / "a.png", rng.integers(0, 255, (40, 64, 3), dtype=np.uint8))
    out = tmp_path / "pred"
    base = ["predict", "--dataset", "folder", "--root", str(data), "--out", str(out), "--max-disp", "16"]
    assert main(base + ["--backend", "opencv-bm"]) == 0
    before = (out / "a.pfm").read_bytes()
    capsys.readouterr()
    assert main(base + ["--backend", "opencv-sgbm"]) == 1
    assert "holds predictions of backend 'opencv-bm'" in one_error_line(capsys)
    assert (out / "a.pfm").read_bytes() == before
    assert main(base + ["--backend", "opencv-sgbm", "--force"]) == 0
    assert json.loads((out / ".depthapp-predict.json").read_text())["backend"] == "opencv-sgbm"
    assert main(base + ["--backend", "opencv-sgbm"]) == 0  # the same method resumes


def test_calibration_problems_reach_the_user_as_one_line(pair, tmp_path, capsys):
    left, right = pair
    cases = {"nan focal": ("calib.txt", "P0: nan 0 32 0 0 50 20 0 0 0 1 0\nP1: 50 0 32 -5 0 50 20 0 0 0 1 0\n"
                                        "P2: nan 0 32 0 0 50 20 0 0 0 1 0\nP3: 50 0 32 -5 0 50 20 0 0 0 1 0\n",
                           "P2[0] is not finite: nan"),
             "ndisp": ("calib.txt", "cam0=[50 0 32; 0 50 20; 0 0 1]\ncam1=[50 0 32; 0 50 20; 0 0 1]\n"
                                    "baseline=100\nwidth=64\nheight=40\nndisp=-68\n", "'ndisp' = -68"),
             "inf baseline": ("calib.txt", "cam0=[50 0 32; 0 50 20; 0 0 1]\ncam1=[50 0 32; 0 50 20; 0 0 1]\n"
                                           "baseline=inf\nwidth=64\nheight=40\n", "'baseline' is not finite")}
    for name, (file_name, text, expected) in cases.items():
        (tmp_path / file_name).write_text(text)
        code = main(["run", str(left), str(right), "--calib", str(tmp_path / file_name),
                     "--out", str(tmp_path / "o")])
        assert code == 1, name
        line = one_error_line(capsys)
        assert expected in line and "baseline is zero" not in line and "--max-disp" not in line, line


def test_real_process_never_shows_a_traceback_for_bad_input(tmp_path):
    (tmp_path / "deep.json").write_text('{"format": "depthapp-calibration", "x": ' + "[" * 100000 + "]" * 100000 + "}")
    (tmp_path / "ids.txt").write_bytes(b"\xff\xfe\n")
    write_image(tmp_path / "l.png", np.zeros((20, 30, 3), np.uint8))
    runs = [["run", str(tmp_path / "l.png"), str(tmp_path / "l.png"), "--calib", str(tmp_path / "deep.json")],
            ["run", str(tmp_path / "l.png"), str(tmp_path / "l.png"), "--calib", "/dev/zero"],
            ["run", str(tmp_path / "l.png"), str(tmp_path / "l.png"), "--max-disp", "99999999999"]]
    for args in runs:
        child = subprocess.run([sys.executable, "-m", "depthapp", *args, "--out", str(tmp_path / "o")],
                               capture_output=True, text=True, timeout=120, env=_env())
        assert child.returncode in (1, 2), child.stderr
        assert "Traceback" not in child.stderr and len(child.stderr.strip().splitlines()) == 1, child.stderr
