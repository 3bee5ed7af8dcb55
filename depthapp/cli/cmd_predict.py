"""``depthapp predict``: write every pair's disparity of a dataset, no scoring.

    depthapp predict --dataset ... --root DIR --backend NAME --out DIR [--format kitti|pfm|npy]

``kitti`` writes the KITTI submission layout (``disp_0/000000_10.png``, 16-bit, value / 256);
``pfm`` and ``npy`` write ``<id>.pfm`` / ``<id>.npy``. Existing files are skipped (a rerun
resumes) unless ``--force``. Same runner as ``depthapp eval``: ``--workers``, ``--scheduler``.
"""

from __future__ import annotations

from ..errors import UsageError
from .backend_args import add_backend_arguments
from .cmd_eval import add_dataset_arguments, backend_spec_from_args, open_dataset_from_args
from .progress import add_quiet_argument, echo, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="write the disparity of every pair of a dataset (e.g. a KITTI submission)",
        description="Run a backend on every pair of a dataset and write the disparities. "
                    "Backend parameters are flags too.")
    add_dataset_arguments(parser)
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    parser.add_argument("--format", dest="fmt", choices=("kitti", "pfm", "npy"), default="pfm",
                        help="kitti: disp_0/<id>.png 16-bit; pfm (default) or npy: <id>.<ext>")
    add_backend_arguments(parser)
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args, extra) -> int:
    from ..evaluation import predict

    if not args.backend:
        raise UsageError("predict: give --backend NAME")
    dataset = open_dataset_from_args(args)
    spec, origin = backend_spec_from_args(args, extra, dataset)
    print(f"data: {dataset.describe()}: {len(dataset)} pairs")
    print(f"backend: {args.backend}, max disparity {spec.max_disp} ({origin})")
    result = predict(dataset, spec, args.out, fmt=args.fmt, limit=args.limit, workers=args.workers,
                     scheduler=args.scheduler, progress=progress_bar(args, f"predict {dataset.name}"),
                     force=args.force, notify=lambda note: echo(f"note: {note}"))
    print(f"wrote {len(result.written)} disparity maps under {result.out_dir}"
          + (f" ({result.skipped} already there)" if result.skipped else ""))
    return 0
