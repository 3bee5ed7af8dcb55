"""Every backend's memory estimate (``estimate_memory``) against the peak it adds, on the CPU.

    python benchmarks/bench_memory_estimates.py                       # 256x384 crop of Motorcycle
    python benchmarks/bench_memory_estimates.py --size 500x741 --backends sgm,psmnet  # the whole pair

Issue 18, item 4: each backend's own estimate is within 25 % of the measured peak. Each
backend runs in a fresh process with its defaults (default weights from the cache, so run
``depthapp weights fetch`` first, or set DEPTHAPP_MODELS): one warm-up on a tiny crop loads
the weights and fills the caches, the process's peak resident memory (VmHWM) is then reset,
the pair is computed, and the growth of the peak over the resident memory just before is what
the estimate is compared with.
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
import numpy as np
from depthapp.backends import create_backend
from depthapp.data import StereoPair
from depthapp.sample import load_sample

name, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sample = load_sample()
def crop(h, w):
    return StereoPair(np.ascontiguousarray(sample.left[:h, :w]),
                      np.ascontiguousarray(sample.right[:h, :w]), name="crop")
backend = create_backend(name, device="cpu")
backend.compute(crop(64, 128))
from depthapp.allocator import release_retained_memory
release_retained_memory()  # the warm-up's freed memory would otherwise serve part of the pair's
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset VmHWM: the warm-up's peak is not the pair's
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
pair = crop(height, width)  # at most the sample's 500x741
backend.compute(pair)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"added": peak - before, "max_disp": backend.max_disp,
                  "estimate": backend.estimate_memory(pair.height, pair.width),
                  "size": f"{pair.height}x{pair.width}"}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sgm,opencv-sgbm,mccnn,psmnet,gcnet,ganet")
    parser.add_argument("--size", default="256x384", help="HEIGHTxWIDTH crop (default 256x384)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))

    from depthapp.bench import environment_line, format_table

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows = []
    for name in args.backends.split(","):
        done = subprocess.run([sys.executable, "-c", CHILD, name, str(height), str(width)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            rows.append([name, "-", "-", "-", "-", "-", done.stderr.strip().splitlines()[-1][:80]])
            continue
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        added, estimate = measured["added"] / 2 ** 20, measured["estimate"] / 2 ** 20
        ratio = estimate / added if added > 0 else float("inf")
        rows.append([name, measured["size"], measured["max_disp"], round(added, 1), round(estimate, 1),
                     round(ratio, 2), "ok" if 0.75 <= ratio <= 1.25 else "outside 25 %"])
    print("# memory estimates against measured peaks, a crop of Motorcycle, CPU")
    print(f"{environment_line()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(format_table(["backend", "size", "max disp", "added by compute MiB", "estimate MiB",
                        "estimate / added", "within 25 %"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
