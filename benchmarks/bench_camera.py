"""Live-feed throughput: FPS of each backend preset at 640x480 through the camera loop.

    python benchmarks/bench_camera.py                      # CPU, 2 threads, 30 frames
    python benchmarks/bench_camera.py --device cuda        # GPU: sgm (default and fast)
    python benchmarks/bench_camera.py --frames 60 --max-disp 64 --threads 4

Input: two lossless FFV1 video files written here from the real Middlebury Motorcycle pair
(scikit-image's 741x500 sample): 640x480 windows of both views panning 3 px per frame. The
loop reads them losslessly (every frame, as fast as it is processed), so the numbers are the
throughput of the whole loop: decode -> backend -> result, one frame at a time.

Columns:
- ``loop fps``: 1 / median time between two finished frames (after ``--warmup`` frames,
  which absorb JIT compilation and first-call allocations).
- ``compute ms``: median backend time per frame (the backend's stage timings).
- ``cpu ms``: median CPU time of the process per frame, all threads (less sensitive than wall
  time to other work on a shared machine).
- ``x opencv-sgbm fast``: loop FPS relative to OpenCV SGBM's 3-way mode, measured in the
  same run on the same frames.
- ``30 fps?``: whether the loop keeps up with a 30 fps camera without dropping frames.
- ``density``: mean share of pixels with a disparity.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
CPU_CONFIGS = (("opencv-bm", None), ("opencv-sgbm", None), ("opencv-sgbm", "fast"),
               ("sgm", None), ("sgm", "fast"))
CUDA_CONFIGS = (("opencv-sgbm", "fast"), ("sgm", None), ("sgm", "fast"))  # OpenCV: the CPU reference
REFERENCE = ("opencv-sgbm", "fast")


def write_videos(folder: Path, frames: int, fps: float) -> tuple[Path, Path]:
    from depthapp.sample import load_sample

    pair = load_sample()
    max_x, max_y = pair.width - WIDTH, pair.height - HEIGHT
    paths = []
    for side, image in (("left", pair.left), ("right", pair.right)):
        path = folder / f"{side}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (WIDTH, HEIGHT))
        if not writer.isOpened():
            sys.exit("this OpenCV build cannot write FFV1 video")
        for k in range(frames):
            # Pan back and forth across the scene so long runs stay inside the image.
            x = (3 * k) % (2 * max_x)
            x = x if x <= max_x else 2 * max_x - x
            y = min(max_y, k % (max_y + 1))
            writer.write(cv2.cvtColor(image[y:y + HEIGHT, x:x + WIDTH], cv2.COLOR_RGB2BGR))
        writer.release()
        paths.append(path)
    return paths[0], paths[1]


def measure(name, preset, left, right, device, max_disp, warmup):
    from depthapp.backends import create_backend, get_backend_class
    from depthapp.camera import CameraLoop
    from depthapp.sources import VideoFilesSource
    from depthapp.errors import DepthAppError

    try:
        cls = get_backend_class(name)
        cls.check_available()
        params = dict(cls.presets[preset]) if preset else {}
        backend = create_backend(name, max_disp=max_disp, device=device, **params)
    except (DepthAppError, KeyError) as error:
        return {"problem": str(error) or f"no preset {preset}"}
    finished, cpu, compute, density = [], [], [], []

    def on_frame(live):
        finished.append(time.perf_counter())
        cpu.append(time.process_time())
        if live.number > warmup:
            compute.append(live.result.total_time)
            density.append(live.result.density)

    CameraLoop(VideoFilesSource(left, right), backend, on_frame=on_frame).run()
    intervals = np.diff(finished[warmup:])
    if len(intervals) == 0:
        return {"problem": "too few frames for the warm-up"}
    interval = float(np.median(intervals))
    cpu_per_frame = float(np.median(np.diff(cpu[warmup:])))
    return {"fps": 1.0 / interval, "compute_ms": 1000.0 * statistics.median(compute),
            "cpu_ms": 1000.0 * cpu_per_frame,
            "density": 100.0 * float(np.mean(density)), "device": backend.device,
            "frames": len(intervals)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--frames", type=int, default=30, help="frames per backend (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="frames not measured (default 3)")
    parser.add_argument("--max-disp", type=int, default=128, help="disparity levels (default 128)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--only", help="comma-separated backend[:preset] list to run")
    args = parser.parse_args(argv)

    from depthapp.bench import environment_line, format_table, set_threads

    threads = set_threads(args.threads)
    configs = CUDA_CONFIGS if args.device.startswith("cuda") else CPU_CONFIGS
    if args.only:
        wanted = [tuple((item.split(":") + [None])[:2]) for item in args.only.split(",")]
        configs = tuple((name, preset or None) for name, preset in wanted)
    print(f"# depthapp camera loop at {WIDTH}x{HEIGHT}, {args.max_disp} disparities, "
          f"{args.frames} frames ({args.warmup} warm-up), device {args.device}")
    print(f"# {environment_line()}; threads {threads}")
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as tmp:
        left, right = write_videos(Path(tmp), args.frames + args.warmup + 1, 30.0)
        results = {}
        for name, preset in configs:
            label = f"{name} {preset or 'default'}"
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            device = "cpu" if name.startswith("opencv") else args.device
            results[(name, preset)] = measure(name, preset, left, right, device,
                                              args.max_disp, args.warmup)
    reference = results.get(REFERENCE, {}).get("fps")
    rows = []
    for (name, preset), result in results.items():
        label = f"{name} {preset or 'default'}"
        if "problem" in result:
            rows.append([label, "-", "-", "-", "-", "-", "-", f"unavailable: {result['problem']}"])
            continue
        ratio = result["fps"] / reference if reference else float("nan")
        rows.append([label, result["device"], round(result["fps"], 2), round(result["compute_ms"], 1),
                     round(result["cpu_ms"], 1), round(ratio, 2), "yes" if result["fps"] >= 30.0 else "no",
                     f"{result['density']:.1f} %"])
    print(format_table(("backend preset", "device", "loop fps", "compute ms", "cpu ms", "x opencv-sgbm fast",
                        "30 fps?", "density"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
