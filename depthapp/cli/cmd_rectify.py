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
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    import dataclasses

    from ..calibration import read_calibration
    from ..calibration.rectify import Rectifier, measure_rectification_error
    from ..calibration.writers import write_calibration
    from ..io.images import write_image
    from ..io.pairs import PairFiles, find_pairs, load_pair
    from ..jobs import TerminalProgress, track

    left = Path(args.left)
    if left.is_dir():
        if args.right:
            raise UsageError("rectify: give LEFT and RIGHT images, or one folder of pairs")
        jobs = [(p, Path(args.out) / "left" / f"{p.name}.png", Path(args.out) / "right" / f"{p.name}.png")
                for p in find_pairs(left)]
    else:
        if not args.right:
            raise UsageError("rectify: give LEFT and RIGHT images (or a folder of pairs)")
        files = PairFiles(left.stem, left, Path(args.right))
        jobs = [(files, Path(args.out) / "left.png", Path(args.out) / "right.png")]
    calibration_out = Path(args.out) / "calibration.json"
    outputs = [calibration_out] + [path for _, l, r in jobs for path in (l, r)]
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not args.force:
        raise OutputExistsError(f"{args.out}: already holds {', '.join(existing[:3])}"
                                f"{' ...' if len(existing) > 3 else ''} (pass --force to overwrite)")

    calibration = read_calibration(args.calib, units=args.calib_units)
    if args.alpha is not None:
        calibration = dataclasses.replace(calibration, R1=None, R2=None, P1=None, P2=None, Q=None)
    rectifier = None
    progress = TerminalProgress("rectifying") if len(jobs) > 1 else None
    for files, left_out, right_out in track(jobs, callback=progress):
        pair = load_pair(files.left, files.right, name=files.name)
        if rectifier is None:
            rectifier = Rectifier(calibration, alpha=args.alpha or 0.0, image_size=pair.size)
            print(f"calibration: {calibration.source}")
            print(f"rectified: {rectifier.calibration.summary()}")
        rectified = rectifier.rectify_pair(pair)
        write_image(left_out, rectified.left, overwrite=args.force)
        write_image(right_out, rectified.right, overwrite=args.force)
        if len(jobs) == 1:
            offset, count = measure_rectification_error(rectified.left, rectified.right)
            if count >= 12:
                print(f"check: matched features {offset:.2f} px apart vertically (median of {count})")
                if offset > 1.0:
                    print("warning: rows are not aligned after rectification: is this the "
                          "calibration of these cameras?", file=sys.stderr)
        print(f"wrote {left_out}\nwrote {right_out}")
    write_calibration(rectifier.calibration, calibration_out, overwrite=args.force)
    print(f"wrote {calibration_out}")
    return 0
