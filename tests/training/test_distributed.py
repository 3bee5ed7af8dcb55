"""``depthapp train`` under torchrun: 2 CPU processes (gloo, loopback rendezvous) give the loss
trajectory of 1 process with the same global batch, rank 0 alone writes, and resume works."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--backend", "gcnet", "--variant", "tiny", "--max-disp", "32", "--crop", "64x64",
         "--data", "synthetic", "--batch", "2", "--threads", "1", "--eval-pairs", "0",
         "--val-pairs", "0", "--no-motorcycle", "--checkpoint-every", "1"]


def _run(command: list[str], processes: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    launcher = [sys.executable, "-m", "depthapp"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "-m", "depthapp"]
    done = subprocess.run(launcher + command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _losses(folder: Path) -> np.ndarray:
    with open(folder / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["iter"]) for row in rows] == list(range(1, len(rows) + 1))
    return np.array([float(row["loss"]) for row in rows])


@pytest.mark.slow
def test_two_processes_follow_one_and_resume(tmp_path):
    single, parallel = tmp_path / "one", tmp_path / "two"
    _run(TRAIN + ["--iters", "5", "--out", str(single)], processes=1)
    first = _run(TRAIN + ["--iters", "3", "--out", str(parallel)], processes=2)
    assert first.stderr.count("training GC-Net") == 1  # rank 0 alone reports
    assert "2 processes" in first.stderr
    assert len(_losses(parallel)) == 3
    _run(TRAIN + ["--iters", "5", "--out", str(parallel), "--resume"], processes=2)
    one, two = _losses(single), _losses(parallel)
    assert len(two) == 5
    # Same global batch, same samples: only BatchNorm's per-rank statistics and the order of
    # float sums differ (measured: 0.2 % at most over these iterations).
    np.testing.assert_allclose(two, one, rtol=0.03)
    assert not np.allclose(one[:1], one[-1:])  # the trajectory moves: the comparison means something
    assert sorted(p.name for p in parallel.iterdir()) == sorted(p.name for p in single.iterdir())


def test_a_global_batch_that_does_not_divide_is_refused(tmp_path):
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0")
    command = TRAIN + ["--iters", "1", "--out", str(tmp_path / "x")]
    command[command.index("--batch") + 1] = "3"
    done = subprocess.run([sys.executable, "-m", "depthapp"] + command, env=dict(env, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "must divide by the 2 processes" in done.stderr and "Traceback" not in done.stderr
