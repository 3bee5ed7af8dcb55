"""Run by test_cuda.py in a fresh process: NUMBA_ENABLE_CUDASIM must be set before numba is
imported. Compares the CUDA kernels (in numba's simulator) with the reference and the CPU
kernels on tiny inputs; prints one line per check and exits non-zero on the first mismatch."""

import os
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
# The simulator's block manager polls its Python threads while holding the GIL; a short switch
# interval lets the simulated threads reach each syncthreads promptly (about 8x faster).
sys.setswitchinterval(2e-5)

import threading  # noqa: E402

import numpy as np  # noqa: E402
from numba.core import types  # noqa: E402
from numba.cuda.simulator import kernelapi  # noqa: E402
from numba.np import numpy_support  # noqa: E402

# The simulator finds a block's shared array by a dict lookup then an insert, unlocked: two
# simulated threads of one block can both miss and each get its own "shared" array, and the
# kernel then reads values no other thread wrote (seen once in CI as a spurious mismatch).
_shared_lock = threading.Lock()


def _locked_shared_array(self, shape, dtype):
    if shape == 0:  # dynamic shared memory: one buffer, no lookup
        return _dynamic_shared_array(self, shape, dtype)
    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    caller = sys._getframe(1)
    site = (caller.f_code.co_filename, caller.f_lineno)  # as the simulator keys it
    with _shared_lock:
        found = self._allocations.get(site)
        if found is None:
            found = self._allocations[site] = np.empty(shape, dtype)
    return found


_dynamic_shared_array = kernelapi.FakeCUDAShared.array


kernelapi.FakeCUDAShared.array = _locked_shared_array


# The simulator has no warp shuffles. The aggregation kernel launches one warp per block there
# (cuda._warps_per_block), and every lane of it reaches each shuffle, so a shuffle can be
# simulated as a block-wide exchange between barriers with CUDA's documented semantics
# (out-of-range source lanes return the caller's own value). The real instructions run in the
# GPU tests.
def _warp_exchange(module, value, source_of):
    thread = threading.current_thread()
    assert tuple(module.blockDim) == (32, 1, 1), "simulated shuffles need a one-warp block"
    slots = module.__dict__.setdefault("_warp_slots", {})
    lane = thread.threadIdx.x
    module.syncthreads()
    slots[lane] = value
    module.syncthreads()
    source = source_of(lane)
    result = slots[source] if 0 <= source < 32 else value
    module.syncthreads()
    return result


kernelapi.FakeCUDAModule.shfl_up_sync = (
    lambda self, mask, value, delta: _warp_exchange(self, value, lambda lane: lane - delta))
kernelapi.FakeCUDAModule.shfl_down_sync = (
    lambda self, mask, value, delta: _warp_exchange(self, value, lambda lane: lane + delta))
kernelapi.FakeCUDAModule.shfl_xor_sync = (
    lambda self, mask, value, lane_mask: _warp_exchange(self, value, lambda lane: lane ^ lane_mask))

from depthapp.backends.sgm import aggregation, reference  # noqa: E402
from depthapp.backends.sgm import cuda as sgm_cuda  # noqa: E402
from depthapp.backends.sgm.cost import CostWeights, census_transform, matching_cost  # noqa: E402
from depthapp.backends.sgm.pipeline import SGMConfig, compute_sgm  # noqa: E402


def check(name, ok):
    print(f"{name}: {'ok' if ok else 'MISMATCH'}", flush=True)
    if not ok:
        sys.exit(1)


