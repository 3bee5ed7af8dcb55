"""MC-CNN + the paper's stereo method against OpenCV SGBM on the Motorcycle pair.

    python benchmarks/bench_mccnn.py                       # CPU, 2 threads, median of 3
    python benchmarks/bench_mccnn.py --device cuda         # the whole method on the GPU, + KITTI-sized fp32/autocast
    python benchmarks/bench_mccnn.py --ablation            # also each step of the method switched on in turn

Target (issue 5): MC-CNN-fast-middlebury + SGM, bad-2 over all ground-truth pixels at most
16.9 % (Pandora's MC-CNN+SGM on this pair) in at most 3 s on the CPU. Caveat: Motorcycle is in
the Middlebury training split of these weights, so this compares pipelines, not generalisation.
The disparity range is the calibration's ``ndisp`` (what ``depthapp run --sample`` uses).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def scores(disparity, gt):
    valid = np.isfinite(gt)
    error = np.abs(disparity - gt)[valid]
    filled = np.isfinite(error)
    return (100.0 * float(np.mean(~(error <= 2.0))), 100.0 * float(np.mean(~(error <= 1.0))),
            float(np.mean(error[filled])), 100.0 * float(filled.mean()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--accurate", action="store_true", help="also the accurate network (slow on a CPU)")
    parser.add_argument("--kitti", action="store_true", help="also time a KITTI-sized pair (default on CUDA)")
    args = parser.parse_args()

    from depthapp.bench import (TIMING_HEADERS, environment_line, format_table, measure,
                                set_threads, timing_rows)

    threads = set_threads(args.threads)
    import torch

    from depthapp.backends import create_backend
    from depthapp.sample import load_sample
    from depthapp.weights import fetch

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    try:
        pair = load_sample()
        n_disp = pair.calibration.ndisp or 70
    except Exception as error:  # e.g. a GPU image without scikit-image: time on noise instead
        from depthapp.data import StereoPair

        print(f"(sample unavailable: {error}; timing on random 741x500 images, accuracy is meaningless)")
        noise = np.random.default_rng(0).integers(0, 256, (2, 500, 741, 3), dtype=np.uint8)
        pair = StereoPair(noise[0], noise[1], name="noise", gt_disparity=np.zeros((500, 741), np.float32))
        n_disp = 68
    print(f"# MC-CNN on {pair.name} {pair.width}x{pair.height}, {n_disp} disparity levels, device {args.device}")
    print(f"{environment_line()}; threads {threads}\n")

    runs = [("mccnn fast-middlebury (full method)", "mccnn", dict(device=args.device, weights="mccnn-fast-middlebury")),
            ("mccnn fast-middlebury, autocast (bf16 CPU / fp16 CUDA)", "mccnn",
             dict(device=args.device, weights="mccnn-fast-middlebury", autocast=True)),
            ("mccnn fast-dfc (full method)", "mccnn", dict(device=args.device, weights="mccnn-fast-dfc"))]
    if args.ablation:
        base = dict(device=args.device, weights="mccnn-fast-middlebury")
        runs += [
            ("  fast-mb: raw cost, winner only", "mccnn", dict(base, sgm=False, lr_check=False, subpixel=False,
                                                                median_size=1, blur_sigma=0.0)),
            ("  fast-mb: + SGM", "mccnn", dict(base, lr_check=False, subpixel=False, median_size=1, blur_sigma=0.0)),
            ("  fast-mb: + left-right check", "mccnn", dict(base, subpixel=False, median_size=1, blur_sigma=0.0)),
            ("  fast-mb: + sub-pixel + median", "mccnn", dict(base, blur_sigma=0.0)),
        ]
    if args.accurate:
        runs.append(("mccnn accurate-middlebury (full method)", "mccnn",
                     dict(device=args.device, weights="mccnn-accurate-middlebury")))
    try:
        import cv2  # noqa: F401  (absent on some GPU images)

        runs.append(("opencv-sgbm (defaults)", "opencv-sgbm", {}))
        runs.append(("opencv-sgbm hh (8 paths)", "opencv-sgbm", dict(mode="hh")))
    except ImportError:
        print("(OpenCV unavailable: no SGBM rows)")

    measurements, rows, stage_lines = [], [], []
    for label, backend_name, options in runs:
        if "weights" in options:
            fetch(options["weights"])
        backend = create_backend(backend_name, max_disp=n_disp, **options)
        measured, result = measure(label, lambda: backend.compute(pair), repeats=args.repeats, sync=sync)
        measured.name = label
        measurements.append(measured)
        rows.append([label, *scores(result.disparity, pair.gt_disparity), measured.median])
        if backend_name == "mccnn":
            stage_lines.append(f"{label}: " + ", ".join(f"{s} {t:.3f}" for s, t in result.timings.items()))

    print("## Accuracy (all ground-truth pixels; invalid counts as bad) and time\n")
    print(format_table(("method", "bad-2 %", "bad-1 %", "EPE px (filled)", "density %", "median s"), rows))
    print("\nPandora MC-CNN+SGM on this pair (issue 5): bad-2 16.9 %, 7.5 s.\n")
    print(f"## Time (ratio to {measurements[-1].name})\n")
    print(format_table(TIMING_HEADERS, timing_rows(measurements, measurements[-1].name)))
    print("\n## Stages of the last run of each MC-CNN configuration (s)\n")
    print("\n".join(stage_lines))

    if args.device.startswith("cuda") or args.kitti:
        from bench_psmnet import resize_rgb

        from depthapp.data import StereoPair

        kitti = StereoPair(resize_rgb(pair.left, 1242, 375), resize_rgb(pair.right, 1242, 375), name="kitti-sized")
        rows = []
        full = None
        for label, autocast in (("fp32", False), ("autocast fp16", True)):
            if autocast and not args.device.startswith("cuda"):
                continue
            backend = create_backend("mccnn", max_disp=228, device=args.device, autocast=autocast)
            measured, result = measure(label, lambda: backend.compute(kitti), repeats=args.repeats, sync=sync)
            motorcycle = create_backend("mccnn", max_disp=n_disp, device=args.device,
                                        autocast=autocast).compute(pair).disparity
            full = motorcycle if full is None else full
            bad2 = scores(motorcycle, pair.gt_disparity)[0]
            network = sum(result.timings.get(stage, 0.0) for stage in ("features", "cost volume"))
            rows.append([label, 1000 * measured.median, 1000 * network, bad2,
                         float(np.mean(np.abs(motorcycle - full)))])
        print(f"\n## KITTI-sized pair 1242x375, 228 levels (the paper's KITTI range), device {args.device}\n")
        print(format_table(("run", "median ms (whole method)", "network + volume ms",
                            "Motorcycle bad-2 %", "mean |d - fp32| px"), rows))

    if args.device.startswith("cuda"):
        print_stage_table(pair, n_disp, args, sync)
    return 0


STAGES = ("features", "cost volume", "cross aggregation", "sgm", "winner", "left-right check",
          "refinement")


def print_stage_table(pair, n_disp, args, sync) -> None:
    """Median milliseconds of each stage on the GPU: the method on the device (the volume never
    leaves it) against the same backend with the volume copied to the host and the method run
    on the CPU, as before issue 18 (its "cost volume" includes the copy), in one run."""
    import numpy as np
    import torch

    from depthapp.backends import create_backend
    from depthapp.bench import format_table, measure

    rows = []
    for weights in ("mccnn-fast-middlebury", "mccnn-accurate-middlebury"):
        host = None
        for label, options, on_host in (("host method (volume copied to the CPU)", {}, True),
                                        ("device method", {}, False),
                                        ("device method, autocast fp16", {"autocast": True}, False)):
            backend = create_backend("mccnn", max_disp=n_disp, device=args.device, weights=weights, **options)
            if on_host:
                backend._compute = backend._compute_on_host
            timings = []

            def run():
                result = backend.compute(pair)
                timings.append(result.timings)
                return result

            torch.cuda.reset_peak_memory_stats()
            measured, result = measure(label, run, repeats=args.repeats, sync=sync)
            peak = torch.cuda.max_memory_allocated() / 2**20  # torch's allocations (all volumes)
            timings = timings[1:]  # the warm-up run compiles and allocates
            medians = [1000 * float(np.median([t.get(stage, 0.0) for t in timings])) for stage in STAGES]
            host = result.disparity if host is None else host
            rows.append([f"{weights}: {label}", *medians, 1000 * measured.median,
                         float(np.mean(np.abs(result.disparity - host) > 0.5)) * 100, peak,
                         "" if on_host else backend.estimate_memory(pair.height, pair.width) / 2**20])
    print(f"\n## Stages on {args.device}, {pair.name} {pair.width}x{pair.height}, {n_disp} levels "
          f"(median ms of {args.repeats})\n")
    print(format_table(("run", *STAGES, "whole ms", "% pixels > 0.5 px from host", "peak CUDA MiB",
                        "estimate MiB"), rows))


if __name__ == "__main__":
    sys.exit(main())
