"""Peak memory of ``sgm`` on a large frame against its own estimate (``estimate_memory``).

    python benchmarks/bench_sgm_memory.py                     # 3000x2000, 256 disparities
    python benchmarks/bench_sgm_memory.py --size 1242x375 --max-disp 128

Issue 18, item 4: ``sgm`` stays within 2 GB at 2000x3000 with 256 disparities, and the
backend's memory estimate is within 25 % of the measured peak. Each configuration runs in a
fresh process (Motorcycle resized with OpenCV's area filter), whose peak resident memory
(``ru_maxrss``) is reported beside the same process's resident memory just before the
computation (interpreter, numpy, OpenCV, the images): the difference is what the computation
added, which is what ``estimate_memory`` estimates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """\
import json, resource, sys
import cv2
import depthapp.backends.sgm
from depthapp.backends import create_backend
from depthapp.data import StereoPair
from depthapp.sample import load_sample

width, height, max_disp, preset = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sample = load_sample()
size = (width, height)
pair = StereoPair(cv2.resize(sample.left, size, interpolation=cv2.INTER_AREA),
                  cv2.resize(sample.right, size, interpolation=cv2.INTER_AREA), name="resized")
options = {} if preset == "default" else dict(create_backend("sgm").presets[preset])
backend = create_backend("sgm", max_disp=max_disp, device="cpu", **options)
tiny = StereoPair(pair.left[:32, :64], pair.right[:32, :64], name="warm-up")
backend.compute(tiny)  # load the kernels, so their memory counts as "before"


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


before = rss_kib()
result = backend.compute(pair)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "peak_kib": peak,
                  "estimate_bytes": backend.estimate_memory(height, width),
                  "density": float((result.disparity == result.disparity).mean()),
                  "seconds": sum(result.timings.values())}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x2000", help="WIDTHxHEIGHT (default 3000x2000)")
    parser.add_argument("--max-disp", type=int, default=256)
    parser.add_argument("--presets", default="default,fast")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    from depthapp.bench import format_table

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows = []
    for preset in args.presets.split(","):
        done = subprocess.run([sys.executable, "-c", CHILD, str(width), str(height),
                               str(args.max_disp), preset], env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        report = json.loads(done.stdout.strip().splitlines()[-1])
        mib = 1024.0
        peak = report["peak_kib"] / mib
        added = (report["peak_kib"] - report["before_kib"]) / mib
        estimate = report["estimate_bytes"] / 2 ** 20
        rows.append([f"sgm {preset}", round(peak, 1), round(added, 1), round(estimate, 1),
                     round(estimate / added, 2) if added > 0 else "-",
                     round(report["seconds"], 2), round(100 * report["density"], 1)])
    print(f"# sgm peak memory, {width}x{height}, {args.max_disp} disparities (CPU)\n")
    print(format_table(["backend", "peak RSS MiB", "added by compute MiB",
                        "estimate MiB", "estimate / added", "compute s", "density %"],
                       rows))
    print("\ntarget: peak RSS <= 2048 MiB; estimate within 25 % of the measured peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
