"""``depthapp gui``: the desktop viewer; ``--screenshot FILE`` renders it to a PNG and exits."""

from __future__ import annotations

import re

from ..errors import UsageError
from .backend_args import add_backend_arguments, parse_backend_parameters


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gui", help="open the desktop viewer (or render it to a PNG with --screenshot)",
        description="The desktop viewer: open pairs, folders, videos and calibrations, compute "
                    "disparity with any backend, inspect depth in metres, compare backends, "
                    "see the point cloud, save results. With --screenshot FILE it computes, "
                    "renders the window (offscreen when there is no display) to FILE and exits.")
    parser.add_argument("paths", nargs="*", metavar="LEFT RIGHT",
                        help="left and right images; or one side-by-side image, a folder of pairs "
                             "or a video (a second video = the right view)")
    parser.add_argument("--sample", action="store_true",
                        help="open the embedded Middlebury Motorcycle pair (calibration + ground truth)")
    parser.add_argument("--calib", metavar="FILE", help="calibration file (format detected by content)")
    parser.add_argument("--calib-units", choices=("mm", "cm", "m"),
                        help="units of T in an OpenCV calibration file that does not record them")
    parser.add_argument("--gt", metavar="FILE", help="ground-truth disparity (.pfm/.png/.npy)")
    parser.add_argument("--compare", metavar="NAME",
                        help="compare mode: run this second backend (default parameters) beside --backend")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="compute, save a PNG of the window to FILE and exit")
    parser.add_argument("--size", default="1500x940", metavar="WxH",
                        help="window size for --screenshot (default 1500x940)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing screenshot FILE")
    add_backend_arguments(parser)
    # Unset means "what the viewer remembers", not the CLI default.
    parser.set_defaults(handler=handle, backend=None, device=None)


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match.group(1)) < 200 or int(match.group(2)) < 150:
        raise UsageError(f"--size: {text!r} is not WIDTHxHEIGHT (at least 200x150)")
    return int(match.group(1)), int(match.group(2))


def handle(args, extra) -> int:
    if args.sample and args.paths:
        raise UsageError("--sample takes no LEFT/RIGHT images")
    if len(args.paths) > 4:
        raise UsageError("give LEFT RIGHT images (or one side-by-side image, folder or video)")
    if extra and not args.backend:
        raise UsageError("backend parameter flags need --backend NAME")
    params = parse_backend_parameters(args.backend, extra, args.preset) if args.backend else {}
    options = dict(paths=list(args.paths), ground_truth=args.gt, calibration=args.calib,
                   calibration_units=args.calib_units, sample=args.sample, backend=args.backend,
                   params=params, compare=args.compare, device=args.device, weights=args.weights, max_disp=args.max_disp,
                   model=args.model)
    from ..gui.app import run_viewer, take_screenshot

    if args.screenshot:
        if not args.sample and not args.paths:
            raise UsageError("--screenshot needs LEFT RIGHT images or --sample")
        path = take_screenshot(args.screenshot, overwrite=args.force, size=_size(args.size), **options)
        print(f"wrote {path}")
        return 0
    return run_viewer(**options)
