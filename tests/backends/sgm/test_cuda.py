"""The CUDA path: in numba's CUDA simulator on any machine (a subprocess, since the simulator
must be chosen before numba is imported), and on a real GPU when there is one."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depthapp.backends.sgm import cuda as sgm_cuda

HAS_GPU = (lambda: __import__("torch").cuda.is_available())()


def test_import_never_fails_and_says_why_cuda_is_missing():
    reason = sgm_cuda.unavailable_reason()
    assert sgm_cuda.cuda_kernels_available() == (reason is None)
    if not HAS_GPU:
        assert reason and ("CUDA" in reason or "numba" in reason)


@pytest.mark.slow
def test_cuda_kernels_in_the_simulator_match_the_reference():
    script = Path(__file__).with_name("cuda_simulator_check.py")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=600, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all CUDA simulator checks passed" in done.stdout
    assert done.stdout.count(": ok") == 14


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("paths", [4, 8])
def test_gpu_aggregation_equals_the_cpu_kernels(paths, rng):
    from depthapp.backends.sgm import aggregation

    cost = rng.integers(0, 60, (37, 53, 96)).astype(np.uint8)
    p2 = rng.integers(20, 200, (paths, 37, 53))
    np.testing.assert_array_equal(sgm_cuda.aggregate_cost_cuda(cost, 12, p2, paths=paths),
                                  aggregation.aggregate_cost(cost, 12, p2, paths=paths))
    float_cost = rng.random((21, 30, 40)).astype(np.float32)
    np.testing.assert_allclose(sgm_cuda.aggregate_cost_cuda(float_cost, 0.1, 0.5, paths=paths),
                               aggregation.aggregate_cost(float_cost, 0.1, 0.5, paths=paths),
                               rtol=1e-5, atol=1e-4)
