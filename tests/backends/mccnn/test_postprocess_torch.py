"""The MC-CNN method as device-agnostic torch (what runs on a CUDA device) against the numpy/numba
CPU method, step by step and whole, on the real MC-CNN cost of a Motorcycle crop. The torch steps
run on ``--device`` (CPU by default); the CUDA aggregation runs in numba's simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depthapp.backends import create_backend
from depthapp.backends.mccnn import postprocess as post
from depthapp.backends.mccnn import postprocess_torch as pt
from depthapp.backends.mccnn.backend import PAPER_MIDDLEBURY
from depthapp.backends.sgm import aggregation
from depthapp.data import StereoPair
from depthapp.weights import fetch

LEVELS = 24
ACCURATE_CROSS = {name: PAPER_MIDDLEBURY["accurate"][name]
                  for name in ("cbca_distance", "cbca_intensity", "cbca_before", "cbca_after")}
HAS_GPU = torch.cuda.is_available()


@pytest.fixture(scope="module")
def crop(motorcycle_session) -> StereoPair:
    """64x96 of the full-size pair around the motorcycle's front wheel: texture, depth edges and
    occlusions (all three left-right labels occur)."""
    rows, columns = slice(200, 264), slice(300, 396)
    return StereoPair(np.ascontiguousarray(motorcycle_session.left[rows, columns]),
                      np.ascontiguousarray(motorcycle_session.right[rows, columns]), name="crop")


@pytest.fixture(scope="module")
def fast_weights():
    return fetch("mccnn-fast-middlebury")


@pytest.fixture(scope="module")
def method(crop, fast_weights):
    """The CPU method's intermediate results on the crop (fast weights, paper defaults)."""
    backend = create_backend("mccnn", device="cpu", max_disp=LEVELS)
    p = backend.params
    cost, grey_left, grey_right = backend.cost_volume(crop)
    guide = np.argmin(cost, axis=2).astype(np.float32)
    p1, p2 = post.sgm_penalties(grey_left, grey_right, guide, p["p1"], p["p2"], p["sgm_intensity"],
                                p["sgm_q1"], p["sgm_q2"], p["sgm_vertical"])
    aggregated = aggregation.aggregate_cost(cost, p1, p2, paths=4)
    winners = aggregation.winner_take_all(aggregated, subpixel=False)
    labels = post.classify_outliers(winners.disparity, winners.right_disparity, LEVELS)
    filled = post.interpolate_outliers(winners.disparity, labels)
    refined = post.subpixel(aggregated, filled)
    median = aggregation.median_filter(refined, p["median_size"])
    return dict(backend=backend, cost=cost, grey=(grey_left, grey_right), penalties=(p1, p2),
                aggregated=aggregated, winners=winners, labels=labels, filled=filled,
                refined=refined, median=median)


def on(device, array):
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


@pytest.mark.network
def test_penalties_from_the_tensor_equal_the_cpu_penalties(method, device):
    grey_left, grey_right = (on(device, grey) for grey in method["grey"])
    p1, p2 = pt.sgm_penalties(on(device, method["cost"]), grey_left, grey_right, method["backend"].params)
    np.testing.assert_array_equal(p1.cpu().numpy(), method["penalties"][0])
    np.testing.assert_array_equal(p2.cpu().numpy(), method["penalties"][1])
    assert len(np.unique(method["penalties"][0])) >= 4  # edges in one, both and neither image


@pytest.mark.network
def test_winners_and_confidence_equal_the_cpu_winner_take_all(method, device):
    disparity, right, confidence = pt.winner_take_all(on(device, method["aggregated"]))
    winners = method["winners"]
    np.testing.assert_array_equal(disparity.cpu().numpy(), winners.disparity)
    np.testing.assert_array_equal(right.cpu().numpy(), winners.right_disparity)
    np.testing.assert_array_equal(confidence.cpu().numpy(), winners.confidence)


@pytest.mark.network
def test_left_right_labels_and_interpolation_equal_the_cpu_kernels(method, device):
    winners = method["winners"]
    labels = pt.classify_outliers(on(device, winners.disparity), on(device, winners.right_disparity), LEVELS)
    np.testing.assert_array_equal(labels.cpu().numpy(), method["labels"])
    assert set(np.unique(method["labels"])) == {post.MATCH, post.OCCLUSION, post.MISMATCH}
    filled = pt.interpolate_outliers(on(device, winners.disparity), labels)
    np.testing.assert_array_equal(filled.cpu().numpy(), method["filled"])


@pytest.mark.network
def test_subpixel_and_median_equal_the_cpu_kernels(method, device):
    refined = pt.subpixel(on(device, method["aggregated"]), on(device, method["filled"]))
    np.testing.assert_array_equal(refined.cpu().numpy(), method["refined"])
    assert np.mean(refined.cpu().numpy() != method["filled"]) > 0.5  # the fit moved most pixels
    with_holes = method["refined"].copy()
    with_holes[::7, ::5] = np.nan  # NaN-aware: holes stay, neighbours ignore them
    for size in (3, 5, 11):
        np.testing.assert_array_equal(pt.median_filter(on(device, with_holes), size).cpu().numpy(),
                                      aggregation.median_filter(with_holes, size))


