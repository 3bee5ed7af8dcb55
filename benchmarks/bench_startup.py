"""Whole-process start-up: ``depthapp run L R --backend sgm`` against a minimal OpenCV script.

    python benchmarks/bench_startup.py                # 7 interleaved repeats
    python benchmarks/bench_startup.py --repeats 11

Issue 18, item 2: a whole ``depthapp run L R --backend sgm`` process (no calibration, default
outputs) takes at most 2.5x the whole-process time of a minimal Python script that reads the
same pair with OpenCV, runs StereoSGBM and writes the disparity; ``depthapp --version`` and
``--help`` stay under 0.3 s. Each repeat starts fresh processes, interleaved, so load drifts on
a shared machine hit every command alike; the table gives medians of wall and CPU seconds
(user + system of the child) and the ratio to the OpenCV script. One warm-up run of each
fills numba's on-disk cache and the page cache first.

The pair is Middlebury Motorcycle (741x500), written as PNG files; both sides search 128
disparities (sgm's default when nothing else decides) and use 2 threads.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THREADS = 2
OPENCV_SCRIPT = """\
import sys
import cv2
cv2.setNumThreads({threads})
left = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)
right = cv2.imread(sys.argv[2], cv2.IMREAD_GRAYSCALE)
matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=128, blockSize=5, P1=200, P2=800,
                                disp12MaxDiff=1, preFilterCap=63, uniquenessRatio=10,
                                speckleWindowSize=100, speckleRange=2,
                                mode=cv2.StereoSGBM_MODE_SGBM)
disparity = matcher.compute(left, right)
cv2.imwrite(sys.argv[3], disparity.clip(0).astype("uint16"))
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import cv2

    from depthapp.bench import environment_line, format_table
    from depthapp.sample import load_sample

    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS=str(THREADS),
               OMP_NUM_THREADS=str(THREADS))
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        work = Path(folder)
        pair = load_sample()
        left, right = work / "left.png", work / "right.png"
        cv2.imwrite(str(left), cv2.cvtColor(pair.left, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(right), cv2.cvtColor(pair.right, cv2.COLOR_RGB2BGR))
        script = work / "opencv_sgbm.py"
        script.write_text(OPENCV_SCRIPT.format(threads=THREADS))
        counter = iter(range(1_000_000))

        def depthapp_run():
            return [sys.executable, "-m", "depthapp", "run", str(left), str(right),
                    "--backend", "sgm", "--out", str(work / f"out{next(counter)}")]

        commands = {
            "OpenCV SGBM script": lambda: [sys.executable, str(script), str(left), str(right),
                                           str(work / "sgbm.png")],
            "depthapp run --backend sgm": depthapp_run,
            "depthapp --version": lambda: [sys.executable, "-m", "depthapp", "--version"],
            "depthapp --help": lambda: [sys.executable, "-m", "depthapp", "--help"],
            "python -c pass": lambda: [sys.executable, "-c", "pass"],
        }
        for make in commands.values():  # warm-up: numba cache, page cache
            timed(make(), env)
        walls = {name: [] for name in commands}
        cpus = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, make in commands.items():
                wall, cpu = timed(make(), env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    reference = "OpenCV SGBM script"
    rows = [[name, round(wall[name], 3), round(wall[name] / wall[reference], 2),
             round(cpu[name], 3), round(cpu[name] / cpu[reference], 2),
             round(min(walls[name]), 3)] for name in commands]
    print(f"# start-up, whole processes, {pair.name} {pair.width}x{pair.height}, "
          f"128 disparities, {THREADS} threads, {args.repeats} repeats")
    print(f"{environment_line()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(format_table(["command", "median wall s", "x script", "median cpu s", "cpu x script",
                        "min wall s"], rows))
    ratio = wall["depthapp run --backend sgm"] / wall[reference]
    print(f"\ndepthapp run / OpenCV script: {ratio:.2f}x wall (target <= 2.5x); "
          f"--version {wall['depthapp --version']:.3f} s, --help {wall['depthapp --help']:.3f} s "
          "(target < 0.3 s each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
