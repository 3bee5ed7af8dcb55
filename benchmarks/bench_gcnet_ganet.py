"""Time GC-Net, GA-Net-11 and GA-Net-deep on a Motorcycle-sized pair (500x741, the embedded
Middlebury sample), with freshly initialised weights (timing does not depend on training).

    python benchmarks/bench_gcnet_ganet.py                       # CPU, 2 threads, median of 3
    python benchmarks/bench_gcnet_ganet.py --device cuda         # GPU; GA-Net also with --kernels torch
    python benchmarks/bench_gcnet_ganet.py --device cuda --kernels-only   # SGA/LGA: Triton vs torch

Each model runs in a fresh subprocess so its peak memory (CPU: VmHWM of the process minus
the baseline before the first pair; CUDA: torch.cuda.max_memory_allocated) is its own; the
backend's pre-flight estimate is printed beside it. Reported: median and min seconds of the
network (every stage between ``prepare`` and ``finish``), of the whole ``compute``, and the
median of each network stage.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = {
    "gcnet": ("gcnet", {}),
    "ganet-11": ("ganet", {"variant": "11"}),
    "ganet-deep": ("ganet", {"variant": "deep"}),
}


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def motorcycle_sized_pair():
    """The embedded Motorcycle pair; without scikit-image (e.g. on a bare GPU machine) a
    random texture of the same size shifted by 20 px (network timings do not depend on it)."""
    import numpy as np

    from depthapp.data import StereoPair

    try:
        from depthapp.sample import load_sample

        return load_sample()
    except Exception as error:  # InputError without scikit-image
        print(f"note: {error}; timing a random 741x500 pair instead", file=sys.stderr)
        left = np.random.default_rng(0).integers(0, 256, (500, 741, 3), dtype=np.uint8)
        return StereoPair(left, np.roll(left, -20, axis=1), name="random 741x500")


def run_one(model: str, device: str, threads: int, repeats: int, warmup: int, max_disp: int,
            kernels: str) -> dict:
    import torch

    from depthapp.backends import create_backend, get_backend_class

    torch.set_num_threads(threads)
    backend_name, params = MODELS[model]
    if backend_name == "ganet":
        params = dict(params, kernels=kernels)
    cls = get_backend_class(backend_name)
    pair = motorcycle_sized_pair()
    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, "untrained.pth")
        probe = cls.__new__(cls)  # the model only, to write an untrained state dict
        probe.max_disp = probe.network_max_disp = cls.round_max_disp(max_disp)
        probe.params = {"variant": params.get("variant", "deep")}  # no checkpoint to detect from
        torch.save(probe.build_model().state_dict(), weights)
        backend = create_backend(backend_name, max_disp=max_disp, device=device, weights=weights, **params)
    estimate = backend.estimate_bytes(*backend.preprocessing.padded_size(pair.height, pair.width))
    baseline = _vm_hwm_bytes()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    network, total, stages = [], [], {}
    for index in range(warmup + repeats):
        start = time.perf_counter()
        result = backend.compute(pair)
        elapsed = time.perf_counter() - start
        if index >= warmup:
            inside = {k: v for k, v in result.timings.items() if k not in ("prepare", "finish")}
            network.append(sum(inside.values()))
            total.append(elapsed)
            for stage, seconds in inside.items():
                stages.setdefault(stage, []).append(seconds)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda") else _vm_hwm_bytes()) - baseline
    finite = result.disparity[result.valid]
    return {"model": model, "device": backend.device, "threads": threads, "max_disp": backend.max_disp,
            "kernels": params.get("kernels", "-"), "size": f"{pair.width}x{pair.height}",
            "network_median_s": statistics.median(network), "network_min_s": min(network),
            "total_median_s": statistics.median(total), "runs": repeats,
            "stages_median_s": {k: statistics.median(v) for k, v in stages.items()},
            "peak_gib": peak / 2**30, "estimate_gib": estimate / 2**30,
            "disparity_range": [float(finite.min()), float(finite.max())] if finite.size else None}


def kernels_only(device: str, repeats: int) -> None:
    """SGA and LGA alone at the sizes GA-Net uses on this pair: Triton against pure torch."""
    import torch
    import torch.nn.functional as F

    from depthapp.backends.ganet.lga import lga_torch
    from depthapp.backends.ganet.sga import sga_torch, sga_triton
    from depthapp.backends.ganet.triton_kernels import lga as lga_triton

    def timed(fn):
        times = []
        for _ in range(repeats + 1):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return out, statistics.median(times[1:])

    generator = torch.Generator(device="cpu").manual_seed(0)
    for k, d, h, w in ((32, 65, 176, 256), (48, 33, 88, 128)):
        volume = torch.randn(1, k, d, h, w, generator=generator).to(device)
        weights = [F.normalize(torch.randn(1, k, 5, h, w, generator=generator), p=1, dim=2).to(device)
                   for _ in range(4)]
        with torch.inference_mode():
            reference, t_torch = timed(lambda: sga_torch(volume, *weights))
            fast, t_triton = timed(lambda: sga_triton(volume, *weights))
        error = (fast - reference).abs().max().item() / max(reference.abs().max().item(), 1e-12)
        print(f"SGA (1,{k},{d},{h},{w}): torch {t_torch * 1e3:.1f} ms, triton {t_triton * 1e3:.1f} ms "
              f"({t_torch / t_triton:.1f}x), max relative difference {error:.2e}")
    volume = torch.randn(1, 193, 528, 768, generator=generator).to(device)
    filters = F.normalize(torch.randn(1, 75, 528, 768, generator=generator), p=1, dim=1).to(device)
    with torch.inference_mode():
        reference, t_torch = timed(lambda: lga_torch(volume, filters, 2))
        fast, t_triton = timed(lambda: lga_triton(volume, filters, 2))
    error = (fast - reference).abs().max().item() / max(reference.abs().max().item(), 1e-12)
    print(f"LGA (1,193,528,768): torch {t_torch * 1e3:.1f} ms, triton {t_triton * 1e3:.1f} ms "
          f"({t_torch / t_triton:.1f}x), max relative difference {error:.2e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default: 0 on CPU, 1 on CUDA)")
    parser.add_argument("--max-disp", type=int, default=192)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--kernels", default=None,
                        help="GA-Net SGA/LGA: auto, torch or triton (default: auto; on CUDA both auto and torch)")
    parser.add_argument("--kernels-only", action="store_true", help="time SGA/LGA alone, Triton vs torch")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else (1 if args.device.startswith("cuda") else 0)

    if args.kernels_only:
        kernels_only(args.device, args.repeats)
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.device, args.threads, args.repeats, warmup,
                                 args.max_disp, args.kernels or "auto")))
        return 0

    variants = [args.kernels] if args.kernels else (["auto", "torch"] if args.device.startswith("cuda") else ["auto"])
    print(f"pair: Middlebury Motorcycle 741x500, max disparity {args.max_disp}, device {args.device}, "
          f"{args.threads} CPU threads, median of {args.repeats} (after {warmup} warm-up)")
    print(f"machine: {os.cpu_count()} CPUs, load average {_load()} at start")
    rows = []
    for model in args.models.split(","):
        for kernels in (variants if model.startswith("ganet") else ["auto"]):
            command = [sys.executable, __file__, "--one", model, "--device", args.device,
                       "--threads", str(args.threads), "--repeats", str(args.repeats),
                       "--warmup", str(warmup), "--max-disp", str(args.max_disp), "--kernels", kernels]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                print(f"{model}: failed\n{done.stderr.strip()[-2000:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{model:11s} kernels={row['kernels']:6s} network median {row['network_median_s']:.3f} s "
                  f"(min {row['network_min_s']:.3f}), compute median {row['total_median_s']:.3f} s, "
                  f"peak {row['peak_gib']:.2f} GiB (estimate {row['estimate_gib']:.2f} GiB), "
                  f"max disp {row['max_disp']}", flush=True)
            print("    " + ", ".join(f"{k} {v:.3f} s" for k, v in row["stages_median_s"].items()), flush=True)
    print(f"load average {_load()} at the end (timings on a shared machine grow with it)")
    by_key = {(r["model"], r["kernels"]): r for r in rows}
    for model in MODELS:
        fast, slow = by_key.get((model, "auto")), by_key.get((model, "torch"))
        if fast and slow and model.startswith("ganet"):
            print(f"{model}: pure-torch SGA/LGA / auto kernels = "
                  f"{slow['network_median_s'] / fast['network_median_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