@pytest.mark.network
def test_bilateral_mean_equals_the_cpu_kernel_to_float32_rounding(method, device):
    for sigma, threshold in ((6.0, 2.0), (1.67, 2.0), (2.5, 0.7)):
        got = pt.bilateral_mean(on(device, method["median"]), sigma, threshold).cpu().numpy()
        expected = post.bilateral_mean(method["median"], sigma, threshold)
        # the same terms summed in float32 in another order (the CPU kernel vectorises a row)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
        assert np.abs(expected - method["median"]).max() > 0.1  # the filter does change values
    holes = method["median"].copy()
    holes[10, 20] = holes[40, 70] = np.nan  # a NaN spoils the means that reach it, on both
    got = pt.bilateral_mean(on(device, holes), 1.67, 2.0).cpu().numpy()
    expected = post.bilateral_mean(holes, 1.67, 2.0)
    assert np.isnan(expected).sum() > 2
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.network
def test_cross_aggregation_equals_the_cpu_kernels(method, device):
    grey_left, grey_right = method["grey"]
    distance, intensity = ACCURATE_CROSS["cbca_distance"], ACCURATE_CROSS["cbca_intensity"]
    arms = [post.cross_arms(grey, distance, intensity) for grey in (grey_left, grey_right)]
    device_arms = [pt.cross_arms(on(device, grey), distance, intensity) for grey in (grey_left, grey_right)]
    for expected, got in zip(arms, device_arms):
        np.testing.assert_array_equal(got.cpu().numpy(), expected)
    for iterations in (2, 16):
        # the CPU function reuses its input as a buffer from the second iteration
        expected = post.cross_aggregate(method["cost"].copy(), arms[0], arms[1], iterations)
        height, width, _ = method["cost"].shape
        for levels_a_slab in (LEVELS, 5):  # one slab, and slabs of 5 disparities
            got = pt.cross_aggregate(on(device, method["cost"]), *device_arms, iterations,
                                     chunk_entries=height * width * levels_a_slab)
            np.testing.assert_array_equal(got.cpu().numpy(), expected)


def _cpu_aggregation(cost, p1, p2, paths):
    """The CPU aggregation behind :func:`refine_volume`'s ``aggregate`` interface."""
    aggregated = aggregation.aggregate_cost(cost.cpu().numpy(), p1.cpu().numpy(), p2.cpu().numpy(), paths=paths)
    return torch.from_numpy(aggregated).to(cost.device)


@pytest.mark.network
@pytest.mark.parametrize("options", [{}, ACCURATE_CROSS, {"lr_check": False, "subpixel": False},
                                     {"sgm": False, "median_size": 1, "blur_sigma": 0.0}],
                         ids=["defaults", "cross-aggregation", "no-lr-check", "raw"])
def test_refine_volume_equals_the_cpu_method(crop, fast_weights, device, options):
    backend = create_backend("mccnn", device="cpu", max_disp=LEVELS, **options)
    expected = backend.compute(crop)
    cost, grey_left, grey_right = backend.cost_volume_tensor(crop)
    disparity, confidence = pt.refine_volume(cost.to(device), grey_left, grey_right, backend.params,
                                             aggregate=_cpu_aggregation)
    # exact up to the bilateral mean's float32 sum order
    np.testing.assert_allclose(disparity.cpu().numpy(), expected.disparity, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(confidence.cpu().numpy(), expected.confidence)


@pytest.mark.slow
@pytest.mark.network
def test_device_method_in_the_cuda_simulator_equals_the_cpu_method(fast_weights):
    """The backend's CUDA path (``_compute_on_device``) with the warp aggregation in numba's
    simulator, on a 10x32 crop with 16 levels (about a minute: the simulator is slow)."""
    script = Path(__file__).with_name("device_simulator_check.py")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=900, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all MC-CNN simulator checks passed" in done.stdout
    assert done.stdout.count(": ok") == 5


@pytest.mark.cuda
@pytest.mark.network
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA device")
def test_gpu_aggregation_of_a_tensor_equals_the_cpu_aggregation(method):
    from depthapp.backends.sgm.cuda import aggregate_tensor_cuda

    p1, p2 = method["penalties"]
    for penalties in ((p1, p2), (on("cuda", p1), on("cuda", p2))):  # host maps, device maps
        got = aggregate_tensor_cuda(on("cuda", method["cost"]), *penalties, 4)
        assert got.device.type == "cuda"
        np.testing.assert_allclose(got.cpu().numpy(), method["aggregated"], rtol=1e-5, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.network
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("options", [{}, ACCURATE_CROSS], ids=["defaults", "cross-aggregation"])
def test_gpu_method_on_the_cpu_cost_equals_the_cpu_method(crop, fast_weights, options):
    """The whole device path on CUDA, fed the CPU's cost volume (the network and its volume
    differ on the GPU by TF32 and kernel choice; test_mccnn.py compares those end to end)."""
    backend = create_backend("mccnn", device="cpu", max_disp=LEVELS, **options)
    expected = backend.compute(crop)
    cost, grey_left, grey_right = backend.cost_volume_tensor(crop)
    disparity, confidence = pt.refine_volume(cost.to("cuda"), grey_left, grey_right, backend.params)
    # SGM sums its four paths in float32 in another order: rare near-ties may flip a winner
    close = np.abs(disparity.cpu().numpy() - expected.disparity) < 1e-3
    assert close.mean() > 0.995
    np.testing.assert_allclose(confidence.cpu().numpy(), expected.confidence, atol=1e-4)
