"""``depthapp rectify``: rectified pairs from raw ones and a calibration, nothing else.

    depthapp rectify left.png right.png --calib rig.yaml --out rectified/

writes ``rectified/left.png``, ``rectified/right.png`` and ``rectified/calibration.json`` (the
calibration of the rectified images, ready for ``depthapp run --calib``). Given a folder of
pairs instead (``depthapp rectify FOLDER --calib ...``), it writes ``left/NAME.png`` and
``right/NAME.png`` for each pair.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import OutputExistsError, UsageError
from .progress import add_quiet_argument, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rectify", help="rectify raw stereo pairs with a calibration",
        description="Undistort and rectify a raw stereo pair (or every pair in a folder) with a "
                    "calibration of the raw cameras; writes PNGs and the rectified calibration.")
    parser.add_argument("left", help="left image, or a folder of pairs (left/ + right/, *_left/*_right, ...)")
    parser.add_argument("right", nargs="?", help="right image (omit when LEFT is a folder)")
    parser.add_argument("--calib", required=True, metavar="FILE",
                        help="calibration of the raw cameras (format detected by content)")
    parser.add_argument("--calib-units", choices=("mm", "cm", "m"),
                        help="units of T in an OpenCV calibration file that does not record them")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--alpha", type=float, default=None,
                        help="recompute the rectification with this scaling (0 valid pixels only, "
                             "1 all pixels); default: the file's own rectification, else 0")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from ..calibration import read_calibration
    from ..calibration.rectify_files import RectifyBatch

    if Path(args.left).is_dir():
        if args.right:
            raise UsageError("rectify: give LEFT and RIGHT images, or one folder of pairs")
    elif not args.right:
        raise UsageError("rectify: give LEFT and RIGHT images (or a folder of pairs)")
    batch = RectifyBatch(args.left, args.right, args.out)
    existing = [str(p) for p in batch.outputs() if p.exists()]
    if existing and not args.force:
        raise OutputExistsError(f"{args.out}: already holds {', '.join(existing[:3])}"
                                f"{' ...' if len(existing) > 3 else ''} (pass --force to overwrite)")

    calibration = read_calibration(args.calib, units=args.calib_units)
    progress = progress_bar(args, "rectifying") if len(batch.jobs) > 1 else None
    for done in batch.run(calibration, alpha=args.alpha, overwrite=args.force, progress=progress):
        if done.index == 0:
            print(f"calibration: {calibration.source}")
            print(f"rectified: {done.rectifier.calibration.summary()}")
        if done.vertical_offset is not None:
            print(f"check: matched features {done.vertical_offset:.2f} px apart vertically "
                  f"(median of {done.matches})")
            if done.vertical_offset > 1.0:
                print("warning: rows are not aligned after rectification: is this the "
                      "calibration of these cameras?", file=sys.stderr)
        print(f"wrote {done.job.left_out}\nwrote {done.job.right_out}")
    print(f"wrote {batch.calibration_out}")
    return 0
