"""``depthapp train``: train or fine-tune a learned backend (see :mod:`depthapp.training`)."""

from __future__ import annotations

import sys

from .progress import add_quiet_argument, echo, progress_bar

TRAIN_EPILOG = """\
data specs (join several with +):
  synthetic            endless procedural scenes with exact ground truth (nothing to download)
  synthetic:N          N fixed procedural scenes
  kitti2012:ROOT  kitti2015:ROOT  sceneflow:ROOT  middlebury:ROOT
                       the evaluation readers, training split; options after commas,
                       e.g. sceneflow:/data/sf,subset=all,split=train
  folder:DIR           your own pairs, with or without ground truth
The Middlebury Motorcycle pair is depthapp's held-out test and is refused as training data.

outputs in --out: checkpoint.pt (resume state), train_log.csv (one row per iteration),
weights.pt (load with --weights), MODEL_CARD.md, weights_record.json.
Ctrl-C stops after the current iteration and saves a checkpoint; continue with --resume.
"""


def add_training_arguments(parser, adapting: bool = False) -> None:
    """Flags shared by ``train`` and ``adapt``."""
    parser.add_argument("--iters", type=int, default=300 if adapting else 1000, metavar="N",
                        help=f"training iterations (default {300 if adapting else 1000})")
    parser.add_argument("--batch", type=int, default=1, metavar="B", help="pairs per iteration (default 1)")
    parser.add_argument("--crop", metavar="HxW",
                        help="random crop size (default: the network's, e.g. 256x512)")
    parser.add_argument("--lr", type=float, default=1e-4 if adapting else 1e-3, metavar="X",
                        help=f"Adam learning rate (default {1e-4 if adapting else 1e-3:g})")
    parser.add_argument("--freeze", metavar="PARTS",
                        help="comma-separated parts kept fixed, e.g. feature (or module names)")
    parser.add_argument("--amp", action="store_true", help="mixed precision on CUDA (no effect on the CPU)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--force", action="store_true", help="start over in an --out that holds a run")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--max-disp", type=int, metavar="N", help="disparity levels of the network")
    parser.add_argument("--variant", help="network size (gcnet: paper, small, tiny; ganet: 11, deep ...)")
    parser.add_argument("--occlusion", default="geometric",
                        help="photometric loss occlusion handling: geometric, lr, min-reprojection, none")
    parser.add_argument("--smoothness", type=float, default=0.01,
                        help="edge-aware smoothness weight of the photometric loss (default 0.01)")
    parser.add_argument("--checkpoint-every", type=int, default=200, metavar="K",
                        help="iterations between checkpoints (default 200)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="data-loading processes (default 0 on the CPU, up to 8 with CUDA)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")


def register(subparsers) -> None:
    import argparse

    parser = subparsers.add_parser(
        "train", help="train or fine-tune a learned backend",
        description="Train a learned backend (GC-Net, GA-Net, PSMNet, MC-CNN) with supervised, "
                    "self-supervised (photometric) or distillation losses.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, metavar="{gcnet,ganet,psmnet,mccnn}",
                        help="the network to train")
    parser.add_argument("--data", required=True, metavar="SPEC", help="training data (see below)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the run's folder")
    parser.add_argument("--init", metavar="WEIGHTS",
                        help="start from these weights (registry id, file, or a run folder)")
    parser.add_argument("--loss", default="supervised", help="supervised (default), photometric or distill")
    parser.add_argument("--teacher", metavar="BACKEND", help="backend to distill from (--loss distill), e.g. sgm")
    add_training_arguments(parser)
    parser.add_argument("--jitter", default="asymmetric",
                        help="colour jitter: asymmetric (default), same, per-view, none")
    parser.add_argument("--lr-schedule", default="constant", help="constant (default) or cosine")
    parser.add_argument("--warmup", type=int, default=0, metavar="N", help="linear warm-up iterations")
    parser.add_argument("--grad-clip", type=float, default=0.0, metavar="X",
                        help="clip the gradient norm (default 0: off)")
    parser.add_argument("--val-every", type=int, metavar="N",
                        help="held-out synthetic validation every N iterations (default: 10 per run; 0: never)")
    parser.add_argument("--val-pairs", type=int, default=4, metavar="N", help="validation pairs (default 4)")
    parser.add_argument("--eval-pairs", type=int, default=16, metavar="N",
                        help="held-out synthetic pairs measured for the model card (default 16)")
    parser.add_argument("--no-motorcycle", action="store_true",
                        help="do not report Motorcycle numbers on the card")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic CUDA kernels (exact resume on a GPU; slower)")
    add_quiet_argument(parser)
    parser.set_defaults(handler=run_train)


def parse_freeze(text) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def run_train(args) -> int:
    from ..errors import UsageError
    from ..training import TrainConfig, Trainer, parse_crop

    from ..training.models import trainable_backends

    if args.backend != "tiny" and args.backend not in trainable_backends():
        raise UsageError(f"--backend: one of {', '.join(trainable_backends())}, not {args.backend!r}")
    config = TrainConfig(
        backend=args.backend, data=args.data, out=args.out, init=args.init,
        freeze=parse_freeze(args.freeze), loss=args.loss, teacher=args.teacher, iters=args.iters,
        batch=args.batch, crop=parse_crop(args.crop) if args.crop else None, lr=args.lr, amp=args.amp,
        seed=args.seed, resume=args.resume, device=args.device, max_disp=args.max_disp,
        variant=args.variant, jitter=args.jitter, occlusion=args.occlusion, smoothness=args.smoothness,
        checkpoint_every=args.checkpoint_every, val_every=args.val_every, val_pairs=args.val_pairs,
        eval_pairs=args.eval_pairs, motorcycle=not args.no_motorcycle, workers=args.workers,
        lr_schedule=args.lr_schedule, warmup=args.warmup, grad_clip=args.grad_clip,
        deterministic=args.deterministic, threads=args.threads, force=args.force, handle_sigint=True)
    trainer = Trainer(config, progress=progress_bar(args, f"train {args.backend}"), notify=_note)
    if trainer.main:
        processes = f", {trainer.group.world} processes" if trainer.group else ""
        echo(f"training {trainer.adapter.describe()} on {trainer.data_description} ({trainer.device}"
             f"{processes}), {config.loss} loss, {config.iters} iterations -> {trainer.out}", file=sys.stderr)
    trainer.run()
    result = trainer.finish()
    if result is None:  # a rank other than 0 of a torchrun run: rank 0 reports
        return 0
    print(f"weights: {result.weights}")
    print(f"model card: {result.card}")
    if result.synthetic:
        print(f"held-out synthetic: EPE {result.synthetic['epe']:.3f} px, bad-2 {result.synthetic['bad2']:.2f} %")
    if result.motorcycle:
        print(f"Motorcycle (reporting only): bad-2 {result.motorcycle['bad2']:.2f} %, "
              f"EPE {result.motorcycle['epe']:.3f} px")
    return 0


def _note(message: str) -> None:
    echo(f"depthapp: note: {message}", file=sys.stderr)


__all__ = ["add_training_arguments", "parse_freeze", "register", "run_train"]
