"""Run by test_postprocess_torch.py in a fresh process: NUMBA_ENABLE_CUDASIM must be set before
numba is imported. The MC-CNN method on a CUDA device, with its SGM in the sgm backend's warp
aggregation run by numba's CUDA simulator and the rest as torch (on the CPU here), against the
CPU method on a crop of Motorcycle. Prints one line per check, exits non-zero on a mismatch.

The simulator runs each CUDA thread as a Python thread (about 40 ms per pixel and path here),
so the crop is small."""

import os
import sys
from pathlib import Path

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
sys.path.insert(0, str(Path(__file__).parents[1] / "sgm"))
# The sgm check's simulator shims (warp shuffles, locked shared arrays, short switch interval).
import cuda_simulator_check as sgm_simulator  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

check = sgm_simulator.check
CROP = (slice(200, 210), slice(300, 332))  # 10x32 of the full-size pair, textured
LEVELS = 16


def main():
    from depthapp.backends import create_backend
    from depthapp.backends.mccnn import postprocess_torch
    from depthapp.backends.sgm import aggregation
    from depthapp.backends.sgm import cuda as sgm_cuda
    from depthapp.data import StereoPair
    from depthapp.jobs import CancelToken
    from depthapp.sample import load_sample
    from depthapp.timing import StageTimer

    assert sgm_cuda.simulator_enabled(), "simulator not enabled"
    sample = load_sample()
    pair = StereoPair(np.ascontiguousarray(sample.left[CROP]), np.ascontiguousarray(sample.right[CROP]))
    backend = create_backend("mccnn", device="cpu", max_disp=LEVELS)
    params = backend.params

    rng = np.random.default_rng(3)
    small = torch.from_numpy(rng.random((3, 5, 20)).astype(np.float32))
    p2_maps = rng.random((2, 3, 5)).astype(np.float32) * 3 + 1
    got = sgm_cuda.aggregate_tensor_cuda(small, 0.5, torch.from_numpy(p2_maps), (1, 6))
    check("tensor aggregation with a path subset (1, 6) and penalty tensors equals the CPU one",
          isinstance(got, torch.Tensor) and np.allclose(
              got.numpy(), aggregation.aggregate_cost(small.numpy(), 0.5, p2_maps, (1, 6)), atol=1e-4))

    cpu = backend.compute(pair)
    timer = StageTimer()
    disparity, confidence = backend._compute_on_device(pair, timer, CancelToken())
    check("the device method runs SGM and every refinement stage",
          {"features", "cost volume", "sgm", "winner", "left-right check", "refinement"} <= set(timer.timings))
    cost, grey_left, grey_right = backend.cost_volume_tensor(pair)
    p1, p2 = postprocess_torch.sgm_penalties(cost, torch.from_numpy(grey_left), torch.from_numpy(grey_right),
                                             params)
    winners = postprocess_torch.winner_take_all(torch.from_numpy(
        aggregation.aggregate_cost(cost.numpy(), p1.numpy(), p2.numpy(), paths=4)))
    labels = postprocess_torch.classify_outliers(winners[0], winners[1], LEVELS).numpy()
    check("the crop has matches, occlusions and mismatches", len(np.unique(labels)) == 3)
    # SGM (the CUDA warp aggregation, here simulated) sums the four paths in float32 in another
    # order than the CPU kernels, and the bilateral mean its (6 sigma + 1)^2 terms; the other
    # steps are exact. Neither moves a winner on this crop, so 1e-4 px bounds the difference.
    check("device disparity equals the CPU method's (1e-4 px)",
          disparity.shape == cpu.disparity.shape and np.allclose(disparity, cpu.disparity, rtol=0, atol=1e-4))
    check("device confidence equals the CPU method's",
          np.allclose(confidence, cpu.confidence, rtol=0, atol=1e-4))
    print(f"largest differences: disparity {np.abs(disparity - cpu.disparity).max():.2e} px, "
          f"confidence {np.abs(confidence - cpu.confidence).max():.2e}")
    print("all MC-CNN simulator checks passed")


if __name__ == "__main__":
    main()
