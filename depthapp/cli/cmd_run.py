"""``depthapp run``: disparity, metric depth and a coloured point cloud for one pair."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..timing import format_timings
from .backend_args import add_backend_arguments, cli_parameters, create_cli_backend
from .robotics_args import add_output_arguments, live_frame_of, outputs_or_none
from .progress import add_quiet_argument, progress_bar

OUTPUT_NAMES = ("disparity.pfm", "disparity.png", "depth.pfm", "cloud.ply")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="compute disparity, depth and a point cloud for one stereo pair",
        description="Compute disparity (and with a calibration, depth in metres and a coloured "
                    "point cloud) for one rectified pair. Backend parameters are flags too: "
                    "see `depthapp backends`.")
    parser.add_argument("left", nargs="?", help="left image (or a side-by-side frame if RIGHT is omitted)")
    parser.add_argument("right", nargs="?", help="right image")
    parser.add_argument("--sample", action="store_true",
                        help="run on the embedded Middlebury Motorcycle pair with its calibration")
    parser.add_argument("--calib", metavar="FILE", help="calibration file (format detected by content)")
    parser.add_argument("--calib-units", choices=("mm", "cm", "m"),
                        help="units of T in an OpenCV calibration file")
    parser.add_argument("--kitti-cameras", default="2,3", metavar="L,R",
                        help="cameras of a KITTI calib_cam_to_cam.txt (default 2,3; 0,1 for grey)")
    parser.add_argument("--out", metavar="DIR", default="depthapp-out", help="output folder (default depthapp-out)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs in DIR")
    parser.add_argument("--gt", metavar="FILE", help="ground-truth disparity (.pfm/.png/.npy) to score against")
    add_output_arguments(parser)
    add_quiet_argument(parser)
    add_backend_arguments(parser)
    parser.set_defaults(handler=handle)


def _load_input(args):
    from ..io import read_disparity
    from ..sources import load_pair

    if args.sample:
        if args.left or args.right:
            raise UsageError("--sample takes no LEFT/RIGHT images")
        from ..sample import load_sample

        pair = load_sample()
    else:
        if not args.left:
            raise UsageError("run: give LEFT and RIGHT images, a side-by-side frame, or --sample")
        gt = read_disparity(args.gt) if args.gt else None
        pair = load_pair(args.left, args.right, gt_disparity=gt)
    if args.calib:
        from ..calibration import read_calibration

        try:
            cameras = tuple(int(c) for c in args.kitti_cameras.split(","))
        except ValueError:
            raise UsageError(f"--kitti-cameras: expected two numbers like 2,3, got {args.kitti_cameras!r}") from None
        pair.calibration = read_calibration(args.calib, units=args.calib_units, kitti_cameras=cameras)
    return pair


def _check_outputs(out_dir: Path, force: bool, width: int, height: int) -> None:
    """Everything about the output folder that can fail, checked before any computation."""
    from ..errors import OutputExistsError
    from ..io.atomic import check_output_folder, remove_stale_temporaries

    # disparity and depth PFM (4 bytes a pixel each), colour PNG (<= 3), PLY (15 a point)
    check_output_folder(out_dir, needed_bytes=width * height * (4 + 4 + 3 + 15) + (1 << 20))
    remove_stale_temporaries(out_dir)
    existing = [name for name in OUTPUT_NAMES if (out_dir / name).exists()]
    if existing and not force:
        raise OutputExistsError(f"{out_dir}: already holds {', '.join(existing)} (pass --force to overwrite)")


def score_line(disparity: np.ndarray, gt: np.ndarray) -> str:
    from ..evaluation.metrics import score

    metrics = score(disparity, gt, 2.0)
    return (f"vs ground truth: bad-2 all {metrics.bad_all:.2f} %, bad-2 filled {metrics.bad_filled:.2f} %, "
            f"density {metrics.density:.2f} %, EPE (filled) {metrics.epe:.3f} px")


def handle(args, extra) -> int:
    from ..io import write_disparity, write_image, write_ply
    from ..io.atomic import OutputSet
    from ..pipeline import choose_max_disp, clamp_max_disp, prepare_pair, run_pipeline
    from ..visualize import colorize_disparity

    params = cli_parameters(args, extra)
    pair = _load_input(args)
    out_dir = Path(args.out)
    _check_outputs(out_dir, args.force, pair.width, pair.height)
    pair, notes = prepare_pair(pair)
    max_disp, origin = choose_max_disp(args.backend, args.max_disp, args.weights, pair.calibration)
    backend = create_cli_backend(args, params, max_disp)
    clamped = clamp_max_disp(backend, pair.width)
    if clamped:
        notes.append(clamped)
    print(f"pair: {pair.name} ({pair.width}x{pair.height})")
    for note in notes:
        print(f"note: {note}")
    if pair.calibration is not None:
        print(f"calibration: {pair.calibration.summary()}")
        if pair.calibration.rectified and not any(n.startswith("rectified") for n in notes):
            from ..calibration.rectify import check_rectified

            warning = check_rectified(pair)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
    print(f"backend: {args.backend} on {backend.device}, max disparity {backend.max_disp} levels ({origin})")
    for note in getattr(backend, "weights_notes", ()):
        print(f"note: {note}")
    outputs = outputs_or_none(args, backend, args.force)  # refuses existing outputs before compute
    # Backends that declare their stages are the slow ones; the rest finish in well under a second.
    progress = progress_bar(args, f"run {args.backend}") if backend.stage_shares else None
    try:
        output = run_pipeline(pair, backend, prepared=True, progress=progress)
        if outputs is not None:
            outputs.write(live_frame_of(pair, output))
    except BaseException:
        if outputs is not None:
            outputs.abort()
        raise
    result = output.result
    for message in result.messages:
        print(f"note: {message}")
    print(f"timings: {format_timings(result.timings)}")
    print(f"density: {100.0 * result.density:.2f} % of all pixels")
    if pair.gt_disparity is not None:
        print(score_line(result.disparity, pair.gt_disparity))

    # All outputs or none: a full disk half-way leaves nothing that blocks the rerun.
    with OutputSet(out_dir, overwrite=args.force, replaces=OUTPUT_NAMES) as files:
        files.write("disparity.pfm", write_disparity, result.disparity)
        vmax = float(backend.max_disp)
        files.write("disparity.png", write_image, colorize_disparity(result.disparity, 0.0, vmax))
        if output.depth is not None:
            files.write("depth.pfm", write_disparity, output.depth)
            files.write("cloud.ply", write_ply, output.cloud.points, output.cloud.colors)
    if output.depth is not None:
        print(f"point cloud: {len(output.cloud)} points")
    else:
        print("no calibration: wrote disparity only (pass --calib FILE for depth and a point cloud)")
    for path in files.written:
        print(f"wrote {path}")
    if outputs is not None:
        for line in outputs.close():
            print(line)
    return 0
