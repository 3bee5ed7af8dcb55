"""sgm on a GPU at KITTI size (1242x375, 128 disparities): frames per second and per-stage time.

    python benchmarks/sgm_cuda_stages.py [--repeats 30] [--width 1242 --height 375 --disp 128]

Rows: the default parameters and the fast preset, each with and without speckle removal, and
the default with the aggregation forced onto its large-frame fallback (a block per line, one
launch per line family) for comparison. Whole-frame times are medians of back-to-back runs
(upload to download); stage times come from a separate pass that synchronises the device
around each stage. Input: the Motorcycle pair resized (real texture).
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--width", type=int, default=1242)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--disp", type=int, default=128)
    args = parser.parse_args()

    from numba import cuda

    from depthapp.backends import get_backend_class
    from depthapp.backends.sgm import cuda as sgm_cuda
    from depthapp.bench import environment_line, format_table
    from depthapp.sample import load_sample

    reason = sgm_cuda.unavailable_reason()
    if reason:
        print(f"sgm CUDA kernels cannot run here: {reason}")
        return 1
    pair = load_sample()
    size = (args.width, args.height)
    from bench_sgm import resize_area  # this folder is on sys.path when run as a script

    left, right = resize_area(pair.left, size), resize_area(pair.right, size)
    backend_class = get_backend_class("sgm")
    default = backend_class(max_disp=args.disp).config()  # the config; the run is on CUDA
    fast = backend_class(max_disp=args.disp,
                         **backend_class.presets["fast"]).config()
    variants = [("default", default, None), ("default, speckle removal off",
                                             default.with_(speckle_size=0), None),
                ("fast preset", fast, None),
                ("fast preset, speckle removal off", fast.with_(speckle_size=0), None),
                ("default, block-per-line aggregation (fallback)", default, 0)]

    def frame(config):
        return sgm_cuda.compute_sgm_cuda(left, right, config)

    rows = []
    for name, config, budget in variants:
        saved = sgm_cuda.CONCURRENT_BUDGET
        if budget is not None:
            sgm_cuda.CONCURRENT_BUDGET = budget
            sgm_cuda._WORKSPACES.clear()
        try:
            for _ in range(3):
                frame(config)
            cuda.synchronize()
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                frame(config)  # returns host arrays: the download synchronises
                times.append(time.perf_counter() - start)
            stages: dict[str, list[float]] = {}

            @contextmanager
            def timer(stage):
                cuda.synchronize()
                begin = time.perf_counter()
                yield
                cuda.synchronize()
                stages.setdefault(stage, []).append(time.perf_counter() - begin)

            for _ in range(max(5, args.repeats // 3)):
                sgm_cuda.compute_sgm_cuda(left, right, config, timer=timer)
        finally:
            sgm_cuda.CONCURRENT_BUDGET = saved
            sgm_cuda._WORKSPACES.clear()
        median_ms = 1000 * float(np.median(times))
        stage_text = ", ".join(f"{stage} {1000 * float(np.median(values)):.2f}"
                               for stage, values in stages.items())
        rows.append([name, round(median_ms, 2), round(1000 / median_ms, 1), stage_text])
        print(f"{name}: {median_ms:.2f} ms", flush=True)
    print(f"\n# sgm CUDA, {args.width}x{args.height}, {args.disp} disparities, "
          f"{args.repeats} runs after 3 warm-ups")
    print(environment_line())
    print(format_table(["variant", "median ms", "frames/s", "stages ms (synchronised pass)"],
                       rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
