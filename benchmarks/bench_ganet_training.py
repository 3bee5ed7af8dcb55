"""GA-Net training speed: iterations per second with SGA/LGA's hand-written backward against
autograd through the pure-torch scan (what training used before), side by side in one run.

    python benchmarks/bench_ganet_training.py                         # CPU, GA-Net-11, 48x96 crops
    python benchmarks/bench_ganet_training.py --variant tiny --crop 96x192
    python benchmarks/bench_ganet_training.py --device cuda --crop 240x576 --max-disp 192

One iteration = forward in training mode, smooth-L1 on every output, backward, Adam step, on
random images (speed does not depend on the content). Reported: median seconds per iteration
over --repeats timed iterations after --warmup untimed ones, it/s, and the ratio to
``reference``. On CUDA the implementations are reference, torch and triton.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def time_training(implementation: str, variant: str, crop, max_disp: int, device: str,
                  warmup: int, repeats: int) -> list[float]:
    from depthapp.backends.ganet.model import GANet, VARIANTS, tiny_config

    torch.manual_seed(0)
    config = tiny_config(deep=False) if variant == "tiny" else VARIANTS[variant]
    model = GANet(max_disp, config=config).to(device).train()
    model.set_implementation(implementation)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    height, width = crop
    left = torch.rand(1, 3, height, width, device=device)
    right = torch.rand(1, 3, height, width, device=device)
    target = torch.rand(1, height, width, device=device) * (max_disp - 1)
    seconds = []
    for index in range(warmup + repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        outputs = model(left, right)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        loss = sum(F.smooth_l1_loss(out, target) for out in outputs)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if index >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", default="11", choices=("11", "deep", "tiny"))
    parser.add_argument("--crop", default="48x96", help="HxW, multiples of 48 (default 48x96)")
    parser.add_argument("--max-disp", type=int, default=48)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crop = tuple(int(v) for v in args.crop.lower().split("x"))
    implementations = ["reference", "torch"] + (["triton"] if args.device == "cuda" else [])
    print(f"GA-Net-{args.variant} training, crop {crop[0]}x{crop[1]}, max_disp {args.max_disp}, "
          f"{args.device}, {args.threads} threads, median of {args.repeats} after {args.warmup} warm-up")
    print(f"{'SGA/LGA backward':<18} {'s/it':>8} {'it/s':>8} {'vs reference':>13}")
    base = None
    for implementation in implementations:
        seconds = time_training(implementation, args.variant, crop, args.max_disp, args.device,
                                args.warmup, args.repeats)
        median = statistics.median(seconds)
        base = base or median
        print(f"{implementation:<18} {median:8.3f} {1 / median:8.3f} {base / median:12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
