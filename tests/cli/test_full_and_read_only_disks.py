"""A full or read-only file system under ``depthapp run`` (issue 15), for real: each case runs
the CLI on the sample pair in a private mount namespace whose output folder is a small tmpfs
or a read-only bind mount. One line naming the path and the problem, exit 1, no traceback,
nothing of the failed run left in the folder, and a rerun once there is room works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = [sys.executable, "-m", "depthapp", "run", "--sample", "--backend", "opencv-bm",
       "--max-disp", "16", "--quiet"]
# Set apart the failing run's output from the listing and the rerun that follow it.
MARK = "----"


def _namespace_command() -> list[str]:
    """``unshare`` into a private mount namespace (as root or as a mapped root user)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux `unshare` for a private mount namespace")
    command = ["unshare", "--mount", "--map-root-user"]
    probe = subprocess.run([*command, "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"mount namespaces (unshare --mount --map-root-user) unavailable here: "
                    f"{probe.stderr.strip() or probe.returncode}")
    return command


def run_in_namespace(folder: Path, setup: str, then: str = "true") -> tuple[int, str, list[str], str]:
    """``setup`` mounts over ``folder``, then ``depthapp run --out folder``, a listing of the
    folder, and ``then`` (which may make room and rerun). Returns the run's exit code, its
    stderr, the folder's entries after it and the output of ``then``."""
    folder.mkdir(parents=True, exist_ok=True)
    run = " ".join(RUN)
    script = (f"set -e; {setup}; set +e; {run} --out {folder} 2>&1 >/dev/null; echo \"{MARK}$?\"; "
              f"ls -A {folder}; echo {MARK}; {then}")
    done = subprocess.run([*_namespace_command(), "sh", "-c", script], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr
    failed, rest = done.stdout.split(MARK, 1)
    code, rest = rest.split("\n", 1)
    listing, after = rest.split(MARK + "\n", 1)
    return int(code), failed.strip(), listing.split(), after


def assert_one_line(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthapp: error:"), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_disk_full_while_writing_leaves_nothing_and_the_rerun_works(tmp_path):
    # Plenty of bytes but room for only a few files: the first outputs are written, a later
    # one gets a real ENOSPC from the kernel after the computation, in the middle of the set.
    folder = tmp_path / "full"
    code, stderr, left, after = run_in_namespace(
        folder, f"mount -t tmpfs -o size=64m,nr_inodes=4 tmpfs {folder}",
        then=f"mount -o remount,nr_inodes=100 {folder} && {' '.join(RUN)} --out {folder} >/dev/null "
             f"&& ls {folder}")
    assert code == 1
    assert_one_line(stderr, str(folder), "cannot write (no space left on the device)")
    assert left == []
    assert after.split() == ["cloud.ply", "depth.pfm", "disparity.pfm", "disparity.png"]


def test_too_small_a_disk_is_refused_before_computing(tmp_path):
    # 2 MiB: the sample's disparity PFM alone (1.4 MiB) fits, its four outputs do not.
    folder = tmp_path / "small"
    code, stderr, left, _ = run_in_namespace(folder, f"mount -t tmpfs -o size=2m tmpfs {folder}")
    assert code == 1
    assert_one_line(stderr, str(folder), "MiB free on its disk, the outputs need about")
    assert left == []


def test_read_only_file_system(tmp_path):
    # Root may write into any folder, but not into a read-only mount (EROFS).
    folder = tmp_path / "ro"
    code, stderr, left, _ = run_in_namespace(
        folder, f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}")
    assert code == 1
    assert_one_line(stderr, str(folder), "read-only file system")
    assert left == []
    out = tmp_path / "writable"
    rerun = subprocess.run([*RUN, "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "disparity.pfm").exists()
