"""The memory estimate ``run`` checks before work (issue 15) against a real peak: each
backend's estimate is within 25 % of the peak RSS growth of one compute on a crop of the
sample (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

MEASURE = """
import resource, sys
from depthapp.backends import create_backend
from depthapp.data import StereoPair
from depthapp.sample import load_sample

sample = load_sample()
name, weights, max_disp, height, width, *options = sys.argv[1:]
params = dict(option.split("=") for option in options)
backend = create_backend(name, weights=weights, max_disp=int(max_disp), device="cpu", offline=True, **params)
def crop(height, width):
    return StereoPair(left=sample.left[:height, :width].copy(), right=sample.right[:height, :width].copy())
backend.compute(crop(24, 40))  # weights loaded, kernels compiled: what remains is the pair's
from depthapp.allocator import release_retained_memory
release_retained_memory()  # the warm-up's freed memory would otherwise serve part of the pair's
# Reset the process's peak RSS (VmHWM) after the warm-up: compiling the kernels on a machine
# without numba's cache peaks higher than the compute itself.
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
height, width = int(height), int(width)
backend.compute(crop(height, width))
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak - before, backend.estimate_memory(height, width))
"""


@pytest.mark.slow
# The accurate variant on a smaller crop: its first layers are ~10x the fast one's work.
@pytest.mark.parametrize("weights,max_disp,height,width", [("mccnn-fast-middlebury", 256, 200, 300),
                                                           ("mccnn-accurate-middlebury", 128, 120, 200)])
def test_mccnn_estimate_is_within_25_percent_of_the_measured_peak(weights, max_disp, height, width):
    from depthapp.weights import fetch

    fetch(weights)  # downloaded and verified once, as the backend tests do
    peak, estimate = measured_peak_and_estimate("mccnn", weights, max_disp, height, width)
    # the old generic estimate (one volume) was 16x below the accurate variant's peak, the
    # one before issue 18 1.4x above the fast variant's at 256x384 and 500x741
    assert 0.75 * peak <= estimate <= 1.25 * peak, (peak, estimate)


def measured_peak_and_estimate(name, weights, max_disp, height, width, *options):
    done = subprocess.run([sys.executable, "-c", MEASURE, name, weights, str(max_disp), str(height), str(width),
                           *options], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr
    peak, estimate = (int(v) for v in done.stdout.split())
    return peak, estimate


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])  # the CPU's inference form, the official form
def test_psmnet_estimate_is_within_25_percent_of_the_measured_peak(layout):
    from depthapp.weights import fetch

    fetch("psmnet-kitti2015")
    # 250x370 runs at 384x256, the smallest size the network takes without padding it more.
    peak, estimate = measured_peak_and_estimate("psmnet", "psmnet-kitti2015", 192, 250, 370, f"layout={layout}")
    # the estimate before issue 18 was 2-3x the peak
    assert 0.75 * peak <= estimate <= 1.25 * peak, (peak, estimate)


@pytest.mark.slow
def test_gcnet_estimate_is_within_25_percent_of_the_measured_peak():
    from depthapp.errors import DepthAppError
    from depthapp.weights import resolve_weights

    try:
        resolve_weights("gcnet-paper-gcnet", "gcnet", None, fetch_missing=False)
    except DepthAppError as error:
        pytest.skip(f"needs the GC-Net weights gcnet-paper-gcnet (models/gcnet-synthetic-h100): {error}")
    # 128x192 is a multiple of 32 (no padding); 96 levels: a 75 MB cost volume, a 200 MB peak.
    peak, estimate = measured_peak_and_estimate("gcnet", "gcnet-paper-gcnet", 96, 128, 192)
    # the estimate before issue 18 was 1.4x the peak at 256x384, 2.5x here (a 256 MB constant)
    assert 0.75 * peak <= estimate <= 1.25 * peak, (peak, estimate)
