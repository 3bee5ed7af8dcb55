"""GPU training recipe for GC-Net and GA-Net-11 on procedural synthetic stereo (nothing to download).

    python benchmarks/train_recipe.py --model gcnet   --out runs/gcnet   --budget-minutes 10
    python benchmarks/train_recipe.py --model ganet11 --out runs/ganet11 --budget-minutes 10

Resumable and chunked: each invocation trains for at most ``--session-minutes`` (default 8.5,
under a 10-minute command limit), saves a checkpoint and exits with code 3 ("run me again");
the invocation that reaches the last iteration writes the weights, the model card and the
registry record, prints the loss/EPE curve and the Motorcycle bad-2 (with OpenCV SGBM measured
in the same run for reference) and exits 0. Rerunning a finished recipe only prints its report.

The number of iterations is planned once, on the first invocation: a 25-iteration calibration
(in ``OUT/.calibration``, thrown away) measures iterations per second on this machine, and the
run gets ``budget x rate`` iterations with a cosine learning-rate schedule; the plan is kept in
``OUT/recipe.json`` so later invocations continue the same run. ``--iters N`` skips the
calibration.

Recipe (see MODEL_CARD.md of the result for everything that was used):
- data: ``synthetic`` (an endless stream of new scenes, each used once), 256x512 crops
  (GA-Net: 240x480, a multiple of 48), colour jitter asymmetric (RAFT-Stereo's);
- loss: smooth-L1 on the exact ground truth (GA-Net-11: outputs weighted 0.4 / 1.2);
- Adam, lr 1e-3, 200 warm-up iterations, cosine decay to 0; fp16 autocast + GradScaler;
- GC-Net: the paper's network (F = 32, 8 residual blocks), 128 disparity levels, batch 4;
  GA-Net-11: 120 levels (0..120), batch 2;
- validation every tenth of the run on 4 held-out synthetic pairs (columns val_epe, val_bad2
  of train_log.csv); the card measures 16 held-out pairs and the Motorcycle pair.

``--smoke`` runs the same code on the CPU with tiny networks in a minute (for checking the
script, not for numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import threading
import time
from pathlib import Path

# Runnable from a plain checkout (``python benchmarks/train_recipe.py``) without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECIPES = {
    "gcnet": dict(backend="gcnet", variant="paper", max_disp=128, crop=(256, 512), batch=4, lr=1e-3),
    # GA-Net's SGA runs as a python-level scan under autograd (the Triton kernels are inference
    # only), so it trains far slower than GC-Net; a smaller batch keeps the plan meaningful.
    "ganet11": dict(backend="ganet", variant="11", max_disp=120, crop=(240, 480), batch=2, lr=1e-3),
}
SMOKE = {
    "gcnet": dict(variant="tiny", max_disp=32, crop=(64, 128), batch=2),
    "ganet11": dict(variant="tiny11", max_disp=24, crop=(48, 96), batch=1),
}
EXIT_AGAIN = 3
CALIBRATION_ITERS = 25


def build_config(args, recipe, iters, out, **overrides):
    from depthapp.training import TrainConfig

    values = dict(backend=recipe["backend"], variant=recipe["variant"], data="synthetic", out=str(out),
                  loss="supervised", iters=iters, batch=recipe["batch"], crop=recipe["crop"],
                  lr=recipe["lr"], amp=not args.no_amp, seed=args.seed, resume=True,
                  device=args.device, max_disp=recipe["max_disp"], jitter="asymmetric",
                  lr_schedule="cosine", warmup=min(200, max(1, iters // 10)),
                  checkpoint_every=max(10, iters // 20), val_pairs=4, eval_pairs=16,
                  motorcycle=True, workers=args.workers, grad_clip=0.0, threads=args.threads)
    if values["workers"] is None and not args.smoke:
        # Rendering a 256x512 scene takes ~0.3 s of one core: feed the GPU from most of them.
        values["workers"] = max(0, min(14, (os.cpu_count() or 2) - 2))
    values.update(overrides)
    return TrainConfig(**values)


def calibrate(args, recipe, out: Path) -> float:
    """Iterations per second of this recipe here (iterations 6..25 of a throwaway run)."""
    from depthapp.jobs import Progress
    from depthapp.training import Trainer

    scratch = out / ".calibration"
    shutil.rmtree(scratch, ignore_errors=True)
    stamps: dict[int, float] = {}

    def record(progress: Progress):
        stamps[progress.done] = time.perf_counter()

    config = build_config(args, recipe, CALIBRATION_ITERS, scratch, resume=False, val_pairs=0,
                          eval_pairs=0, motorcycle=False, checkpoint_every=10_000, lr_schedule="constant",
                          warmup=0)
    Trainer(config, progress=record).run()
    shutil.rmtree(scratch, ignore_errors=True)
    return (CALIBRATION_ITERS - 5) / (stamps[CALIBRATION_ITERS] - stamps[5])


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def print_curve(log_path: Path, points: int = 20) -> None:
    rows = read_log(log_path)
    if not rows:
        return
    print("\n## Training curve (mean over each window; validation where measured)\n")
    print("| iterations | loss | train EPE (px) | val EPE (px) | val bad-2 (%) |")
    print("|---:|---:|---:|---:|---:|")
    window = max(1, len(rows) // points)
    for start in range(0, len(rows), window):
        chunk = rows[start:start + window]
        losses = [float(r["loss"]) for r in chunk]
        epes = [float(r["epe"]) for r in chunk if r.get("epe") not in ("", None, "nan")]
        val = [r for r in chunk if r.get("val_epe")]
        val_epe = f"{float(val[-1]['val_epe']):.3f}" if val else ""
        val_bad = f"{float(val[-1]['val_bad2']):.2f}" if val else ""
        epe = f"{sum(epes) / len(epes):.3f}" if epes else ""
        print(f"| {chunk[0]['iter']}-{chunk[-1]['iter']} | {sum(losses) / len(losses):.4f} | {epe} | {val_epe} | {val_bad} |")


def sgbm_reference() -> str:
    import numpy as np

    from depthapp.backends import create_backend
    from depthapp.sample import load_sample

    pair = load_sample()
    disparity = create_backend("opencv-sgbm", max_disp=64).compute(pair).disparity
    known = np.isfinite(pair.gt_disparity)
    error = np.abs(disparity - pair.gt_disparity)[known]
    return f"{100 * np.mean(~(error <= 2)):.2f} %"


def report(out: Path, result=None) -> None:
    card = out / "MODEL_CARD.md"
    print_curve(out / "train_log.csv")
    print(f"\nOpenCV SGBM on Motorcycle in this run (max disparity 64): bad-2 {sgbm_reference()}")
    if result is not None and result.motorcycle:
        m = result.motorcycle
        print(f"{result.out.name}: Motorcycle bad-2 {m['bad2']:.2f} %, EPE {m['epe']:.3f} px; "
              f"held-out synthetic EPE {result.synthetic.get('epe', float('nan')):.3f} px, "
              f"bad-2 {result.synthetic.get('bad2', float('nan')):.2f} %")
    if card.is_file():
        print(f"\n{card.read_text()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", required=True, help="the run's folder (rerun with the same to continue)")
    parser.add_argument("--budget-minutes", type=float, default=10.0,
                        help="planned training time in total (default 10)")
    parser.add_argument("--session-minutes", type=float, default=8.5,
                        help="stop this invocation after this long, with a checkpoint (default 8.5)")
    parser.add_argument("--iters", type=int, help="iterations (skips the calibration)")
    parser.add_argument("--batch", type=int, help="override the recipe's batch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int,
                        help="scene-rendering processes (default: all cores but two, at most 14)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-amp", action="store_true", help="train in float32")
    parser.add_argument("--smoke", action="store_true", help="tiny networks on the CPU, to check the script")
    args = parser.parse_args(argv)

    import torch

    from depthapp.errors import Cancelled
    from depthapp.jobs import CancelToken, TerminalProgress
    from depthapp.training import Trainer

    recipe = dict(RECIPES[args.model])
    if args.smoke:
        recipe.update(SMOKE[args.model])
        args.device = "cpu"
    if args.batch:
        recipe["batch"] = args.batch
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plan_path = out / "recipe.json"
    print(f"torch {torch.__version__}, CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text())
        print(f"continuing the planned run: {plan['iters']} iterations ({plan['note']})")
    else:
        if args.iters:
            iters, note = args.iters, "--iters given"
        else:
            rate = calibrate(args, recipe, out)
            iters = max(50, int(args.budget_minutes * 60 * rate * 0.93))
            note = f"calibrated {rate:.2f} it/s x {args.budget_minutes:g} min budget"
        plan = {"model": args.model, "recipe": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in recipe.items()},
                "iters": iters, "note": note, "amp": not args.no_amp, "seed": args.seed}
        plan_path.write_text(json.dumps(plan, indent=2) + "\n")
        print(f"planned {iters} iterations ({note})")
    recipe.update({k: tuple(v) if k == "crop" else v for k, v in plan["recipe"].items()})
    args.no_amp = not plan["amp"]
    args.seed = plan["seed"]

    config = build_config(args, recipe, plan["iters"], out)
    if args.smoke:
        config.eval_pairs, config.val_pairs = 2, 1
    cancel = CancelToken()
    timer = threading.Timer(args.session_minutes * 60, cancel.cancel)
    timer.daemon = True
    trainer = Trainer(config, progress=TerminalProgress(f"{args.model}", stream=sys.stdout),
                      cancel=cancel, notify=lambda m: print(f"note: {m}"))
    if trainer.iteration >= config.iters and (out / "MODEL_CARD.md").is_file():
        print("this run is finished")
        report(out)
        return 0
    print(f"training {trainer.adapter.describe()} on {trainer.data_description}, batch {config.batch}, "
          f"crop {config.crop}, device {trainer.device}, workers {trainer.workers}, "
          f"amp {trainer.amp}; from iteration {trainer.iteration} to {config.iters}")
    timer.start()
    try:
        trainer.run()
    except Cancelled as stop:
        print(f"\n{stop}\nsession time is up: run the same command again to continue")
        print_curve(out / "train_log.csv")
        return EXIT_AGAIN
    finally:
        timer.cancel()
    result = trainer.finish()
    report(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
