"""The README's "Performance at a glance" table, measured: what a user gets from
``depthapp run --sample --backend X``.

For each backend it runs the command as a user does (a new process each time, defaults
untouched) and reports the score it prints (bad-2 and density against the Middlebury ground
truth), the median wall and CPU time of the whole process (start-up, imports, weights check,
compute, writing the four files), and, beside it, the median compute time of the same
pipeline called again in one warm process (what the library and the viewer pay per pair after
the first). One untimed run per backend comes first, so numba's on-disk cache and the weights
cache are filled as they are after a user's first run. The weights column quotes each
weights record (source, training data, notes) as the registry states it.

    python benchmarks/readme_table.py                       # sgm, opencv-sgbm, opencv-bm, mccnn, psmnet
    python benchmarks/readme_table.py --backends sgm,gcnet --runs 5

The machine's load average is printed before and after: on a shared machine quote the run
with the lowest load, and compare CPU seconds rather than wall seconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_BACKENDS = "sgm,opencv-sgbm,opencv-bm,mccnn,psmnet"
PACKAGES = ("depthapp", "torch", "numpy", "opencv-python-headless", "onnxruntime-gpu", "onnxruntime",
            "numba", "scipy", "scikit-image", "kornia")
SCORE = re.compile(r"bad-2 all ([\d.]+) %.*?density ([\d.]+) %")
TOTAL = re.compile(r"^timings: .*\(total ([\d.]+) ms\)$", re.M)
MAX_DISP = re.compile(r"max disparity (\d+) levels \(([^)]*)\)")


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join([f"Python {platform.python_version()}"] + found)


def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def load() -> str:
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def run_process(backend: str, out: Path) -> tuple[float, float, str]:
    """One ``depthapp run --sample --backend X``: wall s, CPU s (user + system), stdout."""
    command = [sys.executable, "-m", "depthapp", "run", "--sample", "--backend", backend,
               "--out", str(out), "--force"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def in_process_compute(backend_name: str, repeats: int) -> tuple[list[float], list[float], object,
                                                                 tuple[float, float]]:
    """The pipeline ``depthapp run --sample`` runs, built the same way, timed after a warm-up
    call; returns the compute wall and CPU seconds, the backend and its (bad-2, density) score."""
    from depthapp.backends import create_backend
    from depthapp.evaluation.metrics import score
    from depthapp.pipeline import choose_max_disp, prepare_pair, run_pipeline
    from depthapp.sample import load_sample

    pair, _ = prepare_pair(load_sample())
    max_disp, _ = choose_max_disp(backend_name, None, None, pair.calibration)
    backend = create_backend(backend_name, max_disp=max_disp, device="auto")
    output = run_pipeline(pair, backend, prepared=True)
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        output = run_pipeline(pair, backend, prepared=True)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - started_cpu)
    metrics = score(output.result.disparity, pair.gt_disparity, 2.0)
    return seconds, cpu_seconds, backend, (metrics.bad_all, metrics.density)


def weights_text(backend) -> str:
    resolved = getattr(backend, "resolved_weights", None)
    record = getattr(resolved, "record", None)
    if record is not None:
        text = f"`{record.id}`: {record.source.describe()}; trained on {record.training_data}"
        return f"{text}; {record.notes}" if record.notes else text
    if resolved is not None:
        return f"a checkpoint file outside the registry: {resolved.path}"
    return "none (classical method)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=DEFAULT_BACKENDS, help=f"default {DEFAULT_BACKENDS}")
    parser.add_argument("--runs", type=int, default=3, help="timed processes per backend (default 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed in-process computations per backend after a warm-up (default 3)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.backends.split(",") if name.strip()]

    load_before = load()
    rows, weights = [], []
    with tempfile.TemporaryDirectory(prefix="depthapp-readme-table-") as folder:
        for name in names:
            out = Path(folder) / name
            run_process(name, out)  # untimed: fills numba's and the weights cache like a first run
            walls, cpus, outputs = [], [], []
            for _ in range(args.runs):
                wall, cpu, stdout = run_process(name, out)
                walls.append(wall)
                cpus.append(cpu)
                outputs.append(stdout)
            scores = {SCORE.search(stdout).groups() for stdout in outputs}
            if len(scores) != 1:
                raise SystemExit(f"{name}: the score changed between runs: {sorted(scores)}")
            bad, density = next(iter(scores))
            levels, origin = MAX_DISP.search(outputs[-1]).groups()
            process_compute = statistics.median(float(TOTAL.search(s).group(1)) / 1000 for s in outputs)
            seconds, cpu_seconds, backend, (in_bad, in_density) = in_process_compute(name, args.repeats)
            if f"{in_bad:.2f}" != bad or f"{in_density:.2f}" != density:
                raise SystemExit(f"{name}: in-process score {in_bad:.2f} %/{in_density:.2f} % differs "
                                 f"from the command's {bad} %/{density} %")
            rows.append(f"| `{name}` | {levels} ({origin}) | {bad} % | {density} % | "
                        f"{statistics.median(walls):.2f} | {statistics.median(cpus):.2f} | "
                        f"{process_compute:.2f} | {statistics.median(seconds):.2f} | "
                        f"{statistics.median(cpu_seconds):.2f} |")
            weights.append(f"- `{name}`: {weights_text(backend)}")
            print(f"measured {name}", file=sys.stderr, flush=True)

    print(f"`python benchmarks/readme_table.py --backends {','.join(names)} --runs {args.runs} "
          f"--repeats {args.repeats}`, {time.strftime('%Y-%m-%d', time.gmtime())}; "
          f"{cpu_description()}; load average {load_before} before, {load()} after.")
    print(f"Versions: {versions()}.")
    print("bad-2: % of ground-truth pixels off by more than 2 px or left empty; density: % of "
          "ground-truth pixels given a disparity. CPU s: user + system time of all threads.")
    print()
    print("| backend (`depthapp run --sample --backend X`) | max disparity | bad-2 | density | "
          f"process wall s (median of {args.runs}) | process CPU s | compute s in that process | "
          f"compute s, warm process (median of {args.repeats}) | its CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("Weights, as their records state them:")
    print()
    for line in weights:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
