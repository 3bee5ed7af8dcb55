"""``depthapp eval``: score a backend or saved predictions on a benchmark with its official metrics.

    depthapp eval --dataset {kitti2012,kitti2015,sceneflow,middlebury,folder} --root DIR
                  (--backend NAME [--weights ID] | --predictions DIR) [--limit N] [--out DIR]
                  [--workers N] [--scheduler ADDRESS] [--max-disp N] [--device D] [--force]

Writes OUT/summary.json, per_image.csv, report.md and errors/*.png; rerunning resumes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from ..errors import UsageError
from .backend_args import add_backend_arguments, backend_options, cli_parameters
from .progress import add_quiet_argument, echo, progress_bar

DATASET_NAMES = ("kitti2012", "kitti2015", "sceneflow", "middlebury", "folder", "bag")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset selection and scale-out flags shared by ``eval`` and ``predict``."""
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="dataset layout")
    group.add_argument("--root", required=True, metavar="DIR",
                       help="KITTI: the folder holding training/; Scene Flow: the folder holding "
                            "FlyingThings3D/; Middlebury: MiddEval3/ or a folder of scenes; "
                            "folder: any folder of pairs (see datasets/README.md); bag: a ROS bag "
                            "(no ground truth: for predict)")
    group.add_argument("--split", help="KITTI: training|testing; Scene Flow: test|train|all; "
                                       "Middlebury: training|test")
    group.add_argument("--subset", help="Scene Flow: flyingthings3d (default), monkaa, driving or all")
    group.add_argument("--pass", dest="render_pass", choices=("clean", "final"),
                       help="Scene Flow render pass (default clean)")
    group.add_argument("--resolution", choices=("F", "H", "Q", "auto"),
                       help="MiddEval3 resolution (default auto: H, else Q, else F)")
    group.add_argument("--ids", metavar="FILE", help="only these sample ids, one per line (a split list), or the name "
                            "of a shipped list such as kitti2015_val40 (datasets/splits/)")
    group.add_argument("--limit", type=int, metavar="N", help="only the first N pairs")
    group.add_argument("--left-topic", metavar="T", help="bag: left image topic (default: detected)")
    group.add_argument("--right-topic", metavar="T", help="bag: right image topic (default: detected)")
    run = parser.add_argument_group("execution")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="local worker processes, each loading the backend once (default 1)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on a Dask distributed cluster, e.g. tcp://host:8786")
    run.add_argument("--force", action="store_true", help="discard earlier results in --out and start over")


def open_dataset_from_args(args: argparse.Namespace):
    from ..evaluation import open_dataset

    return open_dataset(args.dataset, args.root, split=args.split, subset=args.subset,
                        render_pass=args.render_pass, resolution=args.resolution, ids=args.ids,
                        left_topic=args.left_topic, right_topic=args.right_topic)


def backend_spec_from_args(args: argparse.Namespace, extra, dataset) -> tuple[Any, str]:
    """The backend recipe (validated here, in milliseconds) and where max_disp came from."""
    from ..backends import get_backend_class
    from ..evaluation import BackendSpec
    from ..pipeline import choose_max_disp

    params = cli_parameters(args, extra)
    cls = get_backend_class(args.backend)
    cls.check_available()
    requested, note = args.max_disp, None
    if requested is None and not cls.weights_max_disp(args.weights) and dataset.max_ndisp():
        requested, note = dataset.max_ndisp(), "the largest ndisp of the dataset's calib.txt"
    max_disp, origin = choose_max_disp(args.backend, requested, args.weights, None)
    if note:
        origin = origin.replace("--max-disp", note, 1)
    options = backend_options(args)
    spec = BackendSpec.make(args.backend, max_disp=max_disp, device=options["device"],
                            weights=options.get("weights"), **params)
    return spec, origin


def _parse_published(items: Optional[list[str]]) -> dict[str, float]:
    published: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            published[key.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--published: expected KEY=NUMBER (e.g. d1_all=2.32), got {item!r}") from None
    return published


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score a backend or saved predictions on KITTI, Scene Flow, Middlebury or a folder",
        description="Evaluate with the official metrics of each benchmark. Rerunning the same command "
                    "resumes; Ctrl-C keeps finished images. Backend parameters are flags too.")
    add_dataset_arguments(parser)
    parser.add_argument("--predictions", metavar="DIR",
                        help="score saved disparities (KITTI disp_0/*.png, *.pfm, *.npy, MiddEval3 "
                             "<scene>/disp0*.pfm) instead of running a backend")
    parser.add_argument("--out", metavar="DIR", help="run folder (default eval-<dataset>-<backend>)")
    parser.add_argument("--gt-max-disp", type=float, default=192.0, metavar="D",
                        help="Scene Flow: score only ground truth below D (default 192)")
    parser.add_argument("--error-maps", type=int, default=20, metavar="N",
                        help="write error maps of the first N images (-1 all, 0 none; default 20)")
    parser.add_argument("--published", action="append", metavar="KEY=VALUE",
                        help="a published number of these weights to print beside ours (repeatable)")
    add_backend_arguments(parser, default_backend=None)
    for action in parser._actions:
        if "--backend" in action.option_strings:
            action.help = "disparity backend to run on every pair (see `depthapp backends`)"
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args, extra) -> int:
    from ..evaluation import evaluate
    from ..evaluation.benchmarks import SUMMARY_KEYS, published_from_weights
    from ..evaluation.runner import _format_number

    if args.backend and args.predictions:
        raise UsageError("--backend and --predictions exclude each other")
    if not args.backend and not args.predictions:
        raise UsageError("give --backend NAME (run it) or --predictions DIR (score saved disparities)")
    if args.predictions and extra:
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    given = _parse_published(args.published)
    dataset = open_dataset_from_args(args)
    published, published_source = published_from_weights(args.weights, dataset.benchmark)
    published.update(given)
    if given:
        published_source = "; ".join(filter(None, [published_source, "--published " + ", ".join(
            f"{key}={value:g}" for key, value in given.items())]))
    if args.backend:
        source, origin = backend_spec_from_args(args, extra, dataset)
        label = args.backend
        print(f"backend: {args.backend}, max disparity {source.max_disp} ({origin})")
    else:
        source, label = None, "predictions"
    out = args.out or f"eval-{dataset.name}-{label}"
    limit_note = f", first {args.limit}" if args.limit else ""
    print(f"data: {dataset.describe()}: {len(dataset)} pairs{limit_note}")
    result = evaluate(dataset, source, args.predictions, out_dir=out, limit=args.limit,
                      workers=args.workers, scheduler=args.scheduler,
                      progress=progress_bar(args, f"eval {dataset.name}"), published=published,
                      published_source=published_source, force=args.force, gt_max_disp=args.gt_max_disp,
                      error_maps=args.error_maps, notify=lambda note: echo(f"note: {note}"))
    print(f"{result.summary['images']} images ({result.computed} computed, {result.skipped} from an earlier run)")
    width = max(len(key) for key in SUMMARY_KEYS[result.benchmark])
    for key in SUMMARY_KEYS[result.benchmark]:
        line = f"  {key:<{width}}  {_format_number(key, result.summary.get(key))}"
        if key in published:
            line += f"   (published {_format_number(key, published[key])})"
        print(line)
    for path in result.files:
        print(f"wrote {path}")
    sys.stdout.flush()
    return 0
