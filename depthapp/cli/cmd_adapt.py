"""``depthapp adapt``: fine-tune a pretrained backend to your camera (photometric, no ground truth)."""

from __future__ import annotations

from .progress import add_quiet_argument, progress_bar


def register(subparsers) -> None:
    from .cmd_train import add_training_arguments

    parser = subparsers.add_parser(
        "adapt", help="fine-tune a pretrained backend on your own pairs (no ground truth needed)",
        description="Fine-tune a pretrained learned backend on your recorded stereo pairs with the "
                    "self-supervised photometric loss and report the photometric error before and "
                    "after. With five or more pairs every fifth is held out and reported apart.")
    parser.add_argument("--backend", required=True, metavar="{gcnet,ganet,psmnet,mccnn}")
    parser.add_argument("--weights", required=True, metavar="ID|FILE",
                        help="the pretrained weights to start from (see `depthapp weights list`)")
    parser.add_argument("--data", required=True, metavar="folder:DIR", help="your rectified pairs")
    parser.add_argument("--out", required=True, metavar="DIR", help="the run's folder")
    add_training_arguments(parser, adapting=True)
    add_quiet_argument(parser)
    parser.set_defaults(handler=run_adapt)


def run_adapt(args) -> int:
    from ..training import parse_crop
    from ..training.adapt import adapt_to_camera
    from .cmd_train import _note, parse_freeze

    result = adapt_to_camera(
        args.backend, args.weights, args.data, args.out, iters=args.iters, lr=args.lr,
        batch=args.batch, crop=parse_crop(args.crop) if args.crop else None,
        freeze=parse_freeze(args.freeze), device=args.device, max_disp=args.max_disp,
        variant=args.variant, seed=args.seed, occlusion=args.occlusion, smoothness=args.smoothness,
        amp=args.amp, resume=args.resume, force=args.force, threads=args.threads,
        checkpoint_every=args.checkpoint_every, workers=args.workers,
        progress=progress_bar(args, f"adapt {args.backend}"), notify=_note, handle_sigint=True)
    print(result.summary())
    print(f"weights: {result.weights}")
    print(f"model card: {result.training.card}")
    return 0


__all__ = ["register", "run_adapt"]