def main():
    assert sgm_cuda.simulator_enabled(), "simulator not enabled"
    check("kernels available in the simulator", sgm_cuda.cuda_kernels_available())
    rng = np.random.default_rng(7)
    height, width, n_disp = 4, 6, 5

    cost = rng.integers(0, 40, (height, width, n_disp)).astype(np.uint8)
    p1 = rng.integers(1, 6, (8, height, width))
    p2 = rng.integers(6, 25, (8, height, width))
    got = sgm_cuda.aggregate_cost_cuda(cost, p1, p2, paths=8)
    check("8-path aggregation of a uint8 cost equals the reference",
          got.dtype == np.uint16 and np.array_equal(got, reference.aggregate(cost, p1, p2)))

    wide = rng.integers(0, 40, (3, 5, 45)).astype(np.uint8)  # two disparities a lane
    wide_p2 = rng.integers(6, 25, (8, 3, 5))
    check("8-path aggregation across lanes (45 disparities) equals the reference",
          np.array_equal(sgm_cuda.aggregate_cost_cuda(wide, 3, wide_p2, paths=8),
                         reference.aggregate(wide, 3, wide_p2)))

    budget = sgm_cuda.CONCURRENT_BUDGET
    sgm_cuda.CONCURRENT_BUDGET = 0  # large frames: one launch per family into one volume
    got = sgm_cuda.aggregate_cost_cuda(cost, p1, p2, paths=8)
    sgm_cuda.CONCURRENT_BUDGET = budget
    check("8-path aggregation one family per launch equals the reference",
          np.array_equal(got, reference.aggregate(cost, p1, p2)))

    float_cost = (cost + rng.random(cost.shape)).astype(np.float32)
    got = sgm_cuda.aggregate_cost_cuda(float_cost, 3.5, 11.0, paths=(1, 6))
    expected = reference.aggregate(float_cost, 3.5, 11.0, paths=(1, 6))
    check("path subset of a float32 cost equals the reference",
          got.dtype == np.float32 and np.allclose(got, expected, atol=1e-3))

    base = np.rint(rng.random((height + 1, width + 3)) * 255).astype(np.float32)
    left = np.ascontiguousarray(base[:height, 2:2 + width])
    right = np.ascontiguousarray(base[:height, :width])
    config = SGMConfig(n_disp=n_disp, window=(3, 3), weights=CostWeights(border_cost=5),
                       p1=4, p2=30, p2_gradient=10, paths=8, median_size=3, speckle_size=0)
    gpu = sgm_cuda.compute_sgm_cuda(left, right, config)
    cpu = compute_sgm(left, right, config)
    check("pipeline disparity equals the CPU pipeline",
          np.allclose(gpu.disparity, cpu.disparity, atol=1e-4, equal_nan=True))
    check("pipeline confidence equals the CPU pipeline",
          np.allclose(gpu.confidence, cpu.confidence, atol=1e-4))

    from depthapp.data import StereoPair

    rgb_pair = StereoPair(rng.integers(0, 255, (height, width, 3), dtype=np.uint8),
                          rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    gpu = sgm_cuda.compute_sgm_cuda(rgb_pair.left, rgb_pair.right, config)
    cpu = compute_sgm(*rgb_pair.grey(), config)
    check("RGB input (luma on the device) equals the CPU pipeline on StereoPair.grey",
          np.allclose(gpu.disparity, cpu.disparity, atol=1e-4, equal_nan=True))
    planes = [np.ascontiguousarray(np.moveaxis(view, 2, 0)) for view in (rgb_pair.left, rgb_pair.right)]
    strided = [np.moveaxis(plane, 0, 2) for plane in planes]  # channel-last views of planes
    assert not strided[0].flags.c_contiguous
    from_views = sgm_cuda.compute_sgm_cuda(strided[0], strided[1], config)
    check("RGB views that are not contiguous (luma on the host) give the same disparity",
          np.allclose(from_views.disparity, gpu.disparity, atol=1e-4, equal_nan=True))

    # The intermediate stages against their definitions, through the same device kernels.
    from numba import cuda

    levels = rng.integers(0, 4, (9, 11)).astype(np.float32) * 1.5
    levels[rng.random(levels.shape) < 0.15] = np.nan
    on_device = cuda.to_device(levels)
    labels = cuda.device_array(levels.size, np.int32)
    sizes = cuda.device_array(levels.size, np.int32)
    sgm_cuda._remove_speckles_device(on_device, 3, 1.5, labels, sizes)
    expected = aggregation.remove_speckles(levels, 3, 1.5)
    check("speckle removal (device labelling) equals the CPU flood fill",
          np.array_equal(on_device.copy_to_host(), expected, equal_nan=True)
          and np.isnan(expected).sum() > np.isnan(levels).sum())

    grid, block = sgm_cuda._grid2(height, width)
    census = cuda.device_array((height, width), np.uint64)
    sgm_cuda._census_kernel[grid, block](cuda.to_device(left), 3, 3, census)
    check("census equals the reference",
          np.array_equal(census.copy_to_host(), reference.census_transform(left, (3, 3))))
    check("CPU census equals the reference (sanity)",
          np.array_equal(census_transform(left, (3, 3)), reference.census_transform(left, (3, 3))))
    volume = aggregation.aggregate_cost(matching_cost(left, right, n_disp, 0, (3, 3)), 4, 30)
    wta_gpu = cuda.device_array((height, width), np.float32)
    confidence = cuda.device_array((height, width), np.float32)
    sgm_cuda._wta_kernel[grid, block](cuda.to_device(volume), np.float32(20), True,
                                      np.float32(0), wta_gpu, confidence)
    right_gpu = cuda.device_array((height, width), np.float32)
    sgm_cuda._right_kernel[grid, block](cuda.to_device(volume), np.float32(0), right_gpu)
    expected_left, expected_right = reference.winner_take_all(volume, 20, True)
    check("winner-take-all with uniqueness equals the reference",
          np.allclose(wta_gpu.copy_to_host(), expected_left, atol=1e-4, equal_nan=True))
    check("right-view winners equal the reference",
          np.array_equal(right_gpu.copy_to_host(), expected_right))
    print("all CUDA simulator checks passed")


if __name__ == "__main__":
    main()
